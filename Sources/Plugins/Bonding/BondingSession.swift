import Framework

/// The bonding state of one session, shared by its reorder and scheduler stages and
/// driven by the session manager: the paths with their health, the probe timer's
/// work, the reorder hold time, and the pin rules. Everything runs on the loop thread.
final class BondingSession {
    unowned let tunnel: Tunnel
    let session: Session
    private(set) var paths: [BondPath] = []
    var pins: [PinRule] = [] { didSet { resolvePins() } }
    /// Per pin rule, the index of its path (nil when that link is not a path now).
    private(set) var pinTargets: [Int?] = []
    /// On a server: the inner source prefixes this site may use (nil: anything).
    var allowedSources: (table: PrefixTable, owner: Int)?
    /// How long the reorder buffer waits for a gap, from the paths' delay spread.
    private(set) var holdTime = 0.05
    var holdLimits = (minimum: 0.002, maximum: 0.3)
    /// Bulk packets are sent by capacity and aligned at the far end (the reorder
    /// stage's `align`); never in redundant mode, where the first copy should win.
    var alignBulk = true
    var redundant = false
    /// The scheduler's queueing settings (its stage sets them; the reorder stage, first
    /// on the send side, keeps the queue).
    var linkQueue = 0.003
    /// nil: `queue: off` (or no scheduler stage).
    var queueSettings: BondQueue.Settings?
    var queueing: Bool { queueSettings != nil }
    var sendsBulk: Bool { alignBulk && !redundant }
    /// Called when a path changes state (old, new): hooks and logs.
    var onStateChange: ((BondPath, PathHealth.State, PathHealth.State) -> Void)?
    /// The stage after which probes and echoes enter the send path (set by the reorder stage).
    weak var reorderStage: ReorderStage?

    private let control: PacketBatch
    private var lastLookup = 0

    init(tunnel: Tunnel, session: Session) {
        self.tunnel = tunnel
        self.session = session
        control = PacketBatch(capacity: 64, slotSize: 256, headroom: tunnel.headroom, tailroom: 64)
    }

    // MARK: paths

    func add(_ path: BondPath) {
        paths.append(path)
        changed()
    }

    func remove(_ path: BondPath) {
        paths.removeAll { $0 === path }
        changed()
    }

    /// Bit `index % 16` set for each path that is down, for the reorder buffer.
    private(set) var deadPathMask: UInt16 = 0

    private func updateDeadPaths() {
        deadPathMask = 0
        for (index, path) in paths.enumerated() where path.health.state == .down {
            deadPathMask |= 1 << (index % ReorderBuffer.pathSlots)
        }
    }

    private func changed() {
        updateDeadPaths()
        lastLookup = 0
        resolvePins()
    }

    private func resolvePins() {
        pinTargets = pins.map { rule in paths.firstIndex { $0.name == rule.link } }
    }

    /// The path a datagram from `peer` on link `link` came by (the last hit first:
    /// datagrams arrive in runs from one path).
    @inline(__always)
    func path(link: Int32, peer: SocketAddress) -> Int? {
        let count = paths.count
        guard count > 0 else { return nil }
        if lastLookup < count, paths[lastLookup].link.index == Int(link), paths[lastLookup].remote == peer { return lastLookup }
        for index in 0..<count where paths[index].link.index == Int(link) && paths[index].remote == peer {
            lastLookup = index
            return index
        }
        return nil
    }

    // MARK: probes

    /// Notice silent paths (quiet, down): on every probe tick and three times between.
    func watch(now: Double) {
        let anyArrivals = paths.contains { $0.broughtSinceLastLook }
        for path in paths {
            let before = path.health.state
            if let state = path.look(now: now, anyArrivals: anyArrivals) { stateChanged(path, from: before, to: state) }
        }
    }

    /// Every probe interval: probe each path, notice silent ones, adapt the hold time.
    func tick(now: Double) {
        watch(now: now)
        updateHoldTime()
        BondingSession.align(paths, maximum: holdLimits.maximum)
        reorderStage?.trimIfIdle(now: now)
        guard session.state == .up else { return }  // nothing can be sealed before the handshake
        control.reset()
        let sentAt = BondingWire.microseconds(now)
        let nextSequence = reorderStage?.nextSequence ?? 0
        for (index, path) in paths.enumerated() {
            guard let record = control.nextFree else { break }
            let id = path.health.probeSent(now: now)
            path.probeSent(id: id, now: now)
            let probe = BondingWire.Probe(id: id, sentAt: sentAt, name: path.name, fallback: path.fallbackOnly,
                                          nextSequence: nextSequence, degraded: path.health.state == .lossy || path.health.state == .slow)
            guard BondingWire.write(probe, into: &record.pointee) else { continue }
            record.pointee.mark = SchedulerStage.forcedPath | UInt32(index)
            control.commit(length: record.pointee.length)
        }
        flushControl()
    }

    /// Server role: make a path for a source heard from for the first time (nil on a
    /// client, whose paths are its configured links).
    var learn: ((_ link: UDPLink, _ address: SocketAddress, _ name: String) -> BondPath?)?

    /// A probe came from a source no path knows: a server makes a path for it.
    func learnPath(probe: BondingWire.Probe, packet: Packet, now: Double) -> Int? {
        let link = Int(packet.link)
        guard let learn, link < tunnel.links.count, let path = learn(tunnel.links[link], packet.peer, probe.name) else { return nil }
        add(path)
        return paths.count - 1
    }

    /// A probe arrived on path `index`: echo it on the same path at once. The probe
    /// names the client's link; when that name belongs to another path, the client's
    /// link has moved (NAT rebinding, a new address): the older path, with its
    /// history, takes the new address and the newcomer goes.
    /// Returns the index of the path the probe belongs to now.
    @discardableResult
    func probeReceived(_ probe: BondingWire.Probe, on arrival: Int, now: Double) -> Int {
        var index = arrival
        if learn != nil, paths[index].name != probe.name {
            let newcomer = paths[index]
            if let known = paths.firstIndex(where: { $0 !== newcomer && $0.name == probe.name }) {
                let path = paths[known]
                tunnel.logger.info("session \(session.name): link \(probe.name) moved from \(path.remote) to \(newcomer.remote)")
                path.remote = newcomer.remote
                path.link = newcomer.link
                path.receivedBytes &+= newcomer.receivedBytes
                remove(newcomer)
                index = paths.firstIndex { $0 === path }!
            } else {
                newcomer.name = probe.name
                changed()
            }
        }
        let path = paths[index]
        path.peerFallbackOnly = probe.fallback
        path.peerDegraded = probe.degraded
        path.inbound.sample(sentAt: BondingWire.seconds(probe.sentAt), arrivedAt: now, now: now)
        guard let record = control.nextFree else { return index }
        let echo = BondingWire.Echo(id: probe.id, sentAt: probe.sentAt, receivedBytes: path.receivedBytes,
                                    echoedAt: BondingWire.microseconds(now), nextSequence: reorderStage?.nextSequence ?? 0)
        guard BondingWire.write(echo, into: &record.pointee) else { return index }
        record.pointee.mark = SchedulerStage.forcedPath | UInt32(index)
        control.commit(length: record.pointee.length)
        return index
    }

    /// An echo of one of our probes came back on path `index`: RTT and state, the
    /// queue the probe met on its way out (which sets the virtual queue right), and
    /// what the far side has taken from the path (the delivery rate).
    func echoReceived(_ echo: BondingWire.Echo, on index: Int, now: Double) {
        let path = paths[index]
        let before = path.health.state
        let sentAt = BondingWire.seconds(echo.sentAt)
        guard path.health.expects(id: echo.id, sentAt: sentAt, now: now) else { return }
        let state = path.health.echoReceived(id: echo.id, sentAt: sentAt, now: now)
        measureOutbound(echo, on: path, sentAt: sentAt, now: now)
        if let state { stateChanged(path, from: before, to: state) }
    }

    /// The echo's timestamps give the one-way delay out and the queue the probe met,
    /// which sets the virtual queue right and says whether the rate sample measures
    /// capacity.
    private func measureOutbound(_ echo: BondingWire.Echo, on path: BondPath, sentAt: Double, now: Double) {
        let echoedAt = BondingWire.seconds(echo.echoedAt)
        path.outbound.sample(sentAt: sentAt, arrivedAt: echoedAt, now: now)
        path.anchor(probe: echo.id, queue: path.outbound.queue, now: now)
        path.rate.echo(receivedBytes: echo.receivedBytes, at: echoedAt, queued: path.isBacklogged, now: now)
    }

    /// Send the probes and echoes gathered in the control batch through the stages
    /// below the reorder stage (encryption, scheduler, transport).
    func flushControl() {
        guard !control.isEmpty else { return }
        defer { control.reset() }
        guard let pipeline = session.pipeline, let stage = reorderStage, let index = pipeline.index(of: stage) else { return }
        pipeline.send(control, from: index + 1)
    }

    private func stateChanged(_ path: BondPath, from before: PathHealth.State, to state: PathHealth.State) {
        updateDeadPaths()
        if state != .down && before == .down { path.freeAt = 0 }
        onStateChange?(path, before, state)
    }

    /// A shorter wait than this is not worth holding (and copying) a packet for.
    static let smallestAlignment = 0.001

    /// Bulk data from each path waits at this end until the longest path of the best
    /// tier (as the far side, which sends it, sees them) could have brought it: the
    /// difference of their one-way base delays (the far side's probes measure them;
    /// the clock offset cancels out).
    static func align(_ paths: [BondPath], maximum: Double) {
        var bestTier = BondPath.unusable
        for path in paths { bestTier = min(bestTier, path.peerTier) }
        var longest = -Double.infinity
        for path in paths where path.peerTier == bestTier {
            if let base = path.inbound.base { longest = max(longest, base) }
        }
        for path in paths {
            guard path.peerTier != BondPath.unusable, let base = path.inbound.base, longest.isFinite else {
                path.alignWait = 0
                continue
            }
            // Under a millisecond is not worth a copy: the reorder buffer absorbs it.
            let wait = min(max(longest - base, 0), maximum)
            path.alignWait = wait >= BondingSession.smallestAlignment ? wait : 0
        }
    }

    private func updateHoldTime() {
        let live = paths.lazy.filter { $0.health.state != .down }.compactMap { path in
            path.health.srtt.map { (srtt: $0, rttvar: path.health.rttvar) }
        }
        if let wanted = BondingSession.holdTime(for: live, limits: holdLimits) { holdTime = wanted }
    }

    /// Hold a gap for the spread of the live paths' delays plus their variation: the
    /// time a packet sent on the fastest path may be ahead of one sent alongside on
    /// the slowest. A single path waits only its own variation and the minimum. Nil before any
    /// path has a round-trip estimate (the hold stays as it was).
    ///
    /// No probe interval is added: a real loss is given up as soon as every path's
    /// sequence mark has passed it (a later packet on the path, or its next probe), so
    /// the hold only has to cover a packet that is late, not one that is lost. Holding
    /// a probe interval (50 ms) on top made every gap on fast links wait 25 times
    /// longer than the links could delay it.
    static func holdTime(for paths: some Sequence<(srtt: Double, rttvar: Double)>,
                         limits: (minimum: Double, maximum: Double)) -> Double? {
        var lowest = Double.infinity, highest = 0.0, variation = 0.0
        for path in paths {
            lowest = min(lowest, path.srtt)
            highest = max(highest, path.srtt)
            variation = max(variation, path.rttvar)
        }
        guard lowest.isFinite else { return nil }
        let wanted = (highest - lowest) + 4 * variation + limits.minimum
        return min(max(wanted, limits.minimum), limits.maximum)
    }
}

/// The bonding sessions of one tunnel, by session id, for stages to find theirs.
final class BondingRegistry {
    private var sessions: [UInt32: BondingSession] = [:]

    func bond(for session: Session, tunnel: Tunnel) -> BondingSession {
        if let existing = sessions[session.id] { return existing }
        let bond = BondingSession(tunnel: tunnel, session: session)
        sessions[session.id] = bond
        return bond
    }

    func remove(_ session: Session) { sessions[session.id] = nil }
}

extension BondingSession {
    /// The paths and the reorder buffer for status output: `paths` (one object per
    /// link, mlvpn's per-tunnel fields) and `reorder` (counters and the current
    /// wait). The monitoring plugin draws its path table, charts and link metrics
    /// from these members.
    func status(now: Double) -> StatusValue {
        let c = reorderStage?.counters ?? ReorderBuffer.Counters()
        let reorder: StatusValue = .object([
            ("inOrder", .uint(c.inOrder)), ("held", .uint(c.held)), ("releasedByTimeout", .uint(c.releasedByTimeout)),
            ("releasedAsLost", .uint(c.releasedAsLost)), ("overflow", .uint(c.overflow)), ("late", .uint(c.late)),
            ("duplicate", .uint(c.duplicate)), ("aligned", .uint(c.aligned)), ("early", .uint(c.early)),
            ("heldInPlace", .uint(c.heldInPlace)), ("copiedAtRefill", .uint(c.copiedAtRefill)),
            ("holding", .int(Int64(reorderStage?.held ?? 0))), ("holdMs", .double(holdTime * 1000)),
        ])
        let q = reorderStage?.queueCounts ?? BondQueue.Counts()
        let queue: StatusValue = .object([
            ("mode", .string(queueing && !redundant ? "fq-codel" : "off")), ("waiting", .int(Int64(q.waiting))),
            ("codelDrops", .uint(q.codelDrops)), ("overflowDrops", .uint(q.overflowDrops)), ("ecnMarks", .uint(q.ecnMarks)),
            ("linkQueueMs", .double(linkQueue * 1000)),
        ])
        return .object([("paths", .array(paths.map { pathStatus($0, now: now) })), ("reorder", reorder), ("queue", queue)])
    }

    private func pathStatus(_ path: BondPath, now: Double) -> StatusValue {
        .object([
            ("name", .string(path.name)), ("link", .string(path.link.name)), ("local", .string(path.link.localAddress.description)),
            ("remote", .string(path.remote.description)), ("state", .string(path.health.state.rawValue)),
            ("quiet", .bool(path.isQuiet)), ("quietSpells", .int(Int64(path.quietSpells))),
            ("fallbackOnly", .bool(path.isFallback)), ("srttMs", path.health.srtt.map { .double($0 * 1000) } ?? .null),
            ("rttvarMs", .double(path.health.rttvar * 1000)), ("lossPercent", .double(path.health.lossPercent(now: now))),
            ("rateMbps", .double(path.rate.estimate * 8 / 1e6)), ("rateMeasured", .bool(path.rate.confirmed)),
            ("queueMs", .double(path.outbound.queue * 1000)),
            ("txPackets", .uint(path.sentPackets)), ("txBytes", .uint(path.sentBytes)),
            ("rxPackets", .uint(path.receivedPackets)), ("rxBytes", .uint(path.receivedBytes)),
            ("disconnects", .int(Int64(path.health.downTransitions))), ("lastPacketSeconds", .double(max(0, now - path.lastReceived))),
        ])
    }
}
