import ArgumentParser
import Foundation

/// `tunneld import tunneldigger`: site files from the Python broker's l2tp_broker.cfg and
/// from the C client's command line. The commands only read and write; the conversions
/// are `TunneldiggerBrokerImporter` and `TunneldiggerClientImporter`.
struct ImportTunneldigger: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunneldigger",
        abstract: "Write an l2tp-broker or l2tp-client site file from a tunneldigger configuration.",
        subcommands: [ImportTunneldiggerBroker.self, ImportTunneldiggerClient.self])
}

struct ImportTunneldiggerBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Write an l2tp-broker site file from the Python broker's l2tp_broker.cfg.",
        discussion: """
        One link per port of [broker] port, every setting mapped; keys with no equivalent are kept as comments saying why. Unknown keys are warnings (file:line); a malformed file is an error (file:line:column) and exits 1.

        Example:
          tunneld import tunneldigger broker l2tp_broker.cfg --output broker.yaml
          tunneld validate broker.yaml
        """)

    @Argument(help: "The broker's configuration file (INI, as 'python -m tunneldigger_broker.main FILE' reads it).")
    var file: String
    @Option(name: [.short, .long], help: "Write the site file to this new file (never overwritten) instead of standard output.")
    var output: String?

    func run() throws {
        let text: String
        do { text = try ProfileFiles.read(file, what: "tunneldigger broker configuration") } catch {
            throw TunneldiggerImportIO.failure("tunneld: \(error)")
        }
        try TunneldiggerImportIO.finish({ try TunneldiggerBrokerImporter(file: file).convert(text) }, output: output)
    }
}

struct ImportTunneldiggerClient: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Write an l2tp-client site file from the tunneldigger C client's command line.",
        discussion: """
        Give the C client's options after '--', as its init script or unit passes them. Options with no equivalent (-f, -h) are kept as comments; an option the C client does not have is an error.

        Example:
          tunneld import tunneldigger client --output l2tp.yaml -- \\
            -u c0:ff:ee:00:00:01 -i l2tp0 -b broker.example.net:8942 -a -s /etc/td/hook
          tunneld validate l2tp.yaml
        """)

    @Option(name: [.short, .long], help: "Write the site file to this new file (never overwritten) instead of standard output.")
    var output: String?
    @Argument(parsing: .postTerminator, help: "The C client's options (after '--'), e.g. -u UUID -i l2tp0 -b host:port.")
    var options: [String] = []

    func run() throws {
        try TunneldiggerImportIO.finish({ try TunneldiggerClientImporter().convert(options) }, output: output)
    }
}

/// The commands' shared input/output: warnings and errors to standard error, the
/// site file to standard output or to a new file.
enum TunneldiggerImportIO {
    /// Print the message and give the exit status to throw.
    static func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
        return ExitCode(1)
    }

    static func finish(_ convert: () throws -> TunneldiggerImport, output: String?) throws {
        let result: TunneldiggerImport
        do { result = try convert() } catch { throw failure("\(error)") }
        for warning in result.warnings { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
        guard let output else {
            print(result.yaml, terminator: "")
            return
        }
        // Never over an existing file: a migration must not clobber a site file in use.
        let fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw failure("tunneld: cannot create '\(output)': \(String(cString: strerror(errno))) (an existing file is never overwritten)")
        }
        let bytes = Array(result.yaml.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let writeError = errno
        close(fd)
        guard written == bytes.count else { throw failure("tunneld: writing '\(output)' failed: \(String(cString: strerror(writeError)))") }
        FileHandle.standardError.write(Data("wrote \(output); check it with: tunneld validate \(output)\n".utf8))
    }
}

/// What an importer produces: the site file and the warnings to show with it.
struct TunneldiggerImport: Equatable {
    var yaml: String
    var warnings: [String]
}

/// An input that cannot be converted; the text names the place and what to do.
struct TunneldiggerImportError: Error, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A site file built line by line, with `# …` notes aligned after the values.
struct TunneldiggerYAML {
    private var lines: [String] = []

    mutating func line(_ text: String, note: String? = nil) {
        guard let note else { return lines.append(text) }
        let padding = max(2, 44 - text.count)
        lines.append(text + String(repeating: " ", count: padding) + "# " + Self.oneLine(note))
    }

    mutating func comment(_ text: String, indent: String = "") {
        lines.append(indent + "# " + Self.oneLine(text))
    }

    mutating func append(_ other: TunneldiggerYAML) { lines += other.lines }

    var text: String { lines.joined(separator: "\n") + "\n" }

    /// A string as a YAML scalar: plain when that cannot be misread (also inside
    /// `{ … }`), else double-quoted with escapes.
    static func scalar(_ value: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@=")
        if let first = value.first, first != "-", value.allSatisfy({ safe.contains($0) }) { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: quoted += String(format: "\\x%02X", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    /// Comments end at the line's end, so a value shown in one keeps its line breaks escaped.
    static func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// The Python broker's l2tp_broker.cfg (protocol document §3.10) as an `l2tp-broker`
/// site file. Pure: the file's text in, the YAML and warnings out.
struct TunneldiggerBrokerImporter {
    /// The file's name as messages and the header show it.
    let file: String

    func convert(_ text: String) throws -> TunneldiggerImport {
        // configparser's dialect: ':' separates too, comments only on lines of their own
        // (a '#' after a value is part of it), quotes are kept as written. INIFile splits at
        // "\n" Characters and Swift reads "\r\n" as one Character, so line ends are
        // normalised first (configparser reads \r\n and \r as line ends as well).
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let syntax = INIFile.Syntax(delimiters: ["=", ":"], lineComments: ["#", ";"], inlineComments: [], quotes: [])
        let ini: INIFile
        do { ini = try INIFile.parse(normalized, file: file, syntax: syntax) } catch {
            // INIFile suggests the first delimiter in sort order, ':'; tunneldigger's files use '='.
            throw TunneldiggerImportError(error.description.replacingOccurrences(of: "is not 'key : value'; add the ':'", with: "is not 'key = value'; add the '='"))
        }
        var conversion = try BrokerConfig(file: file, ini: ini)
        return try conversion.siteFile()
    }
}

/// l2tp_broker.cfg read as configparser reads it (lower-case keys, [DEFAULT] behind every
/// section, %-interpolation), then mapped key by key.
private struct BrokerConfig {
    typealias Entry = INIFile.Entry

    let file: String
    private var sections: [String: INIFile.Section] = [:]
    private var defaults: [String: Entry] = [:]
    private var ordered: [INIFile.Section] = []
    /// Shown in line order at the end, whichever step found them.
    private var warnings: [(line: Int, text: String)] = []
    /// "Not carried over" comment lines, in file order.
    private var dropped: [(line: Int, text: String)] = []
    /// Keys other values name as `%(key)s`: helpers for interpolation, not settings.
    private var referenced: Set<String> = []

    /// The keys that become settings, per section.
    static let mapped: [String: Set<String>] = [
        "broker": ["address", "port", "interface", "max_tunnels", "tunnel_id_base", "pmtu", "connection_rate_limit",
                   "connection_rate_limit_per_ip_count", "connection_rate_limit_per_ip_time", "tunnel_timeout"],
        "log": ["verbosity", "log_ip_addresses"],
        "hooks": Set(hookNames),
    ]
    /// tunneldigger's hook names, which are tunneld's, in the order they are written.
    static let hookNames = ["session.up", "session.pre-down", "session.down", "session.mtu-changed", "broker.connection-rate-limit"]

    /// Keys of older tunneldigger releases with nothing to map to, and why.
    static let noEquivalent: [String: [String: String]] = [
        "broker": [
            "port_base": "tunneldigger before 0.4 moved each tunnel to its own UDP port from this base behind NAT rules; tunneld keeps every tunnel on the port the client dialled, as tunneldigger 0.4 does",
            "namespace": "tunneldigger before 0.4 tagged its NAT rules with it so that several brokers could share a host; tunneld sets up no NAT rules (give each broker its own ports and tunnel-id range)",
            "check_modules": "tunneldigger before 0.4 checked for the L2TP kernel modules at start; tunneld looks for the kernel's l2tp family itself and otherwise runs its userspace data plane (sessions: data-plane)",
            "max_cookies": "the first tunneldigger kept issued cookies in a table of this size; tunneld's cookies are a keyed MAC and need no table",
        ],
        "log": [
            "filename": "tunneld logs to standard error (the journal under systemd); redirect it to keep a file",
        ],
    ]

    init(file: String, ini: INIFile) throws {
        self.file = file
        for var section in ini.sections {
            var seen: [String: Int] = [:]
            for index in section.entries.indices {
                // configparser lower-cases keys, and refuses one written twice in a section.
                let key = section.entries[index].key.lowercased()
                section.entries[index].key = key
                let entry = section.entries[index]
                if let first = seen[key] ?? (section.name == "DEFAULT" ? defaults[key]?.line : nil) {
                    throw TunneldiggerImportError("\(file):\(entry.line):\(entry.keyColumn): '\(key)' appears again in [\(section.name)] (first at line \(first)); configparser refuses that: keep one")
                }
                seen[key] = entry.line
                if section.name == "DEFAULT" { defaults[key] = entry }
                referenced.formUnion(Self.references(in: entry.value))
            }
            if section.name == "DEFAULT" { ordered.append(section); continue }
            if let first = sections[section.name] {
                throw TunneldiggerImportError("\(file):\(section.line):1: section [\(section.name)] appears again (first at line \(first.line)); configparser refuses that: merge the two")
            }
            sections[section.name] = section
            ordered.append(section)
        }
    }

    /// The keys a value names as `%(key)s`.
    static func references(in value: String) -> [String] {
        var names: [String] = []
        var rest = Substring(value)
        while let open = rest.range(of: "%(") {
            guard let close = rest[open.upperBound...].range(of: ")s") else { break }
            names.append(rest[open.upperBound..<close.lowerBound].lowercased())
            rest = rest[close.upperBound...]
        }
        return names
    }

    // MARK: Reading values

    /// A key of a section, or of [DEFAULT], which configparser puts behind every section.
    func entry(_ key: String, _ section: String) -> Entry? {
        sections[section]?.entries.first { $0.key == key } ?? defaults[key]
    }

    func fail(_ entry: Entry, _ message: String) -> TunneldiggerImportError {
        TunneldiggerImportError("\(file):\(entry.line):\(entry.valueColumn): \(message)")
    }

    /// The value after configparser's interpolation: `%%` is `%`, `%(key)s` another key's value.
    /// `origin` is the key being read, where a loop is reported.
    func value(_ entry: Entry, _ section: String, depth: Int = 0, origin: Entry? = nil) throws -> String {
        guard entry.value.contains("%") else { return entry.value }
        guard depth < 10 else { throw fail(origin ?? entry, "'%(…)s' references nest deeper than 10 (configparser's limit); is there a loop?") }
        var result = ""
        var rest = Substring(entry.value)
        while let percent = rest.firstIndex(of: "%") {
            result += rest[..<percent]
            let after = rest[rest.index(after: percent)...]
            if after.hasPrefix("%") {
                result += "%"
                rest = after.dropFirst()
            } else if after.hasPrefix("("), let close = after.firstIndex(of: ")"), after[after.index(after: close)...].hasPrefix("s") {
                let name = String(after[after.index(after: after.startIndex)..<close]).lowercased()
                guard let target = self.entry(name, section) else {
                    throw fail(entry, "'%(\(name))s' names no key of [\(section)] or [DEFAULT]; write '%%' for a literal '%'")
                }
                result += try value(target, section, depth: depth + 1, origin: origin ?? entry)
                rest = after[after.index(close, offsetBy: 2)...]
            } else {
                throw fail(entry, "a '%' must be written '%%' (configparser reads '%(key)s' as another key's value)")
            }
        }
        return result + rest
    }

    func integer(_ entry: Entry, _ section: String, _ range: ClosedRange<Int>, for setting: String) throws -> Int {
        let text = try value(entry, section)
        guard let number = Int(text) else { throw fail(entry, "\(entry.key) must be a whole number, found '\(text)'") }
        guard range.contains(number) else {
            throw fail(entry, "\(entry.key) must be in \(range.lowerBound)...\(range.upperBound) for tunneld's \(setting), found \(number)")
        }
        return number
    }

    /// Seconds (configparser's float) as the milliseconds a tunneld duration holds.
    mutating func milliseconds(_ entry: Entry, _ section: String, _ range: ClosedRange<Int>, for setting: String) throws -> Int {
        let text = try value(entry, section)
        guard let seconds = Double(text), seconds.isFinite else {
            throw fail(entry, "\(entry.key) must be a number of seconds such as 0.2, found '\(text)'")
        }
        let exact = seconds * 1000
        guard exact >= Double(range.lowerBound), exact <= Double(range.upperBound) else {
            throw fail(entry, "\(entry.key) must be \(Self.seconds(range.lowerBound)) to \(Self.seconds(range.upperBound)) seconds for tunneld's \(setting), found \(text)")
        }
        let rounded = Int(exact.rounded())
        if abs(exact - Double(rounded)) > 1e-6 {
            warn(entry, "\(entry.key) = \(text) rounded to \(rounded) ms (tunneld's durations are whole milliseconds)")
        }
        return rounded
    }

    func boolean(_ entry: Entry, _ section: String) throws -> Bool {
        let text = try value(entry, section)
        switch text.lowercased() {
        case "1", "yes", "true", "on": return true
        case "0", "no", "false", "off": return false
        default: throw fail(entry, "\(entry.key) must be true or false (or yes/no, on/off, 1/0), found '\(text)'")
        }
    }

    mutating func warn(_ entry: Entry, _ message: String) {
        warn(line: entry.line, message)
    }

    mutating func warn(line: Int, _ message: String) {
        warnings.append((line, "\(file):\(line): warning: \(message)"))
    }

    mutating func drop(_ entry: Entry, _ section: String, _ why: String) {
        dropped.append((entry.line, "line \(entry.line), [\(section)] \(entry.key) = \(entry.value): \(why)"))
    }

    static func seconds(_ milliseconds: Int) -> String {
        milliseconds % 1000 == 0 ? String(milliseconds / 1000) : String(Double(milliseconds) / 1000)
    }

    /// How a tunneld duration is written: whole seconds as `10s`, others as `200ms`.
    static func duration(_ milliseconds: Int) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}

extension BrokerConfig {
    /// Warnings for what tunneldigger would not read, comments for what tunneld cannot use.
    private mutating func sortKeys() {
        let known = Set(Self.mapped.keys).union(Self.noEquivalent.keys)
        for section in ordered {
            if section.name == "DEFAULT" {
                // Behind every section: fine if some section reads it.
                for entry in section.entries where !Self.mapped.values.contains(where: { $0.contains(entry.key) }) {
                    if let why = Self.noEquivalent.values.compactMap({ $0[entry.key] }).first {
                        drop(entry, "DEFAULT", why)
                    } else {
                        unknown(entry, "DEFAULT", warning: "unknown key '\(entry.key)' in [DEFAULT]; kept as a comment (no section tunneldigger reads uses it)")
                    }
                }
                continue
            }
            guard known.contains(section.name) else {
                var hint = "tunneldigger reads [broker], [log] and [hooks]"
                if known.contains(section.name.lowercased()) { hint = "section names are case-sensitive: write [\(section.name.lowercased())]" }
                warn(line: section.line, "unknown section [\(section.name)] (\(hint)); its keys are kept as comments")
                for entry in section.entries { drop(entry, section.name, "in a section tunneldigger does not read") }
                continue
            }
            for entry in section.entries where !(Self.mapped[section.name]?.contains(entry.key) ?? false) {
                if let why = Self.noEquivalent[section.name]?[entry.key] {
                    drop(entry, section.name, why)
                } else {
                    unknown(entry, section.name, warning: "unknown key '\(entry.key)' in [\(section.name)]; kept as a comment (tunneldigger ignores it too)")
                }
            }
        }
    }

    /// A key tunneldigger does not read: a helper for `%(key)s` references, or a mistake.
    private mutating func unknown(_ entry: Entry, _ section: String, warning: String) {
        if referenced.contains(entry.key) {
            drop(entry, section, "referenced as %(\(entry.key))s, resolved in the values above")
        } else {
            warn(entry, warning)
            drop(entry, section, "not a key tunneldigger reads")
        }
    }

    /// [broker] address and port as links, one per port, bound to `interface` when given.
    private mutating func links(_ yaml: inout TunneldiggerYAML) throws {
        guard let broker = sections["broker"] else {
            if let other = ordered.first(where: { $0.name.lowercased() == "broker" }) {
                throw TunneldiggerImportError("\(file):\(other.line):1: [\(other.name)] is not [broker]: configparser's section names are case-sensitive, so tunneldigger would not read it either; write [broker]")
            }
            throw TunneldiggerImportError("\(file): no [broker] section; tunneldigger's broker needs one with address and port (see l2tp_broker.cfg.example)")
        }
        guard let addressEntry = entry("address", "broker") else {
            throw TunneldiggerImportError("\(file):\(broker.line):1: [broker] has no 'address'; add 'address = ' and the IP address to accept tunnels on")
        }
        guard let portEntry = entry("port", "broker") else {
            throw TunneldiggerImportError("\(file):\(broker.line):1: [broker] has no 'port'; add e.g. 'port = 53,123,8942'")
        }
        let address = try value(addressEntry, "broker")
        let host: String
        if address.withCString({ text in var v4 = in_addr(); return inet_pton(AF_INET, text, &v4) == 1 }) {
            host = address
        } else if address.withCString({ text in var v6 = in6_addr(); return inet_pton(AF_INET6, text, &v6) == 1 }) {
            host = "[\(address)]"
        } else {
            throw fail(addressEntry, "address must be an IP address (tunneld binds literal addresses, never names), found '\(address)'")
        }

        var ports: [Int] = []
        let portText = try value(portEntry, "broker")
        // As the broker does: split at commas, skip (with a warning) what is no port.
        for piece in portText.split(separator: ",", omittingEmptySubsequences: false) {
            let text = piece.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let port = Int(text) else {
                warn(portEntry, "port '\(text)' is not a port number; skipped, as tunneldigger skips it")
                continue
            }
            guard (1...65535).contains(port) else {
                warn(portEntry, "port \(port) is outside 1...65535; skipped")
                continue
            }
            guard !ports.contains(port) else {
                warn(portEntry, "port \(port) is listed twice; one link serves it")
                continue
            }
            ports.append(port)
        }
        guard !ports.isEmpty else {
            throw fail(portEntry, "no usable port in '\(portText)'; list one or more, e.g. port = 53,123,8942")
        }

        var device: String?
        var deviceNote: String?
        if let interfaceEntry = entry("interface", "broker") {
            let name = try value(interfaceEntry, "broker")
            if name.isEmpty {
                deviceNote = "[broker] interface is empty: sockets bound to no device (SO_BINDTODEVICE with '' binds to none in tunneldigger too)"
            } else if name.count > 15 || name.contains("/") || name.contains(where: \.isWhitespace) {
                throw fail(interfaceEntry, "interface must be an interface name (1 to 15 characters, no '/' or blanks), found '\(name)'")
            } else {
                device = name
                deviceNote = "device: [broker] interface = \(name), bound with SO_BINDTODEVICE as tunneldigger binds its sockets"
            }
        }

        yaml.line("links:", note: "[broker] address = \(addressEntry.value), port = \(portEntry.value)")
        for port in ports {
            var fields = "name: port-\(port), bind: \(TunneldiggerYAML.scalar("\(host):\(port)"))"
            if let device { fields += ", device: \(TunneldiggerYAML.scalar(device))" }
            yaml.line("  - { \(fields) }")
        }
        if let deviceNote { yaml.comment(deviceNote, indent: "  ") }
    }

    /// [log] verbosity as the site file's log level (Python's level names).
    private func logLevel(_ yaml: inout TunneldiggerYAML) throws {
        guard let verbosity = entry("verbosity", "log") else { return }
        let text = try value(verbosity, "log")
        let levels = ["CRITICAL": "critical", "FATAL": "critical", "ERROR": "error", "WARNING": "warning", "WARN": "warning",
                      "INFO": "info", "DEBUG": "debug",
                      // The tunneldigger logger then takes the root logger's level, WARNING.
                      "NOTSET": "warning"]
        guard let level = levels[text.uppercased()] else {
            throw fail(verbosity, "verbosity must be a logging level (DEBUG, INFO, WARNING, ERROR or CRITICAL), found '\(text)'")
        }
        yaml.line("log: \(level)", note: "[log] verbosity = \(verbosity.value)")
    }

    /// The broker's numbers, limits and hooks under `sessions:`.
    private mutating func sessionSettings(_ yaml: inout TunneldiggerYAML) throws {
        var lines = TunneldiggerYAML()
        var count = 0
        func add(_ key: String, _ value: String, _ note: String) {
            lines.line("  \(key): \(value)", note: note)
            count += 1
        }
        // Ranges as BrokerSettings declares them; tests validate the output against it.
        var maxTunnels = 1024, idBase = 100
        if let e = entry("max_tunnels", "broker") {
            maxTunnels = try integer(e, "broker", 1...65535, for: "max-tunnels")
            add("max-tunnels", "\(maxTunnels)", "max_tunnels = \(e.value)")
        }
        let baseEntry = entry("tunnel_id_base", "broker")
        if let e = baseEntry {
            idBase = try integer(e, "broker", 1...4_000_000_000, for: "tunnel-id-base")
            add("tunnel-id-base", "\(idBase)", "tunnel_id_base = \(e.value)")
        }
        // "l2tp" + id + "-" + id must fit 15 characters (tunneldigger fails the same way, at session creation).
        let highest = idBase + maxTunnels - 1
        if 4 + 2 * String(highest).count + 1 > 15, let e = baseEntry ?? entry("max_tunnels", "broker") {
            throw fail(e, "tunnel ids up to \(highest) make interface names like l2tp\(highest)-\(highest), longer than 15 characters; keep tunnel_id_base + max_tunnels - 1 below 100000")
        }
        if let e = entry("pmtu", "broker") {
            var pmtu = try integer(e, "broker", 0...9000, for: "pmtu")
            var note = pmtu == 0 ? "pmtu = \(e.value): discover each client's path MTU" : "pmtu = \(e.value): fixed tunnel MTU"
            if (1..<576).contains(pmtu) {
                warn(e, "pmtu = \(pmtu) written as 1280: tunneldigger raises tunnel MTUs below 1280 to 1280, and tunneld takes no fixed MTU below 576")
                note = "pmtu = \(e.value), raised to 1280 as tunneldigger does"
                pmtu = 1280
            }
            add("pmtu", "\(pmtu)", note)
        }
        if let e = entry("connection_rate_limit", "broker") {
            let ms = try milliseconds(e, "broker", 0...3_600_000, for: "connection-rate-limit")
            add("connection-rate-limit", Self.duration(ms), "connection_rate_limit = \(e.value) (seconds)")
        }
        if let e = entry("connection_rate_limit_per_ip_count", "broker") {
            let attempts = try integer(e, "broker", 0...1_000_000, for: "connection-rate-limit-per-ip-count")
            add("connection-rate-limit-per-ip-count", "\(attempts)", "connection_rate_limit_per_ip_count = \(e.value)")
        }
        if let e = entry("connection_rate_limit_per_ip_time", "broker") {
            let ms = try milliseconds(e, "broker", 0...86_400_000, for: "connection-rate-limit-per-ip-time")
            add("connection-rate-limit-per-ip-time", Self.duration(ms), "connection_rate_limit_per_ip_time = \(e.value) (seconds)")
        }
        if let e = entry("tunnel_timeout", "broker") {
            let ms = try milliseconds(e, "broker", 5000...3_600_000, for: "timeout")
            add("timeout", Self.duration(ms), "tunnel_timeout = \(e.value) (seconds; tunneldigger before 0.4)")
        }
        if let e = entry("log_ip_addresses", "log") {
            let on = try boolean(e, "log")
            add("log-ip-addresses", "\(on)", "[log] log_ip_addresses = \(e.value)")
        }
        for hook in Self.hookNames {
            guard let e = entry(hook, "hooks") else { continue }
            let path = try value(e, "hooks")
            if path.isEmpty {
                lines.comment("\(hook): empty in [hooks], so no hook runs (as in tunneldigger)", indent: "  ")
                continue
            }
            var note = "[hooks] \(hook)"
            if !path.hasPrefix("/") {
                warn(e, "hook '\(path)' is a relative path: tunneldigger ran it from its working directory, tunneld looks beside the site file; write an absolute path")
                note += " (relative: make it absolute)"
            }
            add(hook, TunneldiggerYAML.scalar(path), note)
        }
        if count > 0 { yaml.line("sessions:") }
        yaml.append(lines)
    }

    mutating func siteFile() throws -> TunneldiggerImport {
        var yaml = TunneldiggerYAML()
        yaml.comment("tunneld site file written by 'tunneld import tunneldigger broker' from \(file).")
        yaml.comment("Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').")
        yaml.line("profile: l2tp-broker")
        try logLevel(&yaml)
        try links(&yaml)
        try sessionSettings(&yaml)
        sortKeys()
        if !dropped.isEmpty {
            yaml.comment("Not carried over from \(file):")
            for item in dropped.sorted(by: { $0.line < $1.line }) { yaml.comment("  " + item.text) }
        }
        let inOrder = warnings.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
        return TunneldiggerImport(yaml: yaml.text, warnings: inOrder.map(\.element.text))
    }
}
