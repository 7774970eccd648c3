import Framework

/// The `bonding.reorder` stage. Send side: classifies packets for pin rules, tells
/// bulk from interactive packets, and puts the tunnel-wide sequence in front of each
/// (inside the encryption). Receive side (authenticated packets): answers probes,
/// takes echoes and their sequence marks, counts what each path delivered, and passes
/// data through the reorder buffer to the device, bulk data aligned to the longest path.
///
/// Why align: a TCP flow spread over links of 10 and 40 ms would otherwise see 20 ms
/// while it is small (one link) and 50 ms once it needs both. BBR sizes its window
/// from the least RTT, so it cannot fill both links; cubic's slow start ends at the
/// jump. Aligned, the flow sees one steady delay (the longest link's) and fills all
/// of them. Which packets are bulk is `BulkFlows`' call; small packets of other flows
/// are never held for alignment, so ACKs, DNS, VoIP and pings keep the shortest
/// link's delay.
final class ReorderStage: Stage {
    private let bond: BondingSession
    private let buffer: ReorderBuffer
    private unowned let tunnel: Tunnel
    private let session: Session
    private var sequence: UInt32 = 0
    private var flows = BulkFlows()
    private var timer: EventLoop.Timer?
    /// When the armed timer fires (infinity: not armed).
    private var timerFires = Double.infinity
    private let wrongSource: DropReason
    private let duplicate: DropReason
    // The send side's own queue (issue 14): what the pacer does not let onto the links
    // yet waits here (BondQueue, BondPacer); made at the first packet that must wait.
    private var queue: BondQueue?
    private let released: PacketBatch
    private var releasedSlots: [Int32]
    private var pacer: EventLoop.Timer?
    private var pacerFires = Double.infinity
    private var releaseQueued = false
    private let queueDropped: DropReason
    private let queueOverflow: DropReason

    init(context: StageContext) throws {
        tunnel = context.tunnel
        session = context.session
        bond = try BondingPlugin.registry(of: context).bond(for: context.session, tunnel: context.tunnel)
        let session = context.session
        buffer = ReorderBuffer(capacity: context.settings.integer(Self.buffer), slotSize: context.tunnel.slotSize,
                               headroom: context.tunnel.headroom, tailroom: context.tunnel.tailroom) { batch in
            session.pipeline?.deliver(batch)
        }
        bond.holdLimits = (Double(context.settings.integer(Self.minHold)) / 1000,
                           Double(context.settings.integer(Self.maxHold)) / 1000)
        bond.alignBulk = context.settings.boolean(Self.align)
        wrongSource = context.dropReason("wrong_source")
        duplicate = context.dropReason("duplicate")
        queueDropped = context.dropReason("queue_codel")
        queueOverflow = context.dropReason("queue_overflow")
        released = PacketBatch(viewCapacity: context.tunnel.spec.batchSize, headroom: context.tunnel.headroom,
                               tailroom: context.tunnel.tailroom)
        releasedSlots = []
        releasedSlots.reserveCapacity(context.tunnel.spec.batchSize)
        bond.reorderStage = self
        // Created disarmed; armed while packets are held.
        timer = try context.tunnel.loop.addTimer(milliseconds: 0, repeating: false) { [unowned self] in
            self.timerFires = .infinity
            self.buffer.deadPaths = self.bond.deadPathMask
            self.buffer.stalled = self.tunnel.loop.lastStall
            self.buffer.releaseDue(now: MonotonicClock.now(), holdTime: self.bond.holdTime)
            self.armTimer()
        }
    }

    var counters: ReorderBuffer.Counters { buffer.counters }

    var held: Int { buffer.heldCount }

    /// Give the reorder buffer's and the queue's packet memory back once the session is quiet.
    func trimIfIdle(now: Double) {
        buffer.trimIfIdle(now: now)
        queue?.trimIfIdle(now: now)
    }

    /// The send queue's counts (all 0 before it was made).
    var queueCounts: BondQueue.Counts { queue?.counts ?? BondQueue.Counts() }
    /// The sequence the next data packet gets (probes and echoes carry it).
    var nextSequence: UInt32 { sequence }

    func send(_ batch: PacketBatch) {
        guard let queueSettings = bond.queueSettings, !bond.redundant else {
            label(batch)
            return
        }
        let now = MonotonicClock.now()
        let records = batch.records
        var first = 0  // the first packet that waits
        if queue?.isEmpty ?? true {
            // Nothing waiting: what the links can take goes now, without a copy.
            guard var room = BondPacer.room(bond.paths, now: now, linkQueue: bond.linkQueue) else {
                label(batch)
                return
            }
            while first < batch.count && (records[first].dropReason != nil || room > 0) {
                if records[first].dropReason == nil { room -= records[first].length }
                first += 1
            }
            if first == batch.count {
                label(batch)
                return
            }
        }
        let queue = self.queue ?? BondQueue(settings: queueSettings, slotSize: tunnel.slotSize,
                                            headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        self.queue = queue
        for index in first..<batch.count where records[index].dropReason == nil {
            // Small packets of flows that are not bulk (pings, DNS, VoIP, the ACKs of a
            // download) do not wait for the pacer: they go now, ahead of the bulk queue,
            // a few bytes over the links' allowance (fq_codel's sparse flows, without
            // the wait for the next pacer turn).
            let flow = flows.classify(records[index], now: now)
            guard flow.bulk else { continue }
            if queue.enqueue(records[index], flowKey: flow.key, now: now, evicted: { [session, queueOverflow] _ in
                session.countDrop(queueOverflow)
            }) {
                batch.discard(index)
            } else {
                batch.drop(index, queueOverflow)
            }
        }
        label(batch)
        scheduleRelease(now: now)
    }

    /// Let the queue's packets onto the links as far as they have room, then wake up
    /// when they will have room again.
    private func release() {
        releaseQueued = false
        pacerFires = .infinity
        guard let queue, let pipeline = session.pipeline, let me = pipeline.index(of: self) else { return }
        let now = MonotonicClock.now()
        while !queue.isEmpty {
            // No usable path: the scheduler drops what comes, as it would have at once.
            var room = BondPacer.room(bond.paths, now: now, linkQueue: bond.linkQueue) ?? Int.max
            guard room > 0 else { break }
            released.reset()
            releasedSlots.removeAll(keepingCapacity: true)
            while room > 0, released.count < released.capacity,
                  let (packet, slot) = queue.dequeue(now: now, dropped: { [session, queueDropped] _ in
                      session.countDrop(queueDropped)
                  }) {
                released.append(packet)
                releasedSlots.append(slot)
                room -= packet.length
            }
            guard !released.isEmpty else { break }
            label(released, queued: true)
            pipeline.send(released, from: me + 1)
            for slot in releasedSlots { queue.free(slot) }
        }
        released.reset()
        scheduleRelease(now: now)
    }

    private func scheduleRelease(now: Double) {
        guard let queue, !queue.isEmpty, !releaseQueued else { return }
        let turn = BondPacer.nextTurn(bond.paths, now: now, linkQueue: bond.linkQueue)
        if turn <= now {
            // Room now: at the end of this loop turn, after the batch being sent.
            releaseQueued = true
            tunnel.loop.atEndOfTurn { [weak self] in self?.release() }
            return
        }
        guard turn < pacerFires - 0.0002 else { return }
        if pacer == nil {
            pacer = try? tunnel.loop.addTimer(milliseconds: 0, repeating: false) { [unowned self] in self.release() }
        }
        // To the microsecond: a link queue of a few milliseconds leaves no room for a
        // turn rounded up to whole milliseconds.
        let wait = max(turn - now, 0.00005)
        pacer?.arm(after: wait)
        pacerFires = now + wait
    }

    /// Send side's labels: pin rules, bulk or not, and the tunnel-wide sequence.
    /// `queued`: packets released by the queue, which holds bulk packets only (their
    /// flows were classified when they were queued).
    private func label(_ batch: PacketBatch, queued: Bool = false) {
        let records = batch.records
        let pinned = !bond.pins.isEmpty
        let sendsBulk = bond.sendsBulk && bond.paths.count > 1
        let now = sendsBulk && !queued ? MonotonicClock.now() : 0
        for index in 0..<batch.count where records[index].dropReason == nil {
            if pinned { pin(&records[index]) }
            let bulk = sendsBulk && records[index].mark & SchedulerStage.pinnedPath == 0
                && (queued || flows.isBulk(records[index], now: now))
            if BondingWire.writeData(&records[index], sequence: sequence, bulk: bulk) {
                sequence = BondingWire.next(sequence)
                if bulk { records[index].mark |= SchedulerStage.bulkPacket }
            } else {
                batch.drop(index, .noRoom)
            }
        }
    }

    /// Pinned traffic keeps its link and is never aligned (pins are for latency).
    private func pin(_ packet: inout Packet) {
        for (rule, target) in zip(bond.pins, bond.pinTargets) where rule.matches(packet) {
            if let target { packet.mark = SchedulerStage.pinnedPath | UInt32(target) }
            return
        }
    }

    func receive(_ batch: PacketBatch) {
        let now = MonotonicClock.now()
        let records = batch.records
        let lender = batch.lender
        for index in 0..<batch.count where records[index].dropReason == nil {
            let packet = records[index]
            guard packet.length >= 1 else {
                batch.drop(index, .truncated)
                continue
            }
            let path = bond.path(link: packet.link, peer: packet.peer)
            if let path {
                let bondPath = bond.paths[path]
                bondPath.receivedBytes &+= UInt64(packet.length)
                bondPath.receivedPackets &+= 1
                bondPath.lastReceived = now
            }
            let type = packet.byte(at: 0)
            switch type {
            case BondingWire.data, BondingWire.bulk:
                guard packet.length > BondingWire.dataHeader else {
                    batch.drop(index, .truncated)
                    continue
                }
                let sequence = BondingWire.sequence(of: packet)
                _ = records[index].trimFront(BondingWire.dataHeader)
                if let allowed = bond.allowedSources, allowed.table.ownerIndex(of: records[index], destination: false) != allowed.owner {
                    batch.drop(index, wrongSource)
                    continue
                }
                let wait = type == BondingWire.bulk ? path.map { bond.paths[$0].alignWait } ?? 0 : 0
                let urgent = type == BondingWire.data && records[index].length <= BulkFlows.bulkSize
                if buffer.accept(records[index], sequence: sequence, path: path, wait: wait, urgent: urgent, now: now,
                                 lender: lender) == .duplicate {
                    batch.drop(index, duplicate)
                }
            case BondingWire.probe:
                switch BondingWire.parseProbe(packet) {
                case .success(let probe):
                    if let path = path ?? bond.learnPath(probe: probe, packet: packet, now: now) {
                        // The probe may move its link's path (NAT rebinding): mark the one it names.
                        let owner = bond.probeReceived(probe, on: path, now: now)
                        buffer.marker(path: owner, nextSequence: probe.nextSequence, now: now)
                    }
                case .failure(let error): batch.drop(index, error == .truncated ? .truncated : .malformed)
                }
            case BondingWire.echo:
                switch BondingWire.parseEcho(packet) {
                case .success(let echo):
                    if let path {
                        bond.echoReceived(echo, on: path, now: now)
                        buffer.marker(path: path, nextSequence: echo.nextSequence, now: now)
                    }
                case .failure(let error): batch.drop(index, error == .truncated ? .truncated : .malformed)
                }
            default:
                batch.drop(index, .malformed)
            }
        }
        batch.removeDropped()
        // Everything left went into the buffer's output or was held: hand it on in order.
        buffer.deadPaths = bond.deadPathMask
        buffer.stalled = tunnel.loop.lastStall
        buffer.releaseDue(now: now, holdTime: bond.holdTime)
        batch.consumeAll()
        bond.flushControl()
        armTimer()
    }

    /// Wake up when the next held packet may go (its alignment time, or a gap's hold
    /// time), sooner than the timer was set for if that is earlier now.
    private func armTimer() {
        guard let wake = buffer.nextWake(holdTime: bond.holdTime), wake < timerFires - 0.0005 else { return }
        // To the microsecond: the hold on fast links is about 2 ms, and rounding the
        // wait up to whole milliseconds would add up to half of it again.
        let now = MonotonicClock.now()
        let wait = max(wake - now, 0.00005)
        timer?.arm(after: wait)
        timerFires = now + wait
    }

    func stop() {
        timer?.cancel()
        pacer?.cancel()
        buffer.clear()
    }

    static let buffer = SettingSpec("buffer", .integer(64...65536), default: .integer(4096),
                                    help: "packets the reorder buffer can hold (rounded up to a power of two); memory is fixed")
    static let minHold = SettingSpec("min-hold", .milliseconds(0...1000), default: .integer(2),
                                     help: "shortest wait for a missing packet")
    static let maxHold = SettingSpec("max-hold", .milliseconds(1...5000), default: .integer(300),
                                     help: "longest wait for a missing packet, whatever the links' delay spread")
    static let align = SettingSpec("align", .boolean, default: .boolean(true),
                                   help: "bulk packets (over 256 bytes, SYNs, and every packet of a flow that sent one in the last second) go over every link by capacity and the far end holds those of shorter links until the longest could have brought them: TCP sees one steady delay and fills every link; off: bulk takes the shortest link first (less delay, but a BBR sender cannot use links much longer than the shortest)")

    static let descriptor = StageDescriptor(
        name: "bonding.reorder",
        summary: "tunnel-wide sequence; restores order across bonded links with a hold time that follows their delay spread",
        slots: [.reorder],
        settings: [buffer, minHold, maxHold, align],
        dropReasons: ["wrong_source", "duplicate", "queue_codel", "queue_overflow"],
        make: { context in try ReorderStage(context: context) })
}
