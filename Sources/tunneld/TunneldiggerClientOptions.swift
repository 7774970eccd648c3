import Foundation

/// The tunneldigger C client's command line (protocol document §8.2) as an
/// `l2tp-client` site file. Pure: the arguments in, the YAML and warnings out.
struct TunneldiggerClientImporter {
    /// One option as getopt returned it.
    struct Option: Equatable {
        let letter: Character
        let value: String?
    }

    /// The C client's getopt string is "hfu:l:b:p:i:s:t:L:I:agr"; these take a value
    /// (-p too: getopt accepts it, then the client rejects it).
    static let withValue: [Character: String] = [
        "u": "UUID", "l": "ADDRESS", "b": "HOST:PORT", "p": "VALUE", "i": "IFNAME", "s": "PATH", "t": "ID", "L": "KBPS", "I": "IFNAME",
    ]
    static let flags: Set<Character> = ["h", "f", "a", "g", "r"]
    static let optionList = "-u, -b, -i, -I, -l, -s, -t, -L, -a, -g, -r, -f, -h"

    func convert(_ arguments: [String]) throws -> TunneldiggerImport {
        let options = try Self.getopt(arguments)
        var warnings: [String] = []
        var dropped: [String] = []
        func last(_ letter: Character) -> String? {
            let values = options.filter { $0.letter == letter }.compactMap(\.value)
            if values.count > 1, let final = values.last {
                warnings.append("warning: -\(letter) is given \(values.count) times; the last (\(final)) is used, as the C client does")
            }
            return values.last
        }

        let uuid = last("u"), interface = last("i")
        let brokers = options.filter { $0.letter == "b" }.compactMap(\.value)
        let missing = [uuid == nil ? "-u" : nil, interface == nil ? "-i" : nil, brokers.isEmpty ? "-b" : nil].compactMap { $0 }
        if !missing.isEmpty {
            throw TunneldiggerImportError("the C client needs -u UUID, -i IFNAME and at least one -b HOST:PORT; missing: \(missing.joined(separator: ", "))")
        }
        var yaml = TunneldiggerYAML()
        yaml.comment("tunneld site file written by 'tunneld import tunneldigger client' from the C client's options:")
        yaml.comment("  " + arguments.map(Self.shellQuoted).joined(separator: " "))
        yaml.comment("Check it with 'tunneld validate'; settings not written here keep tunneld's defaults ('tunneld plugins').")
        yaml.line("profile: l2tp-client")
        yaml.line("sessions:")

        if let uuid {
            let bytes = uuid.utf8.count
            guard (1...238).contains(bytes) else {
                throw TunneldiggerImportError("-u: the uuid is \(bytes) bytes; 1 to 238 fit the PREPARE message next to the tunnel id and features")
            }
            yaml.line("  uuid: \(TunneldiggerYAML.scalar(uuid))", note: "-u")
        }
        guard brokers.count <= 10 else {
            throw TunneldiggerImportError("-b is given \(brokers.count) times; the C client takes at most 10 brokers (MAX_BROKERS), and so does tunneld")
        }
        yaml.line("  brokers:", note: "-b, in the order given")
        for broker in brokers { yaml.line("    - \(TunneldiggerYAML.scalar(try Self.broker(broker)))") }
        if let interface {
            try Self.checkInterface(interface, option: "-i")
            yaml.line("  interface: \(TunneldiggerYAML.scalar(interface))", note: "-i")
        }

        // The last of -a, -g, -r wins, as in the C client.
        let selections = options.filter { "agr".contains($0.letter) }.map(\.letter)
        if let choice = selections.last {
            let given = Set(selections).sorted().map { "-\($0)" }
            if given.count > 1 {
                let list = given.dropLast().joined(separator: ", ") + " and " + given.last!
                warnings.append("warning: \(list) are all given; the last (-\(choice)) wins, as in the C client")
            }
            let (value, why) = choice == "a" ? ("usage", "the least used broker") : choice == "r" ? ("random", "any broker that answered") : ("first", "the first broker that answers")
            yaml.line("  selection: \(value)", note: "-\(choice): \(why)")
        }
        if let text = last("t") {
            guard let id = Self.strtoul(text), (1...4_294_967_295).contains(id) else {
                throw TunneldiggerImportError("-t '\(text)': the tunnel id must be a number from 1 to 4294967295 (decimal, 0x hex or 0 octal)")
            }
            yaml.line("  tunnel-id: \(id)", note: "-t \(text)")
        }
        if let text = last("L") {
            guard let kbps = UInt64(text), kbps <= 4_294_967_295 else {
                throw TunneldiggerImportError("-L '\(text)': the limit must be kbit/s from 0 (none) to 4294967295")
            }
            yaml.line("  limit: \(kbps)", note: "-L \(text): kbit/s the broker shapes toward this router")
        }
        if let path = last("s") {
            var note = "-s: run as HOOK session.up|session.down IFNAME"
            if !path.hasPrefix("/") {
                warnings.append("warning: -s '\(path)' is a relative path: the C client ran it from its working directory, tunneld looks beside the site file; write an absolute path")
                note += " (relative: make it absolute)"
            }
            yaml.line("  hook: \(TunneldiggerYAML.scalar(path))", note: note)
        }
        if let address = last("l") {
            guard Self.isIPAddress(address) else {
                throw TunneldiggerImportError("-l '\(address)' is not an IP address (the C client would silently bind 0.0.0.0); write e.g. -l 192.0.2.7")
            }
            yaml.line("  bind: \(TunneldiggerYAML.scalar(address))", note: "-l")
        }
        if let device = last("I") {
            try Self.checkInterface(device, option: "-I")
            yaml.line("  bind-device: \(TunneldiggerYAML.scalar(device))", note: "-I: SO_BINDTODEVICE")
        }

        for option in options {
            switch option.letter {
            case "f": dropped.append("-f: tunneld always logs to standard error (the journal under systemd); 'log:' sets the level")
            case "h": dropped.append("-h: makes the C client print its usage and exit; nothing to carry over")
            default: break
            }
        }
        if !dropped.isEmpty {
            yaml.comment("Not carried over:")
            for line in dropped { yaml.comment("  " + line) }
        }
        return TunneldiggerImport(yaml: yaml.text, warnings: warnings)
    }

    /// POSIX getopt over the C client's options: grouped flags (-af), values attached
    /// (-ul2tp) or separate (-u l2tp); anything else is an error naming it.
    static func getopt(_ arguments: [String]) throws -> [Option] {
        var rest = arguments[...]
        // The program itself may lead, as copied from an init script.
        if let first = rest.first, !first.hasPrefix("-") {
            let name = first.split(separator: "/").last.map(String.init) ?? first
            if name.contains("tunneldigger") || name == "l2tp_client" || name == "td-client" { rest = rest.dropFirst() }
        }
        guard !rest.isEmpty else {
            throw TunneldiggerImportError("no options given; put the C client's options after '--', e.g. -- -u UUID -i l2tp0 -b broker.example.net:8942")
        }
        var options: [Option] = []
        while let argument = rest.popFirst() {
            if argument == "--" {
                if let operand = rest.first { throw TunneldiggerImportError("'\(operand)' after '--' is not an option; the C client takes options only") }
                break
            }
            if argument.hasPrefix("--") {
                throw TunneldiggerImportError("\(argument) is not an option of the tunneldigger client, which has single letters only: \(optionList)")
            }
            guard argument.hasPrefix("-"), argument.count > 1 else {
                throw TunneldiggerImportError("'\(argument)' is not an option; the C client takes options only (did a value with spaces lose its quotes?)")
            }
            var letters = argument.dropFirst()
            while let letter = letters.popFirst() {
                if flags.contains(letter) {
                    options.append(Option(letter: letter, value: nil))
                    continue
                }
                guard let placeholder = withValue[letter] else {
                    throw TunneldiggerImportError("-\(letter) is not an option of the tunneldigger client; it has \(optionList)")
                }
                let value: String
                if !letters.isEmpty {
                    value = String(letters)
                    letters = ""
                } else if let next = rest.popFirst() {
                    value = next
                } else {
                    throw TunneldiggerImportError("-\(letter) needs a value (-\(letter) \(placeholder))")
                }
                if letter == "p" {
                    throw TunneldiggerImportError("-p is not an option of the tunneldigger client: getopt accepts '-p \(value)', then the client stops with 'Invalid option', so no working command line has it; remove it")
                }
                options.append(Option(letter: letter, value: value))
            }
        }
        return options
    }

    /// `-b host:port` as a site file's broker. The C client splits at ':', so it never
    /// took an IPv6 literal; `[v6]:port` is accepted for tunneld's sake.
    static func broker(_ text: String) throws -> String {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TunneldiggerImportError("-b '\(text)': write host:port, e.g. -b broker.example.net:8942 (an IPv6 address as [2001:db8::1]:8942)")
            }
            (host, port) = (parts[0], parts[1])
        }
        guard !host.isEmpty else { throw TunneldiggerImportError("-b '\(text)': the host is missing; write host:port") }
        guard let number = UInt16(port), number > 0 else {
            if !port.isEmpty && port.allSatisfy({ $0.isLetter || $0 == "-" }) {
                throw TunneldiggerImportError("-b '\(text)': '\(port)' is a service name; write its port number (see /etc/services): tunneld does not look names of services up")
            }
            throw TunneldiggerImportError("-b '\(text)': the port must be a number from 1 to 65535")
        }
        return host.contains(":") ? "[\(host)]:\(number)" : "\(host):\(number)"
    }

    static func checkInterface(_ name: String, option: String) throws {
        if name.isEmpty || name.count > 15 || name.contains("/") || name.contains(where: \.isWhitespace) {
            throw TunneldiggerImportError("\(option) '\(name)' is not an interface name (1 to 15 characters, no '/' or blanks)")
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        text.withCString { pointer in
            var v4 = in_addr(), v6 = in6_addr()
            return inet_pton(AF_INET, pointer, &v4) == 1 || inet_pton(AF_INET6, pointer, &v6) == 1
        }
    }

    /// What the C client's strtoul(text, NULL, 0) reads, when the whole text is a number.
    static func strtoul(_ text: String) -> UInt64? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return UInt64(lower.dropFirst(2), radix: 16) }
        if lower.count > 1 && lower.hasPrefix("0") { return UInt64(lower.dropFirst(), radix: 8) }
        return UInt64(lower)
    }

    /// An argument as a shell would need it, for the header comment.
    static func shellQuoted(_ text: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@=+,-%[]")
        if !text.isEmpty && text.allSatisfy({ safe.contains($0) }) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
