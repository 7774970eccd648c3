import Framework

/// One client's tunnel on the broker: ids, where the client is, MTU state, liveness
/// and its timers. Owned by `BrokerManager`; all on the loop's thread.
final class BrokerTunnel {
    let id: UInt32
    let sessionID: UInt32
    let peerTunnelID: UInt32
    let peerSessionID: UInt32
    /// Features agreed in the TUNNEL reply (client's ∧ what this broker supports).
    let features: FeatureFlags
    let uuid: String
    /// The PREPARE that made the tunnel: a retransmission is recognised by it (§3.2).
    let prepare: PrepareFields
    let client: SocketAddress
    /// The socket the client talks to: the listening link (userspace data plane) or
    /// this tunnel's own connected socket (kernel data plane).
    var link: UDPLink
    let brokerPort: UInt16
    var session: Session!
    var interface: String { "l2tp\(id)-\(sessionID)" }

    // MTU (§3.7).
    var measured: Int
    var peerMTU: Int?
    var mtu: Int
    var prober = BrokerPMTUProber()

    // Liveness (§3.6).
    var lastAlive: Double
    var socketErrors = 0
    var keepaliveCounter: UInt16 = 0
    /// Its place in the broker's KeepaliveSweep; -1 when not in it.
    var sweepSlot = -1
    var sweepIndex = -1
    var probeTimer: EventLoop.Timer?
    var closing = false

    init(id: UInt32, prepare: PrepareFields, features: FeatureFlags, uuid: String, client: SocketAddress,
         link: UDPLink, measured: Int, now: Double) {
        self.id = id
        peerTunnelID = prepare.tunnelID ?? 1
        // With unique session ids each side's session id is its own tunnel id;
        // legacy clients use 1 on both sides (§3.5).
        if features.contains(.uniqueSessionID) {
            sessionID = id
            peerSessionID = peerTunnelID
        } else {
            sessionID = 1
            peerSessionID = 1
        }
        self.features = features
        self.uuid = uuid
        self.prepare = prepare
        self.client = client
        self.link = link
        brokerPort = link.localAddress.port
        self.measured = measured
        mtu = TunnelMTU.broker(measured: measured, peer: nil)
        lastAlive = now
    }

    /// What a PREPARE carries, as the broker compares retransmissions.
    struct PrepareFields: Equatable {
        var uuid: [UInt8]
        var tunnelID: UInt32?
        var features: FeatureFlags?
    }

    /// Is this PREPARE a retransmission of the one that made the tunnel?
    func matches(_ other: PrepareFields) -> Bool { other == prepare }

    /// The TUNNEL reply; a retransmitted PREPARE gets the same one, feature word
    /// included (the reference broker drops it there, which kills unique-id data planes).
    var tunnelReply: ControlMessage {
        .tunnel(id: id, features: features.isEmpty ? nil : features)
    }

    func cancelTimers() {
        probeTimer?.cancel()
        probeTimer = nil
    }
}

extension BrokerTunnel: KeepaliveSweepMember {}
