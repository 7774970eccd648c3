import Framework
import Glibc

/// `l2tp-broker`: tunneldigger's broker (§3). Routers dial in on the site's links
/// with the control protocol; each that completes COOKIE → PREPARE gets a tunnel
/// id, an L2TPv3 Ethernet pseudowire and its own interface `l2tp<T>-<S>`.
///
/// Tunnels are found by the socket and client address they talk from (a hash
/// lookup per datagram): legacy clients all use session id 1, so the 4-tuple is the
/// only thing that tells them apart (§4.2).
final class BrokerManager: SessionManager {
    unowned let tunnel: Tunnel
    private(set) var settings: BrokerSettings
    private let cookies: CookieMint
    private var pool: TunnelIDPool
    private var rateLimit: ConnectionRateLimiter
    private var dataPlane: BrokerDataPlane!
    private let dispatcher: SessionDispatcher
    private let routes: PseudowireRoutes
    private let drops: BrokerDrops
    private let tc: String?

    private struct Endpoint: Hashable {
        let socket: Int32
        let client: SocketAddress
    }

    private var byEndpoint: [Endpoint: BrokerTunnel] = [:]
    private var bySession: [ObjectIdentifier: BrokerTunnel] = [:]
    /// The kernel refused a second session id 1: legacy clients are told the broker
    /// is full (usage 0xFFFF) so they prefer another (§3.4, §3.5 step 5).
    private var uniqueSessionIDsRequired = false
    /// Sockets with keepalives queued this turn, and the buffer they are written in.
    private var queuedLinks: [UDPLink] = []
    /// Floods of PREPAREs or of unhandled messages log a line per interval, not per message.
    private var refusalLog = LogLimiter()
    private var unhandledLog = LogLimiter()
    /// Every tunnel's keepalive, from one timer (KeepaliveSweep says why).
    private var sweep: KeepaliveSweep<BrokerTunnel>
    private var sweepTimer: EventLoop.Timer?
    private let keepaliveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ControlMessage.paddedSize, alignment: 4)

    init(context: SessionManagerContext) throws {
        tunnel = context.tunnel
        settings = BrokerSettings(context.settings)
        sweep = KeepaliveSweep(intervalMilliseconds: Int(settings.keepaliveInterval * 1000))
        cookies = CookieMint()
        pool = TunnelIDPool(base: settings.tunnelIDBase, count: settings.maxTunnels)
        rateLimit = settings.rateLimit
        dispatcher = SessionDispatcher(batchSize: tunnel.spec.batchSize, headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        routes = tunnel.shared(PseudowireRoutes.self) { PseudowireRoutes() }
        drops = BrokerDrops(tunnel)
        tc = BrokerManager.findExecutable("tc")
    }

    deinit { keepaliveBuffer.deallocate() }

    var sessions: [Session] { bySession.values.map(\.session) }

    /// The usage clients are told, and how full the id pool is.
    var statusDetails: StatusValue? {
        .object([("usage", .uint(UInt64(usage([])))), ("usageUniqueSessionIds", .uint(UInt64(usage(.uniqueSessionID)))),
                 ("tunnels", .uint(UInt64(bySession.count))), ("maxTunnels", .uint(UInt64(settings.maxTunnels))),
                 ("dataPlane", .string(dataPlane?.name ?? "none"))])
    }

    func start() throws {
        dataPlane = try BrokerDataPlanes.choose(settings.dataPlane, tunnel: tunnel, idRange: pool.range)
        try tunnel.demux.claimControl(ControlMessage.magic[0], by: "the l2tp-broker session manager") { [unowned self] packet, link in
            self.control(packet, on: link)
        }
        tunnel.loop.coalesceWakeups(windowMilliseconds: settings.wakeupCoalescing)
        sweepTimer = try tunnel.loop.addTimer(milliseconds: 0, repeating: false) { [unowned self] in self.sweepTick() }
        if settings.pmtu == 0 {
            // Probes must leave with DF set and the cached path MTU ignored (§1.4).
            for link in tunnel.links { try link.setPMTUDiscovery(.probe) }
        }
        let ports = tunnel.links.map { $0.localAddress.description }.joined(separator: ", ")
        tunnel.logger.notice("l2tp-broker: serving on \(ports); tunnel ids \(pool.range.lowerBound)…\(pool.range.upperBound), \(dataPlane.name) data plane, \(settings.pmtu == 0 ? "PMTU discovery" : "fixed tunnel MTU \(settings.pmtu)")")
    }

    // MARK: control messages

    private func control(_ packet: Packet, on link: UDPLink) {
        guard let message = drops.decode(packet, from: .client) else { return }
        let client = packet.peer
        let endpoint = Endpoint(socket: link.fd, client: client)
        let existing = byEndpoint[endpoint]
        switch message {
        case .cookieRequest:
            send(.cookieReply(cookie: cookies.issue(for: client)), to: client, on: link)
        case .usageRequest(let features):
            send(.usageReply(load: usage(features)), to: client, on: link)
        case .prepare(let cookie, let uuid, let tunnelID, let features):
            let fields = BrokerTunnel.PrepareFields(uuid: uuid, tunnelID: tunnelID, features: features)
            if let existing {
                // A retransmission (the TUNNEL was lost) gets the same answer, once the
                // kernel has made the tunnel; anything else from a live tunnel's
                // address is refused (§3.2).
                guard existing.session != nil else { return }
                send(existing.matches(fields) ? existing.tunnelReply : .error(reason: nil), to: client, on: link)
            } else {
                prepare(fields, cookie: cookie, from: client, on: link)
            }
        default:
            guard let existing else {
                drops.count(.noTunnel)
                return
            }
            guard existing.session != nil else { return }  // still being made
            established(message, existing)
        }
    }

    /// A message from a client with a tunnel: it is alive (§3.2), then by type (§3.6).
    private func established(_ message: ControlMessage, _ tunnel: BrokerTunnel) {
        tunnel.lastAlive = MonotonicClock.now()
        if tunnel.socketErrors > 0 { tunnel.socketErrors -= 1 }
        switch message {
        case .keepalive:
            break
        case .pmtuProbe(let size):
            if settings.pmtu == 0 {
                send(.pmtuAck(size: UInt16(clamping: size)), to: tunnel)
            } else {
                // Fixed mode: no ACK, so the client forms no PMTU of its own; it is told the value.
                send(.pmtuNotify(mtu: UInt16(clamping: settings.pmtu)), to: tunnel)
            }
        case .pmtuAck(let size):
            guard settings.pmtu == 0, let pathMTU = tunnel.prober.acknowledged(payload: Int(size)) else { return }
            tunnel.measured = pathMTU - PseudowireHeader.overhead
            applyMTU(tunnel)
            send(.pmtuNotify(mtu: UInt16(clamping: tunnel.measured)), to: tunnel)
        case .pmtuNotify(let mtu):
            guard settings.pmtu == 0, Int(mtu) != tunnel.peerMTU else { return }
            tunnel.peerMTU = Int(mtu)
            applyMTU(tunnel)
        case .error(let reason):
            // Only an ERROR with its reason byte ends a tunnel, as upstream (§1.6).
            guard reason != nil else { return }
            close(tunnel, reason: ErrorReason.brokerOtherRequested, why: "the client ended it")
        case .limit(let sequence, let kbps):
            send(.reliableAck(sequence: sequence), to: tunnel)
            limit(tunnel, kbps: kbps)
        case .reliable(let type, let sequence):
            send(.reliableAck(sequence: sequence), to: tunnel)
            if let held = unhandledLog.admit(now: MonotonicClock.now()) {
                self.tunnel.logger.info("l2tp-broker: \(name(tunnel)): reliable message type \(type) not handled\(LogLimiter.heldNote(held))")
            }
        default:
            drops.count(.unexpected)
        }
    }

    // MARK: handshake

    private func usage(_ features: FeatureFlags) -> UInt16 {
        if uniqueSessionIDsRequired && !features.contains(.uniqueSessionID) { return 0xFFFF }
        return UInt16(min(65535, bySession.count * 65535 / settings.maxTunnels))
    }

    private func prepare(_ fields: BrokerTunnel.PrepareFields, cookie: Cookie, from client: SocketAddress, on link: UDPLink) {
        guard cookies.verify(cookie, from: client) else {
            drops.count(.badCookie)  // silently, as upstream: no ERROR to a forged source
            return
        }
        let uuid = HookArgument.sanitize(fields.uuid)
        let now = MonotonicClock.now()
        switch rateLimit.check(client.addressBytes, now: now) {
        case .allowed: break
        case .globalLimit:
            refuse(client, on: link, why: .rateLimit, "connection rate limit")
            return
        case .perIPLimit:
            runHook(.rateLimited, [client.host, String(client.port), uuid], key: "rate-limit")
            refuse(client, on: link, why: .rateLimitPerIP, "per-IP connection rate limit")
            return
        }
        guard let id = pool.take() else {
            refuse(client, on: link, why: .noTunnelID, "all \(settings.maxTunnels) tunnel ids in use")
            return
        }
        let agreed = (fields.features ?? []).intersection(.uniqueSessionID)
        let brokerTunnel = BrokerTunnel(id: id, prepare: fields, features: agreed, uuid: uuid, client: client, link: link,
                                        measured: settings.pmtu == 0 ? TunnelMTU.initial : settings.pmtu, now: now)
        dataPlane.open(brokerTunnel, routes: routes) { [unowned self] result in
            self.opened(brokerTunnel, result, listening: link)
        }
        // Still with the kernel: its PREPARE retransmissions must find it (they are
        // answered once it is ready). `t.link` is its own socket by now, if it has one.
        if brokerTunnel.session == nil && !brokerTunnel.closing {
            byEndpoint[Endpoint(socket: brokerTunnel.link.fd, client: client)] = brokerTunnel
        }
    }

    /// The data plane made the tunnel's session, or could not.
    private func opened(_ t: BrokerTunnel, _ result: Result<Session, any Error>, listening: UDPLink) {
        byEndpoint[Endpoint(socket: t.link.fd, client: t.client)] = nil
        let session: Session
        switch result {
        case .success(let made):
            session = made
        case .failure(let error):
            t.closing = true  // never registered, nothing to tear down
            if error is SessionIDTaken {
                pool.give(t.id)
                if !uniqueSessionIDsRequired {
                    uniqueSessionIDsRequired = true
                    tunnel.logger.warning("l2tp-broker: the kernel allows one session id 1 at a time; clients without unique session ids now see usage 0xFFFF (\(error))")
                }
            } else if error is TunnelIDTaken {
                pool.retire(t.id)
            } else {
                pool.give(t.id)
            }
            refuse(t.client, on: listening, why: .kernelError, "\(error)")
            return
        }
        t.session = session
        rateLimit.created(now: MonotonicClock.now())
        byEndpoint[Endpoint(socket: t.link.fd, client: t.client)] = t
        bySession[ObjectIdentifier(session)] = t
        session.statusExtension = { [unowned t] in BrokerManager.status(t) }
        send(t.tunnelReply, to: t)
        startTimers(t)
        if settings.pmtu != 0 { send(.pmtuNotify(mtu: UInt16(clamping: settings.pmtu)), to: t) }
        tunnel.logger.info("l2tp-broker: \(name(t)) up: tunnel \(t.id), session \(t.sessionID) → \(t.peerSessionID), \(t.interface), mtu \(t.mtu)")
        runHook(.sessionUp, t.sessionArguments, key: t.interface)
    }

    private func refuse(_ client: SocketAddress, on link: UDPLink, why reason: BrokerDrops.Reason, _ detail: String) {
        drops.count(reason)
        if let held = refusalLog.admit(now: MonotonicClock.now()) {
            tunnel.logger.info("l2tp-broker: PREPARE from \(settings.logIPAddresses ? client.description : "a client") refused: \(detail)\(LogLimiter.heldNote(held))")
        }
        send(.error(reason: nil), to: client, on: link)
    }

    // MARK: timers

    private func startTimers(_ t: BrokerTunnel) {
        sweep.add(t)
        if sweep.count == 1 {
            // Only while there are tunnels: an empty broker sleeps.
            sweepTimer?.arm(milliseconds: sweep.tickMilliseconds, repeating: true)
        }
        // Spread the first probes so a burst of new tunnels does not keep probing in step.
        if settings.pmtu == 0 {
            t.probeTimer = try? tunnel.loop.addTimer(milliseconds: Int.random(in: 1000...4000), repeating: false) { [unowned self, unowned t] in
                self.probe(t)
            }
        }
    }

    /// One tick of the keepalive sweep: the keepalives of one slot's tunnels.
    private func sweepTick() {
        for t in sweep.next() where !t.closing { keepalive(t) }
    }

    private func keepalive(_ t: BrokerTunnel) {
        if MonotonicClock.now() - t.lastAlive > settings.timeout {
            close(t, reason: ErrorReason.brokerTimeout, why: "silent for \(Int(settings.timeout)) s")
            return
        }
        // Queued: the keepalives due this turn leave together in one sendmmsg per socket.
        let length = ControlMessage.writeBrokerKeepalive(counter: t.keepaliveCounter, into: keepaliveBuffer)
        if !dataPlane.sharesListeningSockets {
            send(.keepalive(counter: UInt32(t.keepaliveCounter), wide: false), to: t)  // a socket per tunnel: nothing to batch
        } else if !t.link.queueControl(UnsafeRawBufferPointer(rebasing: keepaliveBuffer[0..<length]), to: t.client) {
            send(.keepalive(counter: UInt32(t.keepaliveCounter), wide: false), to: t)
        } else if !queuedLinks.contains(where: { $0 === t.link }) {
            queuedLinks.append(t.link)
            if queuedLinks.count == 1 { tunnel.loop.atEndOfTurn { [unowned self] in self.flushQueued() } }
        }
        t.keepaliveCounter &+= 1
    }

    private func flushQueued() {
        for link in queuedLinks {
            let refused = link.flushControl()
            if refused > 0 { tunnel.logger.debug("l2tp-broker: \(refused) keepalives refused by the kernel on \(link.name)") }
        }
        queuedLinks.removeAll(keepingCapacity: true)
    }

    private func probe(_ t: BrokerTunnel) {
        if let size = t.prober.nextProbe() {
            send(.pmtuProbe(size: BrokerPMTUProber.payload(forProbe: size)), to: t)
            t.probeTimer?.arm(milliseconds: 1000, repeating: false)
        } else {
            t.prober.newRound()
            t.probeTimer?.arm(milliseconds: Int.random(in: 500_000...699_000), repeating: false)
        }
    }

    // MARK: MTU and bandwidth

    private func applyMTU(_ t: BrokerTunnel) {
        let mtu = TunnelMTU.broker(measured: t.measured, peer: t.peerMTU)
        guard mtu != t.mtu else { return }
        let old = t.mtu
        do {
            try dataPlane.setMTU(t, mtu)
        } catch {
            tunnel.logger.warning("l2tp-broker: \(name(t)): cannot set MTU \(mtu): \(error)")
            return
        }
        t.mtu = mtu
        tunnel.logger.info("l2tp-broker: \(name(t)): MTU \(old) → \(mtu)")
        runHook(.mtuChanged, [String(t.id), String(t.sessionID), t.interface, String(old), String(mtu), t.uuid], key: t.interface)
    }

    /// LIMIT: shape what the broker sends to this client with HTB, as upstream (§1.5).
    private func limit(_ t: BrokerTunnel, kbps: UInt32) {
        guard let tc else {
            tunnel.logger.warning("l2tp-broker: \(name(t)) asked for \(kbps) kbit/s but no 'tc' is installed (iproute2)")
            return
        }
        let dev = t.interface
        let rate = "\(kbps)kbit"
        tunnel.logger.info("l2tp-broker: \(name(t)): limiting downstream to \(rate)")
        // As upstream: the first delete fails when there is nothing to delete, and
        // fq_codel may be missing from the kernel; both are ignored.
        let steps: [(arguments: [String], mayFail: Bool)] = [
            (["qdisc", "del", "dev", dev, "root", "handle", "1:", "htb", "default", "0"], true),
            (["qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1"], false),
            (["class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", rate, "ceil", rate], false),
            (["qdisc", "add", "dev", dev, "parent", "1:1", "fq_codel"], true),
        ]
        for step in steps {
            tunnel.hooks.run(HookRunner.Hook(script: tc, arguments: step.arguments, environment: [:], timeout: 10, mayFail: step.mayFail), key: dev)
        }
    }

    // MARK: teardown

    /// Close a tunnel (§3.8): pre-down hook, session removed, down hook, ERROR to the
    /// client, device and socket gone, id back in the pool.
    private func close(_ t: BrokerTunnel, reason: UInt8, why: String) {
        guard !t.closing else { return }
        t.closing = true
        t.cancelTimers()
        sweep.remove(t)
        if sweep.count == 0 { sweepTimer?.arm(milliseconds: 0, repeating: false) }
        tunnel.logger.info("l2tp-broker: \(name(t)) down (\(why))")
        runHook(.sessionPreDown, t.sessionArguments, key: t.interface)
        runHook(.sessionDown, t.sessionArguments, key: t.interface)
        send(.error(reason: reason), to: t)
        byEndpoint[Endpoint(socket: t.link.fd, client: t.client)] = nil
        bySession[ObjectIdentifier(t.session)] = nil
        dataPlane.close(t)
        pool.give(t.id)
    }

    func stop() {
        let all = Array(bySession.values)
        for t in all { close(t, reason: ErrorReason.brokerShutdown, why: "broker stopping") }
        sweepTimer?.cancel()
        if !all.isEmpty { tunnel.logger.notice("l2tp-broker: closed \(all.count) tunnel\(all.count == 1 ? "" : "s")") }
    }

    func reloaded() {
        let fresh = BrokerSettings(tunnel.spec.sessionSettings)
        if fresh.maxTunnels != settings.maxTunnels || fresh.tunnelIDBase != settings.tunnelIDBase || fresh.dataPlane != settings.dataPlane {
            tunnel.logger.warning("l2tp-broker: tunnel ids and the data plane change only with a restart; the running ones are kept")
        }
        rateLimit.minimumGap = fresh.rateLimit.minimumGap
        rateLimit.perIPCount = fresh.rateLimit.perIPCount
        rateLimit.perIPWindow = fresh.rateLimit.perIPWindow
        settings.hooks = fresh.hooks
        settings.hookTimeout = fresh.hookTimeout
        settings.timeout = fresh.timeout
        settings.logIPAddresses = fresh.logIPAddresses
        settings.wakeupCoalescing = fresh.wakeupCoalescing
        tunnel.loop.coalesceWakeups(windowMilliseconds: fresh.wakeupCoalescing)
    }

    // MARK: data path

    func outbound(_ batch: PacketBatch) {}  // no tunnel-wide device: sessions read their own

    func inbound(_ batch: PacketBatch, link: UDPLink) {
        let socket = link.fd
        dispatcher.dispatch(batch, outbound: false, unowned: .unknownPeer) { packet in
            guard let t = self.byEndpoint[Endpoint(socket: socket, client: packet.peer)] else { return nil }
            let datagram = UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length)
            return PseudowireHeader.belongs(datagram, toSession: t.sessionID) ? t.session : nil
        }
    }

    // MARK: plumbing

    private func send(_ message: ControlMessage, to t: BrokerTunnel) {
        guard send(message, to: t.client, on: t.link) else {
            // EMSGSIZE is expected while probing; other errors count toward closing (§3.6).
            if errno != EMSGSIZE {
                t.socketErrors += 1
                if t.socketErrors >= 10 { close(t, reason: ErrorReason.brokerFailure, why: "10 socket errors") }
            }
            return
        }
    }

    @discardableResult
    private func send(_ message: ControlMessage, to client: SocketAddress, on link: UDPLink) -> Bool {
        guard let bytes = try? message.encode() else { return false }
        return bytes.withUnsafeBytes { link.sendControl($0, to: client) }
    }

    private func runHook(_ hook: BrokerHook, _ arguments: [String], key: String) {
        guard let script = settings.hooks[hook] else { return }
        // tunneldigger's arguments only, as its broker passes them ([script] + args): its
        // scripts read the interface as $3. The hook is told by which script runs.
        tunnel.hooks.run(HookRunner.Hook(script: script, arguments: arguments, environment: [:],
                                         timeout: settings.hookTimeout), key: key)
    }

    private func name(_ t: BrokerTunnel) -> String {
        settings.logIPAddresses ? "\(t.uuid) (\(t.client))" : t.uuid
    }

    static func findExecutable(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] where access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return nil
    }

    static func status(_ t: BrokerTunnel) -> StatusValue {
        .object([
            ("tunnelId", .uint(UInt64(t.id))), ("sessionId", .uint(UInt64(t.sessionID))),
            ("peerTunnelId", .uint(UInt64(t.peerTunnelID))), ("peerSessionId", .uint(UInt64(t.peerSessionID))),
            ("uuid", .string(t.uuid)), ("client", .string(t.client.description)), ("brokerPort", .uint(UInt64(t.brokerPort))),
            ("interface", .string(t.interface)), ("mtu", .int(Int64(t.mtu))),
            ("uniqueSessionIds", .bool(t.features.contains(.uniqueSessionID))),
            ("lastSeenSeconds", .double(((MonotonicClock.now() - t.lastAlive) * 10).rounded() / 10)),
        ])
    }

    static let descriptor = SessionManagerDescriptor(
        name: "l2tp-broker",
        summary: "tunneldigger's broker: many routers dial in, each gets an L2TPv3 Ethernet pseudowire and its own interface",
        settings: BrokerSettings.specs,
        check: BrokerSettings.check,
        linkOptions: { settings in
            // Bursts of thousands of handshakes must not overflow the socket (16 MB).
            // The kernel data plane binds a connected socket per tunnel to the same
            // address and port, which SO_REUSEPORT on the listening one allows (§3.1).
            // Only then: it would also let a second broker share the port unnoticed.
            let choice = L2TPSettings.dataPlane(settings)
            let kernel = choice == .kernel || (choice == .auto && KernelL2TP.available())
            // Control messages and unbatched L2TP data: coalesced reads would only cost memory.
            return UDPLink.Options(reusePort: kernel, socketBuffer: 16 << 20, coalescedReceive: false)
        },
        make: { context in try BrokerManager(context: context) })
}
