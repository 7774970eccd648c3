import Framework

/// Control datagrams the broker drops or refuses, counted by reason on the tunnel's
/// counters (status `drops`, metrics `reason` label), so a hostile or broken client
/// and a full or rate-limited broker show.
struct BrokerDrops {
    enum Reason: String, CaseIterable {
        /// Shorter than a header, wrong magic or version, payload cut short, a length
        /// the message type does not allow, an unknown type.
        case malformed = "l2tp_malformed"
        /// A PREPARE whose cookie this broker did not issue to that address, or too old.
        case badCookie = "l2tp_bad_cookie"
        /// A message that needs a tunnel from an address that has none.
        case noTunnel = "l2tp_no_tunnel"
        /// A message a broker never expects from an established tunnel (a TUNNEL, a
        /// REL_ACK: it sends no reliable messages). A client counts the types it never
        /// expects (PREPARE, LIMIT, other reliable ones) under the same name.
        case unexpected = "l2tp_unexpected"
        /// PREPAREs refused with ERROR: too soon after the last tunnel, too many
        /// attempts from one address, no tunnel id left, the kernel said no.
        case rateLimit = "l2tp_refused_rate_limit"
        case rateLimitPerIP = "l2tp_refused_rate_limit_per_ip"
        case noTunnelID = "l2tp_refused_no_tunnel_id"
        case kernelError = "l2tp_refused_kernel_error"
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

    /// The control message in `packet`, or nil, counted as malformed, when it is none.
    func decode(_ packet: Packet, from sender: ControlSender) -> ControlMessage? {
        let datagram = UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length)
        switch ControlMessage.decode(datagram, from: sender) {
        case .success(let message): return message
        case .failure:
            count(.malformed)
            return nil
        }
    }
}
