import Framework

/// `bonding-client`: one session to the server over every configured link, each
/// link a path with its own remote. Packets from any other address are dropped.
final class BondingClientManager: BondingManager, PeerAuthenticatingManager {
    private(set) var sessions: [Session] = []
    private var session: Session!
    private var pipeline: Pipeline!
    private var bond: BondingSession!

    func start() throws {
        guard tunnel.links.allSatisfy({ $0.remote != nil }) else {
            throw ConfigurationError("bonding-client: every link needs a 'remote' (the server's address for that uplink)")
        }
        session = try tunnel.makeSession(name: "peer", peer: tunnel.links.first?.remote)
        pipeline = session.pipeline!
        sessions = [session]
        bond = attach(session)
        let now = MonotonicClock.now()
        for link in tunnel.links { bond.add(makePath(name: link.name, link: link, remote: link.remote!, now: now)) }
        startTimer()
    }

    func outbound(_ batch: PacketBatch) {
        pipeline.send(batch)
    }

    func inbound(_ batch: PacketBatch, link: UDPLink) {
        if let remote = link.remote {
            for index in 0..<batch.count where batch[index].peer != remote { batch.drop(index, .unknownPeer) }
            batch.removeDropped()
        }
        if !batch.isEmpty { pipeline.receive(batch) }
    }

    func stop() {
        stopTimer()
        if let bond { detach(bond) }
    }

    func session(forAuthenticatedPeer name: String, from address: SocketAddress, link: UDPLink) -> Session? {
        nil  // a client answers no handshakes: it dials out
    }

    func authenticated(_ session: Session, from address: SocketAddress, link: Int) {}

    func sendControl(_ bytes: UnsafeRawBufferPointer, to session: Session) -> Bool {
        sendOnAllPaths(bytes, bond)
    }

    /// Links added, removed or retuned by a reload: paths follow, by link name; a
    /// path that stays keeps its health and rate, so the session never notices.
    func reloaded() {
        let now = MonotonicClock.now()
        for path in bond.paths where !tunnel.links.contains(where: { $0 === path.link }) {
            if path.health.state != .down { hooks.linkDown(path.name, tunnel: tunnel) }
            bond.remove(path)
        }
        for link in tunnel.links {
            if let path = bond.paths.first(where: { $0.link === link }) {
                path.remote = link.remote ?? path.remote
                path.fallbackOnly = link.settings.boolean(BondingManager.fallbackOnly)
                path.health.tolerances = BondingManager.tolerances(link.settings)
            } else if let remote = link.remote {
                bond.add(makePath(name: link.name, link: link, remote: remote, now: now))
            }
        }
    }

    static let descriptor = SessionManagerDescriptor(
        name: "bonding-client",
        summary: "one session to a bonding server over every link at once (a site with several uplinks)",
        settings: BondingManager.settings,
        linkSettings: BondingManager.linkSettings,
        make: { context in try BondingClientManager(context: context) })
}
