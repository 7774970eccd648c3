import XCTest
@testable import Bonding
import Framework

/// The bond's own queue (fq_codel), the pacer's room, the delivery rate's `confirmed`
/// and the reorder buffer's urgent early delivery. Times are multiples of powers of two
/// wherever CoDel or the pacer compare them, so every comparison is exact.
final class BondQueueTests: XCTestCase {
    private var packets: TestPackets!

    override func setUp() {
        packets = TestPackets(capacity: 512, slotSize: 2048, headroom: 16)
    }

    /// A packet of `length` bytes whose first four are `tag` (big-endian).
    private func packet(_ tag: UInt32, length: Int = 100) -> Packet {
        precondition(length >= 4)
        var bytes = [UInt8](repeating: 0xAB, count: length)
        bytes[0] = UInt8(truncatingIfNeeded: tag >> 24)
        bytes[1] = UInt8(truncatingIfNeeded: tag >> 16)
        bytes[2] = UInt8(truncatingIfNeeded: tag >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: tag)
        return packets.make(bytes)
    }

    private func makeQueue(limit: Int = 1024, target: Double = 0.005, interval: Double = 0.1, slotSize: Int = 2048) -> BondQueue {
        BondQueue(settings: BondQueue.Settings(limit: limit, codelTarget: target, codelInterval: interval, ecn: true),
                  slotSize: slotSize, headroom: 16, tailroom: 16)
    }

    @discardableResult
    private func enqueue(_ queue: BondQueue, _ tag: UInt32, flow: UInt32?, length: Int = 100, now: Double = 0) -> Bool {
        queue.enqueue(packet(tag, length: length), flowKey: flow, now: now)
    }

    /// Dequeues one packet, frees its slot, returns its tag (nil when empty); CoDel's
    /// drops are appended to `drops` by tag.
    private func dequeueTag(_ queue: BondQueue, now: Double = 0, drops: inout [UInt32]) -> UInt32? {
        var dropped: [UInt32] = []
        let result = queue.dequeue(now: now) { dropped.append(testTag(of: $0)) }
        drops += dropped
        guard let (packet, slot) = result else { return nil }
        let tag = testTag(of: packet)
        queue.free(slot)
        return tag
    }

    /// Dequeues everything at `now` (freeing each slot), by tag.
    private func drain(_ queue: BondQueue, now: Double = 0) -> [UInt32] {
        var tags: [UInt32] = [], drops: [UInt32] = []
        while let tag = dequeueTag(queue, now: now, drops: &drops) { tags.append(tag) }
        XCTAssertEqual(drops, [])
        return tags
    }

    // MARK: fair queueing

    func testOneFlowIsFIFOAndBytesAreCopied() {
        let queue = makeQueue()
        XCTAssertFalse(queue.hasStorage, "no memory before the first enqueue")
        for tag in UInt32(1)...5 { XCTAssertTrue(enqueue(queue, tag, flow: 7, length: 100 + Int(tag))) }
        XCTAssertEqual(queue.count, 5)
        XCTAssertEqual(queue.bytes, 101 + 102 + 103 + 104 + 105)
        XCTAssertTrue(queue.hasStorage)

        var drops: [UInt32] = []
        guard let (first, slot) = queue.dequeue(now: 0, dropped: { drops.append(testTag(of: $0)) }) else {
            return XCTFail("queue is not empty")
        }
        XCTAssertEqual(first.length, 101)
        XCTAssertEqual(first.offset, 16, "copied to the queue's headroom")
        XCTAssertEqual(testBytes(of: first), [0, 0, 0, 1] + [UInt8](repeating: 0xAB, count: 97))
        queue.free(slot)
        XCTAssertEqual(drain(queue), [2, 3, 4, 5])
        XCTAssertEqual(drops, [])
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.bytes, 0)
        XCTAssertNil(queue.dequeue(now: 0, dropped: { _ in XCTFail("nothing to drop") }))
    }

    func testFlowsCollideModulo128() {
        let queue = makeQueue()
        enqueue(queue, 1, flow: 3)
        enqueue(queue, 2, flow: 3 + 128)  // the same flow queue: FIFO with tag 1
        enqueue(queue, 3, flow: 3)
        XCTAssertEqual(drain(queue), [1, 2, 3])
    }

    func testSparseFlowGoesBeforeBacklogOfBulkFlow() {
        let queue = makeQueue()
        for tag in UInt32(1)...10 { enqueue(queue, tag, flow: 1, length: 1000) }
        var drops: [UInt32] = []
        // Bulk: 1514 → 514 → -486 (to the old list, +1514 = 1028) → 28.
        XCTAssertEqual(dequeueTag(queue, drops: &drops), 1)
        XCTAssertEqual(dequeueTag(queue, drops: &drops), 2)
        XCTAssertEqual(dequeueTag(queue, drops: &drops), 3)
        enqueue(queue, 100, flow: 2, length: 60)  // a ping: a new flow
        XCTAssertEqual(dequeueTag(queue, drops: &drops), 100, "the new flow goes before the bulk flow's backlog")
        XCTAssertEqual(drain(queue), [4, 5, 6, 7, 8, 9, 10])
        XCTAssertEqual(drops, [])
    }

    func testNewFlowGoesAheadOfBulkFlowOnceBulkUsedItsQuantum() {
        let queue = makeQueue()
        for tag in UInt32(1)...6 { enqueue(queue, tag, flow: 1, length: 1000) }
        enqueue(queue, 100, flow: 2, length: 60)
        // Both new: the bulk flow sends its quantum (two packets: 1514 → 514 → -486) first.
        XCTAssertEqual(drain(queue), [1, 2, 100, 3, 4, 5, 6])
    }

    func testTwoBulkFlowsAlternateOneQuantumAtATime() {
        let queue = makeQueue()
        for tag in UInt32(1)...4 { enqueue(queue, 10 + tag, flow: 10, length: 1514) }
        for tag in UInt32(1)...4 { enqueue(queue, 20 + tag, flow: 20, length: 1514) }
        XCTAssertEqual(drain(queue), [11, 21, 12, 22, 13, 23, 14, 24])
    }

    func testTwoBulkFlowsShareByBytesWithDeficits() {
        let queue = makeQueue()
        for tag in UInt32(1)...6 { enqueue(queue, 10 + tag, flow: 10, length: 1000) }
        for tag in UInt32(1)...6 { enqueue(queue, 20 + tag, flow: 20, length: 1000) }
        // Deficits (quantum 1514, 1000-byte packets): A 514, -486 | B 514, -486 |
        // A 1028 → 28, -972 | B the same | A 542 → -458 | B the same | A 1056 → 56 | B.
        XCTAssertEqual(drain(queue), [11, 12, 21, 22, 13, 14, 23, 24, 15, 25, 16, 26])
    }

    // MARK: CoDel

    func testCoDelDropsNothingWhileSojournIsBelowTarget() {
        let queue = makeQueue()  // target 5 ms, interval 100 ms
        var drops: [UInt32] = [], tags: [UInt32] = []
        // For a second (ten intervals), every 10 ms three 1000-byte packets (more than a
        // quantum behind the head) that each wait 4 ms.
        var tag: UInt32 = 0
        for step in 0..<100 {
            let now = Double(step) * 0.01
            for _ in 0..<3 { tag += 1; enqueue(queue, tag, flow: 5, length: 1000, now: now) }
            for _ in 0..<3 { if let out = dequeueTag(queue, now: now + 0.004, drops: &drops) { tags.append(out) } }
        }
        XCTAssertEqual(drops, [])
        XCTAssertEqual(queue.codelDrops, 0)
        XCTAssertEqual(tags, Array(UInt32(1)...300))
        XCTAssertTrue(queue.isEmpty)
    }

    func testCoDelDropsNothingBeforeSojournStayedAboveTargetForAnInterval() {
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        for tag in UInt32(1)...10 { enqueue(queue, tag, flow: 1, length: 1000, now: 0) }
        var drops: [UInt32] = []
        XCTAssertEqual(dequeueTag(queue, now: 0.125, drops: &drops), 1)  // above target: the interval starts (ends 0.375)
        XCTAssertEqual(dequeueTag(queue, now: 0.25, drops: &drops), 2)
        XCTAssertEqual(dequeueTag(queue, now: 0.3125, drops: &drops), 3)
        XCTAssertEqual(drops, [])
        XCTAssertEqual(queue.codelDrops, 0)
    }

    func testCoDelDropsFromHeadOnceSojournStayedAboveTargetForAnInterval() {
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        for tag in UInt32(1)...20 { enqueue(queue, tag, flow: 1, length: 1000, now: 0) }
        var drops: [UInt32] = []
        XCTAssertEqual(dequeueTag(queue, now: 0.03125, drops: &drops), 1, "below target")
        XCTAssertEqual(dequeueTag(queue, now: 0.125, drops: &drops), 2, "above target: first above, the interval ends at 0.375")
        XCTAssertEqual(dequeueTag(queue, now: 0.25, drops: &drops), 3)
        XCTAssertEqual(drops, [])
        // Above target for an interval: the head (4) goes, 5 is sent; next drop at 0.375 + 0.25.
        XCTAssertEqual(dequeueTag(queue, now: 0.375, drops: &drops), 5)
        XCTAssertEqual(drops, [4])
        XCTAssertEqual(queue.codelDrops, 1)
        XCTAssertEqual(dequeueTag(queue, now: 0.5, drops: &drops), 6, "before the next drop time")
        // 0.625: drop 7 (count 2), next drop at 0.625 + 0.25/√2 ≈ 0.8018.
        XCTAssertEqual(dequeueTag(queue, now: 0.625, drops: &drops), 8)
        XCTAssertEqual(drops, [4, 7])
        XCTAssertEqual(dequeueTag(queue, now: 0.75, drops: &drops), 9)
        // 1.0: past 0.8018, drop 10 (count 3, next ≈ 0.9462); still past it: drop 11 (count 4, next ≈ 1.0712).
        XCTAssertEqual(dequeueTag(queue, now: 1.0, drops: &drops), 12)
        XCTAssertEqual(drops, [4, 7, 10, 11])
        XCTAssertEqual(queue.codelDrops, 4)
        XCTAssertEqual(queue.count, 8)
        XCTAssertEqual(queue.bytes, 8000)
        XCTAssertEqual(queue.overflowDrops, 0)
    }

    /// Drops in (3, 4] s from one flow above target all along (dequeued every 1/32 s).
    private func dropsInTheFourthSecond(flow: UInt32?) -> Int {
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        for tag in UInt32(1)...300 { enqueue(queue, tag, flow: flow, length: 1000, now: 0) }
        var drops: [UInt32] = []
        var dropsAtThree = 0
        for step in 1...128 {
            XCTAssertNotNil(dequeueTag(queue, now: Double(step) / 32, drops: &drops))
            if step == 96 { dropsAtThree = drops.count }
        }
        XCTAssertEqual(queue.codelDrops, UInt64(drops.count))
        return drops.count - dropsAtThree
    }

    /// A flow that stays above target however much is dropped from it (BBR v1) loses a
    /// packet every interval/2 once the count reaches 4, not ever faster: unbounded, the
    /// law would drop 29 in the fourth second here, 0.25/√count apart.
    func testCoDelDropsNoFasterThanTwicePerIntervalFromAFlowThatDoesNotSlowDown() {
        XCTAssertEqual(dropsInTheFourthSecond(flow: 1), 8, "a drop every 0.125 s")
        XCTAssertEqual(BondQueue.controlLaw(1, count: 100, interval: 0.25, capped: true), 1.125)
        XCTAssertEqual(BondQueue.controlLaw(1, count: 1, interval: 0.25, capped: true), 1.25)
    }

    /// What is not IP (TAP frames) shares one queue whose senders cannot be told apart:
    /// there the drops speed up as RFC 8289's law says, however many it takes.
    func testCoDelKeepsTheUnboundedLawForTheSharedQueueOfWhatIsNotIP() {
        XCTAssertEqual(dropsInTheFourthSecond(flow: nil), 29)
        XCTAssertEqual(BondQueue.controlLaw(1, count: 100, interval: 0.25, capped: false), 1.025)
    }

    /// Not IP and IP flows do not share a queue: a frame goes first beside a bulk flow.
    func testWhatIsNotIPHasAQueueOfItsOwn() {
        let queue = makeQueue()
        for tag in UInt32(1)...3 { enqueue(queue, tag, flow: 0, length: 1500) }
        enqueue(queue, 100, flow: nil)
        XCTAssertEqual(drain(queue), [1, 2, 100, 3], "one bucket would have sent 1, 2, 3 first")
    }

    /// A 1000-byte IPv4 packet with ECN field `ecn` whose source address is `tag`.
    private func ipv4(_ tag: UInt32, ecn: UInt8) -> Packet {
        var bytes = [UInt8](repeating: 0, count: 1000)
        bytes[0] = 0x45
        bytes[1] = ecn
        bytes[2] = 0x03
        bytes[3] = 0xe8
        bytes[8] = 64
        bytes[9] = 6
        for index in 0..<4 { bytes[12 + index] = UInt8(truncatingIfNeeded: tag >> (24 - 8 * index)) }
        return packets.make(bytes)
    }

    /// Dequeues one packet at `now`: its source-address tag and ECN field.
    private func dequeueIPv4(_ queue: BondQueue, now: Double, drops: inout Int) -> (tag: UInt32, ecn: UInt8)? {
        guard let (packet, slot) = queue.dequeue(now: now, dropped: { _ in drops += 1 }) else { return nil }
        defer { queue.free(slot) }
        let tag = (12..<16).reduce(UInt32(0)) { $0 << 8 | UInt32(packet.byte(at: $1)) }
        return (tag, packet.byte(at: 1) & 0x03)
    }

    func testCoDelMarksECNCapablePacketsInsteadOfDroppingThem() {
        // The schedule of testCoDelDropsFromHead…, with ECT(0) packets: where that test
        // drops its first two, this one sends 4 and 6 on marked CE, and nothing is lost.
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        for tag in UInt32(1)...20 { XCTAssertTrue(queue.enqueue(ipv4(tag, ecn: 0x02), flowKey: 1, now: 0)) }
        var drops = 0
        let sent = [0.03125, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75].compactMap { dequeueIPv4(queue, now: $0, drops: &drops) }
        XCTAssertEqual(sent.map(\.tag), [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(sent.map(\.ecn), [2, 2, 2, 3, 2, 3, 2], "4 and 6 marked: the first signal after an interval above target, then the control law's next")
        XCTAssertEqual(drops, 0)
        XCTAssertEqual(queue.codelDrops, 0)
        XCTAssertEqual(queue.ecnMarks, 2)
        // At 1.5 two signals are due (the next at ≈ 0.8018, then ≈ 0.9462): one mark per
        // dequeue, as Linux's codel_dequeue; the other is the next dequeue's.
        let late = [1.5, 1.5].compactMap { dequeueIPv4(queue, now: $0, drops: &drops) }
        XCTAssertEqual(late.map(\.tag), [8, 9])
        XCTAssertEqual(late.map(\.ecn), [3, 3])
        XCTAssertEqual(drops, 0)
        XCTAssertEqual(queue.ecnMarks, 4)
    }

    func testCoDelDropsWhatIsNotECNCapableAndEverythingWithECNOff() {
        for (ecnSetting, ecnField) in [(true, UInt8(0)), (false, UInt8(2))] {
            let queue = BondQueue(settings: BondQueue.Settings(limit: 64, codelTarget: 0.0625, codelInterval: 0.25, ecn: ecnSetting),
                                  slotSize: 2048, headroom: 16, tailroom: 16)
            for tag in UInt32(1)...20 { queue.enqueue(ipv4(tag, ecn: ecnField), flowKey: 1, now: 0) }
            var drops = 0
            let sent = [0.03125, 0.125, 0.25, 0.375].compactMap { dequeueIPv4(queue, now: $0, drops: &drops) }
            XCTAssertEqual(sent.map(\.tag), [1, 2, 3, 5], "ecn \(ecnSetting), field \(ecnField)")
            XCTAssertEqual(sent.map(\.ecn), [UInt8](repeating: ecnField, count: 4))
            XCTAssertEqual(drops, 1)
            XCTAssertEqual(queue.ecnMarks, 0)
        }
    }

    func testCoDelStopsDroppingWhenSojournFallsBelowTarget() {
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        for tag in UInt32(1)...6 { enqueue(queue, tag, flow: 1, length: 1000, now: 0) }
        var drops: [UInt32] = []
        XCTAssertEqual(dequeueTag(queue, now: 0.125, drops: &drops), 1)
        XCTAssertEqual(dequeueTag(queue, now: 0.375, drops: &drops), 3)
        XCTAssertEqual(drops, [2])
        // Fresh packets behind the old ones.
        for tag in UInt32(7)...12 { enqueue(queue, tag, flow: 1, length: 1000, now: 1.0) }
        // At 1.0: 4 waited 1 s (drop time 0.625 passed): dropped; 5 too (next drop ≈ 0.80); 6 too
        // (≈ 0.95); 7 waited nothing: dropping stops and 7 is sent.
        XCTAssertEqual(dequeueTag(queue, now: 1.0, drops: &drops), 7)
        XCTAssertEqual(drops, [2, 4, 5, 6])
        // Not dropping any more, and below target: the rest goes.
        XCTAssertEqual(drain(queue, now: 1.03125), [8, 9, 10, 11, 12])
        XCTAssertEqual(queue.codelDrops, 4)
    }

    func testCoDelLeavesAFlowsLastPacketAlone() {
        let queue = makeQueue(target: 0.0625, interval: 0.25)
        enqueue(queue, 1, flow: 1, length: 1000, now: 0)
        enqueue(queue, 2, flow: 1, length: 1000, now: 0)
        var drops: [UInt32] = []
        // One packet (not more than a quantum) left behind each: not a standing queue.
        XCTAssertEqual(dequeueTag(queue, now: 1, drops: &drops), 1)
        XCTAssertEqual(dequeueTag(queue, now: 2, drops: &drops), 2)
        XCTAssertEqual(drops, [])
        XCTAssertEqual(queue.codelDrops, 0)
    }

    // MARK: overflow and slots

    func testFullQueueDropsHeadOfLongestFlow() {
        let queue = makeQueue(limit: 4)
        enqueue(queue, 10, flow: 2, length: 100)
        for tag in UInt32(1)...3 { enqueue(queue, tag, flow: 5, length: 100) }
        XCTAssertEqual(queue.count, 4)
        var evicted: [UInt32] = []
        XCTAssertTrue(queue.enqueue(packet(11, length: 100), flowKey: 2, now: 0) { evicted.append(testTag(of: $0)) },
                      "room made in the longest flow, not this one")
        XCTAssertEqual(evicted, [1], "the evicted head is handed out, so the session counts it")
        XCTAssertEqual(queue.overflowDrops, 1)
        XCTAssertEqual(queue.count, 4)
        XCTAssertEqual(queue.bytes, 400)
        XCTAssertEqual(drain(queue), [10, 11, 2, 3], "flow 5 lost its head (1)")
        XCTAssertEqual(queue.codelDrops, 0)
    }

    func testLongestFlowIsCountedInBytes() {
        let queue = makeQueue(limit: 4)
        for tag in UInt32(1)...3 { enqueue(queue, tag, flow: 5, length: 100) }
        enqueue(queue, 10, flow: 9, length: 1000)
        XCTAssertTrue(enqueue(queue, 4, flow: 5, length: 100))
        XCTAssertEqual(queue.overflowDrops, 1)
        XCTAssertEqual(queue.bytes, 400)
        XCTAssertEqual(drain(queue), [1, 2, 3, 4], "flow 9 (1000 bytes) lost its only packet")
    }

    func testPacketLargerThanASlotIsRefused() {
        // 992 bytes between the headroom and the tailroom (the stages after the queue
        // prepend headers and append the AEAD tag in place)
        let queue = makeQueue(limit: 4, slotSize: 1024)
        XCTAssertTrue(enqueue(queue, 1, flow: 1, length: 992))
        XCTAssertFalse(enqueue(queue, 2, flow: 1, length: 993))
        XCTAssertEqual(queue.overflowDrops, 1)
        XCTAssertEqual(queue.count, 1)
        XCTAssertEqual(drain(queue), [1])
    }

    func testSlotsAreFreedAndReused() {
        let queue = makeQueue(limit: 2)
        enqueue(queue, 1, flow: 1)
        enqueue(queue, 2, flow: 2)
        guard let (first, firstSlot) = queue.dequeue(now: 0, dropped: { _ in XCTFail() }),
              let (second, secondSlot) = queue.dequeue(now: 0, dropped: { _ in XCTFail() }) else {
            return XCTFail("two packets queued")
        }
        XCTAssertEqual(testTag(of: first), 1)
        XCTAssertEqual(testTag(of: second), 2)
        XCTAssertTrue(queue.isEmpty)
        // Both slots are still out (being sent): nothing to make room from.
        XCTAssertFalse(enqueue(queue, 3, flow: 3))
        XCTAssertEqual(queue.overflowDrops, 1)
        XCTAssertEqual(testTag(of: first), 1, "a released packet is not overwritten while out")
        XCTAssertEqual(testTag(of: second), 2)
        queue.free(secondSlot)
        XCTAssertTrue(enqueue(queue, 4, flow: 3))
        XCTAssertTrue(enqueue(queue, 5, flow: 3), "full again: flow 3's head (4) makes room for 5")
        XCTAssertEqual(queue.overflowDrops, 2)
        queue.free(firstSlot)
        XCTAssertTrue(enqueue(queue, 6, flow: 4))
        XCTAssertEqual(queue.overflowDrops, 2)
        XCTAssertEqual(drain(queue), [5, 6])
        // Every slot back: the queue takes its limit again without a drop.
        XCTAssertTrue(enqueue(queue, 7, flow: 1))
        XCTAssertTrue(enqueue(queue, 8, flow: 1))
        XCTAssertEqual(queue.overflowDrops, 2)
        XCTAssertEqual(drain(queue), [7, 8])
    }

    func testTrimIfIdleOnlyAfterFiveSecondsEmpty() {
        let queue = makeQueue(limit: 4)
        enqueue(queue, 1, flow: 1, now: 10)
        queue.trimIfIdle(now: 100)
        XCTAssertTrue(queue.hasStorage, "never while packets are queued")
        guard let (_, slot) = queue.dequeue(now: 11, dropped: { _ in XCTFail() }) else { return XCTFail("one queued") }
        queue.trimIfIdle(now: 100)
        XCTAssertTrue(queue.hasStorage, "never while a released packet is out")
        queue.free(slot)
        queue.trimIfIdle(now: 11 + BondQueue.idleTrim)
        XCTAssertTrue(queue.hasStorage, "empty exactly 5 s: not yet")
        queue.trimIfIdle(now: 11 + BondQueue.idleTrim + 0.5)
        XCTAssertFalse(queue.hasStorage)
        XCTAssertEqual(queue.codelDrops, 0)
        // Queueing again after a trim allocates anew.
        XCTAssertTrue(enqueue(queue, 2, flow: 1, now: 20))
        XCTAssertTrue(queue.hasStorage)
        XCTAssertEqual(drain(queue, now: 20), [2])
    }

    // MARK: pacer

    /// A new (down) path on a loopback UDP link with a delivery rate of `rate` B/s.
    private func makePath(_ name: String, index: Int, rate: Double, up: Bool, fallback: Bool = false) throws -> BondPath {
        let bind = try XCTUnwrap(SocketAddress.parse("127.0.0.1:0"))
        let remote = try XCTUnwrap(SocketAddress.parse("127.0.0.1:9"))
        let link = try UDPLink(name: name, index: index, bind: bind, remote: nil, device: nil, settings: Settings(), batchSize: 1)
        let path = BondPath(name: name, link: link, remote: remote, fallbackOnly: fallback, tolerances: PathHealth.Tolerances(),
                            bandwidthHint: rate, now: 0)
        XCTAssertEqual(path.tier, BondPath.unusable)
        if up {
            let id = path.health.probeSent(now: 0)
            XCTAssertEqual(path.health.echoReceived(id: id, sentAt: 0, now: 0.02), .up)
        }
        return path
    }

    /// Confirms the path's rate at what it is: one sample queued at both ends.
    private func confirm(_ path: BondPath) {
        let rate = path.rate.estimate
        path.rate.echo(receivedBytes: 0, at: 0, queued: true, now: 0)
        path.rate.noteSent(Int(rate * 0.125))
        path.rate.echo(receivedBytes: UInt64(rate * 0.125), at: 0.125, queued: true, now: 0.125)
        XCTAssertTrue(path.rate.confirmed)
        XCTAssertEqual(path.rate.estimate, rate)
    }

    // 1.28 MB/s: 1/256 s is 5000 bytes. At 1.03125 (phase 2) neither of two paths probes.
    private static let now = 1.03125
    private static let linkQueue = 1.0 / 128

    func testRoomIsWhatTheBestTierTakesUpToLinkQueue() throws {
        let a = try makePath("a", index: 0, rate: 1_280_000, up: true)
        let b = try makePath("b", index: 1, rate: 1_280_000, up: true)
        confirm(a)
        confirm(b)
        XCTAssertEqual(SchedulerStage.probeAllowance(of: 0, count: 2, now: Self.now, linkQueue: Self.linkQueue, backlogged: false), 0)
        XCTAssertEqual(SchedulerStage.probeAllowance(of: 1, count: 2, now: Self.now, linkQueue: Self.linkQueue, backlogged: false), 0)
        XCTAssertEqual(BondPacer.room([a], now: Self.now, linkQueue: Self.linkQueue), 10_000, "idle: the whole link queue")
        a.freeAt = Self.now + 1.0 / 256
        XCTAssertEqual(BondPacer.room([a], now: Self.now, linkQueue: Self.linkQueue), 5_000)
        XCTAssertEqual(BondPacer.room([a, b], now: Self.now, linkQueue: Self.linkQueue), 15_000)
        a.freeAt = Self.now + Self.linkQueue
        XCTAssertEqual(BondPacer.room([a], now: Self.now, linkQueue: Self.linkQueue), 0, "backlog at the link queue")
        a.freeAt = Self.now + 0.5
        XCTAssertEqual(BondPacer.room([a], now: Self.now, linkQueue: Self.linkQueue), 0, "backlog above it")
        XCTAssertEqual(BondPacer.room([a, b], now: Self.now, linkQueue: Self.linkQueue), 10_000, "only b has room")
        b.freeAt = Self.now + Self.linkQueue
        XCTAssertEqual(BondPacer.room([a, b], now: Self.now, linkQueue: Self.linkQueue), 0)
    }

    func testAProbingPathMayHoldTwiceTheLinkQueue() throws {
        let a = try makePath("a", index: 0, rate: 1_280_000, up: true)
        let b = try makePath("b", index: 1, rate: 1_280_000, up: true)
        confirm(a)
        confirm(b)
        let probing = 0.8125  // phase 0: path 0 probes
        XCTAssertEqual(BondPacer.room([a, b], now: probing, linkQueue: Self.linkQueue), 30_000, "a: 2 × 10 000, b: 10 000")
        a.freeAt = probing + Self.linkQueue
        XCTAssertEqual(BondPacer.room([a, b], now: probing, linkQueue: Self.linkQueue), 20_000,
                       "a full link queue still leaves a the probe's")
    }

    func testRoomIsUnlimitedWhileABestTierRateIsUnconfirmed() throws {
        let a = try makePath("a", index: 0, rate: 1_280_000, up: true)
        let b = try makePath("b", index: 1, rate: 1_280_000, up: true)
        confirm(a)
        XCTAssertFalse(b.rate.confirmed)
        XCTAssertEqual(BondPacer.room([b], now: Self.now, linkQueue: Self.linkQueue), Int.max)
        b.freeAt = Self.now + 1
        XCTAssertEqual(BondPacer.room([b], now: Self.now, linkQueue: Self.linkQueue), Int.max, "even with a backlog")
        a.freeAt = Self.now + Self.linkQueue
        XCTAssertEqual(BondPacer.room([a, b], now: Self.now, linkQueue: Self.linkQueue), Int.max)
    }

    func testRoomCountsOnlyTheBestTier() throws {
        let normal = try makePath("normal", index: 0, rate: 1_280_000, up: true)
        let fallback = try makePath("fallback", index: 1, rate: 1_280_000, up: true, fallback: true)
        confirm(normal)
        XCTAssertEqual(normal.tier, 0)
        XCTAssertEqual(fallback.tier, 2)
        XCTAssertFalse(fallback.rate.confirmed)
        normal.freeAt = Self.now + 1.0 / 256
        XCTAssertEqual(BondPacer.room([normal, fallback], now: Self.now, linkQueue: Self.linkQueue), 5_000,
                       "the unconfirmed fallback path is not in the best tier")
        // The normal path goes down: the fallback tier is the best, and unconfirmed.
        XCTAssertEqual(normal.health.tick(now: 1.0), .down)
        XCTAssertEqual(BondPacer.room([normal, fallback], now: Self.now, linkQueue: Self.linkQueue), Int.max)
    }

    func testRoomIsNilWithNoUsablePath() throws {
        let never = try makePath("never", index: 0, rate: 1_280_000, up: false)
        let lost = try makePath("lost", index: 1, rate: 1_280_000, up: true)
        confirm(lost)
        XCTAssertEqual(lost.health.tick(now: 1.0), .down)  // silent since 0.02
        XCTAssertEqual(lost.tier, BondPath.unusable)
        XCTAssertNil(BondPacer.room([never, lost], now: Self.now, linkQueue: Self.linkQueue))
        XCTAssertNil(BondPacer.room([], now: Self.now, linkQueue: Self.linkQueue))
    }

    func testNextTurnIsWhenTheFirstPathIsDownToHalfItsQueue() throws {
        let a = try makePath("a", index: 0, rate: 1_280_000, up: true)
        let b = try makePath("b", index: 1, rate: 1_280_000, up: true)
        a.freeAt = Self.now + Self.linkQueue
        b.freeAt = Self.now + Self.linkQueue / 4 * 3
        XCTAssertEqual(BondPacer.nextTurn([a, b], now: Self.now, linkQueue: Self.linkQueue), Self.now + Self.linkQueue / 4)
        b.freeAt = Self.now
        XCTAssertEqual(BondPacer.nextTurn([a, b], now: Self.now, linkQueue: Self.linkQueue), Self.now, "not before now")
    }

    // MARK: delivery rate

    func testRateIsConfirmedOnlyBySampleQueuedAtBothEnds() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: true, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 100_000, at: 0.125, queued: false, now: 0.125)  // queued at the start only
        XCTAssertEqual(rate.estimate, 800_000)
        XCTAssertFalse(rate.confirmed)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 200_000, at: 0.25, queued: true, now: 0.25)  // at the end only
        XCTAssertEqual(rate.estimate, 800_000)
        XCTAssertFalse(rate.confirmed)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 287_500, at: 0.375, queued: true, now: 0.375)  // at both ends
        XCTAssertEqual(rate.estimate, 700_000, "the queued sample is the estimate")
        XCTAssertTrue(rate.confirmed)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 387_500, at: 0.5, queued: false, now: 0.5)
        XCTAssertTrue(rate.confirmed, "stays confirmed")
    }

    func testRateIsNotConfirmedByASampleTooShortOrApplicationLimited() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: true, now: 0)
        rate.echo(receivedBytes: 50_000, at: 0.0625, queued: true, now: 0.0625)  // shorter than a sample span
        XCTAssertFalse(rate.confirmed)
        rate.noteSent(1_000)  // far below 90 % of the estimate, and a lower rate: not a sample
        rate.echo(receivedBytes: 100_000, at: 0.125, queued: true, now: 0.125)
        XCTAssertFalse(rate.confirmed)
        XCTAssertEqual(rate.estimate, 1_000_000)
    }

    // MARK: reorder buffer, urgent packets

    private final class Delivered {
        var tags: [UInt32] = []
    }

    private func makeBuffer(into delivered: Delivered) -> ReorderBuffer {
        ReorderBuffer(capacity: 64, slotSize: 128, headroom: 16, tailroom: 0) { batch in
            for index in 0..<batch.count { delivered.tags.append(testTag(of: batch[index])) }
        }
    }

    func testUrgentPacketGoesAheadOfAGapAndNextStepsOverIt() {
        let delivered = Delivered()
        let buffer = makeBuffer(into: delivered)
        func accept(_ sequence: UInt32, urgent: Bool = false, wait: Double = 0) -> ReorderBuffer.Verdict {
            buffer.accept(packets.tagged(sequence), sequence: sequence, path: nil, wait: wait, urgent: urgent, now: 1)
        }
        XCTAssertEqual(accept(0), .deliver)
        XCTAssertEqual(accept(2), .held)
        XCTAssertEqual(accept(3, urgent: true), .deliver, "urgent: not behind the gap at 1")
        XCTAssertEqual(buffer.counters.early, 1)
        XCTAssertEqual(buffer.next, 1)
        XCTAssertEqual(buffer.heldCount, 1)
        XCTAssertEqual(accept(3, urgent: true), .duplicate, "a second copy while still ahead")
        XCTAssertEqual(buffer.counters.duplicate, 1)
        XCTAssertEqual(accept(1), .deliver)
        // 1, then held 2, then over 3 (delivered early): next is 4.
        XCTAssertEqual(buffer.next, 4)
        XCTAssertEqual(buffer.heldCount, 0)
        XCTAssertEqual(accept(3), .duplicate, "a second copy once behind")
        XCTAssertEqual(buffer.counters.duplicate, 2)
        XCTAssertEqual(accept(4), .deliver)
        XCTAssertEqual(buffer.next, 5)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 3, 1, 2, 4])
        XCTAssertEqual(buffer.counters.inOrder, 3)
        XCTAssertEqual(buffer.counters.held, 1)
        XCTAssertEqual(buffer.counters.early, 1)
        XCTAssertEqual(buffer.counters.late, 0)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
        XCTAssertEqual(buffer.counters.releasedAsLost, 0)
        XCTAssertEqual(buffer.counters.overflow, 0)
    }

    func testInOrderPacketStepsOverFollowingEarlyPackets() {
        let delivered = Delivered()
        let buffer = makeBuffer(into: delivered)
        func accept(_ sequence: UInt32, urgent: Bool = false) -> ReorderBuffer.Verdict {
            buffer.accept(packets.tagged(sequence), sequence: sequence, path: nil, urgent: urgent, now: 1)
        }
        XCTAssertEqual(accept(10), .deliver)
        XCTAssertEqual(accept(12, urgent: true), .deliver)
        XCTAssertEqual(accept(13, urgent: true), .deliver)
        XCTAssertEqual(buffer.next, 11)
        XCTAssertEqual(buffer.heldCount, 0)
        XCTAssertEqual(accept(11), .deliver)
        XCTAssertEqual(buffer.next, 14, "over 12 and 13, not a gap")
        XCTAssertEqual(accept(14), .deliver)
        XCTAssertEqual(accept(12), .duplicate)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [10, 12, 13, 11, 14])
        XCTAssertEqual(buffer.counters.early, 2)
        XCTAssertEqual(buffer.counters.inOrder, 3)
        XCTAssertEqual(buffer.counters.duplicate, 1)
    }

    func testUrgentPacketWithAlignmentWaitIsHeld() {
        let delivered = Delivered()
        let buffer = makeBuffer(into: delivered)
        XCTAssertEqual(buffer.accept(packets.tagged(0), sequence: 0, path: nil, now: 1), .deliver)
        XCTAssertEqual(buffer.accept(packets.tagged(2), sequence: 2, path: nil, wait: 0.01, urgent: true, now: 1), .held)
        XCTAssertEqual(buffer.counters.early, 0)
        XCTAssertEqual(buffer.counters.aligned, 1)
    }
}
