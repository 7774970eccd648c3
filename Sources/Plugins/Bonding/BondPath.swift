import Framework

/// One path of a bonded session: a local UDP link and the peer's address on it (on a
/// client, one per configured uplink; on a server, one per client uplink it has heard
/// from). Holds what the scheduler needs per packet — the state tier, the delivery
/// rate, the virtual clock of its queue — and the path's health and counters.
final class BondPath {
    /// The client's link name (a server learns it from the first probe).
    var name: String
    var link: UDPLink
    var remote: SocketAddress
    var health: PathHealth
    var rate: DeliveryRate
    /// This side's setting: carry data only when no normal path is usable.
    var fallbackOnly: Bool
    /// The far side's setting, from its probes (a server honours the client's choice).
    var peerFallbackOnly = false
    /// The far side finds the path lossy or slow (its probes say so).
    var peerDegraded = false
    /// When the queue this scheduler has put on the path drains, by its rate estimate;
    /// each echo sets it right by the queue its probe really met (`anchor`).
    var freeAt = 0.0
    /// This side's data on the path: delay to the far end, from echoes (probe sent on
    /// our clock, taken on theirs). Its queue is the bottleneck queue in our direction,
    /// whatever the other direction carries.
    var outbound = OneWayDelay()
    /// The far side's data on the path: delay from it, from its probes.
    var inbound = OneWayDelay()
    /// How long bulk data that came by this path waits to be even with the longest
    /// live path (set every probe tick).
    var alignWait = 0.0
    /// The virtual queue when each probe in the health window went out, by probe slot.
    private var backlogAtProbe = [Double](repeating: 0, count: PathHealth.window)
    var sentPackets: UInt64 = 0, sentBytes: UInt64 = 0
    var receivedPackets: UInt64 = 0, receivedBytes: UInt64 = 0
    var lastReceived: Double
    /// `receivedPackets` and `sentPackets` at the last look, and how many came between
    /// the two looks before it.
    private var packetsAtLastLook: UInt64 = 0
    private var sentAtLastLook: UInt64 = 0
    private var broughtBefore: UInt64 = 0
    /// The far side's traffic on the path stopped dead while this side kept sending on
    /// it and another path still brings packets: it was busy (`busy` packets between
    /// two looks) and brought none since. A cut, noticed before any probe is due; a
    /// far side that paused (nothing to send) is not, as this side then sends nothing
    /// either, or only probes.
    private(set) var fellSilent = false
    /// How often the path went quiet, for either reason (a lost probe counts too).
    private(set) var quietSpells = 0
    static let busy: UInt64 = 8

    static let unusable = Int.max

    init(name: String, link: UDPLink, remote: SocketAddress, fallbackOnly: Bool, tolerances: PathHealth.Tolerances,
         bandwidthHint: Double, now: Double) {
        self.name = name
        self.link = link
        self.remote = remote
        self.fallbackOnly = fallbackOnly
        health = PathHealth(tolerances: tolerances, now: now)
        rate = DeliveryRate(prior: bandwidthHint > 0 ? bandwidthHint : BondPath.defaultRate, now: now)
        lastReceived = now
    }

    /// 10 Mbit/s until measured: low enough not to flood a thin uplink, and the
    /// estimate grows within a few probe echoes once traffic flows.
    static let defaultRate = 1_250_000.0

    var isFallback: Bool { fallbackOnly || peerFallbackOnly }

    /// 0 (best) … 3 for usable paths, `BondPath.unusable` when down: normal before
    /// fallback, healthy before lossy, slow or quiet (maybe cut, not yet down).
    var tier: Int {
        let base = isFallback ? 2 : 0
        switch health.state {
        case .down: return BondPath.unusable
        case .up: return isQuiet ? base + 1 : base
        case .lossy, .slow: return base + 1
        }
    }

    /// A live path whose probe went unanswered, or whose busy traffic stopped dead.
    var isQuiet: Bool { health.isQuiet || fellSilent }

    /// One look at the path (every quarter probe interval): did its traffic stop, is a
    /// probe overdue, is it down? `anyArrivals`: some path of the session brought
    /// packets since the last look (taken before any path is looked at). Returns the
    /// new state if it changed.
    func look(now: Double, anyArrivals: Bool) -> PathHealth.State? {
        let wasQuiet = isQuiet
        let change = health.tick(now: now)
        let brought = receivedPackets &- packetsAtLastLook
        let sent = sentPackets &- sentAtLastLook
        // Nothing came on this path, so the arrivals were another path's. A down path
        // is down, not quiet, as `health.isQuiet` is.
        fellSilent = health.state != .down && brought == 0 && anyArrivals
            && (fellSilent || (broughtBefore >= BondPath.busy && sent >= BondPath.busy))
        broughtBefore = brought
        packetsAtLastLook = receivedPackets
        sentAtLastLook = sentPackets
        if isQuiet && !wasQuiet { quietSpells += 1 }
        return change
    }

    /// Packets arrived since the last look.
    var broughtSinceLastLook: Bool { receivedPackets != packetsAtLastLook }

    /// The tier the far side sends bulk data by, as far as this side knows: its
    /// fallback and degraded flags, and down when this side hears nothing. The far
    /// side's own tolerances (a latency tolerance only it has) decide, not ours.
    var peerTier: Int {
        guard health.state != .down else { return BondPath.unusable }
        return (isFallback ? 2 : 0) + (peerDegraded ? 1 : 0)
    }

    /// The latest probe met a queue at least this deep on its way out: the path was
    /// busy, so what it delivers measures its capacity and probing it for more is moot.
    static let backlogged = 0.003
    var isBacklogged: Bool { outbound.queue > BondPath.backlogged }

    /// The queue the scheduler has put on the path, in seconds, as of `now`.
    @inline(__always)
    func backlog(now: Double) -> Double { max(freeAt - now, 0) }

    /// A probe goes out now: remember the virtual queue it is sent behind.
    func probeSent(id: UInt32, now: Double) {
        backlogAtProbe[Int(id % UInt32(PathHealth.window))] = backlog(now: now)
    }

    /// The echo of probe `id` says the probe met `queue` seconds of queue where the
    /// virtual clock expected what it had when the probe went out: correct today's
    /// clock by the difference. A rate estimate that is off, another sender on the
    /// uplink, or a burst the bottleneck let through then cost one probe interval of
    /// error, not a growing one.
    func anchor(probe id: UInt32, queue: Double, now: Double) {
        let error = queue - backlogAtProbe[Int(id % UInt32(PathHealth.window))]
        freeAt = now + max(backlog(now: now) + error, 0)
    }

    /// How much longer than `baseline` (the shortest path's base) this path takes
    /// one way; 0 until an echo has measured it (echoes measure it with the RTT).
    @inline(__always)
    func propagation(above baseline: Double) -> Double {
        outbound.base.map { max($0 - baseline, 0) } ?? 0
    }
}
