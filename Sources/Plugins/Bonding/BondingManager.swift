import Framework

/// What the bonding client and server managers share: the probe timer that drives
/// every bonding session, the status hooks, and turning link settings into paths.
class BondingManager {
    unowned let tunnel: Tunnel
    let registry: BondingRegistry
    var hooks: StatusHooks
    private var timer: EventLoop.Timer?
    private(set) var bonds: [BondingSession] = []
    let probeInterval: Double

    init(context: SessionManagerContext) throws {
        tunnel = context.tunnel
        registry = context.tunnel.shared(BondingRegistry.self) { BondingRegistry() }
        hooks = StatusHooks(settings: context.settings, tunnel: context.tunnel)
        probeInterval = Double(context.settings.integer(BondingManager.probeInterval)) / 1000
    }

    /// The timer's turn: every `looksPerProbe`-th one probes.
    private var turn = 0

    /// The timer runs at a quarter of the probe interval: every fourth turn probes, and
    /// the turns between look at every path, so a link whose busy traffic stopped is
    /// `quiet` 12.5-25 ms after a cut (by default) and data leaves it before TCP has lost
    /// much to it. Looking every half interval (25-50 ms), 5 of 18 failover test runs
    /// waited out a TCP retransmission timeout; every quarter, none of 10.
    static let looksPerProbe = 4

    func startTimer() {
        // To the nanosecond: 50 ms / 4 in whole milliseconds would make the probe period 48 ms.
        timer = tunnel.loop.addTimer(every: probeInterval / Double(Self.looksPerProbe)) { [unowned self] in
            let now = MonotonicClock.now()
            defer { self.turn = (self.turn + 1) % Self.looksPerProbe }
            guard self.turn == 0 else {
                for bond in self.bonds { bond.watch(now: now) }
                return
            }
            for bond in self.bonds { bond.tick(now: now) }
            self.tick(now: now)
        }
    }

    /// Per-manager work on every probe tick (a server expires sessions).
    func tick(now: Double) {}

    func stopTimer() {
        timer?.cancel()
        timer = nil
    }

    /// A new bonding session for `session`, with state changes logged and hooked.
    func attach(_ session: Session) -> BondingSession {
        let bond = registry.bond(for: session, tunnel: tunnel)
        bond.onStateChange = { [unowned self, unowned session] path, before, after in
            self.tunnel.logger.notice("session \(session.name): link \(path.name) (\(path.remote)) \(before.rawValue) → \(after.rawValue)\(BondingManager.describe(path))")
            let label = self.hookLabel(session: session, path: path)
            if before == .down && after != .down { self.hooks.linkUp(label, tunnel: self.tunnel) }
            if after == .down && before != .down { self.hooks.linkDown(label, tunnel: self.tunnel) }
        }
        session.statusExtension = { [unowned bond] in bond.status(now: MonotonicClock.now()) }
        bonds.append(bond)
        return bond
    }

    func detach(_ bond: BondingSession) {
        for path in bond.paths where path.health.state != .down {
            hooks.linkDown(hookLabel(session: bond.session, path: path), tunnel: tunnel)
        }
        bonds.removeAll { $0 === bond }
        registry.remove(bond.session)
    }

    /// The LINK argument of rtun_up/rtun_down.
    func hookLabel(session: Session, path: BondPath) -> String { path.name }

    static func describe(_ path: BondPath) -> String {
        guard let srtt = path.health.srtt else { return "" }
        return ", srtt \(Int(srtt * 1000)) ms"
    }

    /// A path over `link` to `remote` with the link's tolerances and hints.
    func makePath(name: String, link: UDPLink, remote: SocketAddress, now: Double) -> BondPath {
        BondPath(name: name, link: link, remote: remote, fallbackOnly: link.settings.boolean(BondingManager.fallbackOnly),
                 tolerances: BondingManager.tolerances(link.settings),
                 bandwidthHint: Double(link.settings.integer(BondingManager.bandwidth)) * 125_000, now: now)
    }

    static func tolerances(_ settings: Settings) -> PathHealth.Tolerances {
        PathHealth.Tolerances(lossPercent: Double(settings.integer(BondingManager.lossTolerance)),
                              latency: Double(settings.integer(BondingManager.latencyTolerance)) / 1000,
                              timeout: Double(settings.integer(BondingManager.timeout)) / 1000)
    }

    /// Send a control datagram (a handshake) on every path that has a remote: the
    /// first to get through wins, and a dead uplink cannot stall the handshake.
    func sendOnAllPaths(_ bytes: UnsafeRawBufferPointer, _ bond: BondingSession?) -> Bool {
        var sent = false
        for path in bond?.paths ?? [] where path.link.sendControl(bytes, to: path.remote) { sent = true }
        return sent
    }

    static let probeInterval = SettingSpec("probe-interval", .milliseconds(10...1000), default: .integer(50),
                                           help: "how often each link is probed (RTT, loss, liveness); a dead link is noticed after its 'timeout'")

    static let settings: [SettingSpec] = StatusHooks.settings + [probeInterval]

    // Link settings (each link's own, read from `UDPLink.settings`).
    static let fallbackOnly = SettingSpec("fallback-only", .boolean, default: .boolean(false),
                                          help: "carry data only when no normal link is usable (mlvpn's fallback_only)")
    static let lossTolerance = SettingSpec("loss-tolerance", .integer(0...100), default: .integer(20),
                                           help: "percent of probes lost over the last 2 s above which the link is 'lossy' and leaves aggregation while better links exist; 100 disables")
    static let latencyTolerance = SettingSpec("latency-tolerance", .milliseconds(0...60_000), default: .integer(0),
                                              help: "srtt above which the link is 'slow' and leaves aggregation while better links exist; 0 disables")
    static let timeout = SettingSpec("timeout", .milliseconds(50...60_000), default: .integer(250),
                                     help: "no probe answered for this long (or 2×srtt+4×rttvar if longer): the link is down")
    static let bandwidth = SettingSpec("bandwidth", .integer(0...100_000), default: .integer(0),
                                       help: "expected upload rate in Mbit/s: only the scheduler's starting point, the measured rate replaces it; 0 = unknown")

    static let linkSettings: [SettingSpec] = [fallbackOnly, lossTolerance, latencyTolerance, timeout, bandwidth]
}
