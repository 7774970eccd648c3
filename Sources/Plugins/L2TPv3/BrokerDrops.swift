import Framework

/// Control datagrams the broker drops, counted by reason on the tunnel's counters
/// (status `drops`, metrics `reason` label), so a hostile or broken client shows.
struct BrokerDrops {
    enum Reason: String, CaseIterable {
        /// Shorter than a header, wrong magic or version, payload cut short, a length
        /// the message type does not allow, an unknown type.
        case malformed = "l2tp_malformed"
        /// A PREPARE whose cookie this broker did not issue to that address, or too old.
        case badCookie = "l2tp_bad_cookie"
        /// A message that needs a tunnel from an address that has none.
        case noTunnel = "l2tp_no_tunnel"
        /// A message a broker never expects (a COOKIE reply, a TUNNEL).
        case unexpected = "l2tp_unexpected"
    }

    private let counters: TrafficCounters
    private let ids: [DropReason]

    init(_ tunnel: Tunnel) {
        counters = tunnel.counters
        ids = Reason.allCases.map { tunnel.dropReason(named: $0.rawValue) }
    }

    func count(_ reason: Reason) {
        counters.countDrop(ids[Reason.allCases.firstIndex(of: reason)!])
    }

    func count(_ error: ControlDecodeError) {
        count(.malformed)
    }
}
