import Framework

/// The bond's own queue: flow queues served by deficit round robin, new (sparse) flows
/// first, each flow's head checked by CoDel — fq_codel (RFC 8290) for the packets the
/// pacer does not let onto the links yet.
///
/// Why it exists: a bond that sends every packet at once fills its uplinks' queues
/// (the modem's, the ISP's), and everything else — a ping, a video call, DNS — waits
/// behind them: 44 ms over 40 + 20 Mbit/s with one cubic upload. The scheduler paces
/// the links to a few milliseconds of queue each (`BondPacer`); what does not fit
/// waits here, where a sparse flow's packet goes before a bulk flow's backlog and a
/// standing bulk queue is told to slow down the way TCP understands: CoDel drops from
/// its head once its packets have waited over `target` for an `interval`, or, when the
/// packet is ECN-capable, marks it "congestion experienced" and sends it on, so the
/// sender slows down without a retransmission. Unlike RFC 8289, the drops from one
/// flow stop coming faster at two per interval (`controlLaw`).
///
/// Packets are copied into the slots of a `PacketBatch` the queue owns (the device's
/// batch is reused at once) and released as those records, so the stages after the
/// queue (sequence, encryption, scheduling, sending) work on them in place. The batch
/// is made at the first enqueue and given back after `idleTrim` seconds empty: a
/// session whose links keep up holds none. Nothing allocates per packet.
final class BondQueue {
    struct Settings: Equatable {
        // No defaults here: they live in the scheduler's setting specs.
        var limit: Int
        var codelTarget: Double
        var codelInterval: Double
        /// Mark ECN-capable packets instead of dropping them.
        var ecn: Bool
    }

    /// The flows one packet of which may be in the queue; colliding flows share one.
    static let flowCount = 128
    /// One more queue, for what is not IP (a TAP device's Ethernet frames): the flows
    /// in it cannot be told apart, so CoDel's drops there speed up without bound, as
    /// RFC 8289's, to slow down however many senders share it.
    static let sharedFlow = flowCount
    /// Bytes a flow may send per round (one full-size packet, as fq_codel's quantum).
    static let quantum = 1514
    static let idleTrim = 5.0

    let settings: Settings
    private let slotSize: Int, headroom: Int, tailroom: Int
    /// The slots (one record each), nil until the first enqueue and after a trim.
    private var storage: PacketBatch?
    // Per slot: when it was queued, the next slot of its flow; and the free slots.
    private var queuedAt: [Double] = []
    private var nextInFlow: [Int32] = []
    private var freeSlots: [Int32] = []
    private var freeCount = 0

    private struct Flow {
        var head: Int32 = -1, tail: Int32 = -1
        var bytes = 0
        var deficit = 0
        var listed = false
        var codel = CoDel()
    }
    private var flows = [Flow](repeating: Flow(), count: BondQueue.flowCount + 1)
    /// Flows with packets, by list: new ones (not yet used up a quantum) before old ones.
    private var newFlows = FlowList(capacity: BondQueue.flowCount + 1)
    private var oldFlows = FlowList(capacity: BondQueue.flowCount + 1)

    private(set) var count = 0
    private(set) var bytes = 0
    private var lastBusy = 0.0
    /// Packets dropped by CoDel and by a full queue, and marked by CoDel, for status.
    private(set) var codelDrops: UInt64 = 0
    private(set) var overflowDrops: UInt64 = 0
    private(set) var ecnMarks: UInt64 = 0

    /// What status shows of the queue.
    struct Counts {
        var waiting = 0
        var codelDrops: UInt64 = 0, overflowDrops: UInt64 = 0, ecnMarks: UInt64 = 0
    }
    var counts: Counts { Counts(waiting: count, codelDrops: codelDrops, overflowDrops: overflowDrops, ecnMarks: ecnMarks) }

    init(settings: Settings, slotSize: Int, headroom: Int, tailroom: Int) {
        self.settings = settings
        (self.slotSize, self.headroom, self.tailroom) = (slotSize, headroom, tailroom)
    }

    var isEmpty: Bool { count == 0 }
    var hasStorage: Bool { storage != nil }

    /// Copy `packet` into the queue, in the flow `flowKey` names (nil: not IP, the
    /// shared queue). When the queue is
    /// full, the head of the longest flow goes (as fq_codel: the flow that filled it
    /// pays) and is handed to `evicted`; false when this packet cannot be queued (no
    /// slot left or too large), so the caller counts it.
    @discardableResult
    func enqueue(_ packet: Packet, flowKey: UInt32?, now: Double, evicted: (Packet) -> Void = { _ in }) -> Bool {
        if storage == nil { allocateStorage() }
        if freeCount == 0 { dropFromLongestFlow(evicted) }
        guard freeCount > 0, packet.length <= slotSize - headroom - tailroom else {
            overflowDrops &+= 1
            return false
        }
        freeCount -= 1
        let slot = freeSlots[freeCount]
        let packets = storage!.records
        var record = packets[Int(slot)]
        (record.base + headroom).copyMemory(from: packet.base + packet.offset, byteCount: packet.length)
        record.offset = headroom
        record.length = packet.length
        record.mark = packet.mark
        record.link = packet.link
        record.peer = packet.peer
        record.sequence = packet.sequence
        record.dropReason = nil
        packets[Int(slot)] = record
        queuedAt[Int(slot)] = now
        nextInFlow[Int(slot)] = -1
        let index = flowKey.map { Int($0 % UInt32(BondQueue.flowCount)) } ?? BondQueue.sharedFlow
        if flows[index].tail >= 0 { nextInFlow[Int(flows[index].tail)] = slot } else { flows[index].head = slot }
        flows[index].tail = slot
        flows[index].bytes += packet.length
        if !flows[index].listed {
            flows[index].listed = true
            flows[index].deficit = BondQueue.quantum
            newFlows.append(index)
        }
        count += 1
        bytes += packet.length
        lastBusy = now
        return true
    }

    /// The next packet to send (a record pointing into the queue's slot, valid until
    /// `free(slot)`), fq_codel's choice; packets CoDel drops on the way are handed to
    /// `dropped` (their slots are free again when it returns). Nil when empty.
    func dequeue(now: Double, dropped: (Packet) -> Void) -> (packet: Packet, slot: Int32)? {
        while true {
            let fromNew = !newFlows.isEmpty
            guard let index = fromNew ? newFlows.first : oldFlows.first else { return nil }
            if flows[index].deficit <= 0 {
                flows[index].deficit += BondQueue.quantum
                if fromNew { newFlows.removeFirst() } else { oldFlows.removeFirst() }
                oldFlows.append(index)
                continue
            }
            guard let slot = codelHead(flow: index, now: now, dropped: dropped) else {
                // Empty: a new flow goes to the old list once (so it cannot come back as
                // new at once and starve the others); an old one leaves.
                if fromNew {
                    newFlows.removeFirst()
                    if !oldFlows.isEmpty { oldFlows.append(index) } else { flows[index].listed = false }
                } else {
                    oldFlows.removeFirst()
                    flows[index].listed = false
                }
                continue
            }
            let packet = storage!.records[Int(slot)]
            flows[index].deficit -= packet.length
            lastBusy = now
            return (packet, slot)
        }
    }

    /// A released packet has been sent (or dropped) by the stages after the queue.
    func free(_ slot: Int32) {
        freeSlots[freeCount] = slot
        freeCount += 1
    }

    /// Give the slot memory back when nothing was queued for `idleTrim` seconds.
    func trimIfIdle(now: Double) {
        guard storage != nil, count == 0, freeCount == settings.limit, now - lastBusy > BondQueue.idleTrim else { return }
        storage = nil
        queuedAt = []
        nextInFlow = []
        freeSlots = []
        freeCount = 0
    }

    // MARK: CoDel (RFC 8289), per flow

    private struct CoDel {
        var firstAboveTime = 0.0
        var dropNext = 0.0
        var count = 0
        var lastCount = 0
        var dropping = false
    }

    /// Take the flow's head, dropping the packets CoDel says to; nil when the flow is empty.
    private func codelHead(flow index: Int, now: Double, dropped: (Packet) -> Void) -> Int32? {
        guard var slot = pop(flow: index) else {
            flows[index].codel.dropping = false
            return nil
        }
        var okToDrop = shouldDrop(flow: index, slot: slot, now: now)
        let interval = settings.codelInterval
        let capped = index != BondQueue.sharedFlow
        if flows[index].codel.dropping {
            if !okToDrop {
                flows[index].codel.dropping = false
            } else {
                while now >= flows[index].codel.dropNext && flows[index].codel.dropping {
                    flows[index].codel.count += 1
                    if mark(slot) {
                        // One mark per dequeue (as Linux's codel_dequeue): the packet goes on.
                        flows[index].codel.dropNext = Self.controlLaw(flows[index].codel.dropNext, count: flows[index].codel.count, interval: interval, capped: capped)
                        break
                    }
                    drop(slot, dropped)
                    guard let next = pop(flow: index) else {
                        flows[index].codel.dropping = false
                        return nil
                    }
                    slot = next
                    okToDrop = shouldDrop(flow: index, slot: slot, now: now)
                    if !okToDrop {
                        flows[index].codel.dropping = false
                    } else {
                        flows[index].codel.dropNext = Self.controlLaw(flows[index].codel.dropNext, count: flows[index].codel.count, interval: interval, capped: capped)
                    }
                }
            }
        } else if okToDrop {
            if !mark(slot) {
                drop(slot, dropped)
                guard let next = pop(flow: index) else { return nil }
                slot = next
                _ = shouldDrop(flow: index, slot: slot, now: now)
            }
            flows[index].codel.dropping = true
            let delta = flows[index].codel.count - flows[index].codel.lastCount
            flows[index].codel.count = delta > 1 && now - flows[index].codel.dropNext < 16 * interval ? delta : 1
            flows[index].codel.dropNext = Self.controlLaw(now, count: flows[index].codel.count, interval: interval, capped: capped)
            flows[index].codel.lastCount = flows[index].codel.count
        }
        return slot
    }

    private func shouldDrop(flow index: Int, slot: Int32, now: Double) -> Bool {
        let sojourn = now - queuedAt[Int(slot)]
        // A flow with at most one packet left is not a standing queue.
        if sojourn < settings.codelTarget || flows[index].bytes <= BondQueue.quantum {
            flows[index].codel.firstAboveTime = 0
            return false
        }
        if flows[index].codel.firstAboveTime == 0 {
            flows[index].codel.firstAboveTime = now + settings.codelInterval
            return false
        }
        return now >= flows[index].codel.firstAboveTime
    }

    /// RFC 8289's control law: the next drop `interval/√count` after the last, sooner
    /// each time for as long as the flow stays above target, except that the gap stops
    /// shrinking at `interval/2` (count 4). A loss-based sender slows down for about one
    /// drop per round trip; one that does not (BBR v1 keeps twice its estimated BDP in
    /// flight, whatever it loses) only loses more of its data to faster drops, and the
    /// queue still bounds it: `limit`, the longest flow's head first, with fq keeping
    /// the other flows ahead of it. Over the 10/40 ms test links BBR without ECN
    /// retransmitted 1–2 % of its segments with the law unbounded, 0.4 % with the cap.
    /// Not `capped`: the shared queue, whose many senders may each need their drop.
    static func controlLaw(_ t: Double, count: Int, interval: Double, capped: Bool) -> Double {
        t + interval / Double(capped ? min(count, maxControlCount) : count).squareRoot()
    }
    static let maxControlCount = 4

    // MARK: slots and flows

    private func pop(flow index: Int) -> Int32? {
        let slot = flows[index].head
        guard slot >= 0 else { return nil }
        flows[index].head = nextInFlow[Int(slot)]
        if flows[index].head < 0 { flows[index].tail = -1 }
        let length = storage!.records[Int(slot)].length
        flows[index].bytes -= length
        count -= 1
        bytes -= length
        return slot
    }

    /// CoDel's signal without a loss: true when the packet at `slot` is ECN-capable
    /// and carries "congestion experienced" now.
    private func mark(_ slot: Int32) -> Bool {
        guard settings.ecn, IPHeader.markCongestionExperienced(storage!.records[Int(slot)]) else { return false }
        ecnMarks &+= 1
        return true
    }

    private func drop(_ slot: Int32, _ dropped: (Packet) -> Void) {
        codelDrops &+= 1
        dropped(storage!.records[Int(slot)])
        free(slot)
    }

    private func dropFromLongestFlow(_ evicted: (Packet) -> Void) {
        var longest = -1
        for index in 0...BondQueue.sharedFlow where flows[index].bytes > (longest < 0 ? 0 : flows[longest].bytes) { longest = index }
        guard longest >= 0, let slot = pop(flow: longest) else { return }
        overflowDrops &+= 1
        evicted(storage!.records[Int(slot)])
        free(slot)
    }

    private func allocateStorage() {
        let limit = settings.limit
        let batch = PacketBatch(capacity: limit, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        batch.setCount(limit)  // every record addressable by its slot
        storage = batch
        queuedAt = [Double](repeating: 0, count: limit)
        nextInFlow = [Int32](repeating: -1, count: limit)
        freeSlots = (0..<Int32(limit)).reversed()
        freeCount = limit
    }
}

/// A FIFO of flow indices with a fixed capacity (each flow is listed at most once).
struct FlowList {
    private var items: [Int]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { items = [Int](repeating: 0, count: capacity) }

    var isEmpty: Bool { count == 0 }
    var first: Int? { count > 0 ? items[head] : nil }

    mutating func append(_ index: Int) {
        items[(head + count) % items.count] = index
        count += 1
    }

    mutating func removeFirst() {
        head = (head + 1) % items.count
        count -= 1
    }
}
