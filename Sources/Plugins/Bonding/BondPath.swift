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
    /// When the queue this scheduler has put on the path drains, by its rate estimate.
    var freeAt = 0.0
    var sentPackets: UInt64 = 0, sentBytes: UInt64 = 0
    var receivedPackets: UInt64 = 0, receivedBytes: UInt64 = 0
    var lastReceived: Double

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
    /// fallback, healthy before lossy or slow.
    var tier: Int {
        let base = isFallback ? 2 : 0
        switch health.state {
        case .down: return BondPath.unusable
        case .up: return base
        case .lossy, .slow: return base + 1
        }
    }

    /// The wait a packet meets on this path beyond its propagation delay: the queue
    /// the probes find at the bottleneck now (srtt − min RTT), which this side's
    /// virtual clock cannot see when bursts or another sender built it.
    var queueDelay: Double {
        guard let srtt = health.srtt, let minimum = health.minRTT else { return 0 }
        return max(srtt - minimum, 0)
    }

    /// One-way propagation, taken as half the least RTT seen. Counting it sends a
    /// packet to the longer path only once the shorter one's queue is deeper than
    /// the difference, so the reorder buffer holds less and TCP's RTT grows with its
    /// load rather than jumping by the difference as soon as both paths carry data
    /// (which ends cubic's slow start early: 10 and 40 ms links, 40 + 20 Mbit/s,
    /// cubic went from 0.17–0.34 of the raw sum to 0.57–0.59, bbr 0.77–0.81 to 0.82).
    var propagationDelay: Double { (health.minRTT ?? 0) / 2 }
}
