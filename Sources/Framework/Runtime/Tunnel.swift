import Glibc
import Logging

/// One running tunnel: the event loop, the local device, the UDP links, the
/// demultiplexer and the session manager with its sessions, all built from a
/// `TunnelSpec`. Everything here runs on the loop's thread.
public final class Tunnel {
    public let spec: TunnelSpec
    public let logger: Logger
    public let loop: EventLoop
    public private(set) var device: TunDevice?
    public private(set) var links: [UDPLink] = []
    public let demux = Demux()
    /// Drops that happen before a session is known (unclaimed, unknown peer, …).
    public let counters = TrafficCounters()
    public private(set) var dropReasons = DropReasonTable()
    public private(set) var manager: SessionManager?
    public private(set) var services: [Service] = []
    /// Unix time of the start.
    public let startedAt = TunnelStatus.wallClock()

    /// Bytes in front of every packet for headers stages prepend.
    public let headroom = 128
    /// Bytes after every packet for trailers (AEAD tags).
    public let tailroom = 64
    public let slotSize: Int

    private let deviceBatch: PacketBatch
    private let linkBatch: PacketBatch
    private var nextSessionID: UInt32 = 1
    private var stopping = false
    private var sharedState: [ObjectIdentifier: AnyObject] = [:]

    public init(spec: TunnelSpec, logger: Logger) throws {
        self.spec = spec
        self.logger = logger
        loop = try EventLoop()
        // Room for the largest inner packet plus any headers on either side.
        let mtu = spec.device?.mtu ?? 1500
        slotSize = (headroom + mtu + headroom + tailroom + 63) / 64 * 64
        deviceBatch = PacketBatch(capacity: spec.batchSize, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        linkBatch = PacketBatch(capacity: spec.batchSize, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
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
    public var authenticates: Bool { spec.stages.contains { $0.descriptor.authenticates } }

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
            let link = try UDPLink(name: linkSpec.name, index: index, bind: linkSpec.bind, remote: linkSpec.remote,
                                   device: linkSpec.device, settings: linkSpec.settings, batchSize: spec.batchSize)
            links.append(link)
            logger.info("link \(link.name) bound to \(link.localAddress)\(link.remote.map { " → \($0)" } ?? " (remote learnt from the first datagram)")")
        }
        // The deepest stage that defines a wire format decides what data datagrams look like.
        if let wire = spec.stages.last(where: { $0.descriptor.dataFirstBytes != nil }) {
            try demux.claimData(wire.descriptor.dataFirstBytes!, by: "stage '\(wire.descriptor.name)'")
        }
        let manager = try spec.sessionManager.make(SessionManagerContext(tunnel: self, settings: spec.sessionSettings))
        self.manager = manager
        try manager.start()

        if let device {
            try loop.watch(device.fd) { [unowned self] in self.deviceReadable() }
        }
        for link in links {
            try loop.watch(link.fd) { [unowned self, unowned link] in self.linkReadable(link) }
        }
        for service in spec.services {
            services.append(try service.descriptor.make(ServiceContext(tunnel: self, settings: service.settings)))
        }
        try loop.onSignal(SIGTERM) { [unowned self] in self.requestStop("SIGTERM") }
        try loop.onSignal(SIGINT) { [unowned self] in self.requestStop("SIGINT") }
        try loop.onSignal(SIGUSR1) { [unowned self] in
            for line in self.counterReport() { self.logger.notice("\(line)") }
        }
    }

    /// Build a session with its own instance of every stage of the profile.
    public func makeSession(name: String, peer: SocketAddress?) throws -> Session {
        let session = Session(id: nextSessionID, name: name, peer: peer)
        nextSessionID &+= 1
        func build(_ stage: TunnelSpec.StageSpec) throws -> Stage {
            try stage.descriptor.make(StageContext(tunnel: self, session: session, settings: stage.settings, stageName: stage.descriptor.name))
        }
        let stages = try spec.stages.map(build)
        let egress = try build(spec.egress)
        session.dataPlane = .userspace(Pipeline(stages: stages, egress: egress, counters: session.counters))
        return session
    }

    /// Serve until SIGTERM/SIGINT, then shut down cleanly.
    public func run() {
        loop.run()
        shutdown()
    }

    public func requestStop(_ why: String) {
        guard !stopping else { return }
        stopping = true
        logger.info("\(why): shutting down")
        loop.stop()
    }

    /// Stop the sessions, close links, remove the device, report counters.
    public func shutdown() {
        for service in services { service.stop() }
        services = []
        manager?.stop()
        for session in manager?.sessions ?? [] { session.pipeline?.stop() }
        for line in counterReport() { logger.notice("\(line)") }
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
        // Bounded reads per wake-up, so one busy source cannot starve the others.
        _ = device.read(into: batch, maxReads: batch.capacity * 2) { full in manager.outbound(full) }
        if !batch.isEmpty { manager.outbound(batch) }
    }

    private func linkReadable(_ link: UDPLink) {
        guard let manager else { return }
        let batch = linkBatch
        for _ in 0..<batchesPerWakeup {
            batch.reset()
            let n = link.receive(into: batch)
            if n == 0 { break }
            // Drops before a session is known count for the tunnel; a pipeline
            // switches the batch to its session's counters.
            batch.dropCounters = counters
            demux.filter(batch, link: link)
            if !batch.isEmpty { manager.inbound(batch, link: link) }
            if n < batch.capacity { break }
        }
    }

    // MARK: reporting

    /// One line per session, link and the tunnel itself, `key=value` separated by
    /// spaces: stable for scripts and tests.
    public func counterReport() -> [String] {
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
