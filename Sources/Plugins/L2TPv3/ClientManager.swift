import Framework
import Glibc

/// `l2tp-client`: tunneldigger's client (§2). Asks every configured broker for its
/// usage, takes one (first to answer, least used or random), fetches a cookie, sends
/// PREPARE and, on TUNNEL, brings up the pseudowire interface; keeps it alive,
/// discovers the path MTU, and starts over with fresh sockets whenever the tunnel
/// fails. Driven by a one-second tick, as the reference client's select loop.
///
/// `@unchecked Sendable`: the name resolver posts its answer back to the loop's
/// thread, where everything here runs.
final class ClientManager: SessionManager, @unchecked Sendable {
    unowned let tunnel: Tunnel
    private var settings: ClientSettings
    private let brokers: [ClientBroker]
    private var dataPlane: ClientDataPlane!
    private let dispatcher: SessionDispatcher
    private let drops: BrokerDrops
    private var ticker: EventLoop.Timer?

    private enum Phase {
        /// Waiting for USAGE answers since the round began.
        case collecting(since: Double)
        /// A broker was chosen at `since`; it has 15 s to establish.
        case connecting(ClientBroker, since: Double)
        /// Established and past the 15-s check.
        case established(ClientBroker)
        /// Nobody answered: try again at `until`.
        case sleeping(until: Double)
        case stopped
    }

    private var phase = Phase.stopped
    /// Counts rounds, so a late name resolution of an old round is ignored.
    private var round = 0

    /// Timing of the reference client (§2.1).
    static let retransmit = 3.0
    static let resolveTimeout = 2.0
    static let collection = 10.0
    static let establishDeadline = 15.0
    static let keepaliveInterval = 5.0
    static let liveness = 60.0
    static let nobodyAnsweredPause = 5.0
    static let brokenFor = 3600.0
    static let reliableResend = 2.0
    static let reliableSends = 10

    init(context: SessionManagerContext) {
        tunnel = context.tunnel
        settings = ClientSettings(context.settings)
        brokers = settings.brokers.enumerated().map { ClientBroker(address: $1, order: $0) }
        dispatcher = SessionDispatcher(batchSize: tunnel.spec.batchSize, headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        drops = BrokerDrops(tunnel)
    }

    var sessions: [Session] { brokers.compactMap(\.session) }

    /// Each broker's state and last reported usage.
    var statusDetails: StatusValue? {
        .object([("brokers", .array(brokers.map { broker in
            .object([("broker", .string(broker.name)), ("state", .string(broker.state.rawValue)),
                     ("usage", broker.usage == 0xFFFF ? .null : .uint(UInt64(broker.usage)))])
        }))])
    }

    func start() throws {
        if let kernel = try L2TPDataPlanes.kernel(settings.dataPlane, role: "l2tp-client", tunnel: tunnel) {
            dataPlane = KernelClientPlane(tunnel: tunnel, l2tp: kernel)
        } else {
            dataPlane = UserspaceClientPlane(tunnel: tunnel)
        }
        try tunnel.demux.claimControl(ControlMessage.magic[0], by: "the l2tp-client session manager") { [unowned self] packet, link in
            self.control(packet, on: link)
        }
        ticker = try tunnel.loop.addTimer(milliseconds: 1000, repeating: true) { [unowned self] in self.tick() }
        tunnel.logger.notice("l2tp-client: \(settings.uuid) asks \(brokers.map(\.name).joined(separator: ", ")) (\(settings.selection.rawValue) answer), interface \(settings.interface), \(dataPlane.name) data plane")
        startRound()
    }

    // MARK: rounds (§2.3)

    private func startRound() {
        let now = MonotonicClock.now()
        round += 1
        closeLinks()
        dataPlane.clearLeftovers(tunnelID: settings.tunnelID)
        for broker in brokers {
            if let since = broker.brokenSince, now - since > Self.brokenFor { broker.brokenSince = nil }
            broker.resolved = nil
            broker.reset(now: now)
            if broker.brokenSince != nil {
                broker.state = .parked
                continue
            }
            broker.state = .resolving
            broker.lastSent = now
            resolve(broker, round: round)
        }
        phase = .collecting(since: now)
    }

    private func resolve(_ broker: ClientBroker, round: Int) {
        let order = broker.order
        BrokerResolver.resolve(broker.address, family: settings.bind?.family, loop: tunnel.loop) { [unowned self] address in
            let broker = self.brokers[order]
            guard round == self.round, broker.state == .resolving else { return }
            guard let address else {
                tunnel.logger.warning("l2tp-client: broker \(broker.name) does not resolve\(settings.bind.map { " to an \($0.familyName) address" } ?? "")")
                broker.state = .failed
                return
            }
            broker.resolved = address
            broker.reset(now: MonotonicClock.now())
            do {
                let wildcard = SocketAddress.parse(address.family == AF_INET6 ? "[::]:0" : "0.0.0.0:0")!
                broker.link = try tunnel.openLink(name: "broker\(broker.order)", bind: settings.bind ?? wildcard, device: settings.bindDevice,
                                                  options: UDPLink.Options(connectTo: address, pmtuDiscovery: .probe,
                                                                           socketBuffer: 1 << 20, carriesData: true,
                                                                           // the kernel data plane may take this socket over
                                                                           coalescedReceive: false))
            } catch {
                tunnel.logger.warning("l2tp-client: cannot open a socket to broker \(broker.name): \(error)")
                broker.state = .failed
                return
            }
            broker.state = .getUsage
            send(.usageRequest(features: .uniqueSessionID), to: broker)
        }
    }

    private func tick() {
        let now = MonotonicClock.now()
        switch phase {
        case .collecting(let since):
            for broker in brokers {
                switch broker.state {
                case .resolving where now - broker.lastSent > Self.resolveTimeout:
                    tunnel.logger.warning("l2tp-client: broker \(broker.name) did not resolve within \(Int(Self.resolveTimeout)) s")
                    broker.state = .failed
                case .getUsage where now - broker.lastSent >= Self.retransmit - 0.1:
                    // COOKIE too: a broker older than USAGE answers only that (§2.2).
                    send(.usageRequest(features: .uniqueSessionID), to: broker)
                    send(.cookieRequest, to: broker)
                default: break
                }
            }
            let waiting = brokers.contains { $0.state == .resolving || $0.state == .getUsage }
            let answered = brokers.contains { $0.state == .standby }
            if !waiting || now - since > Self.collection || (settings.selection == .first && answered) {
                choose(now: now)
            }
        case .connecting(let broker, let since):
            if broker.state == .failed {
                startRound()
            } else if broker.state == .established {
                maintain(broker, now: now)
                if broker.state == .failed {
                    startRound()
                } else if now - since > Self.establishDeadline {
                    broker.brokenSince = nil
                    phase = .established(broker)
                }
            } else if now - since > Self.establishDeadline {
                tunnel.logger.warning("l2tp-client: no tunnel from \(broker.name) within \(Int(Self.establishDeadline)) s; asking again")
                startRound()
            } else if now - broker.lastSent >= Self.retransmit - 0.1 {
                if broker.state == .getCookie { send(.cookieRequest, to: broker) } else { sendPrepare(broker) }
            }
        case .established(let broker):
            maintain(broker, now: now)
            if broker.state == .failed { startRound() }
        case .sleeping(let until):
            if now >= until { startRound() }
        case .stopped:
            break
        }
    }

    private func choose(now: Double) {
        let candidates = brokers.filter { $0.state == .standby }.map { ClientSelection.Candidate(order: $0.order, usage: $0.usage) }
        guard let order = ClientSelection.pick(candidates, rule: settings.selection) else {
            tunnel.logger.warning("l2tp-client: no broker answered; trying again in \(Int(Self.nobodyAnsweredPause)) s")
            closeLinks()
            for broker in brokers { broker.brokenSince = nil }
            phase = .sleeping(until: now + Self.nobodyAnsweredPause)
            return
        }
        let chosen = brokers[order]
        // Only the chosen broker's socket matters now; the others reopen next round.
        for broker in brokers where broker !== chosen { close(broker) }
        tunnel.logger.info("l2tp-client: chose broker \(chosen.name) (usage \(chosen.usage))")
        chosen.brokenSince = now  // cleared once established; skipped next round if not
        chosen.state = .getCookie
        send(.cookieRequest, to: chosen)
        phase = .connecting(chosen, since: now)
    }

    // MARK: control messages

    private func control(_ packet: Packet, on link: UDPLink) {
        guard let broker = brokers.first(where: { $0.link === link }) else { return }
        guard let message = drops.decode(packet, from: .broker) else { return }
        broker.lastHeard = MonotonicClock.now()
        switch (message, broker.state) {
        case (.usageReply(let load), .getUsage), (.usageReply(let load), .standby):
            broker.usage = load
            broker.state = .standby
        case (.cookieReply, .getUsage):
            broker.state = .standby  // an old broker: usage unknown (0xFFFF)
        case (.cookieReply(let cookie), .getCookie):
            broker.cookie = cookie
            broker.state = .getTunnel
            sendPrepare(broker)
        case (.tunnel(let id, let features), .getTunnel):
            establish(broker, brokerTunnelID: id, features: features ?? [])
        case (.error(let reason), .getTunnel):
            // A refused PREPARE carries no reason byte (§1.6); say which form came.
            tunnel.logger.warning("l2tp-client: broker \(broker.name) refused the tunnel (ERROR \(reason.map { "reason 0x" + String($0, radix: 16) } ?? "without a reason byte"))")
            broker.state = .failed
        case (.error(let reason), .established):
            send(.error(reason: ErrorReason.clientOtherRequested), to: broker)
            tearDown(broker, why: "the broker ended it\(reason.map { " (reason 0x" + String($0, radix: 16) + ")" } ?? "")")
            broker.state = .failed
        case (.pmtuProbe(let size), .established):
            send(.pmtuAck(size: UInt16(clamping: size)), to: broker)
        case (.pmtuAck(let size), .established):
            broker.prober.acknowledged(payload: Int(size))
        case (.pmtuNotify(let mtu), .established):
            guard Int(mtu) != broker.peerMTU else { return }
            broker.peerMTU = Int(mtu)
            applyMTU(broker)
        case (.reliableAck(let sequence), _):
            broker.unacknowledged.removeAll { $0.message.reliableSequence == sequence }
        case (.keepalive, _), (.usageReply, _), (.cookieReply, _), (.error, _), (.pmtuProbe, _), (.pmtuAck, _), (.pmtuNotify, _), (.tunnel, _):
            break  // valid, but not for this state: ignored, as the reference client does
        default:
            drops.count(.unexpected)
        }
    }

    private func sendPrepare(_ broker: ClientBroker) {
        guard let cookie = broker.cookie else { return }
        send(.prepare(cookie: cookie, uuid: Array(settings.uuid.utf8), tunnelID: settings.tunnelID, features: .uniqueSessionID), to: broker)
    }

    // MARK: the tunnel

    private func establish(_ broker: ClientBroker, brokerTunnelID: UInt32, features: FeatureFlags) {
        guard let link = broker.link, let address = broker.resolved else { return }
        // Unique session ids: each side's session id is its tunnel id; else 1 and 1 (§3.5).
        let unique = features.contains(.uniqueSessionID)
        let wire = ClientPseudowire(interface: settings.interface, tunnelID: settings.tunnelID,
                                    sessionID: unique ? settings.tunnelID : 1, peerTunnelID: brokerTunnelID,
                                    peerSessionID: unique ? brokerTunnelID : 1, link: link, broker: address)
        let session: Session
        do {
            session = try dataPlane.open(wire)
        } catch {
            // As the reference client: no ERROR to the broker, no hook; a new round.
            tunnel.logger.error("l2tp-client: cannot create \(settings.interface) for the tunnel with \(broker.name): \(error)")
            broker.state = .failed
            return
        }
        broker.wire = wire
        broker.session = session
        broker.state = .established
        session.statusExtension = { [unowned broker] in ClientManager.status(broker) }
        tunnel.logger.notice("l2tp-client: tunnel up with \(broker.name): tunnel \(wire.tunnelID) → \(wire.peerTunnelID), session \(wire.sessionID) → \(wire.peerSessionID), \(wire.interface)")
        runHook("session.up")
        if settings.limitKbps > 0 {
            sendReliable(.limit(sequence: broker.sequence, bandwidthKbps: settings.limitKbps), to: broker)
        }
    }

    /// Keepalive, liveness, reliable re-sends and PMTU rounds, once a tick.
    private func maintain(_ broker: ClientBroker, now: Double) {
        if now - broker.lastHeard > Self.liveness {
            send(.error(reason: ErrorReason.clientTimeout), to: broker)
            tearDown(broker, why: "nothing from the broker for \(Int(Self.liveness)) s")
            broker.state = .failed
            return
        }
        if now - broker.lastKeepalive >= Self.keepaliveInterval - 0.1 {
            send(.keepalive(counter: broker.keepaliveCounter, wide: true), to: broker)
            broker.keepaliveCounter &+= 1
            broker.lastKeepalive = now
        }
        for index in broker.unacknowledged.indices.reversed() where now - broker.unacknowledged[index].lastSent >= Self.reliableResend - 0.1 {
            if broker.unacknowledged[index].sends >= Self.reliableSends {
                broker.unacknowledged.remove(at: index)
                continue
            }
            broker.unacknowledged[index].sends += 1
            broker.unacknowledged[index].lastSent = now
            send(broker.unacknowledged[index].message, to: broker)
        }
        probePath(broker, now: now)
    }

    /// PMTU discovery (§2.6): bursts at 0, 2 and 4 s into a round, the verdict at 6 s,
    /// then PMTU_NTFY with what is known — every round, changed or not.
    private func probePath(_ broker: ClientBroker, now: Double) {
        if broker.proberRoundStart == 0 {
            guard now >= broker.nextProbeRound else { return }
            broker.proberRoundStart = now
            broker.proberBursts = 0
            broker.prober.startRound()
        }
        let elapsed = now - broker.proberRoundStart
        if elapsed >= ClientPMTUProber.collectAfter - 0.1 {
            if let best = broker.prober.finishRound(), best != broker.pathMTU {
                broker.pathMTU = best
                applyMTU(broker)
            }
            if let path = broker.pathMTU {
                send(.pmtuNotify(mtu: UInt16(clamping: path - PseudowireHeader.overhead)), to: broker)
            }
            broker.nextProbeRound = broker.proberRoundStart + broker.prober.interval
            broker.proberRoundStart = 0
        } else if broker.proberBursts < ClientPMTUProber.burstOffsets.count,
                  elapsed >= ClientPMTUProber.burstOffsets[broker.proberBursts] - 0.1 {
            // Each burst once, however late the tick. Sizes too large for this host's
            // own interface fail with EMSGSIZE, expected and ignored.
            broker.proberBursts += 1
            for payload in broker.prober.payloads { send(.pmtuProbe(size: payload), to: broker) }
        }
    }

    private func applyMTU(_ broker: ClientBroker) {
        guard let mtu = TunnelMTU.client(pathMTU: broker.pathMTU, peer: broker.peerMTU), mtu != broker.mtu,
              let session = broker.session, let wire = broker.wire else { return }
        do {
            try dataPlane.setMTU(session, wire, mtu)
        } catch {
            tunnel.logger.warning("l2tp-client: cannot set MTU \(mtu) on \(wire.interface): \(error)")
            return
        }
        tunnel.logger.info("l2tp-client: \(wire.interface) MTU \(broker.mtu.map(String.init) ?? "unset") → \(mtu)")
        broker.mtu = mtu
    }

    /// Hook `session.down`, then the pseudowire goes.
    private func tearDown(_ broker: ClientBroker, why: String) {
        tunnel.logger.notice("l2tp-client: tunnel with \(broker.name) down: \(why)")
        runHook("session.down")
        if let session = broker.session, let wire = broker.wire { dataPlane.close(session, wire) }
        broker.session = nil
        broker.wire = nil
    }

    func stop() {
        ticker?.cancel()
        ticker = nil
        switch phase {
        case .connecting(let broker, _), .established(let broker):
            // Whenever a broker was chosen, as the reference client (§2.9).
            send(.error(reason: ErrorReason.clientShutdown), to: broker)
            tearDown(broker, why: "stopping")
        default: break
        }
        phase = .stopped
        closeLinks()
    }

    func reloaded() {
        let fresh = ClientSettings(tunnel.spec.sessionSettings)
        if fresh.brokers != settings.brokers || fresh.uuid != settings.uuid || fresh.interface != settings.interface
            || fresh.tunnelID != settings.tunnelID || fresh.dataPlane != settings.dataPlane || fresh.bind != settings.bind
            || fresh.bindDevice != settings.bindDevice {
            tunnel.logger.warning("l2tp-client: brokers, uuid, interface, tunnel id, bind and data plane change only with a restart; the running ones are kept")
        }
        settings.hook = fresh.hook
        settings.hookTimeout = fresh.hookTimeout
        settings.selection = fresh.selection
        if fresh.limitKbps != settings.limitKbps {
            settings.limitKbps = fresh.limitKbps
            if case .established(let broker) = phase, fresh.limitKbps > 0 {
                sendReliable(.limit(sequence: broker.sequence, bandwidthKbps: fresh.limitKbps), to: broker)
            }
        }
    }

    // MARK: data path

    func outbound(_ batch: PacketBatch) {}  // the session's own device feeds its pipeline

    func inbound(_ batch: PacketBatch, link: UDPLink) {
        let current = brokers.first { $0.link === link && $0.state == .established }
        let session = current?.session
        let sessionID = current?.wire?.sessionID
        dispatcher.dispatch(batch, outbound: false, unowned: .unknownPeer) { packet in
            guard let session, let sessionID else { return nil }
            let datagram = UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length)
            return PseudowireHeader.belongs(datagram, toSession: sessionID) ? session : nil
        }
    }

    // MARK: plumbing

    private func sendReliable(_ message: ControlMessage, to broker: ClientBroker) {
        broker.sequence &+= 1
        // The reference client keeps about 30; more would only be stale.
        if broker.unacknowledged.count >= 30 { broker.unacknowledged.removeFirst() }
        broker.unacknowledged.append(ClientBroker.PendingReliable(message: message, lastSent: MonotonicClock.now(), sends: 1))
        send(message, to: broker)
    }

    private func send(_ message: ControlMessage, to broker: ClientBroker) {
        guard let link = broker.link, let address = broker.resolved, let bytes = try? message.encode() else { return }
        broker.lastSent = MonotonicClock.now()
        let sent = bytes.withUnsafeBytes { link.sendControl($0, to: address) }
        // EINVAL: the bound interface vanished; this attempt is over (§2.8).
        if !sent && errno == EINVAL && broker.state != .failed {
            tunnel.logger.warning("l2tp-client: cannot send to \(broker.name) (\(String(cString: strerror(errno))))")
            if broker.state == .established { tearDown(broker, why: "the socket failed") }
            broker.state = .failed
        }
    }

    private func close(_ broker: ClientBroker) {
        if let link = broker.link { tunnel.closeLink(link) }
        broker.link = nil
    }

    private func closeLinks() {
        for broker in brokers { close(broker) }
    }

    private func runHook(_ event: String) {
        guard let script = settings.hook else { return }
        tunnel.hooks.run(HookRunner.Hook(script: script, arguments: [event, settings.interface], environment: [:],
                                         timeout: settings.hookTimeout), key: settings.interface)
    }

    static func status(_ broker: ClientBroker) -> StatusValue {
        var fields: [(String, StatusValue)] = [("broker", .string(broker.name)), ("usage", .uint(UInt64(broker.usage)))]
        if let wire = broker.wire {
            fields += [("tunnelId", .uint(UInt64(wire.tunnelID))), ("sessionId", .uint(UInt64(wire.sessionID))),
                       ("peerTunnelId", .uint(UInt64(wire.peerTunnelID))), ("peerSessionId", .uint(UInt64(wire.peerSessionID))),
                       ("interface", .string(wire.interface))]
        }
        if let mtu = broker.mtu { fields.append(("mtu", .int(Int64(mtu)))) }
        if let path = broker.pathMTU { fields.append(("pathMtu", .int(Int64(path)))) }
        fields.append(("lastSeenSeconds", .double(((MonotonicClock.now() - broker.lastHeard) * 10).rounded() / 10)))
        return .object(fields)
    }

    static let descriptor = SessionManagerDescriptor(
        name: "l2tp-client",
        summary: "tunneldigger's client: asks brokers for their usage, takes one and brings up an L2TPv3 Ethernet pseudowire to it",
        settings: ClientSettings.specs,
        check: ClientSettings.check,
        ownLinks: "list the brokers under 'sessions: brokers: [host:port, …]'; the client opens a socket per broker and attempt",
        make: { context in ClientManager(context: context) })
}
