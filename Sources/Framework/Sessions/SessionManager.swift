/// Decides when sessions start and end, and which session a packet belongs to.
/// Provided by plugins (the static peer here, bonding client/server, the L2TP broker).
///
/// `outbound` and `inbound` are on the data path: they split batches between sessions
/// and call each session's pipeline, once per batch and session.
public protocol SessionManager: AnyObject {
    /// Create the initial sessions or start listening for peers.
    func start() throws
    /// Packets read from the local device.
    func outbound(_ batch: PacketBatch)
    /// Data datagrams received on `link` (control datagrams went to their claimers).
    func inbound(_ batch: PacketBatch, link: UDPLink)
    /// Tell peers goodbye and end every session.
    func stop()
    var sessions: [Session] { get }

    /// The tunnel applied a reload: `tunnel.links` (renumbered, some new, some gone)
    /// and `tunnel.spec.sessionSettings` may have changed. Sessions stay up.
    func reloaded()

    /// What the manager reports about itself for status and metrics (a broker's
    /// usage, a client's brokers); nil when it has nothing to add.
    var statusDetails: StatusValue? { get }
}

/// What a stage that authenticates peers itself (the crypto handshake) needs from
/// the session manager: a session for a proven identity, news of where a peer now
/// is, and a way to send it control datagrams. Managers that can host such a stage
/// adopt it (static, bonding); others (the L2TP ones) need not. Called on the loop's
/// thread.
public protocol PeerAuthenticatingManager: SessionManager {
    /// A peer proved its identity `name` from `address` on `link`: its session,
    /// created now if this manager serves many peers; nil to refuse the peer.
    func session(forAuthenticatedPeer name: String, from address: SocketAddress, link: UDPLink) -> Session?
    /// An authenticated datagram of `session` came from `address` on link `link`:
    /// the peer may have moved (NAT rebinding, a new uplink address).
    func authenticated(_ session: Session, from address: SocketAddress, link: Int)
    /// Send one control datagram (handshake, keepalive) to the session's peer on the
    /// link(s) the manager thinks best. False if there is nowhere to send it.
    @discardableResult
    func sendControl(_ bytes: UnsafeRawBufferPointer, to session: Session) -> Bool
}

extension SessionManager {
    public func reloaded() {}
    public var statusDetails: StatusValue? { nil }
}

/// What a session manager gets to work with.
public struct SessionManagerContext {
    public let tunnel: Tunnel
    public let settings: Settings
}

/// What a stage gets when it is built for one session.
public struct StageContext {
    public let tunnel: Tunnel
    public let session: Session
    public let settings: Settings
    public let stageName: String

    /// The id of a drop reason the stage declared in its descriptor.
    public func dropReason(_ name: String) -> DropReason {
        tunnel.dropReason(named: name)
    }
}
