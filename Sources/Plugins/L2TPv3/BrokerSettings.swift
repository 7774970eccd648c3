import Framework

/// The `l2tp-broker` session manager's settings (under `sessions:` in a site file),
/// named after tunneldigger's `l2tp_broker.cfg` keys with dashes.
struct BrokerSettings {
    var maxTunnels: Int
    var tunnelIDBase: UInt32
    /// 0: discover the path MTU; otherwise the fixed tunnel MTU told to clients.
    var pmtu: Int
    var rateLimit: ConnectionRateLimiter
    var dataPlane: L2TPSettings.DataPlane
    var keepaliveInterval: Double
    var timeout: Double
    var hooks: [BrokerHook: String]
    var hookTimeout: Double
    var logIPAddresses: Bool
    /// Milliseconds the loop may pause between turns while only control traffic flows.
    var wakeupCoalescing: Int

    init(_ settings: Settings) {
        maxTunnels = settings.integer(Self.maxTunnels)
        tunnelIDBase = UInt32(settings.integer(Self.tunnelIDBase))
        pmtu = settings.integer(Self.pmtu)
        rateLimit = ConnectionRateLimiter(
            minimumGap: Double(settings.integer(Self.connectionRateLimit)) / 1000,
            perIPCount: settings.integer(Self.connectionRateLimitPerIPCount),
            perIPWindow: Double(settings.integer(Self.connectionRateLimitPerIPTime)) / 1000)
        dataPlane = L2TPSettings.dataPlane(settings)
        keepaliveInterval = Double(settings.integer(Self.keepaliveInterval)) / 1000
        timeout = Double(settings.integer(Self.timeout)) / 1000
        hooks = [:]
        for hook in BrokerHook.allCases { if let path = settings.path(hook.rawValue) { hooks[hook] = path } }
        hookTimeout = L2TPSettings.hookTimeout(settings)
        logIPAddresses = settings.boolean(Self.logIPAddresses)
        wakeupCoalescing = settings.integer(Self.wakeupCoalescing)
    }

    static let maxTunnels = SettingSpec("max-tunnels", .integer(1...65535), default: .integer(1024),
                                        help: "most tunnels at once: the id pool's size and the denominator of the usage clients compare (max_tunnels)")
    static let tunnelIDBase = SettingSpec("tunnel-id-base", .integer(1...4_000_000_000), default: .integer(100),
                                          help: "first tunnel id (tunnel_id_base); interfaces are named l2tp<id>-<session id>, at most 15 characters")
    static let pmtu = SettingSpec("pmtu", .integer(0...9000), default: .integer(0),
                                  help: "0: discover each client's path MTU with probes; N (576 or more): fixed tunnel MTU told to every client (pmtu)")
    static let connectionRateLimit = SettingSpec("connection-rate-limit", .milliseconds(0...3_600_000), default: .integer(0),
                                                 help: "least time between two tunnels created, for the whole broker; 0 = off (connection_rate_limit)")
    static let connectionRateLimitPerIPCount = SettingSpec("connection-rate-limit-per-ip-count", .integer(0...1_000_000), default: .integer(0),
                                                           help: "at most this many attempts per client IP within the per-ip time; 0 = off")
    static let connectionRateLimitPerIPTime = SettingSpec("connection-rate-limit-per-ip-time", .milliseconds(0...86_400_000), default: .integer(0),
                                                          help: "the window of the per-IP limit; 0 = off")
    static let keepaliveInterval = SettingSpec("keepalive-interval", .milliseconds(1000...60_000), default: .integer(5000),
                                               help: "how often the broker sends each client a keepalive")
    static let timeout = SettingSpec("timeout", .milliseconds(5000...3_600_000), default: .integer(120_000),
                                     help: "a client silent this long is dropped (tunneldigger: 120 s)")
    static let logIPAddresses = SettingSpec("log-ip-addresses", .boolean, default: .boolean(false),
                                            help: "name clients by address in logs (log_ip_addresses); otherwise by uuid")
    static let wakeupCoalescing = SettingSpec("wakeup-coalescing", .milliseconds(0...50), default: .integer(20),
                                              help: "after a second without data, the broker wakes at most once per this long for control messages (10 000 clients' keepalives arrive 2 000 times a second); the first data packet after such a quiet second waits at most this long; 0 = wake for every datagram")

    static let specs: [SettingSpec] = [
        maxTunnels,
        tunnelIDBase,
        pmtu,
        connectionRateLimit,
        connectionRateLimitPerIPCount,
        connectionRateLimitPerIPTime,
        L2TPSettings.dataPlane,
        keepaliveInterval,
        timeout,
        L2TPSettings.hookTimeout,
        logIPAddresses,
        wakeupCoalescing,
    ] + BrokerHook.allCases.map {
        SettingSpec($0.rawValue, .executable, help: "script run as in tunneldigger's [hooks] \($0.rawValue): \($0.argumentsHelp)")
    }

    /// Checks beyond types: ids must leave room for interface names.
    static func check(_ settings: Settings) throws {
        let pmtu = settings.integer(Self.pmtu)
        if pmtu != 0 && pmtu < 576, let mark = settings.mark("pmtu") {
            throw ProfileError(mark, "pmtu \(pmtu) is too small: use 0 (discover) or a tunnel MTU of 576 or more")
        }
        let base = settings.integer(Self.tunnelIDBase)
        let count = settings.integer(Self.maxTunnels)
        let highest = base + count - 1
        // "l2tp" + id + "-" + id must fit IFNAMSIZ - 1 = 15 characters.
        if 4 + 2 * String(highest).count + 1 > 15 {
            let mark = settings.mark("tunnel-id-base") ?? settings.mark("max-tunnels")
            if let mark {
                throw ProfileError(mark, "tunnel ids up to \(highest) make interface names like l2tp\(highest)-\(highest), longer than 15 characters; keep tunnel-id-base + max-tunnels - 1 below 100000")
            }
        }
    }
}
