/// The `static` session manager: one session with one peer, over every link, for the
/// whole life of the process (point-to-point profiles such as `plain`).
///
/// A link with a `remote` accepts datagrams only from that address (others are
/// dropped as `unknown_peer`). A link without one follows the latest sender, so one
/// side can sit behind NAT; use that only with an authenticating stage in the
/// pipeline, since without one anybody can take the peer's place.
final class StaticSessionManager: SessionManager {
    let tunnel: Tunnel
    private(set) var sessions: [Session] = []
    private var session: Session!
    private var pipeline: Pipeline!
    /// Per link: follow the latest sender instead of insisting on `remote`.
    private var followsPeer: [Bool] = []

    init(tunnel: Tunnel) {
        self.tunnel = tunnel
    }

    func start() throws {
        session = try tunnel.makeSession(name: "peer", peer: tunnel.links.first?.remote)
        pipeline = session.pipeline!
        sessions = [session]
        followsPeer = tunnel.links.map { $0.remote == nil || $0.settings.boolean("follow-peer") == true }
    }

    func outbound(_ batch: PacketBatch) {
        pipeline.send(batch)
    }

    func inbound(_ batch: PacketBatch, link: UDPLink) {
        if !followsPeer[link.index], let remote = link.remote {
            for index in 0..<batch.count where batch[index].peer != remote {
                batch.drop(index, .unknownPeer)
            }
            batch.removeDropped()  // counted for the tunnel: no session owns them
        } else if batch.count > 0 {
            let latest = batch[batch.count - 1].peer
            if link.remote != latest {
                tunnel.logger.info("link \(link.name): peer is now \(latest)")
                link.remote = latest
                session.peer = latest
            }
        }
        if !batch.isEmpty { pipeline.receive(batch) }
    }

    func stop() {}

    static let descriptor = SessionManagerDescriptor(
        name: "static",
        summary: "one session with one peer over every link (point-to-point)",
        linkSettings: [
            SettingSpec("follow-peer", .boolean, default: .boolean(false),
                        help: "send to wherever the latest datagram came from, even if 'remote' is set (NAT on the far side)"),
        ],
        make: { context in StaticSessionManager(tunnel: context.tunnel) })
}
