import Glibc
import Logging

/// One running tunnel: the event loop, the local device, the UDP links, the
/// demultiplexer and the session manager with its sessions, all built from a
/// `TunnelSpec`. Everything here runs on the loop's thread.
public final class Tunnel {
    /// The running configuration; a reload replaces its links and session settings.
    public private(set) var spec: TunnelSpec
    public let logger: Logger
    public let loop: EventLoop
    public private(set) var device: TunDevice?
    public private(set) var links: [UDPLink] = []
    public let demux = Demux()
    /// Drops that happen before a session is known (unclaimed, unknown peer, …).
    public let counters = TrafficCounters()
    public private(set) var dropReasons = DropReasonTable()
    public private(set) var manager: SessionManager?
    private(set) var services: [Service] = []
    /// Per first byte of a data datagram: who finds its session from its own bytes,
    /// before any stage runs (the crypto stage by the receiver index its records
    /// name). Each stage that defines a wire format routes its own range, so two
    /// plugins can share a tunnel's sockets; managers that serve many peers ask here
    /// first and fall back to the peer's address.
    private var dataRouters = [DataRouter?](repeating: nil, count: 256)
    private struct DataRouter {
        let owner: String
        let route: (Packet) -> Session?
    }
    /// Re-reads the site file for SIGHUP; nil when the tunnel was not made from a file.
    public var reloader: (() throws -> TunnelSpec)?
    /// Runs status scripts off the data path.
    public private(set) lazy var hooks = HookRunner(loop: loop, logger: logger)
    /// Unix time of the start.
    let startedAt = TunnelStatus.wallClock()
    /// Unix time of the last reload that took effect, and how many did.
    private(set) var lastReload: Double?
    private(set) var reloads = 0
    /// Tells systemd when the tunnel is ready, reloading or stopping.
    let systemd = SystemdNotifier()
    private var watchdogTimer: EventLoop.Timer?

    /// Bytes in front of every packet for headers stages prepend.
    public let headroom = 128
    /// Bytes after every packet for trailers (AEAD tags).
    public let tailroom = 64
    public let slotSize: Int

    private let deviceBatch: PacketBatch
    /// Link reads take turns over a ring of batches, so a stage may keep records of one
    /// read without a copy for the next `linkBatchRing - 1` reads (`PacketBatch.lend`):
    /// a bond's reorder buffer holds a link's packets until another link's read fills
    /// the gaps, and a busy link is read up to `batchesPerWakeup` (8) times per wake-up
    /// before the next. Sixteen cover two links' full turns: on two unlimited links the
    /// hub copied 19-33 % of the packets it held out of a batch about to be refilled with
    /// a ring of four, 2 % with sixteen (~1.7 MB of slots at MTU 1400, touched only as used).
    private let linkBatches: [PacketBatch]
    private var linkBatchTurn = 0
    static let linkBatchRing = 16
    private var nextSessionID: UInt32 = 1
    /// Removes ended sessions' devices off the loop, in batches.
    private lazy var reaper = DeviceReaper(post: loop.poster, remover: RouteNetlinkRemover())
    /// Sockets opened while running (per-client sockets of a broker), by descriptor.
    private var runtimeLinks: [Int32: (link: UDPLink, token: EventLoop.Token)] = [:]
    /// Runtime links that carry the userspace data path (a client's socket to its
    /// broker); the transport sends on them as on `links`.
    private(set) var dataLinks: [UDPLink] = []
    /// Runtime links are numbered from here, so their indices never collide with
    /// the site's links, which a reload renumbers.
    static let runtimeLinkIndexBase = 1 << 20
    private var nextRuntimeLinkIndex = Tunnel.runtimeLinkIndexBase
    private var stopping = false
    private var sharedState: [ObjectIdentifier: AnyObject] = [:]
    private var linkWatches: [ObjectIdentifier: EventLoop.Token] = [:]

    public init(spec: TunnelSpec, logger: Logger) throws {
        self.spec = spec
        self.logger = logger
        loop = try EventLoop()
        // Room for the largest inner packet plus any headers on either side.
        let mtu = spec.device?.mtu ?? 1500
        slotSize = (headroom + mtu + headroom + tailroom + 63) / 64 * 64
        deviceBatch = PacketBatch(capacity: spec.batchSize, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        linkBatches = (0..<Tunnel.linkBatchRing).map { [slotSize, headroom, tailroom] _ in
            let batch = PacketBatch(capacity: spec.batchSize, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
            batch.lendsSlots = true
            return batch
        }
        for stage in spec.stages + [spec.egress] {
            for name in stage.descriptor.dropReasons { _ = dropReasons.reason(named: name) }
        }
    }

    /// One object of `type` per tunnel, made on first use: where a plugin keeps what
    /// its per-session stages share (the crypto handshake responder, index tables).
    public func shared<T: AnyObject>(_ type: T.Type, make: () throws -> T) rethrows -> T {
        if let existing = sharedState[ObjectIdentifier(type)] { return existing as! T }
        let made = try make()
        sharedState[ObjectIdentifier(type)] = made
        return made
    }

    /// True when a stage of this tunnel's pipeline authenticates received packets.
    var authenticates: Bool { spec.stages.contains { $0.descriptor.authenticates } }

    /// The id of a plugin-declared drop reason.
    public func dropReason(named name: String) -> DropReason {
        dropReasons.reason(named: name)
    }

    /// Open the device and links, start the session manager, and watch everything.
    public func start() throws {
        if let deviceSpec = spec.device, let kind = spec.deviceKind {
            device = try TunDevice(kind: kind, name: deviceSpec.name, mtu: deviceSpec.mtu, addresses: deviceSpec.addresses,
                                   offload: deviceSpec.offload)
            let offloads = device!.tso ? ", TSO/GRO offloads" : device!.offload ? ", offloads refused by the kernel" : ""
            logger.info("device \(device!.name) up (\(kind.rawValue), mtu \(deviceSpec.mtu)\(offloads)\(deviceSpec.addresses.isEmpty ? "" : ", " + deviceSpec.addresses.map(\.text).joined(separator: " ")))")
        }
        for (index, linkSpec) in spec.links.enumerated() {
            links.append(try openLink(linkSpec, index: index))
        }
        // The deepest stage that defines a wire format decides what data datagrams look like.
        if let wire = spec.stages.last(where: { $0.descriptor.dataFirstBytes != nil }) {
            try demux.claimData(wire.descriptor.dataFirstBytes!, by: "stage '\(wire.descriptor.name)'")
        }
        for stage in spec.stages + [spec.egress] { try stage.descriptor.prepare?(self, stage.settings) }
        let manager = try spec.sessionManager.make(SessionManagerContext(tunnel: self, settings: spec.sessionSettings))
        self.manager = manager
        try manager.start()

        if let device {
            try loop.watch(device.fd) { [unowned self] in self.deviceReadable() }
        }
        for link in links { try watch(link) }
        for service in spec.services {
            services.append(try service.descriptor.make(ServiceContext(tunnel: self, settings: service.settings)))
        }
        if let user = spec.user {
            // Everything that needs root exists now; before READY, so systemd and the
            // operator only ever see the tunnel running unprivileged.
            let kept = try PrivilegeDrop.apply(user, keep: PrivilegeDrop.capabilities(for: spec))
            logger.notice("running as \(user.name) (uid \(user.uid)) with \(PrivilegeDrop.Capability.names(kept)) only, hooks too")
            for warning in PrivilegeDrop.warnings(for: spec, user: user, kept: kept) { logger.warning("\(warning)") }
        }
        try loop.onSignal(SIGTERM) { [unowned self] in self.requestStop("SIGTERM") }
        try loop.onSignal(SIGINT) { [unowned self] in self.requestStop("SIGINT") }
        try loop.onSignal(SIGHUP) { [unowned self] in self.reload() }
        try loop.onSignal(SIGUSR1) { [unowned self] in
            for line in self.counterReport() { self.logger.notice("\(line)") }
        }
        if let interval = systemd.watchdogInterval {
            // Sent by the loop that moves packets: if it wedges, systemd restarts us.
            watchdogTimer = try loop.addTimer(milliseconds: max(1, Int(interval * 1000)), repeating: true) { [unowned self] in
                self.systemd.watchdog()
            }
        }
        systemd.ready(status: readiness)
    }

    private func openLink(_ linkSpec: TunnelSpec.LinkSpec, index: Int) throws -> UDPLink {
        let options = spec.sessionManager.linkOptions?(spec.sessionSettings) ?? UDPLink.Options()
        let link = try UDPLink(name: linkSpec.name, index: index, bind: linkSpec.bind, remote: linkSpec.remote,
                               device: linkSpec.device, settings: linkSpec.settings, batchSize: spec.batchSize, options: options)
        logger.info("link \(link.name) bound to \(link.localAddress)\(link.remote.map { " → \($0)" } ?? " (remote learnt from the first datagram)")")
        return link
    }

    private func watch(_ link: UDPLink) throws {
        linkWatches[ObjectIdentifier(link)] = try loop.watch(link.fd) { [unowned self, unowned link] in self.linkReadable(link) }
    }

    /// What systemd shows as the unit's status line.
    private var readiness: String {
        "profile \(spec.profile), \(links.count) link\(links.count == 1 ? "" : "s")"
    }

    // MARK: reload

    /// SIGHUP: re-read the site file and apply what can change without a restart —
    /// links added, removed or retuned, and the session manager's settings. A file
    /// that does not load changes nothing; the error names file:line:column.
    func reload() {
        guard let reloader else {
            logger.warning("SIGHUP: this tunnel was not started from a file; nothing to reload")
            return
        }
        systemd.reloading()
        defer { systemd.ready(status: readiness) }
        let fresh: TunnelSpec
        do {
            fresh = try reloader()
        } catch {
            logger.error("reload refused, keeping the running configuration: \(error)")
            return
        }
        for change in ReloadPlan.restartOnlyChanges(from: spec, to: fresh) {
            logger.warning("reload: \(change) changed; that takes a restart, the running value is kept")
        }
        do {
            try applyLinks(fresh.links)
        } catch {
            logger.error("reload refused, keeping the running links: \(error)")
            return
        }
        spec.links = fresh.links
        spec.sessionSettings = fresh.sessionSettings
        manager?.reloaded()
        lastReload = TunnelStatus.wallClock()
        reloads += 1
        logger.notice("reloaded \(fresh.file): \(links.count) link\(links.count == 1 ? "" : "s") (\(links.map(\.name).joined(separator: ", ")))")
    }

    /// Make the open links match `wanted` (by name, in its order): open new ones,
    /// close removed ones, reopen those whose socket must change, retune the rest.
    /// New sockets are opened first, so a bind that fails changes nothing.
    private func applyLinks(_ wanted: [TunnelSpec.LinkSpec]) throws {
        func reusable(_ want: TunnelSpec.LinkSpec) -> UDPLink? {
            links.first { $0.name == want.name && $0.bind == want.bind && $0.device == want.device }
        }
        var opened: [String: UDPLink] = [:]
        do {
            for (index, want) in wanted.enumerated() where reusable(want) == nil {
                opened[want.name] = try openLink(want, index: index)
            }
        } catch {
            for link in opened.values { link.close() }
            throw error
        }
        var result: [UDPLink] = []
        for (index, want) in wanted.enumerated() {
            if let link = reusable(want) {
                if want.remote != nil, want.remote != link.remote { link.remote = want.remote }
                link.settings = want.settings
                link.index = index
                result.append(link)
            } else {
                let link = opened[want.name]!
                try watch(link)
                result.append(link)
            }
        }
        for link in links where !result.contains(where: { $0 === link }) {
            if let token = linkWatches.removeValue(forKey: ObjectIdentifier(link)) { loop.unwatch(token) }
            link.close()
            logger.info("link \(link.name) closed")
        }
        links = result
    }

    /// A device a session owns (fleet profiles): created with the session, removed
    /// when it ends. The kind is the profile's (`tun` or `tap` ingress).
    public struct SessionDevice: Sendable {
        var name: String
        var mtu: Int
        var addresses: [InterfaceAddress]
        /// Bring it up now; a tunneldigger hook expects to do that itself.
        var up: Bool

        public init(name: String, mtu: Int, addresses: [InterfaceAddress] = [], up: Bool = true) {
            (self.name, self.mtu, self.addresses, self.up) = (name, mtu, addresses, up)
        }
    }

    /// Build a session with its own instance of every stage of the profile and, when
    /// `device` is given (profiles with `device: per-session`), its own device, whose
    /// reads go to this session's pipeline.
    public func makeSession(name: String, peer: SocketAddress?, device: SessionDevice? = nil) throws -> Session {
        let session = Session(id: nextSessionID, name: name, peer: peer)
        nextSessionID &+= 1
        if let device {
            guard let kind = spec.deviceKind else {
                throw ConfigurationError("profile '\(spec.profile)' has no device stage; a session device would carry nothing")
            }
            session.device = try TunDevice(kind: kind, name: device.name, mtu: device.mtu, addresses: device.addresses, up: device.up)
        }
        do {
            func build(_ stage: TunnelSpec.StageSpec) throws -> Stage {
                try stage.descriptor.make(StageContext(tunnel: self, session: session, settings: stage.settings, stageName: stage.descriptor.name))
            }
            let stages = try spec.stages.map(build)
            let egress = try build(spec.egress)
            session.dataPlane = .userspace(Pipeline(stages: stages, egress: egress, counters: session.counters))
            if let sessionDevice = session.device {
                session.deviceWatch = try loop.watch(sessionDevice.fd) { [unowned self, unowned session] in
                    self.sessionDeviceReadable(session)
                }
            }
        } catch {
            session.device?.close()
            throw error
        }
        return session
    }

    /// A session whose packets the kernel forwards (an L2TP session made over generic
    /// netlink): no stages, but counters, status, hooks and a lifetime like any other.
    /// `device` names the interface the kernel made for it, if any.
    public func makeKernelSession(name: String, peer: SocketAddress?, description: String, device: String?) -> Session {
        let session = Session(id: nextSessionID, name: name, peer: peer)
        nextSessionID &+= 1
        session.dataPlane = .kernel(description)
        session.kernelDevice = device
        return session
    }

    /// End a session: stop its stages and remove its device. Devices of sessions
    /// ended in the same turn of the loop are removed together, off the loop. The
    /// manager drops the session from its own table.
    public func endSession(_ session: Session) {
        guard !session.ended else { return }
        session.ended = true
        session.pipeline?.stop()
        if let token = session.deviceWatch { loop.unwatch(token) }
        session.deviceWatch = nil
        if let device = session.device { reaper.remove(device) }
    }

    // MARK: routing data to sessions

    /// Route data datagrams whose first byte is in `firstBytes` with `router`; a
    /// byte another owner routes already is an error naming both.
    public func routeData(firstBytes: ClosedRange<UInt8>, owner: String, _ router: @escaping (Packet) -> Session?) throws {
        for byte in firstBytes {
            if let existing = dataRouters[Int(byte)], existing.owner != owner {
                throw ConfigurationError("\(owner) and \(existing.owner) both route data datagrams starting with byte \(byte)")
            }
        }
        for byte in firstBytes { dataRouters[Int(byte)] = DataRouter(owner: owner, route: router) }
    }

    /// The router for `packet`'s first byte, if a stage routes it.
    @inline(__always)
    public func dataRouter(for packet: Packet) -> ((Packet) -> Session?)? {
        guard packet.length > 0 else { return nil }
        return dataRouters[Int((packet.base + packet.offset).load(as: UInt8.self))]?.route
    }

    // MARK: sockets at run time

    /// Open a UDP socket while running (not from the site file): a broker's
    /// per-client socket, say. Its datagrams go through the demultiplexer like a
    /// site link's. It is not in `links`; the transport stage sends on it only when
    /// `options.carriesData` (then `index` names it in `Packet.link`). `fd` may be
    /// handed to the kernel.
    public func openLink(name: String, bind: SocketAddress, device: String? = nil, options: UDPLink.Options) throws -> UDPLink {
        let link = try UDPLink(name: name, index: nextRuntimeLinkIndex, bind: bind, remote: options.connectTo, device: device,
                               settings: Settings(), batchSize: min(spec.batchSize, 8), options: options)
        nextRuntimeLinkIndex = nextRuntimeLinkIndex == Int(Int32.max) ? Self.runtimeLinkIndexBase : nextRuntimeLinkIndex + 1
        let token = try loop.watch(link.fd) { [unowned self, unowned link] in self.linkReadable(link) }
        runtimeLinks[link.fd] = (link, token)
        if options.carriesData { dataLinks.append(link) }
        return link
    }

    /// Close a socket `openLink` made.
    public func closeLink(_ link: UDPLink) {
        if let entry = runtimeLinks.removeValue(forKey: link.fd) { loop.unwatch(entry.token) }
        dataLinks.removeAll { $0 === link }
        link.close()
    }

    /// Serve until SIGTERM/SIGINT, then shut down cleanly.
    public func run() {
        loop.run()
        shutdown()
    }

    func requestStop(_ why: String) {
        guard !stopping else { return }
        stopping = true
        systemd.stopping()
        logger.info("\(why): shutting down")
        loop.stop()
    }

    /// Stop the sessions, close links, remove the device, report counters.
    public func shutdown() {
        watchdogTimer?.cancel()
        for service in services { service.stop() }
        services = []
        manager?.stop()
        for session in manager?.sessions ?? [] { session.pipeline?.stop() }
        hooks.drain()  // the down hooks the manager queued, before the device goes
        for line in counterReport() { logger.notice("\(line)") }
        for session in manager?.sessions ?? [] { endSession(session) }
        reaper.removeAllNow()
        for (_, entry) in runtimeLinks { entry.link.close() }
        runtimeLinks = [:]
        dataLinks = []
        for link in links { link.close() }
        if let device {
            let name = device.name
            device.close()
            logger.info("device \(name) removed")
        }
    }

    // MARK: data path

    /// Up to this many batches per wake-up, so one busy source cannot starve the others.
    private let batchesPerWakeup = 8

    private func deviceReadable() {
        guard let device, let manager else { return }
        let batch = deviceBatch
        batch.reset()
        loop.stayAwake()
        // Bounded reads per wake-up, so one busy source cannot starve the others.
        _ = device.read(into: batch, maxReads: batch.capacity * 2) { full in manager.outbound(full) }
        if !batch.isEmpty { manager.outbound(batch) }
    }

    private func sessionDeviceReadable(_ session: Session) {
        guard let device = session.device, let pipeline = session.pipeline else { return }
        let batch = deviceBatch
        batch.reset()
        loop.stayAwake()
        _ = device.read(into: batch, maxReads: batch.capacity * 2) { full in pipeline.send(full) }
        if !batch.isEmpty { pipeline.send(batch) }
    }

    private func linkReadable(_ link: UDPLink) {
        for _ in 0..<batchesPerWakeup {
            let n = readAndDeliver(link)
            if n < spec.batchSize && !link.hasPendingReads { return }
        }
        // Datagrams a coalesced read brought in beyond the turn's batches: epoll will not
        // report them (they left the socket), so they are handed on now.
        while link.hasPendingReads && readAndDeliver(link) > 0 {}
        loop.stayAwake()  // more than a turn's worth waiting: do not pause before the next
    }

    /// One batch from `link` through the demultiplexer to the sessions; how many packets.
    private func readAndDeliver(_ link: UDPLink) -> Int {
        guard let manager else { return 0 }
        linkBatchTurn = linkBatchTurn + 1 == Tunnel.linkBatchRing ? 0 : linkBatchTurn + 1
        let batch = linkBatches[linkBatchTurn]
        batch.reset()  // borrowers of its slots copy out first
        let n = link.receive(into: batch)
        if n == 0 { return 0 }
        // Drops before a session is known count for the tunnel; a pipeline
        // switches the batch to its session's counters.
        batch.dropCounters = counters
        demux.filter(batch, link: link)
        // What the control handlers left is data for the sessions.
        if !batch.isEmpty {
            loop.stayAwake()
            manager.inbound(batch, link: link)
        }
        return n
    }

    // MARK: reporting

    /// One line per session, link and the tunnel itself, `key=value` separated by
    /// spaces: stable for scripts and tests.
    func counterReport() -> [String] {
        func line(_ what: String, _ c: TrafficCounters) -> String {
            var text = "counters \(what) tx_packets=\(c.sentPackets) tx_bytes=\(c.sentBytes) rx_packets=\(c.receivedPackets) rx_bytes=\(c.receivedBytes)"
            for (name, value) in c.dropSummary(names: dropReasons.names) { text += " drop.\(name)=\(value)" }
            return text
        }
        var lines = [line("tunnel", counters)]
        if let device { lines.append(line("device=\(device.name)", device.counters)) }
        for link in links { lines.append(line("link=\(link.name)", link.counters)) }
        for session in manager?.sessions ?? [] { lines.append(line("session=\(session.name)", session.counters)) }
        return lines
    }
}
