/// The `static` session manager: one session with one peer, over every link, for the
/// whole life of the process (point-to-point profiles such as `plain`).
///
/// A link with a `remote` accepts datagrams only from that address (others are
/// dropped as `unknown_peer`). A link without one, or with `follow-peer`, follows the
/// peer when it moves, so one side can sit behind NAT. With an authenticating stage
/// in the pipeline it follows only addresses that stage vouched for; without one it
/// follows the latest sender, and anybody can take the peer's place.
final class StaticSessionManager: PeerAuthenticatingManager {
    let tunnel: Tunnel
    private(set) var sessions: [Session] = []
    private var session: Session!
    private var pipeline: Pipeline!
    /// Per link: follow the peer instead of insisting on `remote`.
    private var followsPeer: [Bool] = []
    private var authenticates = false

    init(tunnel: Tunnel) {
        self.tunnel = tunnel
    }

    func start() throws {
        followsPeer = tunnel.links.map { $0.remote == nil || $0.settings.boolean("follow-peer") == true }
        authenticates = tunnel.authenticates
        session = try tunnel.makeSession(name: "peer", peer: tunnel.links.first?.remote)
        pipeline = session.pipeline!
        sessions = [session]
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
        } else if !authenticates, batch.count > 0 {
            follow(batch[batch.count - 1].peer, on: link)
        }
        if !batch.isEmpty { pipeline.receive(batch) }
    }

    func stop() {}

    func reloaded() {
        followsPeer = tunnel.links.map { $0.remote == nil || $0.settings.boolean("follow-peer") == true }
    }

    func session(forAuthenticatedPeer name: String, from address: SocketAddress, link: UDPLink) -> Session? {
        if followsPeer[link.index] { follow(address, on: link) }
        return session
    }

    func authenticated(_ session: Session, from address: SocketAddress, link: Int) {
        if followsPeer[link] { follow(address, on: tunnel.links[link]) }
    }

    func sendControl(_ bytes: UnsafeRawBufferPointer, to session: Session) -> Bool {
        guard let link = tunnel.links.first(where: { $0.remote != nil }) else { return false }
        return link.sendControl(bytes, to: link.remote!)
    }

    private func follow(_ address: SocketAddress, on link: UDPLink) {
        guard link.remote != address else { return }
        tunnel.logger.info("link \(link.name): peer is now \(address)")
        link.remote = address
        session.peer = address
    }

    static let descriptor = SessionManagerDescriptor(
        name: "static",
        summary: "one session with one peer over every link (point-to-point)",
        linkSettings: [
            SettingSpec("follow-peer", .boolean, default: .boolean(false),
                        help: "follow the peer to a new address even if 'remote' is set (NAT on the far side); with encryption only to addresses that authenticated"),
        ],
        make: { context in StaticSessionManager(tunnel: context.tunnel) })
}
