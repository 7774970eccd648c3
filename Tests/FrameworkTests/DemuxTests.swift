import XCTest
@testable import Framework

final class DemuxTests: XCTestCase {
    final class Received {
        var items: [(bytes: [UInt8], link: String)] = []
    }

    func testClaimConflictsThrow() throws {
        let demux = Demux()
        try demux.claimData([0x40...0x4f, 0x60...0x6f], by: "stage 'tun'")
        try demux.claimControl(0x01, by: "session manager 'x'") { _, _ in }
        XCTAssertThrowsError(try demux.claimData([0x60...0x60], by: "stage 'wg'")) { error in
            XCTAssertEqual("\(error)", "stage 'wg' claims first byte 96, already claimed by stage 'tun'")
        }
        XCTAssertThrowsError(try demux.claimControl(0x4f, by: "stage 'probe'") { _, _ in }) { error in
            XCTAssertEqual("\(error)", "stage 'probe' claims first byte 79, already claimed by stage 'tun'")
        }
        XCTAssertThrowsError(try demux.claimControl(0x01, by: "stage 'probe'") { _, _ in }) { error in
            XCTAssertEqual("\(error)", "stage 'probe' claims first byte 1, already claimed by session manager 'x'")
        }
        XCTAssertThrowsError(try demux.claimData([0x00...0x01], by: "stage 'tap'")) { error in
            XCTAssertEqual("\(error)", "stage 'tap' claims first byte 1, already claimed by session manager 'x'")
        }
        XCTAssertNoThrow(try demux.claimControl(0x02, by: "stage 'probe'") { _, _ in })
    }

    func testFilterKeepsDataDispatchesControlAndDropsTheRest() throws {
        let link = try loopbackLink(name: "wan1", index: 0)
        defer { link.close() }
        let demux = Demux()
        try demux.claimData([0x40...0x4f, 0x60...0x6f], by: "stage 'tun'")
        let hellos = Received(), byes = Received()
        try demux.claimControl(0x01, by: "hello") { packet, link in hellos.items.append((packetBytes(packet), link.name)) }
        try demux.claimControl(0x02, by: "bye") { packet, link in byes.items.append((packetBytes(packet), link.name)) }

        let batch = makeBatch(capacity: 10)
        batch.appendPacket([0x45, 0, 1], sequence: 0)   // data
        batch.appendPacket([0x01, 0xaa, 0xbb], sequence: 1)  // hello
        batch.appendPacket([], sequence: 2)             // empty: truncated
        batch.appendPacket([0x60, 1], sequence: 3)      // data
        batch.appendPacket([0x99], sequence: 4)         // unclaimed
        batch.appendPacket([0x02], sequence: 5)         // bye
        batch.appendPacket([0x01, 0xcc], sequence: 6)   // hello
        batch.appendPacket([0x00, 0x45], sequence: 7)   // unclaimed
        batch.appendPacket([0x4f], sequence: 8)         // data
        batch.appendPacket([0x45, 2], sequence: 9)      // data, but already marked oversize by the receive
        batch[9].dropReason = .oversize
        let counters = TrafficCounters()
        batch.dropCounters = counters
        demux.filter(batch, link: link)

        XCTAssertEqual(batch.sequences, [0, 3, 8])
        XCTAssertEqual((0..<batch.count).map { batch.bytes($0) }, [[0x45, 0, 1], [0x60, 1], [0x4f]])
        XCTAssertEqual(hellos.items.map(\.bytes), [[0x01, 0xaa, 0xbb], [0x01, 0xcc]])
        XCTAssertEqual(hellos.items.map(\.link), ["wan1", "wan1"])
        XCTAssertEqual(byes.items.map(\.bytes), [[0x02]])
        XCTAssertEqual(counters.drops(.unclaimed), 2)
        XCTAssertEqual(counters.drops(.truncated), 1)
        XCTAssertEqual(counters.drops(.oversize), 1)
        XCTAssertEqual(counters.dropSummary(names: DropReason.frameworkNames).map(\.0), ["unclaimed", "truncated", "oversize"])
        XCTAssertEqual(Set(batch.allSlots).count, 10)
    }

    func testAllDataBatchIsUntouched() throws {
        let link = try loopbackLink(name: "wan1", index: 0)
        defer { link.close() }
        let demux = Demux()
        try demux.claimData([0x00...0xff], by: "stage 'tap'")
        let batch = makeBatch(capacity: 4)
        for i in 0..<4 { batch.appendPacket([UInt8(i * 60), 1], sequence: UInt64(i)) }
        let counters = TrafficCounters()
        batch.dropCounters = counters
        demux.filter(batch, link: link)
        XCTAssertEqual(batch.sequences, [0, 1, 2, 3])
        XCTAssertEqual(counters.dropSummary(names: DropReason.frameworkNames).count, 0)
    }

    func testNothingClaimedDropsEverything() throws {
        let link = try loopbackLink(name: "wan1", index: 0)
        defer { link.close() }
        let batch = makeBatch(capacity: 3)
        for i in 0..<3 { batch.appendPacket([0x45, UInt8(i)]) }
        let counters = TrafficCounters()
        batch.dropCounters = counters
        Demux().filter(batch, link: link)
        XCTAssertEqual(batch.count, 0)
        XCTAssertEqual(counters.drops(.unclaimed), 3)
    }
}
