import ArgumentParser
import Foundation
import Framework

/// `tunneld import mlvpn`: file I/O only; the conversion is `MlvpnImporter`.
struct ImportMlvpn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlvpn",
        abstract: "Write a bonding site file from an mlvpn configuration.",
        usage: "tunneld import mlvpn FILE.conf [--output FILE.yaml]",
        discussion: """
            'mode = client' becomes a bonding-client site file, 'mode = server' a bonding-server one. \
            Every mlvpn key is either converted (the site file names the key it came from) or kept as \
            a comment that says why it has no equivalent. mlvpn's password becomes a passphrase file: \
            with --output it is written beside the site file with mode 0600; without, create it yourself.

            Example:
              tunneld import mlvpn /etc/mlvpn/site.conf --output /etc/tunneld/site.yaml
              tunneld validate /etc/tunneld/site.yaml
              systemctl enable --now tunneld@site
            """)

    @Argument(help: "The mlvpn configuration (its INI file, e.g. /etc/mlvpn/mlvpn.conf).")
    var file: String

    @Option(name: [.short, .long], help: "Write the site file here, and the passphrase beside it (NAME.passphrase, mode 0600), instead of printing the site file.")
    var output: String?

    func run() throws {
        let passphraseName = ImportMlvpn.passphraseName(output: output, input: file)
        let result: MlvpnImporter.Result
        do {
            let text = try ProfileFiles.read(file, what: "mlvpn configuration")
            result = try MlvpnImporter.convert(text, file: file, options: .init(passphraseFile: passphraseName, writesPassphrase: output != nil))
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        for warning in result.warnings { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
        guard let output else {
            print(result.yaml, terminator: "")
            return
        }
        // Beside the site file: its paths are relative to its folder.
        let folder = (output as NSString).deletingLastPathComponent
        let secrets = result.files.map { (file: $0, path: (folder as NSString).appendingPathComponent($0.path)) }
        do {
            // As 'tunneld import tunneldigger': a site file is never overwritten (it may be edited, or running).
            guard !FileManager.default.fileExists(atPath: output) else {
                throw ConfigurationError("'\(output)' exists; the import never overwrites a site file: remove it or choose another --output")
            }
            // The secret first: a site file that names a passphrase file not written would not run.
            for secret in secrets { try ImportMlvpn.writeSecret(secret.file, at: secret.path) }
            try ImportMlvpn.create(output, result.yaml, mode: 0o644)
        } catch {
            FileHandle.standardError.write(Data("tunneld: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let written = [output] + secrets.map { "\($0.path) (mode 0\(String($0.file.mode, radix: 8)))" }
        FileHandle.standardError.write(Data("wrote \(written.joined(separator: " and ")); check with 'tunneld validate \(output)'\n".utf8))
    }

    /// `site.yaml` → `site.passphrase` beside it; without --output, named after the input.
    static func passphraseName(output: String?, input: String) -> String {
        let base = URL(fileURLWithPath: output ?? input).lastPathComponent
        let stem = ["yaml", "yml", "conf"].contains((base as NSString).pathExtension) ? (base as NSString).deletingPathExtension : base
        return stem + ".passphrase"
    }

    /// Create a secret file with its mode from the start (never readable by others,
    /// not even for an instant). An existing file is kept if it holds the same secret
    /// (importing twice is harmless) and refused otherwise: it may be another tunnel's.
    static func writeSecret(_ file: MlvpnImporter.ExtraFile, at path: String) throws {
        if FileManager.default.fileExists(atPath: path) {
            guard let existing = try? SecretFile.read(path), existing == file.contents.trimmingCharacters(in: .whitespacesAndNewlines) else {
                throw ConfigurationError("'\(path)' exists and holds another secret (or is readable by others); remove it or choose another --output")
            }
            return
        }
        try create(path, file.contents, mode: file.mode)
    }

    /// A new file (never an existing one) with `mode` whatever the umask.
    static func create(_ path: String, _ contents: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ConfigurationError("cannot create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode)
        let bytes = Array(contents.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ConfigurationError("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }
}

/// mlvpn configuration text in, bonding site file text out, with the warnings and
/// the secret files to write beside it. Pure: no file is read or written here.
struct MlvpnImporter {
    struct Options: Sendable {
        /// The passphrase file's name as the site file references it (relative to it).
        var passphraseFile: String
        /// Whether the caller writes it (`files`); if not, the site file says to create it.
        var writesPassphrase: Bool
    }

    struct ExtraFile: Sendable, Equatable {
        var path: String
        var contents: String
        var mode: mode_t
    }

    struct Result: Sendable {
        var yaml: String
        var warnings: [INIWarning]
        var files: [ExtraFile]
    }

    static func convert(_ text: String, file: String, options: Options) throws(INIError) -> Result {
        let config = try MlvpnConfig(try INIFile.parse(text, file: file), file: file)
        var conversion = MlvpnConversion(config: config, options: options)
        try conversion.run()
        // In file order, whichever step noticed them; once each (a [general] value
        // every link inherits is complained about once).
        var warnings: [INIWarning] = []
        for warning in (config.warnings + conversion.warnings).enumerated()
            .sorted(by: { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }).map(\.element)
            where !warnings.contains(warning) {
            warnings.append(warning)
        }
        return Result(yaml: conversion.out.text, warnings: warnings, files: conversion.files)
    }
}

/// One conversion, section by section of the site file.
private struct MlvpnConversion {
    let config: MlvpnConfig
    let options: MlvpnImporter.Options
    var out = SiteFileText()
    var warnings: [INIWarning] = []
    var files: [MlvpnImporter.ExtraFile] = []

    init(config: MlvpnConfig, options: MlvpnImporter.Options) {
        self.config = config
        self.options = options
    }

    var isServer: Bool { config.mode == .server }

    /// A `[general]` value, if given and not empty (mlvpn treats `""` as unset).
    func general(_ key: String) -> MlvpnConfig.Setting? {
        config.general[key].flatMap { $0.value.isEmpty ? nil : $0 }
    }

    mutating func warn(_ line: Int, _ message: String) {
        warnings.append(INIWarning(file: config.file, line: line, message: message))
    }

    /// `key = value` as it was written, for comments; secrets are not repeated.
    static func written(_ setting: MlvpnConfig.Setting) -> String {
        "\(setting.key) = \(MlvpnConfig.looksSecret(setting.key) ? "…" : setting.value)"
    }

    mutating func run() throws(INIError) {
        let name = URL(fileURLWithPath: config.file).lastPathComponent
        out.comment(0, "tunneld site file imported from mlvpn's '\(name)' by 'tunneld import mlvpn'.")
        out.comment(0, "Each value names the mlvpn key it came from; mlvpn keys with no equivalent are kept as comments saying why.")
        out.comment(0, "Check it with 'tunneld validate FILE', run it with 'tunneld run FILE'.")
        out.add(0, "profile: \(isServer ? "bonding-server" : "bonding-client")", "mode = \(config.mode.rawValue)")
        out.comment(0, "log: info  (mlvpn took its log level on its command line: -v, --debug, -q; tunneld's goes here or in 'tunneld run --log-level')")
        for ignored in config.generalIgnored {
            out.comment(0, "\(Self.written(ignored.entry)) (line \(ignored.entry.line)): \(ignored.why)")
        }
        try device()
        try links()
        try sessions()
        try settings()
        try services()
    }

    // MARK: device

    mutating func device() throws(INIError) {
        out.blank()
        out.add(0, "device:")
        if let setting = general("interface_name") {
            var name = setting.value
            if name.utf8.count > 15 {
                // mlvpn copies it into IFNAMSIZ bytes: the first 15 characters are the name it used.
                name = String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)
                warn(setting.line, "interface_name '\(setting.value)' is longer than an interface name can be; mlvpn used '\(name)', and so does the site file")
            }
            out.add(2, "name: \(yaml(name))", "interface_name")
        } else {
            out.add(2, "name: mlvpn0", "mlvpn's default interface_name, which scripts and firewall rules may name")
        }
        if let setting = general("mtu"), try config.number(setting, "bytes") != 0 {
            let mtu = try config.number(setting, "bytes")
            out.add(2, "mtu: \(mtu)", "mtu")
            if mtu > 1444 {
                out.comment(2, "a bonded packet takes 56 bytes more on the uplink: over 1500-byte uplinks the largest MTU that is not fragmented is 1444 (1424 over IPv6)")
                warn(setting.line, "mtu \(mtu) is more than fits a 1500-byte uplink with tunneld's 56 bytes of overhead (1444; 1424 over IPv6); kept, but check it")
            }
            if !(576...9000).contains(mtu) { warn(setting.line, "mtu \(mtu) is outside what tunneld accepts (576-9000); set it in the site file") }
        } else {
            out.comment(2, "mtu: not set in mlvpn (its default was 1432); the profile's 1444 fits a 1500-byte IPv4 uplink")
        }
        var addresses: [String] = []
        for key in ["ip4", "ip6"] {
            guard let setting = general(key) else { continue }
            if InterfaceAddress.parse(setting.value) != nil {
                addresses.append(setting.value)
            } else {
                warn(setting.line, "\(key) '\(setting.value)' is not an address with a prefix length (such as 10.42.43.1/30); it is not set on the device, only passed to the status script")
            }
        }
        if !addresses.isEmpty {
            out.add(2, "address:", general("statuscommand") == nil
                ? "ip4, ip6: tunneld sets them on the device when it creates it"
                : "ip4, ip6: tunneld sets them on the device itself; a status script that adds them too gets 'File exists' from 'ip addr add' (use 'ip addr replace')")
            for address in addresses { out.add(4, "- \(yaml(address))") }
        }
        if let setting = general("tuntap") {
            switch setting.value {
            case "tun":
                out.comment(2, "\(Self.written(setting)): the bonding profiles always use a TUN device")
            case "tap":
                out.comment(2, "\(Self.written(setting)): not imported: the bonding profiles carry IP packets on a TUN device; for Ethernet, run a VXLAN or GRETAP device over this tunnel")
                warn(setting.line, "tuntap = tap has no equivalent: the bonding profiles carry IP packets (TUN); imported as TUN")
            default:
                throw INIError(file: config.file, line: setting.line, column: setting.valueColumn, message: "tuntap must be 'tun' or 'tap', found '\(setting.value)'")
            }
        }
    }

    // MARK: links

    mutating func links() throws(INIError) {
        out.blank()
        out.add(0, "links:")
        for link in config.links {
            out.add(2, "- name: \(yaml(link.name))", "[\(link.name)]")
            try endpoints(link)
            if let setting = link.settings["bandwidth_upload"], !setting.value.isEmpty {
                let bytes = try config.number(setting, "bytes per second")
                if bytes > 0 {
                    let mbps = Double(bytes) * 8 / 1_000_000
                    let hint = min(100_000, max(1, Int(mbps.rounded())))
                    out.add(4, "bandwidth: \(hint)", "bandwidth_upload = \(bytes) bytes/s = \(String(format: "%.2f", mbps)) Mbit/s; tunneld starts from it, then measures the link")
                }
            }
            if let found = config.linkValue(link, "loss_tolerence") {
                let (setting, inherited) = found
                var percent = try config.number(setting, "percent")
                if percent > 100 {
                    warn(setting.line, "loss_tolerence \(percent) is more than 100 %; capped to 100 as mlvpn does")
                    percent = 100
                }
                out.add(4, "loss-tolerance: \(percent)", Self.source(setting, inherited))
            }
            if let found = config.linkValue(link, "latency_tolerence") {
                let (setting, inherited) = found
                var ms = try config.number(setting, "milliseconds")
                if ms > 60_000 {
                    warn(setting.line, "latency_tolerence \(ms) ms is more than tunneld's limit; capped to 60000")
                    ms = 60_000
                }
                out.add(4, "latency-tolerance: \(ms)ms", Self.source(setting, inherited))
            }
            if let setting = link.settings["fallback_only"], !setting.value.isEmpty {
                out.add(4, "fallback-only: \(try config.flag(setting))", "fallback_only")
            }
            if let found = config.linkValue(link, "timeout") {
                let (setting, inherited) = found
                let seconds = try config.number(setting, "seconds")
                out.comment(4, "\(Self.written(setting))\(inherited ? " in [general]" : ""): not imported: tunneld probes every link every 50 ms and takes it down after 250 ms without an answer, where mlvpn waited \(max(seconds, 5)) s; to keep that slow failover, write 'timeout: \(min(max(seconds, 5), 60))s'")
            }
            if let setting = link.settings["bindfib"], !setting.value.isEmpty {
                _ = try config.number(setting, "a routing table")
                out.comment(4, "\(Self.written(setting)): not imported: a BSD routing table (setfib); on Linux tie the link to its uplink with 'device: IFNAME' or policy routing (ip rule)")
            }
            for ignored in link.ignored {
                out.comment(4, "\(Self.written(ignored.entry)) (line \(ignored.entry.line)): \(ignored.why)")
            }
        }
    }

    static func source(_ setting: MlvpnConfig.Setting, _ inherited: Bool) -> String {
        inherited ? "\(setting.key) = \(setting.value) in [general]" : setting.key
    }

    /// bind and remote. A client without bindhost/bindport binds any address and a
    /// port the kernel picks, as mlvpn did; a hub needs no remote.
    mutating func endpoints(_ link: MlvpnConfig.Link) throws(INIError) {
        func given(_ key: String) -> MlvpnConfig.Setting? { link.settings[key].flatMap { $0.value.isEmpty ? nil : $0 } }
        let bindHost = given("bindhost"), remoteHost = given("remotehost")
        var bindPort: (setting: MlvpnConfig.Setting, port: Int)?
        var remotePort: (setting: MlvpnConfig.Setting, port: Int)?
        if let setting = given("bindport") { bindPort = (setting, try config.port(setting)) }
        if let setting = given("remoteport") { remotePort = (setting, try config.port(setting)) }
        // Any-address of the remote's family: a link talks one family.
        let remoteIsIPv6 = remoteHost.map { Self.literal(Self.unbracketed($0.value)) == .ipv6 } ?? false
        let any = remoteIsIPv6 && !isServer ? "::" : "0.0.0.0"
        let bind = endpoint(bindHost, default: any, port: bindPort?.port ?? 0)
        let bindSource = switch (bindHost, bindPort) {
        case (nil, nil): "no bindhost, bindport: any address, a port the kernel picks"
        case (nil, _): "bindport (no bindhost: any address)"
        case (_, nil): "bindhost (no bindport: a port the kernel picks)"
        default: "bindhost, bindport"
        }
        out.add(4, "bind: \(yaml(bind))", bindSource)
        if isServer {
            let remote = [remoteHost, remotePort?.setting].compactMap { $0 }
            if !remote.isEmpty {
                out.comment(4, "\(remote.map(Self.written).joined(separator: ", ")): not imported: a hub learns each site's addresses from its authenticated packets and follows them (NAT, new uplink addresses)")
            }
        } else if let remoteHost, let remotePort {
            out.add(4, "remote: \(yaml(endpoint(remoteHost, default: any, port: remotePort.port)))", "remotehost, remoteport")
        }
    }

    enum Family { case ipv4, ipv6 }

    /// mlvpn passes hosts to getaddrinfo, which takes IPv6 without brackets; some write them anyway.
    static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    static func literal(_ host: String) -> Family? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4 }
        if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6 }
        return nil
    }

    /// `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6). A host name is kept as written,
    /// with a warning: tunneld never waits on DNS at start-up, so it will not load.
    mutating func endpoint(_ host: MlvpnConfig.Setting?, default any: String, port: Int) -> String {
        let text = Self.unbracketed(host?.value ?? any)
        switch Self.literal(text) {
        case .ipv6: return "[\(text)]:\(port)"
        case .ipv4: return "\(text):\(port)"
        case nil:
            if let host {
                warn(host.line, "\(host.key) '\(host.value)' is a name; tunneld takes addresses only (it never waits on DNS at start-up): replace it with the address in the site file")
            }
            return "\(text):\(port)"
        }
    }

    // MARK: sessions (status script, hub's session timeout)

    mutating func sessions() throws(INIError) {
        var lines = SiteFileText()
        let script = general("statuscommand")
        if let script {
            lines.add(2, "status-command: \(yaml(script.value))", "statuscommand: called as mlvpn called it (DEVICE tuntap_up|tuntap_down, DEVICE rtun_up|rtun_down LINK), same environment")
            if isServer {
                lines.comment(2, "on a hub LINK is 'SITE/LINK': with a passphrase the site is 'peer', and LINK the site's name for the link (its address until the site's first probe names it)")
            }
            if !script.value.hasPrefix("/") {
                lines.comment(2, "a relative path is taken from this file's folder")
            }
        }
        for (key, name) in [("ip4", "ip4"), ("ip6", "ip6"), ("ip4_gateway", "ip4-gateway"), ("ip6_gateway", "ip6-gateway"),
                            ("ip4_routes", "ip4-routes"), ("ip6_routes", "ip6-routes")] {
            guard let setting = general(key) else { continue }
            let variable = key.uppercased()
            lines.add(2, "\(name): \(yaml(setting.value))", script == nil
                ? "\(key): \(variable) for a status script; there is none, and tunneld adds no routes or gateways itself"
                : "\(key): \(variable) for the status script")
        }
        if isServer, let setting = general("timeout") {
            let seconds = min(max(try config.number(setting, "seconds"), 5), 3600)
            lines.add(2, "session-timeout: \(seconds)s", "timeout: a site silent this long is ended (its links' rtun_down, then tuntap_down)")
        }
        guard !lines.lines.isEmpty else { return }
        out.blank()
        out.add(0, "sessions:")
        out.append(lines)
    }

    // MARK: stage settings (passphrase, reorder buffer, pins)

    mutating func settings() throws(INIError) {
        out.blank()
        out.add(0, "settings:")
        out.add(2, "crypto.aead:")
        let password = config.general["password"]!
        if options.writesPassphrase {
            out.comment(4, "password: mlvpn's shared secret, written to \(options.passphraseFile) beside this file (mode 0600), never into this file.")
            files.append(.init(path: options.passphraseFile, contents: password.value + "\n", mode: 0o600))
        } else {
            out.comment(4, "password: create \(options.passphraseFile) beside this file holding mlvpn's password, mode 0600 ('chmod 600').")
            warn(password.line, "the password goes in a file of its own, not written without --output: create \(options.passphraseFile) beside the site file holding mlvpn's password, with mode 0600")
        }
        out.comment(4, "Both ends need the same passphrase and passphrase-context (default 'tunneld'). tunneld stretches it with")
        out.comment(4, "Argon2id where mlvpn hashed it once; key pairs ('tunneld genkey') are stronger still.")
        out.add(4, "passphrase-file: \(yaml(options.passphraseFile))", "password")
        if password.value.count < 12 {
            warn(password.line, "the password has \(password.value.count) characters; tunneld wants a passphrase of at least 12: put a longer one in \(options.passphraseFile) on both ends (or use key pairs: 'tunneld genkey')")
        }
        if let setting = general("cleartext_data") {
            let cleartext = try config.flag(setting)
            out.comment(4, "\(Self.written(setting)): \(cleartext ? "not imported: " : "")tunneld encrypts and authenticates every data packet; there is no cleartext mode")
        }
        if let setting = general("reorder_buffer_size") {
            let size = try config.number(setting, "packets")
            switch size {
            case 0:
                out.comment(2, "\(Self.written(setting)): not imported: mlvpn's reordering was off; tunneld always restores order (a packet in order passes at once)")
            case 1..<64:
                out.add(2, "bonding.reorder:")
                out.add(4, "buffer: 64", "reorder_buffer_size = \(size), raised to tunneld's least (its default is 4096)")
            default:
                if size > 65_536 { warn(setting.line, "reorder_buffer_size \(size) is more than tunneld's largest buffer; capped to 65536") }
                out.add(2, "bonding.reorder:")
                out.add(4, "buffer: \(min(size, 65_536))", "reorder_buffer_size (packets; tunneld's default is 4096)")
            }
        }
        pins()
    }

    /// `[filters]` → `bonding.scheduler: { pin: […] }`, first match first, as in mlvpn.
    mutating func pins() {
        guard !config.filters.isEmpty else { return }
        var rules: [(rule: String, notes: [String])] = []
        var notes: [String] = []
        var pinned: Set<String> = []
        for filter in config.filters {
            let written = "\(filter.key) = \(filter.value)"
            guard config.links.contains(where: { $0.name == filter.key }) else {
                notes.append("\(written): not imported: there is no link [\(filter.key)] (mlvpn ignored it too)")
                warn(filter.line, "[filters] '\(filter.key)' names no link section; not imported (mlvpn ignored it too)")
                continue
            }
            guard let translation = PcapPin.translate(filter.value) else {
                notes.append("\(written): not imported: tunneld pins by protocol, port and DSCP; this pcap expression has no equivalent")
                warn(filter.line, "[filters] '\(filter.value)' cannot be said as a tunneld pin rule (protocol, port, DSCP); not imported, kept as a comment")
                continue
            }
            guard pinned.insert(translation.criteria).inserted else {
                notes.append("\(written): mlvpn's next choice for the same traffic; tunneld pins to the first link and schedules normally while it is down")
                continue
            }
            let broader = translation.broader.isEmpty ? [] : ["\(written): the pin also matches \(translation.broader.joined(separator: ", "))"]
            rules.append(("\(translation.criteria) -> \(filter.key)", broader))
        }
        if isServer && !rules.isEmpty {
            warn(config.filters[0].line, "on a hub pins name the site's links (its own names for them), not the hub's link sections; check the names after '->'")
        }
        if rules.isEmpty {
            for note in notes { out.comment(2, note) }
            return
        }
        out.add(2, "bonding.scheduler:")
        out.add(4, "pin:", isServer ? "[filters]; on a hub the names after '->' are the site's link names" : "[filters]")
        for (rule, ruleNotes) in rules {
            out.add(6, "- \(yaml(rule))")
            for note in ruleNotes { out.comment(6, note) }
        }
        for note in notes { out.comment(4, note) }
    }

    // MARK: services (mlvpn's control socket and HTTP)

    mutating func services() throws(INIError) {
        if let setting = general("control_unix_path") {
            out.blank()
            out.add(0, "status:")
            out.add(2, "socket: \(yaml(setting.value))", "control_unix_path: tunneld's status socket (JSON, read by 'tunneld status'); mlvpn's line commands are not spoken")
        }
        let host = general("control_bind_host")
        var port: (setting: MlvpnConfig.Setting, port: Int)?
        if let setting = general("control_bind_port") { port = (setting, try config.port(setting)) }
        if let port {
            out.blank()
            out.add(0, "http:")
            let listen = endpoint(host, default: "0.0.0.0", port: port.port)
            out.add(2, "listen: \(yaml(listen))", host == nil
                ? "control_bind_port (no control_bind_host: every address, as mlvpn); /status JSON, /metrics, a live page"
                : "control_bind_host, control_bind_port: /status JSON, /metrics, a live page")
        } else if let host {
            out.comment(0, "\(Self.written(host)): not imported: without control_bind_port mlvpn did not listen on TCP")
        }
    }

    func yaml(_ text: String) -> String { SiteFileText.scalar(text) }
}

/// Lines of YAML with comments; values are quoted unless plainly safe.
struct SiteFileText {
    private(set) var lines: [String] = []

    var text: String { lines.joined(separator: "\n") + "\n" }

    mutating func add(_ indent: Int, _ content: String, _ comment: String? = nil) {
        lines.append(String(repeating: " ", count: indent) + content + (comment.map { "  # \($0)" } ?? ""))
    }

    mutating func comment(_ indent: Int, _ text: String) {
        lines.append(String(repeating: " ", count: indent) + "# " + text)
    }

    mutating func blank() { lines.append("") }

    mutating func append(_ other: SiteFileText) { lines += other.lines }

    /// Plain when it cannot be read as anything but this string; else double-quoted.
    static func scalar(_ text: String) -> String {
        let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-+")
        let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null"]
        if let first = text.first, first.isLetter || first.isNumber || first == "/" || first == ".",
           text.allSatisfy(plain.contains), !reserved.contains(text.lowercased()), Double(text) == nil {
            return text
        }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\t": quoted += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: quoted += String(format: "\\x%02X", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
