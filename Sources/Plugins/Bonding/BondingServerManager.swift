import Framework

/// `bonding-server`: one session per client site, created when the site proves who
/// it is (the crypto handshake), over shared listening links. A site's paths are the
/// addresses its uplinks send from; a path moves when an authenticated packet comes
/// from a new address (NAT rebinding, a new uplink address). Packets read from the
/// device go to the site whose `routes` hold their destination; packets from a site
/// must come from its own prefixes.
final class BondingServerManager: BondingManager, PeerAuthenticatingManager {
    private(set) var sessions: [Session] = []
    private var byName: [String: Session] = [:]
    /// The session of each owner in `routes.names` (nil while that site is away).
    private var byOwner: [Session?]
    private var bondsByID: [UInt32: BondingSession] = [:]
    private var byAddress: [SocketAddress: Session] = [:]
    private let routes: PrefixTable
    private let sessionTimeout: Double
    private let maxSessions: Int
    private let dispatcher: SessionDispatcher
    private let noRoute: DropReason
    /// Sites past max-sessions retry their handshakes every second: a line per interval.
    private var refusalLog = LogLimiter()

    override init(context: SessionManagerContext) throws {
        routes = try PrefixTable.parse(context.settings.list("routes").map(\.description))
        byOwner = [Session?](repeating: nil, count: routes.names.count)
        sessionTimeout = Double(context.settings.integer(BondingServerManager.sessionTimeout)) / 1000
        maxSessions = context.settings.integer(BondingServerManager.maxSessions)
        let tunnel = context.tunnel
        dispatcher = SessionDispatcher(batchSize: tunnel.spec.batchSize, headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        noRoute = tunnel.dropReason(named: "no_route")
        try super.init(context: context)
    }

    func start() throws {
        startTimer()
    }

    // MARK: sessions

    func session(forAuthenticatedPeer name: String, from address: SocketAddress, link: UDPLink) -> Session? {
        if let session = byName[name] {
            notePath(session, address: address, link: link)
            return session
        }
        guard sessions.count < maxSessions else {
            if let held = refusalLog.admit(now: MonotonicClock.now()) {
                tunnel.logger.warning("bonding-server: refusing site \(name): max-sessions (\(maxSessions)) reached; raise it or end another site\(LogLimiter.heldNote(held))")
            }
            return nil
        }
        // No peer at creation: the site dials in and keeps the handshakes going; a
        // hub never initiates toward an address that may be gone.
        guard let session = try? tunnel.makeSession(name: name, peer: nil) else {
            tunnel.logger.error("bonding-server: cannot build a session for site \(name)")
            return nil
        }
        let bond = attach(session)
        bond.learn = { [unowned self] link, address, name in
            self.makePath(name: name, link: link, remote: address, now: MonotonicClock.now())
        }
        if let owner = routes.names.firstIndex(of: name) {
            bond.allowedSources = (routes, owner)
            byOwner[owner] = session
        }
        sessions.append(session)
        byName[name] = session
        bondsByID[session.id] = bond
        tunnel.logger.notice("bonding-server: site \(name) connected from \(address)")
        notePath(session, address: address, link: link)
        return session
    }

    func authenticated(_ session: Session, from address: SocketAddress, link: Int) {
        guard link < tunnel.links.count else { return }
        notePath(session, address: address, link: tunnel.links[link])
    }

    /// An authenticated packet of `session` came from `address`: make sure a path
    /// goes there. Its name comes with the next probe, which also merges it with the
    /// path it replaces when the client's link moved.
    private func notePath(_ session: Session, address: SocketAddress, link: UDPLink) {
        // Runs for every packet whose source differs from the one before (a site's
        // links alternate on one listening socket): a known path returns at once.
        guard let bond = bondsByID[session.id], bond.path(link: Int32(link.index), peer: address) == nil else { return }
        if let other = byAddress[address], other !== session { forget(address, in: other) }
        byAddress[address] = session
        session.peer = address
        bond.add(makePath(name: "\(address)", link: link, remote: address, now: MonotonicClock.now()))
    }

    private func forget(_ address: SocketAddress, in session: Session) {
        guard let bond = bondsByID[session.id] else { return }
        for path in bond.paths where path.remote == address { bond.remove(path) }
    }

    /// Paths silent for long go; a site with no live path for `session-timeout` ends.
    override func tick(now: Double) {
        for session in sessions {
            guard let bond = bondsByID[session.id] else { continue }
            for path in bond.paths where path.health.state == .down && now - path.lastReceived > 30 {
                byAddress[path.remote] = nil
                bond.remove(path)
            }
            let lastHeard = bond.paths.map(\.lastReceived).max() ?? 0
            if now - lastHeard > sessionTimeout { end(session, why: "silent for \(Int(sessionTimeout)) s") }
        }
    }

    private func end(_ session: Session, why: String) {
        tunnel.logger.notice("bonding-server: site \(session.name) ended (\(why))")
        if let bond = bondsByID.removeValue(forKey: session.id) { detach(bond) }
        session.pipeline?.stop()
        sessions.removeAll { $0 === session }
        byName[session.name] = nil
        if let owner = routes.names.firstIndex(of: session.name) { byOwner[owner] = nil }
        for (address, owner) in byAddress where owner === session { byAddress[address] = nil }
    }

    // MARK: data path

    func outbound(_ batch: PacketBatch) {
        if sessions.count == 1 && routes.entries.isEmpty {
            sessions[0].pipeline?.send(batch)  // one site, no routes: everything is its
            return
        }
        dispatch(batch, outbound: true) { packet in
            self.routes.ownerIndex(of: packet, destination: true).flatMap { self.byOwner[$0] }
        }
    }

    func inbound(_ batch: PacketBatch, link: UDPLink) {
        // The stage that defines the data format knows the session (the crypto
        // stage's receiver index survives NAT rebinding); else the peer's address.
        // The router is looked up once per batch, not per packet (its closure is
        // retained on each lookup): a batch is almost always data records only.
        let routed = batch.isEmpty ? nil : tunnel.dataRouter(for: batch[0])
        let routedType = routed == nil ? nil : batch[0].byte(at: 0)
        let tunnel = self.tunnel
        dispatch(batch, outbound: false) { packet in
            if let routed, packet.length > 0, packet.byte(at: 0) == routedType { return routed(packet) }
            if let router = tunnel.dataRouter(for: packet) { return router(packet) }
            return self.byAddress[packet.peer]
        }
    }

    /// Run each session's pipeline on its packets of `batch`.
    private func dispatch(_ batch: PacketBatch, outbound: Bool, _ owner: (Packet) -> Session?) {
        dispatcher.dispatch(batch, outbound: outbound, unowned: outbound ? noRoute : .unknownPeer, owner: owner)
    }

    func stop() {
        stopTimer()
        for session in sessions { if let bond = bondsByID[session.id] { detach(bond) } }
    }

    func sendControl(_ bytes: UnsafeRawBufferPointer, to session: Session) -> Bool {
        sendOnAllPaths(bytes, bondsByID[session.id])
    }

    override func hookLabel(session: Session, path: BondPath) -> String { "\(session.name)/\(path.name)" }

    /// Reloaded: new tolerances for the paths of every site on the links that remain;
    /// paths on links that are gone end (the client moves to its other links).
    func reloaded() {
        for session in sessions {
            guard let bond = bondsByID[session.id] else { continue }
            for path in bond.paths {
                if tunnel.links.contains(where: { $0 === path.link }) {
                    path.fallbackOnly = path.link.settings.boolean(BondingManager.fallbackOnly)
                    path.health.tolerances = BondingManager.tolerances(path.link.settings)
                } else {
                    byAddress[path.remote] = nil
                    bond.remove(path)
                }
            }
        }
    }

    static let routes = SettingSpec("routes", .list(.string), default: .list([]),
                                    help: "which inner prefixes belong to which site, 'NAME=PREFIX [PREFIX…]' (NAME as in crypto 'peers'); needed with more than one site; a site may only send from its own")
    static let sessionTimeout = SettingSpec("session-timeout", .milliseconds(1000...3_600_000), default: .integer(60_000),
                                            help: "a site with no packet for this long is ended (its hooks run rtun_down)")
    static let maxSessions = SettingSpec("max-sessions", .integer(1...100_000), default: .integer(1024),
                                         help: "most client sites served at once")

    static let descriptor = SessionManagerDescriptor(
        name: "bonding-server",
        summary: "a hub: one bonded session per client site that authenticates, on shared listening links",
        settings: BondingManager.settings + [routes, sessionTimeout, maxSessions],
        linkSettings: BondingManager.linkSettings,
        make: { context in try BondingServerManager(context: context) })
}
