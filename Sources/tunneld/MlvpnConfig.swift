import Foundation

/// An mlvpn (2.3.x) configuration as mlvpn itself reads it: `[general]`, `[filters]`
/// and one section per link. Keys mlvpn does not read where they are written are
/// collected with the reason (the import keeps them as comments and warns); what
/// mlvpn refuses to start without (mode, password, a link's addresses) is an error.
/// Values stay text with their position: the importer converts them and points at
/// them when they do not convert.
struct MlvpnConfig: Sendable {
    enum Mode: String, Sendable { case client, server }

    typealias Setting = INIFile.Entry

    /// A key mlvpn does not read, and why (written beside it in the site file).
    struct Ignored: Sendable {
        var entry: Setting
        var why: String
    }

    struct Link: Sendable {
        var name: String
        var line: Int
        var settings: [String: Setting]
        var ignored: [Ignored]
    }

    var file: String
    var mode: Mode
    var generalLine: Int
    var general: [String: Setting]
    var generalIgnored: [Ignored]
    var links: [Link]
    /// `[filters]`: `LINK = pcap-expression`, in file order (mlvpn tries them in order).
    var filters: [Setting]
    var warnings: [INIWarning] = []

    /// Every key mlvpn reads in `[general]` and in a link section (mlvpn-reference.md).
    static let generalKeys = [
        "mode", "password", "cleartext_data", "statuscommand", "tuntap", "interface_name", "mtu", "timeout",
        "reorder_buffer_size", "loss_tolerence", "latency_tolerence",
        "ip4", "ip6", "ip4_gateway", "ip6_gateway", "ip4_routes", "ip6_routes",
        "control_unix_path", "control_bind_host", "control_bind_port",
    ]
    static let linkKeys = [
        "bindhost", "bindport", "bindfib", "remotehost", "remoteport", "bandwidth_upload",
        "timeout", "loss_tolerence", "latency_tolerence", "fallback_only",
    ]

    init(_ ini: INIFile, file: String) throws(INIError) {
        self.file = file
        var warnings: [INIWarning] = []
        var general: [String: Setting] = [:]
        var generalIgnored: [Ignored] = []
        var generalLine: Int?
        var links: [Link] = []
        var filters: [Setting] = []

        /// Known keys into `settings` (the first of a repeated key wins, as in mlvpn,
        /// whose lookup returns the first match); the rest into `ignored`, with a warning.
        func take(_ entries: [Setting], section: String, known: [String], other: (keys: [String], place: String),
                  into settings: inout [String: Setting], ignored: inout [Ignored]) {
            for entry in entries {
                let why: String
                if known.contains(entry.key) {
                    guard let first = settings[entry.key] else {
                        settings[entry.key] = entry
                        continue
                    }
                    why = "given again; mlvpn uses the first '\(entry.key)' (line \(first.line)), and so does this import"
                } else if other.keys.contains(entry.key) {
                    why = "mlvpn reads '\(entry.key)' only \(other.place), not in [\(section)]"
                } else if let near = Self.nearest(entry.key, in: known) {
                    why = "unknown key; did you mean '\(near)'? mlvpn ignores it"
                } else {
                    why = "unknown key; mlvpn ignores it"
                }
                ignored.append(Ignored(entry: entry, why: why))
                warnings.append(INIWarning(file: file, line: entry.line, message: "'\(entry.key)' in [\(section)]: \(why), so it is not imported (kept as a comment)"))
            }
        }

        for section in ini.sections {
            switch section.name {
            case "general":
                if let first = generalLine {
                    warnings.append(INIWarning(file: file, line: section.line, message: "[general] again (first at line \(first)); its keys are read as part of the first"))
                }
                generalLine = generalLine ?? section.line
                take(section.entries, section: "general", known: Self.generalKeys, other: (Self.linkKeys, "in a link section"),
                     into: &general, ignored: &generalIgnored)
            case "filters":
                filters += section.entries
            default:
                var link: Link
                if let index = links.firstIndex(where: { $0.name == section.name }) {
                    warnings.append(INIWarning(file: file, line: section.line, message: "[\(section.name)] again (first at line \(links[index].line)); its keys are read as part of the first"))
                    link = links.remove(at: index)
                } else {
                    link = Link(name: section.name, line: section.line, settings: [:], ignored: [])
                }
                take(section.entries, section: section.name, known: Self.linkKeys, other: (Self.generalKeys, "in [general]"),
                     into: &link.settings, ignored: &link.ignored)
                links.append(link)
            }
        }

        guard let generalLine else {
            let hint = ini.sections.first { $0.name.lowercased() == "general" }.map { " ([\($0.name)] at line \($0.line) is not it: section names are case-sensitive)" } ?? ""
            throw INIError(file: file, line: 1, column: 1, message: "no [general] section\(hint); mlvpn needs one with 'mode' and 'password'")
        }
        guard let modeSetting = general["mode"], !modeSetting.value.isEmpty else {
            throw INIError(file: file, line: generalLine, column: 1, message: "[general] has no 'mode'; add 'mode = client' (the site that dials out) or 'mode = server' (the end that listens)")
        }
        guard let mode = Mode(rawValue: modeSetting.value) else {
            throw INIError(file: file, line: modeSetting.line, column: modeSetting.valueColumn,
                           message: "mode must be 'client' or 'server', found '\(modeSetting.value)'")
        }
        if (general["password"]?.value ?? "").isEmpty {
            throw INIError(file: file, line: general["password"]?.line ?? generalLine, column: general["password"]?.valueColumn ?? 1,
                           message: "[general] has no 'password'; mlvpn refuses to start without one, and it becomes both ends' tunneld passphrase")
        }
        guard !links.isEmpty else {
            throw INIError(file: file, line: generalLine, column: 1,
                           message: "no link section; add one per uplink, e.g. [dsl] with remotehost and remoteport (client) or bindport (server)")
        }
        for link in links {
            let needed = mode == .client ? ["remotehost", "remoteport"] : ["bindport"]
            for key in needed where (link.settings[key]?.value ?? "").isEmpty {
                throw INIError(file: file, line: link.line, column: 1,
                               message: "link [\(link.name)] has no '\(key)'; a \(mode.rawValue) link needs \(needed.joined(separator: " and ")) (mlvpn refuses to start without)")
            }
        }
        self.mode = mode
        self.generalLine = generalLine
        self.general = general
        self.generalIgnored = generalIgnored
        self.links = links
        self.filters = filters
        self.warnings = warnings
    }

    /// The value of `key` for `link`: its own, else `[general]`'s (mlvpn's defaults
    /// for timeout and the tolerances), with whether it was inherited.
    func linkValue(_ link: Link, _ key: String) -> (setting: Setting, inherited: Bool)? {
        if let own = link.settings[key], !own.value.isEmpty { return (own, false) }
        if let shared = general[key], !shared.value.isEmpty { return (shared, true) }
        return nil
    }

    // MARK: values (mlvpn reads numbers with atoi/strtoul; a stray letter is refused here rather than read as 0)

    func number(_ setting: Setting, _ what: String) throws(INIError) -> Int {
        guard !setting.value.isEmpty, setting.value.count <= 9, setting.value.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(setting.value) else {
            throw INIError(file: file, line: setting.line, column: setting.valueColumn,
                           message: "'\(setting.key)' must be a whole number (\(what)), found '\(setting.value)'")
        }
        return value
    }

    func flag(_ setting: Setting) throws(INIError) -> Bool {
        guard setting.value == "0" || setting.value == "1" else {
            throw INIError(file: file, line: setting.line, column: setting.valueColumn,
                           message: "'\(setting.key)' must be 0 or 1, found '\(setting.value)' (mlvpn reads it as a number)")
        }
        return setting.value == "1"
    }

    func port(_ setting: Setting) throws(INIError) -> Int {
        let value = try number(setting, "a UDP port")
        guard value <= 65535 else {
            throw INIError(file: file, line: setting.line, column: setting.valueColumn,
                           message: "'\(setting.key)' must be a port number (0-65535), found '\(setting.value)'")
        }
        return value
    }

    /// A key whose value must not be copied into the site file or the terminal
    /// (a misspelt `password` is still a password).
    static func looksSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return ["pass", "secret", "key", "token"].contains { lower.contains($0) }
    }

    /// The known key within two edits of `key` (typos, the English spelling of
    /// mlvpn's "tolerence", another case), if exactly one is that close.
    static func nearest(_ key: String, in known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(key.lowercased(), $0)) }.filter { $0.1 <= 2 }
        guard let best = scored.min(by: { $0.1 < $1.1 }), scored.filter({ $0.1 == best.1 }).count == 1 else { return nil }
        return best.0
    }

    /// Levenshtein distance, one row at a time.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }
}

/// mlvpn's `[filters]` take pcap-filter expressions; tunneld's pin rules match a
/// protocol, a port and a DSCP value. The expressions people write for VoIP and
/// ICMP (`udp port 5060`, `ip proto icmp`, `tcp dst port 22`) translate; anything
/// else (hosts, networks, `or`, `not`, byte offsets) has no equivalent.
enum PcapPin {
    struct Translation: Equatable {
        /// The criteria of a pin rule, e.g. `udp port 5060`.
        var criteria: String
        /// What the pin matches more broadly than the expression did.
        var broader: [String]
    }

    static let protocols: [String: String] = [
        "icmp": "icmp", "tcp": "tcp", "udp": "udp", "icmp6": "icmpv6", "gre": "gre", "esp": "esp",
        "1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "47": "gre", "50": "esp",
    ]

    static func translate(_ expression: String) -> Translation? {
        var words = expression.replacingOccurrences(of: "&&", with: " and ")
            .split(whereSeparator: { $0 == " " || $0 == "\t" })
            .map { $0.hasPrefix("\\") ? String($0.dropFirst()) : String($0) }[...]
        var proto: String?
        var port: Int?
        var broader: [String] = []
        func setProtocol(_ name: String) -> Bool {
            let value = protocols[name] ?? (Int(name).flatMap { (0...255).contains($0) ? "proto \($0)" : nil })
            guard let value, proto == nil || proto == value else { return false }
            proto = value
            return true
        }
        while let word = words.popFirst() {
            switch word {
            case "and":
                continue
            case "ip", "ip6":
                if words.first == "proto" {
                    words.removeFirst()
                    guard let name = words.popFirst(), setProtocol(name) else { return nil }
                } else if !broader.contains("IPv4 and IPv6 alike") {
                    broader.append("IPv4 and IPv6 alike")
                }
            case "proto":
                guard let name = words.popFirst(), setProtocol(name) else { return nil }
            case "src", "dst":
                guard words.popFirst() == "port" else { return nil }
                broader.append("either direction (\(word) port)")
                fallthrough
            case "port":
                guard let text = words.popFirst(), let value = Int(text), (1...65535).contains(value), port == nil || port == value else { return nil }
                port = value
            default:
                guard protocols[word] != nil, Int(word) == nil, setProtocol(word) else { return nil }
            }
        }
        guard proto != nil || port != nil else { return nil }
        return Translation(criteria: [proto, port.map { "port \($0)" }].compactMap { $0 }.joined(separator: " "), broader: broader)
    }
}
