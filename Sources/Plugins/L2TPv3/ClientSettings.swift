import Framework

/// The `l2tp-client` session manager's settings (under `sessions:` in a site file),
/// one per option of tunneldigger's C client (§8.2), named in words.
struct ClientSettings {
    /// How a broker is picked among those that answered (`-g`, `-a`, `-r`).
    enum Selection: String { case first, usage, random }

    var uuid: String
    var brokers: [BrokerAddress]
    var interface: String
    var tunnelID: UInt32
    var selection: Selection
    var limitKbps: UInt32
    var hook: String?
    var bind: SocketAddress?
    var bindDevice: String?
    var dataPlane: L2TPSettings.DataPlane
    var hookTimeout: Double

    init(_ settings: Settings) {
        // Required, so the validator guarantees it; no default to fall back on.
        uuid = settings.string("uuid") ?? ""
        brokers = settings.list("brokers").compactMap { if case .string(let text) = $0 { BrokerAddress.parse(text) } else { nil } }
        interface = settings.string(Self.interface)
        tunnelID = UInt32(settings.integer(Self.tunnelID))
        selection = Selection(rawValue: settings.string(Self.selection))!  // the spec admits only these
        limitKbps = UInt32(settings.integer(Self.limit))
        hook = settings.path("hook")
        bind = settings.string("bind").flatMap { SocketAddress.parse($0, defaultPort: 0) }
        bindDevice = settings.string("bind-device")
        dataPlane = L2TPSettings.dataPlane(settings)
        hookTimeout = L2TPSettings.hookTimeout(settings)
    }

    /// tunneldigger's `MAX_BROKERS`.
    static let maxBrokers = 10
    /// PREPARE's length byte leaves room for 238 uuid bytes next to the tunnel id and features (§1.4).
    static let maxUUIDBytes = 238

    static let interface = SettingSpec("interface", .string, default: .string("l2tp0"),
                                       help: "name of the pseudowire's Ethernet interface, passed to the hook (-i)")
    static let tunnelID = SettingSpec("tunnel-id", .integer(1...4_294_967_295), default: .integer(1),
                                      help: "local tunnel id, also the session id when the broker agrees to unique session ids (-t)")
    static let selection = SettingSpec("selection", .choice(["first", "usage", "random"]), default: .string("first"),
                                       help: "first: the first broker in list order that answers (-g); usage: the least loaded (-a); random: any that answered (-r)")
    static let limit = SettingSpec("limit", .integer(0...4_294_967_295), default: .integer(0),
                                   help: "ask the broker to shape traffic toward this router to N kbit/s; 0 = no limit (-L)")

    static let specs: [SettingSpec] = [
        SettingSpec("uuid", .string, required: true,
                    help: "this router's identifier, sent in PREPARE and shown in the broker's hooks (-u); at most 238 bytes"),
        SettingSpec("brokers", .list(.string), required: true,
                    help: "brokers to ask, as host:port or [IPv6]:port, at most 10 (-b, repeated)"),
        interface,
        tunnelID,
        selection,
        limit,
        SettingSpec("hook", .executable,
                    help: "program run as 'hook session.up IFNAME' and 'hook session.down IFNAME' (-s)"),
        SettingSpec("bind", .string,
                    help: "local address the sockets bind to, e.g. 192.0.2.7 (-l); default: any address of the broker's family"),
        SettingSpec("bind-device", .string,
                    help: "send and receive only through this interface, SO_BINDTODEVICE (-I)"),
        L2TPSettings.dataPlane,
        L2TPSettings.hookTimeout,
    ]

    /// Checks beyond types, at the setting's place in the file.
    static func check(_ settings: Settings) throws {
        if let uuid = settings.string("uuid"), let mark = settings.mark("uuid") {
            if uuid.isEmpty || uuid.utf8.count > maxUUIDBytes {
                throw ProfileError(mark, "uuid must be 1 to \(maxUUIDBytes) bytes (it is \(uuid.utf8.count)): the PREPARE message has no room for more")
            }
        }
        let brokers = settings.list("brokers")
        if let mark = settings.mark("brokers") {
            if brokers.isEmpty { throw ProfileError(mark, "list at least one broker, e.g. 'brokers: [broker.example.net:8942]'") }
            if brokers.count > maxBrokers {
                throw ProfileError(mark, "\(brokers.count) brokers listed; at most \(maxBrokers), as tunneldigger's client")
            }
            for case .string(let text) in brokers where BrokerAddress.parse(text) == nil {
                throw ProfileError(mark, "'\(text)' is not host:port; write broker.example.net:8942, 192.0.2.1:8942 or [2001:db8::1]:8942")
            }
        }
        if let name = settings.string("interface"), let mark = settings.mark("interface"),
           name.isEmpty || name.utf8.count > 15 || name.contains("/") || name.contains(" ") {
            throw ProfileError(mark, "interface '\(name)' is not a valid interface name (1 to 15 characters, no '/' or spaces)")
        }
        if let text = settings.string("bind"), let mark = settings.mark("bind"), SocketAddress.parse(text, defaultPort: 0) == nil {
            throw ProfileError(mark, "bind '\(text)' is not an IP address; write 192.0.2.7 or 2001:db8::7")
        }
    }
}

/// A broker as configured: a host name or address literal and a port.
struct BrokerAddress: Equatable, CustomStringConvertible {
    let host: String
    let port: UInt16

    /// `host:port`, `a.b.c.d:port` or `[v6]:port`.
    static func parse(_ text: String) -> BrokerAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // a bare IPv6 literal needs brackets
        }
        guard !host.isEmpty, let port = UInt16(portText), port > 0 else { return nil }
        return BrokerAddress(host: String(host), port: port)
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
