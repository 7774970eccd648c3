import XCTest
@testable import Bonding
import Framework

/// What the reorder buffer handed on: each packet's tag (its sequence, written as
/// its payload) in delivery order, and how many flushes it took.
private final class Delivered {
    var tags: [UInt32] = []
    var authenticated: [Bool] = []
    var flushes = 0
}

final class ReorderBufferTests: XCTestCase {
    private var delivered: Delivered!
    private var buffer: ReorderBuffer!
    private var packets: TestPackets!

    override func setUp() {
        delivered = Delivered()
        buffer = makeBuffer(into: delivered)
        packets = TestPackets()
    }

    private func makeBuffer(capacity: Int = 64, into delivered: Delivered) -> ReorderBuffer {
        ReorderBuffer(capacity: capacity, slotSize: 128, headroom: 16, tailroom: 0) { batch in
            delivered.flushes += 1
            for index in 0..<batch.count {
                delivered.tags.append(testTag(of: batch[index]))
                delivered.authenticated.append(batch[index].authenticated)
            }
        }
    }

    /// Accepts a packet whose payload is its own sequence.
    @discardableResult
    private func accept(_ sequence: UInt32, path: Int? = nil, wait: Double = 0, now: Double = 0) -> ReorderBuffer.Verdict {
        buffer.accept(packets.tagged(sequence), sequence: sequence, path: path, wait: wait, now: now)
    }

    /// A held packet is copied into the buffer: what the crypto stage vouched for must
    /// stay vouched for (the device writer then skips its checksum check), and nothing else.
    func testAHeldPacketKeepsWhetherItWasAuthenticated() {
        accept(0)
        var early = packets.tagged(2)
        early.authenticated = true
        XCTAssertEqual(buffer.accept(early, sequence: 2, path: nil, wait: 0, now: 0), .held)
        XCTAssertEqual(buffer.accept(packets.tagged(3), sequence: 3, path: nil, wait: 0, now: 0), .held)
        accept(1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2, 3])
        XCTAssertEqual(delivered.authenticated, [false, false, true, false])
    }

    func testCapacityRoundsUpToPowerOfTwoOfAtLeast64() {
        let delivered = Delivered()
        XCTAssertEqual(makeBuffer(capacity: 10, into: delivered).capacity, 64)
        XCTAssertEqual(makeBuffer(capacity: 65, into: delivered).capacity, 128)
        XCTAssertEqual(makeBuffer(capacity: 256, into: delivered).capacity, 256)
    }

    /// Packet memory is made where packets are held, 64 slots at a time, and given
    /// back after `idleTrim` seconds with nothing held: idle sessions hold none.
    func testSlotMemoryIsMadeOnDemandAndTrimmedWhenIdle() {
        let delivered = Delivered()
        buffer = makeBuffer(capacity: 256, into: delivered)
        for sequence in UInt32(0)..<10 { accept(sequence, now: 1) }
        XCTAssertEqual(buffer.allocatedChunks, 0, "in-order packets are never copied")
        XCTAssertEqual(accept(12, now: 1), .held)
        XCTAssertEqual(buffer.allocatedChunks, 1)
        XCTAssertEqual(accept(100, now: 1), .held, "sequence 100 is in the second chunk of 64")
        XCTAssertEqual(buffer.allocatedChunks, 2)
        buffer.trimIfIdle(now: 100)
        XCTAssertEqual(buffer.allocatedChunks, 2, "never while packets are held")
        for sequence in UInt32(10)..<101 where sequence != 12 && sequence != 100 { accept(sequence, now: 2) }
        XCTAssertEqual(buffer.heldCount, 0)
        buffer.trimIfIdle(now: 3)
        XCTAssertEqual(buffer.allocatedChunks, 2, "released packets may still be on their way out")
        buffer.finish()
        XCTAssertEqual(delivered.tags, Array(UInt32(0)..<101))
        buffer.trimIfIdle(now: 1 + ReorderBuffer.idleTrim - 0.5)
        XCTAssertEqual(buffer.allocatedChunks, 2, "held \(ReorderBuffer.idleTrim - 0.5) s ago: not idle yet")
        buffer.trimIfIdle(now: 1 + ReorderBuffer.idleTrim)
        XCTAssertEqual(buffer.allocatedChunks, 0)
        XCTAssertEqual(accept(102, now: 10), .held, "holding again after a trim works")
        XCTAssertEqual(buffer.allocatedChunks, 1)
        accept(101, now: 10)
        buffer.finish()
        XCTAssertEqual(delivered.tags.suffix(2), [101, 102])
    }

    func testInOrderPacketsPassThroughAndFlushOnlyOnFinish() {
        XCTAssertEqual(accept(10), .deliver)
        XCTAssertEqual(accept(11), .deliver)
        XCTAssertEqual(accept(12), .deliver)
        XCTAssertEqual(buffer.counters.inOrder, 3)
        XCTAssertEqual(buffer.counters.held, 0)
        XCTAssertEqual(buffer.next, 13)
        XCTAssertEqual(delivered.tags, [], "nothing is handed on before finish")
        XCTAssertEqual(buffer.output.count, 3)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [10, 11, 12])
        XCTAssertEqual(delivered.flushes, 1)
        XCTAssertEqual(buffer.output.count, 0)
        buffer.finish()
        XCTAssertEqual(delivered.flushes, 1, "an empty output is not flushed")
    }

    func testFullOutputIsFlushedWithoutFinish() {
        packets = TestPackets(capacity: 400, slotSize: 64)
        for sequence in UInt32(0)..<300 { accept(sequence) }
        XCTAssertEqual(delivered.flushes, 1)
        XCTAssertEqual(delivered.tags, Array(UInt32(0)..<256))
        buffer.finish()
        XCTAssertEqual(delivered.tags, Array(UInt32(0)..<300))
        XCTAssertEqual(buffer.counters.inOrder, 300)
    }

    func testPacketAheadOfGapIsHeldAndReleasedWhenGapFills() {
        XCTAssertEqual(accept(0), .deliver)
        XCTAssertEqual(accept(2), .held)
        XCTAssertEqual(accept(3), .held)
        XCTAssertEqual(buffer.heldCount, 2)
        XCTAssertEqual(buffer.next, 1)
        XCTAssertEqual(accept(1), .deliver)
        XCTAssertEqual(buffer.heldCount, 0)
        XCTAssertEqual(buffer.next, 4)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2, 3])
        XCTAssertEqual(buffer.counters.inOrder, 2)
        XCTAssertEqual(buffer.counters.held, 2)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
        XCTAssertEqual(buffer.counters.releasedAsLost, 0)
    }

    func testHeldPacketIsCopiedSoTheReceivedSlotMayBeReused() {
        // From a batch that does not lend, and from a lender whose slots it is not in.
        let other = TestPackets()
        other.batch.lendsSlots = true
        for lender in [nil, other.batch] {
            setUp()
            accept(0)
            let ahead = packets.tagged(2)
            XCTAssertEqual(buffer.accept(ahead, sequence: 2, path: nil, now: 0, lender: lender), .held)
            XCTAssertEqual(buffer.counters.heldInPlace, 0)
            testPoke(ahead, 3, 0xEE)  // the receive slot is refilled after the batch
            accept(1)
            buffer.finish()
            XCTAssertEqual(delivered.tags, [0, 1, 2])
        }
    }

    func testAPacketFromALendingBatchIsHeldInPlaceUntilTheGapFills() {
        packets.batch.lendsSlots = true
        accept(0)
        let ahead = packets.tagged(2)
        XCTAssertEqual(buffer.accept(ahead, sequence: 2, path: nil, now: 0, lender: packets.batch), .held)
        XCTAssertEqual(buffer.counters.heldInPlace, 1)
        accept(1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2])
        XCTAssertEqual(buffer.allocatedChunks, 1)
        packets.batch.reset()  // the next read: nothing is held any more, nothing to copy
        XCTAssertEqual(buffer.counters.copiedAtRefill, 0)
    }

    func testAPacketStillHeldWhenItsBatchIsRefilledIsCopiedFirst() {
        packets.batch.lendsSlots = true
        accept(0)
        let ahead = packets.tagged(2)
        let later = packets.tagged(3)
        XCTAssertEqual(buffer.accept(ahead, sequence: 2, path: nil, now: 0, lender: packets.batch), .held)
        XCTAssertEqual(buffer.accept(later, sequence: 3, path: nil, now: 0, lender: packets.batch), .held)
        buffer.finish()  // the end of the pass, as the stage does
        packets.batch.reset()  // about to be read into again: the held packets move out first
        XCTAssertEqual(buffer.counters.copiedAtRefill, 2)
        testPoke(ahead, 3, 0xEE)  // the refill overwrites the slots
        testPoke(later, 3, 0xEE)
        accept(1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2, 3], "the copies, not the refilled slots")
        // A second refill finds nothing of this buffer's left to copy.
        packets.batch.lend(to: buffer)
        packets.batch.reset()
        XCTAssertEqual(buffer.counters.copiedAtRefill, 2)
    }

    func testARefillOfOneBatchKeepsWhatIsStillHeldOfAnother() {
        let first = packets!, second = TestPackets()
        first.batch.lendsSlots = true
        second.batch.lendsSlots = true
        accept(0)
        // 2 from the first read, 4 from the second, both waiting for 1 and 3.
        let two = first.tagged(2), four = second.tagged(4)
        XCTAssertEqual(buffer.accept(two, sequence: 2, path: nil, now: 0, lender: first.batch), .held)
        XCTAssertEqual(buffer.accept(four, sequence: 4, path: nil, now: 0, lender: second.batch), .held)
        accept(1)  // 2 goes: its entry is stale now
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2])
        second.batch.reset()  // the second read is refilled: 4 moves out
        XCTAssertEqual(buffer.counters.copiedAtRefill, 1)
        testPoke(four, 3, 0xEE)
        let five = first.tagged(5)
        XCTAssertEqual(buffer.accept(five, sequence: 5, path: nil, now: 0, lender: first.batch), .held)
        second.batch.reset()  // nothing of the second read is held any more
        first.batch.reset()   // 5, still held, moves out; the released 2 is not copied
        XCTAssertEqual(buffer.counters.copiedAtRefill, 2)
        testPoke(five, 3, 0xEE)
        accept(3)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2, 3, 4, 5], "the copies, not the refilled slots")
    }

    func testASlotHeldInPlaceThenByCopyUsesItsOwnMemory() {
        packets.batch.lendsSlots = true
        accept(0)
        let first = packets.tagged(2)
        XCTAssertEqual(buffer.accept(first, sequence: 2, path: nil, now: 0, lender: packets.batch), .held)
        accept(1)
        buffer.finish()
        // Sequence 66 has the buffer's slot 2 (capacity 64), now held by a copy.
        for sequence in UInt32(3)..<65 { accept(sequence) }
        let ahead = packets.tagged(66)
        XCTAssertEqual(buffer.accept(ahead, sequence: 66, path: nil, now: 0), .held)
        XCTAssertEqual(testTag(of: first), 2, "the copy went to the buffer's own slot, not the lender's")
        testPoke(ahead, 3, 0xEE)
        accept(65)
        buffer.finish()
        XCTAssertEqual(Array(delivered.tags.suffix(2)), [65, 66])
    }

    func testDuplicateOfHeldPacketIsDropped() {
        accept(0)
        XCTAssertEqual(accept(2), .held)
        XCTAssertEqual(accept(2), .duplicate)
        XCTAssertEqual(buffer.counters.duplicate, 1)
        XCTAssertEqual(buffer.counters.held, 1)
        XCTAssertEqual(buffer.heldCount, 1)
        accept(1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2])
    }

    func testDuplicateOfDeliveredPacketIsDropped() {
        accept(0)
        accept(1)
        XCTAssertEqual(accept(0), .duplicate)
        XCTAssertEqual(accept(1), .duplicate)
        XCTAssertEqual(buffer.counters.duplicate, 2)
        XCTAssertEqual(buffer.counters.late, 0)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1])
    }

    func testHeldGapIsReleasedByTimeoutAtHoldTime() {
        accept(0, now: 2.0)
        XCTAssertEqual(accept(2, now: 2.0), .held)
        XCTAssertEqual(buffer.nextWake(holdTime: 0.25), 2.25)

        buffer.releaseDue(now: 2.2, holdTime: 0.25)
        XCTAssertEqual(delivered.tags, [0], "in-order packets are handed on, the gap still waits")
        XCTAssertEqual(buffer.heldCount, 1)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)

        buffer.releaseDue(now: 2.25, holdTime: 0.25)
        XCTAssertEqual(delivered.tags, [0, 2])
        XCTAssertEqual(buffer.heldCount, 0)
        XCTAssertNil(buffer.nextWake(holdTime: 0.25))
        XCTAssertEqual(buffer.counters.releasedByTimeout, 1)
        XCTAssertEqual(buffer.counters.releasedAsLost, 0)
        XCTAssertEqual(buffer.next, 3)
    }

    func testHoldTimeCountsFromOldestHeldArrivalNotLowestSequence() {
        accept(0, now: 2.0)
        accept(3, now: 2.0)
        accept(2, now: 2.125)
        XCTAssertEqual(buffer.nextWake(holdTime: 0.25), 2.25)
        buffer.releaseDue(now: 2.25, holdTime: 0.25)
        XCTAssertEqual(delivered.tags, [0, 2, 3])
        XCTAssertEqual(buffer.counters.releasedByTimeout, 1)
    }

    func testEveryGapOlderThanHoldTimeIsGivenUp() {
        accept(0, now: 0)
        accept(2, now: 0)  // gap at 1
        accept(4, now: 0)  // gap at 3
        accept(7, now: 0.125)  // gaps at 5, 6: held more recently
        buffer.releaseDue(now: 0.25, holdTime: 0.25)
        // Two gaps skipped: the packets at 2 and 4 had waited the hold time.
        XCTAssertEqual(delivered.tags, [0, 2, 4])
        XCTAssertEqual(buffer.counters.releasedByTimeout, 2)
        XCTAssertEqual(buffer.heldCount, 1)
        XCTAssertEqual(buffer.next, 5)
        XCTAssertEqual(buffer.nextWake(holdTime: 0.25), 0.375)
    }

    func testAfterAStallAGapIsHeldOneHoldFromTheStall() {
        accept(0, now: 2.0)
        XCTAssertEqual(accept(2, now: 2.0), .held)
        XCTAssertEqual(accept(5, now: 2.0), .held)
        // The process did not run from 2.05 to 2.2: both holds ran out meanwhile.
        buffer.stalled = 2.2
        buffer.releaseDue(now: 2.24, holdTime: 0.05)
        XCTAssertEqual(delivered.tags, [0], "no gap is given up within a hold of the stall")
        XCTAssertEqual(buffer.nextWake(holdTime: 0.05)!, 2.25, accuracy: 1e-9)
        // What the path was bringing arrives after the stall: in order, not late.
        XCTAssertEqual(accept(1, now: 2.241), .deliver)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 1, 2])
        // The gap nothing fills goes one hold after the stall.
        buffer.releaseDue(now: 2.249, holdTime: 0.05)
        XCTAssertEqual(buffer.heldCount, 1)
        buffer.releaseDue(now: 2.251, holdTime: 0.05)
        XCTAssertEqual(delivered.tags, [0, 1, 2, 5])
        XCTAssertEqual(buffer.counters.releasedByTimeout, 1)
        XCTAssertEqual(buffer.counters.late, 0)
    }

    func testLatePacketIsDeliveredAndCounted() {
        accept(0, now: 0)
        accept(2, now: 0)
        buffer.releaseDue(now: 1.0, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2])
        XCTAssertEqual(buffer.next, 3)

        XCTAssertEqual(accept(1, now: 1.1), .late)
        XCTAssertEqual(buffer.counters.late, 1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 2, 1])
        // Once delivered late it is a duplicate.
        XCTAssertEqual(accept(1, now: 1.2), .duplicate)
        XCTAssertEqual(buffer.counters.duplicate, 1)
        XCTAssertEqual(buffer.counters.late, 1)
    }

    func testGapIsReleasedAsLostWhenEveryActivePathPassedIt() {
        XCTAssertEqual(accept(0, path: 0, now: 0.000), .deliver)
        XCTAssertEqual(accept(2, path: 0, now: 0.001), .held)
        XCTAssertEqual(accept(3, path: 1, now: 0.002), .held)
        XCTAssertEqual(accept(4, path: 0, now: 0.003), .held)
        XCTAssertEqual(accept(5, path: 1, now: 0.004), .held)
        XCTAssertEqual(accept(6, path: 0, now: 0.005), .held)
        // Well within the hold time: only the known-lost rule can release the gap at 1.
        buffer.releaseDue(now: 0.01, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2, 3, 4, 5, 6])
        XCTAssertEqual(buffer.counters.releasedAsLost, 1)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
        XCTAssertEqual(buffer.heldCount, 0)
        XCTAssertEqual(buffer.next, 7)
    }

    /// 0 comes by path 1, then 2 and 4 by path 0: path 1 last brought a packet before
    /// the gap at 1, so it may still bring 1 and the gap waits.
    private func holdGapWaitingOnPath1(file: StaticString = #filePath, line: UInt = #line) {
        accept(0, path: 1, now: 0.000)
        accept(2, path: 0, now: 0.001)
        accept(4, path: 0, now: 0.002)
        buffer.releaseDue(now: 0.01, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0], file: file, line: line)
    }

    func testGapIsKeptWhileAnActivePathMayStillBringIt() {
        holdGapWaitingOnPath1()
        XCTAssertEqual(buffer.heldCount, 2)
        XCTAssertEqual(buffer.counters.releasedAsLost, 0)

        // Path 1 now brings 3: both paths are past 1, so 1 is lost; 3 fills the next gap.
        XCTAssertEqual(accept(3, path: 1, now: 0.02), .held)
        buffer.releaseDue(now: 0.03, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2, 3, 4])
        XCTAssertEqual(buffer.counters.releasedAsLost, 1)
        XCTAssertEqual(buffer.heldCount, 0)
    }

    func testAPathThatIsDownDoesNotHoldAGap() {
        holdGapWaitingOnPath1()
        // Path 1 is declared down (the link was cut): only path 0 counts, and it is past 1 and 3.
        buffer.deadPaths = 1 << 1
        buffer.releaseDue(now: 0.011, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2, 4])
        XCTAssertEqual(buffer.counters.releasedAsLost, 2)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
    }

    func testPacketAtLeastCapacityAheadForcesOldestGapsOut() {
        accept(0)
        accept(2)
        accept(3)
        // 64 ahead of next (1): the gap at 1 is given up to make room.
        XCTAssertEqual(accept(65), .held)
        XCTAssertEqual(buffer.counters.overflow, 1)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0, 2, 3])
        XCTAssertEqual(buffer.next, 4)
        XCTAssertEqual(buffer.heldCount, 1)

        buffer.releaseDue(now: 1, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2, 3, 65])
    }

    func testPacketLessThanCapacityAheadIsHeldWithoutOverflow() {
        accept(0)
        accept(2)
        XCTAssertEqual(accept(64), .held)  // 63 ahead of next (1)
        XCTAssertEqual(buffer.counters.overflow, 0)
        XCTAssertEqual(buffer.heldCount, 2)
        XCTAssertEqual(buffer.next, 1)
    }

    func testSequencesWrapAt24Bits() {
        XCTAssertEqual(accept(0xFF_FFFE), .deliver)
        XCTAssertEqual(accept(0), .held)
        XCTAssertEqual(accept(1), .held)
        XCTAssertEqual(accept(0xFF_FFFF), .deliver)
        XCTAssertEqual(buffer.next, 2)
        XCTAssertEqual(buffer.heldCount, 0)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0xFF_FFFE, 0xFF_FFFF, 0, 1])

        // Across the wrap, older sequences are behind: late if unseen, else duplicate.
        XCTAssertEqual(accept(0xFF_FFFD), .late)
        XCTAssertEqual(accept(0xFF_FFFF), .duplicate)
        XCTAssertEqual(accept(2), .deliver)
        buffer.finish()
        XCTAssertEqual(delivered.tags, [0xFF_FFFE, 0xFF_FFFF, 0, 1, 0xFF_FFFD, 2])
    }

    func testTimeoutReleaseAcrossTheWrap() {
        accept(0xFF_FFFE, now: 0)
        accept(1, now: 0)  // gaps at 0xFFFFFF and 0
        buffer.releaseDue(now: 0.5, holdTime: 0.25)
        XCTAssertEqual(delivered.tags, [0xFF_FFFE, 1])
        XCTAssertEqual(buffer.next, 2)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 1)
    }

    // MARK: sequence marks

    func testAMarkFromAnIdlePathLetsAGapGoAsLost() {
        holdGapWaitingOnPath1()
        // Path 1 carries no data, but its probe says the next data packet it would
        // have sent was 2: it has passed 1, which is therefore lost.
        buffer.marker(path: 1, nextSequence: 2, now: 0.012)
        buffer.releaseDue(now: 0.012, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2])
        XCTAssertEqual(buffer.counters.releasedAsLost, 1)
        // The gap at 3 still waits: path 1's mark (2) is not past it.
        XCTAssertEqual(buffer.next, 3)
        buffer.marker(path: 1, nextSequence: 4, now: 0.013)
        buffer.releaseDue(now: 0.013, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0, 2, 4])
        XCTAssertEqual(buffer.counters.releasedAsLost, 2)
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
    }

    func testAMarkThatIsNotPastTheGapChangesNothing() {
        holdGapWaitingOnPath1()
        buffer.marker(path: 1, nextSequence: 1, now: 0.012)  // everything before 1: nothing new
        buffer.releaseDue(now: 0.012, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0])
        XCTAssertEqual(buffer.counters.releasedAsLost, 0)
    }

    func testAPathSilentForLongerThanActiveForDoesNotHoldAGap() {
        holdGapWaitingOnPath1()
        // Path 0 keeps bringing data; path 1 was last heard at 0.
        accept(5, path: 0, now: ReorderBuffer.activeFor + 0.001)
        buffer.releaseDue(now: ReorderBuffer.activeFor + 0.001, holdTime: 10)
        XCTAssertEqual(delivered.tags, [0, 2, 4, 5])
        XCTAssertEqual(buffer.counters.releasedAsLost, 2)
    }

    // MARK: delay alignment

    func testAlignedPacketWaitsItsTimeEvenInOrder() {
        XCTAssertEqual(accept(0, path: 0, wait: 0.03, now: 1.0), .held)
        XCTAssertEqual(buffer.counters.aligned, 1)
        XCTAssertEqual(buffer.counters.inOrder, 0)
        XCTAssertEqual(buffer.nextWake(holdTime: 0.1), 1.03)
        buffer.releaseDue(now: 1.029, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [])
        buffer.releaseDue(now: 1.03, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [0])
        XCTAssertEqual(buffer.next, 1)
        XCTAssertNil(buffer.nextWake(holdTime: 0.1))
    }

    func testPacketBehindAnAlignedOneWaitsForIt() {
        // 0 came by the short path and waits 30 ms; 1, small, is not aligned but stays behind it.
        accept(0, path: 0, wait: 0.03, now: 1.0)
        XCTAssertEqual(accept(1, path: 0, now: 1.001), .held)
        XCTAssertEqual(buffer.counters.held, 1)
        buffer.releaseDue(now: 1.02, holdTime: 0.005)
        XCTAssertEqual(delivered.tags, [], "a packet waiting for its time is no gap: nothing times out")
        XCTAssertEqual(buffer.counters.releasedByTimeout, 0)
        buffer.releaseDue(now: 1.03, holdTime: 0.005)
        XCTAssertEqual(delivered.tags, [0, 1])
    }

    func testAlignedPacketFromTheShortPathMeetsTheLongPathsPacketInOrder() {
        // The long path (1) brings 11 at 1.04; the short path (0) brought 12 and 13 at
        // 1.01 and 1.011, to wait 30 ms: delivery is in order, nothing is late.
        accept(10, now: 0.9)
        buffer.marker(path: 1, nextSequence: 11, now: 1.0)  // the long path is live, 11 on its way
        accept(12, path: 0, wait: 0.03, now: 1.01)
        accept(13, path: 0, wait: 0.03, now: 1.011)
        buffer.releaseDue(now: 1.035, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [10])
        XCTAssertEqual(accept(11, path: 1, now: 1.04), .deliver)
        buffer.releaseDue(now: 1.041, holdTime: 0.1)
        XCTAssertEqual(delivered.tags, [10, 11, 12, 13])
        XCTAssertEqual(buffer.counters.late, 0)
    }

    func testGapTimeoutCountsFromWhenThePacketBehindItWasReady() {
        accept(0, now: 0)
        accept(2, wait: 0.0625, now: 0)  // gap at 1; 2 is ready at 0.0625
        XCTAssertEqual(buffer.nextWake(holdTime: 0.125), 0.1875)
        buffer.releaseDue(now: 0.15, holdTime: 0.125)
        XCTAssertEqual(delivered.tags, [0])
        buffer.releaseDue(now: 0.1875, holdTime: 0.125)
        XCTAssertEqual(delivered.tags, [0, 2])
        XCTAssertEqual(buffer.counters.releasedByTimeout, 1)
    }

    func testOverflowSendsAnAlignedPacketEarly() {
        accept(0, wait: 1, now: 0)
        XCTAssertEqual(accept(64, now: 0), .held)  // 64 ahead of next (0): 0 must go
        XCTAssertEqual(buffer.counters.overflow, 1)
        XCTAssertEqual(delivered.tags, [0])
        XCTAssertEqual(buffer.next, 1)
    }
}

extension ReorderBufferTests {
    /// A gap that every path passed is lost; the missing packets after it, which one
    /// path has not passed yet, are not (they were given up with it before: late).
    func testOnlyWhatEveryPathPassedIsGivenUpAsLost() {
        let delivered = Delivered()
        let buffer = ReorderBuffer(capacity: 64, slotSize: 128, headroom: 16, tailroom: 0) { batch in
            for index in 0..<batch.count { delivered.tags.append(testTag(of: batch[index])) }
        }
        let packets = TestPackets()
        func accept(_ sequence: UInt32, path: Int, now: Double) {
            buffer.accept(packets.tagged(sequence), sequence: sequence, path: path, now: now)
        }
        accept(0, path: 0, now: 0)
        accept(5, path: 0, now: 0.001)                       // 1 to 4 missing; path 0 passed 5
        buffer.marker(path: 1, nextSequence: 3, now: 0.002)  // path 1 sent everything before 3
        buffer.releaseDue(now: 0.002, holdTime: 1)
        XCTAssertEqual(buffer.next, 3, "1 and 2 are lost; 3 and 4 may still come by path 1")
        XCTAssertEqual(delivered.tags, [0])
        accept(3, path: 1, now: 0.003)
        accept(4, path: 1, now: 0.004)
        buffer.releaseDue(now: 0.004, holdTime: 1)
        XCTAssertEqual(delivered.tags, [0, 3, 4, 5])
        XCTAssertEqual(buffer.counters.late, 0)
        XCTAssertEqual(buffer.counters.releasedAsLost, 1)
    }
}
