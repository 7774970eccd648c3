import Framework
import Glibc

/// One configured broker as the client sees it (tunneldigger's per-broker
/// "context", §2.2): its socket, state, what it answered, and — once chosen — the
/// tunnel's liveness, reliable messages and PMTU discovery. All on the loop's thread.
final class ClientBroker {
    enum State: String {
        /// Waiting for the host name to resolve.
        case resolving
        /// Asking USAGE (and COOKIE, for brokers older than USAGE).
        case getUsage
        /// Answered; waiting to be chosen.
        case standby
        case getCookie
        case getTunnel
        case established
        /// This attempt is over; the next round starts afresh.
        case failed
        /// Skipped this round: it failed or refused recently.
        case parked
    }

    let address: BrokerAddress
    /// Position in the configured list (ties and `first` go to the earlier one).
    let order: Int
    var state = State.resolving
    var resolved: SocketAddress?
    var link: UDPLink?
    /// 0 = empty … 0xFFFF = full or unknown (a broker that only answered COOKIE).
    var usage: UInt16 = 0xFFFF
    var cookie: Cookie?
    /// When the current request was last sent (retransmissions every 3 s).
    var lastSent = 0.0
    /// When any valid datagram last came from it (liveness, §2.5).
    var lastHeard = 0.0
    /// Marked when chosen, cleared once established; a broken broker sits out rounds for an hour.
    var brokenSince: Double?

    // The tunnel, once TUNNEL arrived.
    var wire: ClientPseudowire?
    var session: Session?
    var keepaliveCounter: UInt32 = 0
    var lastKeepalive = 0.0
    var sequence: UInt16 = 0
    var unacknowledged: [PendingReliable] = []
    var prober = ClientPMTUProber(ipv6: false)
    var proberRoundStart = 0.0
    /// Bursts of this round sent so far.
    var proberBursts = 0
    var nextProbeRound = 0.0
    var pathMTU: Int?
    var peerMTU: Int?
    var mtu: Int?

    struct PendingReliable {
        let message: ControlMessage
        var lastSent: Double
        var sends: Int
    }

    init(address: BrokerAddress, order: Int) {
        self.address = address
        self.order = order
    }

    /// Forget everything of the last attempt (§2.2 re-initialisation); the socket is the caller's.
    func reset(now: Double) {
        usage = 0xFFFF
        cookie = nil
        lastSent = 0
        lastHeard = now
        wire = nil
        session = nil
        keepaliveCounter = 0
        lastKeepalive = now
        sequence = 0
        unacknowledged = []
        prober = ClientPMTUProber(ipv6: resolved?.family == AF_INET6)
        nextProbeRound = now + ClientPMTUProber.firstInterval
        proberRoundStart = 0
        pathMTU = nil
        peerMTU = nil
        mtu = nil
    }

    var name: String { address.description }
}
