import Glibc
import XCTest
@testable import Framework

final class PacketBatchTests: XCTestCase {
    // MARK: Packet

    func testPrependAndTrimFront() {
        let batch = makeBatch(capacity: 1, slotSize: 256, headroom: 32, tailroom: 16)
        batch.appendPacket([1, 2, 3, 4])
        XCTAssertEqual(batch[0].headroom, 32)
        XCTAssertEqual(batch[0].tailroom, 256 - 32 - 4)
        let header = batch[0].prepend(8)
        XCTAssertEqual(header, batch[0].base + 24)
        header?.storeBytes(of: 0xaa, as: UInt8.self)
        XCTAssertEqual(batch[0].length, 12)
        XCTAssertEqual(batch[0].byte(at: 0), 0xaa)
        XCTAssertEqual(batch[0].byte(at: 8), 1)
        // Exactly the remaining headroom fits; one byte more does not (and changes nothing).
        XCTAssertNil(batch[0].prepend(25))
        XCTAssertEqual(batch[0].offset, 24)
        XCTAssertEqual(batch[0].length, 12)
        XCTAssertEqual(batch[0].prepend(24), batch[0].base)
        XCTAssertEqual(batch[0].headroom, 0)
        XCTAssertEqual(batch[0].length, 36)
        XCTAssertNil(batch[0].prepend(1))

        XCTAssertTrue(batch[0].trimFront(32))
        XCTAssertEqual(batch[0].offset, 32)
        XCTAssertEqual(batch.bytes(0), [1, 2, 3, 4])
        XCTAssertFalse(batch[0].trimFront(5))
        XCTAssertEqual(batch[0].length, 4)
        XCTAssertTrue(batch[0].trimFront(4))
        XCTAssertEqual(batch[0].length, 0)
        XCTAssertEqual(batch[0].offset, 36)
    }

    func testAppendAndTrimBack() {
        let batch = makeBatch(capacity: 1, slotSize: 128, headroom: 32)
        batch.appendPacket([9, 8, 7])
        let tail = batch[0].append(16)
        XCTAssertEqual(tail, batch[0].base + 35)
        XCTAssertEqual(batch[0].length, 19)
        // The packet's tailroom is what is left of the slot.
        XCTAssertEqual(batch[0].tailroom, 128 - 32 - 19)
        XCTAssertNil(batch[0].append(78))
        XCTAssertEqual(batch[0].length, 19)
        XCTAssertNotNil(batch[0].append(77))
        XCTAssertEqual(batch[0].tailroom, 0)
        XCTAssertNil(batch[0].append(1))
        XCTAssertFalse(batch[0].trimBack(97))
        XCTAssertTrue(batch[0].trimBack(93))
        XCTAssertEqual(batch.bytes(0), [9, 8, 7])
        XCTAssertTrue(batch[0].trimBack(3))
        XCTAssertEqual(batch[0].length, 0)
        XCTAssertFalse(batch[0].trimBack(1))
    }

    // MARK: batch

    func testCommitResetAndNextFree() {
        let batch = makeBatch(capacity: 2, slotSize: 128, headroom: 16)
        XCTAssertTrue(batch.isEmpty)
        batch.appendPacket([1], link: 3, sequence: 10)
        batch[0].dropReason = nil
        batch.appendPacket([2, 2])
        XCTAssertEqual(batch.count, 2)
        XCTAssertNil(batch.nextFree)
        batch[0].peer = SocketAddress.parse("127.0.0.1:9")!
        batch[0].offset = 4
        batch.reset()
        XCTAssertEqual(batch.count, 0)
        XCTAssertEqual(batch.nextFree, batch.records)
        for i in 0..<2 {
            let r = batch.records[i]
            XCTAssertEqual(r.offset, 16)
            XCTAssertEqual(r.length, 0)
            XCTAssertEqual(r.link, 0)
            XCTAssertEqual(r.sequence, 0)
            XCTAssertNil(r.dropReason)
            XCTAssertFalse(r.peer.isSet)
        }
        // Slots are distinct, slotSize apart.
        XCTAssertEqual(batch.records[1].base - batch.records[0].base, 128)
    }

    func testRemoveDroppedKeepsOrderAndCounts() {
        let batch = makeBatch(capacity: 8)
        for i in 0..<8 { batch.appendPacket([UInt8(i)], sequence: UInt64(i)) }
        let counters = TrafficCounters()
        batch.dropCounters = counters
        batch.drop(1, .truncated)
        batch.drop(2, .malformed)
        batch.drop(4, .truncated)
        batch.drop(7, .unclaimed)
        batch.discard(5)  // removed, not counted
        let slotsBefore = Set(batch.allSlots)
        batch.removeDropped()
        XCTAssertEqual(batch.sequences, [0, 3, 6])
        XCTAssertEqual((0..<3).map { batch.bytes($0) }, [[0], [3], [6]])
        XCTAssertEqual(counters.drops(.truncated), 2)
        XCTAssertEqual(counters.drops(.malformed), 1)
        XCTAssertEqual(counters.drops(.unclaimed), 1)
        XCTAssertEqual(counters.drops(.oversize), 0)
        XCTAssertEqual(counters.drops(DropReason.discarded), 0)
        XCTAssertEqual(counters.dropSummary(names: DropReason.frameworkNames).map { "\($0.0)=\($0.1)" },
                       ["unclaimed=1", "truncated=2", "malformed=1"])
        // No slot lost or duplicated; the removed records are clean for reuse.
        XCTAssertEqual(Set(batch.allSlots), slotsBefore)
        XCTAssertEqual(batch.allSlots.count, 8)
        for i in 3..<8 { XCTAssertNil(batch.records[i].dropReason) }
        // Without counters nothing is counted, and nothing crashes.
        batch.dropCounters = nil
        batch.drop(0, .oversize)
        batch.removeDropped()
        XCTAssertEqual(batch.sequences, [3, 6])
        XCTAssertEqual(counters.drops(.oversize), 0)
    }

    private final class Borrower: PacketBatchBorrower {
        var told: [ObjectIdentifier] = []
        func batchWillRefill(_ batch: PacketBatch) { told.append(ObjectIdentifier(batch)) }
    }

    func testBorrowersAreToldOnceBeforeTheNextReset() {
        let batch = PacketBatch(capacity: 4, slotSize: 128, headroom: 16)
        let borrower = Borrower()
        batch.lend(to: borrower)
        batch.lend(to: borrower)  // twice in one pass: told once
        XCTAssertEqual(borrower.told, [])
        batch.reset()
        XCTAssertEqual(borrower.told, [ObjectIdentifier(batch)])
        batch.reset()
        XCTAssertEqual(borrower.told.count, 1, "forgotten after being told")
    }

    func testOnlyALendingBatchOrItsViewNamesALender() {
        let batch = PacketBatch(capacity: 4, slotSize: 128, headroom: 16)
        let view = PacketBatch(viewCapacity: 4, headroom: 16, tailroom: 0)
        XCTAssertNil(batch.lender, "a batch lends only when its owner promised to reset before refills")
        batch.lendsSlots = true
        XCTAssertTrue(batch.lender === batch)
        XCTAssertNil(view.lender)
        view.viewSource = batch.lender
        XCTAssertTrue(view.lender === batch)
    }

    func testHoldsTellsItsOwnSlotsFromOthers() {
        let batch = PacketBatch(capacity: 4, slotSize: 128, headroom: 16)
        let other = PacketBatch(capacity: 4, slotSize: 128, headroom: 16)
        XCTAssertTrue(batch.holds(batch[3]))
        XCTAssertFalse(batch.holds(other[0]))
        batch[1] = other[0]
        XCTAssertFalse(batch.holds(batch[1]))
        batch.restoreSlot(1)
        XCTAssertTrue(batch.holds(batch[1]))
        XCTAssertEqual(batch[1].offset, 16)
        XCTAssertEqual(batch[1].length, 0)
    }

    func testConsumeAllCountsNothing() {
        let batch = makeBatch(capacity: 4)
        let counters = TrafficCounters()
        batch.dropCounters = counters
        for i in 0..<3 { batch.appendPacket([UInt8(i)]) }
        batch.drop(1, .noLink)
        batch.consumeAll()
        XCTAssertEqual(batch.count, 0)
        batch.removeDropped()  // the mark went with the consumed packets
        XCTAssertEqual(counters.drops(.noLink), 0)
        XCTAssertEqual(counters.sentPackets, 0)
    }

    func testMarkingTwiceCountsOnceAndResetClearsUsedRecords() {
        let batch = makeBatch(capacity: 4)
        let counters = TrafficCounters()
        batch.dropCounters = counters
        for i in 0..<3 { batch.appendPacket([UInt8(i)], link: 2, sequence: 9) }
        batch.drop(0, .malformed)
        batch.drop(0, .truncated)  // the last reason wins, one drop
        batch.removeDropped()
        XCTAssertEqual(counters.drops(.truncated), 1)
        XCTAssertEqual(counters.drops(.malformed), 0)
        XCTAssertEqual(batch.count, 2)
        batch.reset()
        for i in 0..<3 {
            XCTAssertEqual(batch.records[i].length, 0)
            XCTAssertEqual(batch.records[i].link, 0)
            XCTAssertEqual(batch.records[i].sequence, 0)
            XCTAssertNil(batch.records[i].dropReason)
            XCTAssertFalse(batch.records[i].peer.isSet)
        }
        XCTAssertEqual(batch.byteCount, 0)
        batch.appendPacket([1, 2, 3])
        batch.appendPacket([4])
        XCTAssertEqual(batch.byteCount, 4)
    }

    // MARK: counters

    func testTrafficCounters() {
        let c = TrafficCounters()
        c.countSent(bytes: 100)
        c.countSent(bytes: 50)
        c.countReceived(bytes: 7)
        c.countDrop(.sendFailed)
        c.countDrop(DropReason(id: 9))
        XCTAssertEqual(c.sentPackets, 2)
        XCTAssertEqual(c.sentBytes, 150)
        XCTAssertEqual(c.receivedPackets, 1)
        XCTAssertEqual(c.receivedBytes, 7)
        XCTAssertEqual(c.drops(.sendFailed), 1)
        XCTAssertEqual(c.dropSummary(names: DropReason.frameworkNames + ["dscp_filtered"]).map(\.0), ["send_failed", "dscp_filtered"])
    }

    func testDropReasonTable() {
        var table = DropReasonTable()
        XCTAssertEqual(table.names, DropReason.frameworkNames)
        XCTAssertEqual(table.reason(named: "dscp_filtered"), DropReason(id: 9))
        XCTAssertEqual(table.reason(named: "replay"), DropReason(id: 10))
        XCTAssertEqual(table.reason(named: "dscp_filtered"), DropReason(id: 9))
        XCTAssertEqual(table.reason(named: "oversize"), .oversize)
        XCTAssertEqual(table.names.count, 11)
        XCTAssertEqual([DropReason.unclaimed, .truncated, .oversize, .malformed, .unknownPeer, .noRoom, .sendFailed,
                        .deviceWriteFailed, .noLink].map(\.id), Array(0...8))
    }
}
