import Logging

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
}

/// What a session manager gets to work with.
public struct SessionManagerContext {
    public let tunnel: Tunnel
    public let settings: Settings
    public var logger: Logger { tunnel.logger }
}

/// What a stage gets when it is built for one session.
public struct StageContext {
    public let tunnel: Tunnel
    public let session: Session
    public let settings: Settings
    public let stageName: String
    public var logger: Logger { tunnel.logger }

    /// The id of a drop reason the stage declared in its descriptor.
    public func dropReason(_ name: String) -> DropReason {
        tunnel.dropReason(named: name)
    }
}
