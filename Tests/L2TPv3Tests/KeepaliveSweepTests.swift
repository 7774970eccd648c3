import XCTest
@testable import L2TPv3

final class KeepaliveSweepTests: XCTestCase {
    final class Member: KeepaliveSweepMember {
        var sweepSlot = -1
        var sweepIndex = -1
    }

    /// One interval of ticks visits every member exactly once, whatever slots they got.
    func testEveryMemberIsDueOncePerInterval() {
        var sweep = KeepaliveSweep<Member>(intervalMilliseconds: 5000, tickMilliseconds: 50)
        let members = (0..<1000).map { _ in Member() }
        for m in members { sweep.add(m) }
        XCTAssertEqual(sweep.count, 1000)
        for _ in 0..<3 {
            var seen: [ObjectIdentifier: Int] = [:]
            for _ in 0..<100 { for m in sweep.next() { seen[ObjectIdentifier(m), default: 0] += 1 } }
            XCTAssertEqual(seen.count, 1000)
            XCTAssertEqual(Set(seen.values), [1])
        }
    }

    /// A new member is never in the slot visited next: its first keepalive is at
    /// least one tick away, at most one interval.
    func testANewMemberIsNotDueAtTheVeryNextTick() {
        var sweep = KeepaliveSweep<Member>(intervalMilliseconds: 200, tickMilliseconds: 50)
        for _ in 0..<200 {
            let m = Member()
            sweep.add(m)
            XCTAssertFalse(sweep.next().contains { $0 === m })
            sweep.remove(m)
        }
    }

    /// Removal fills the gap with the slot's last member, whose index follows it; a
    /// removed member is never due again, and removing twice is harmless.
    func testRemovalKeepsTheOthersAndTheirPlaces() {
        var sweep = KeepaliveSweep<Member>(intervalMilliseconds: 50, tickMilliseconds: 50)  // one slot
        let members = (0..<5).map { _ in Member() }
        for m in members { sweep.add(m) }
        sweep.remove(members[1])
        sweep.remove(members[1])
        XCTAssertEqual(sweep.count, 4)
        XCTAssertEqual(members[1].sweepSlot, -1)
        let due = sweep.next()
        XCTAssertEqual(due.count, 4)
        XCTAssertFalse(due.contains { $0 === members[1] })
        for (index, m) in due.enumerated() { XCTAssertEqual(m.sweepIndex, index) }
    }

    /// Removing members while going through the due ones (a timed-out tunnel closes)
    /// leaves the list being walked intact.
    func testRemovingDuringAWalkIsSafe() {
        var sweep = KeepaliveSweep<Member>(intervalMilliseconds: 50, tickMilliseconds: 50)
        let members = (0..<10).map { _ in Member() }
        for m in members { sweep.add(m) }
        var walked = 0
        for m in sweep.next() {
            walked += 1
            sweep.remove(m)
        }
        XCTAssertEqual(walked, 10)
        XCTAssertEqual(sweep.count, 0)
        XCTAssertTrue(sweep.next().isEmpty)
    }
}
