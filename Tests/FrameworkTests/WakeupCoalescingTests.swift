import Foundation
import Glibc
import XCTest
@testable import Framework

final class WakeupCoalescingTests: XCTestCase {
    private let ms: Int64 = 1_000_000

    func testOffNeverPauses() {
        var policy = WakeupCoalescing()
        XCTAssertEqual(policy.pause(now: 10_000 * ms, nextTimer: nil), 0)
    }

    func testQuietLoopPausesTheWindowBoundedByTheNextTimer() {
        var policy = WakeupCoalescing()
        policy.window = 20 * ms
        XCTAssertEqual(policy.pause(now: 10_000 * ms, nextTimer: nil), 20 * ms)
        XCTAssertEqual(policy.pause(now: 10_000 * ms, nextTimer: 10_005 * ms), 5 * ms, "a timer due sooner ends the pause")
        XCTAssertEqual(policy.pause(now: 10_000 * ms, nextTimer: 9_999 * ms), 0, "a timer already due: no pause")
    }

    func testStayingAwakeStopsPausesForTheQuietPeriod() {
        var policy = WakeupCoalescing()
        policy.window = 20 * ms
        policy.awake = true
        XCTAssertEqual(policy.pause(now: 10_000 * ms, nextTimer: nil), 0, "the turn that moved data")
        XCTAssertFalse(policy.awake, "the mark is per turn")
        XCTAssertEqual(policy.pause(now: 10_500 * ms, nextTimer: nil), 0, "half a second later: still not quiet")
        XCTAssertEqual(policy.pause(now: 10_999 * ms, nextTimer: nil), 0)
        XCTAssertEqual(policy.pause(now: 11_000 * ms, nextTimer: nil), 20 * ms, "a second without data: quiet")
    }

    /// A loop fed a datagram every millisecond: with coalescing it handles them in a
    /// few dozen turns; staying awake (data moving) or without coalescing, in hundreds.
    func testCoalescingLoopWakesFarLessOften() throws {
        let quiet = try turns(windowMilliseconds: 20, stayAwake: false)
        let awake = try turns(windowMilliseconds: 20, stayAwake: true)
        let off = try turns(windowMilliseconds: 0, stayAwake: false)
        XCTAssertEqual(quiet.datagrams, 300)
        XCTAssertEqual(awake.datagrams, 300)
        XCTAssertEqual(off.datagrams, 300)
        // 300 ms of arrivals, a turn at most every 20 ms: about 15, allow for late wake-ups.
        XCTAssertLessThanOrEqual(quiet.turns, 40, "coalesced: \(quiet), awake: \(awake), off: \(off)")
        XCTAssertGreaterThan(awake.turns, 3 * quiet.turns, "coalesced: \(quiet), awake: \(awake)")
        XCTAssertGreaterThan(off.turns, 3 * quiet.turns, "coalesced: \(quiet), off: \(off)")
    }

    /// How many turns a loop takes to read 300 datagrams sent 1 ms apart.
    private func turns(windowMilliseconds: Int, stayAwake: Bool) throws -> (turns: Int, datagrams: Int) {
        var pair: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &pair), 0)
        defer { close(pair[0]); close(pair[1]) }
        let reader = pair[0], writer = pair[1]
        _ = fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) | O_NONBLOCK)
        let loop = try EventLoop()
        loop.coalesceWakeups(windowMilliseconds: windowMilliseconds)
        final class Count { var turns = 0; var datagrams = 0 }
        let count = Count()
        try loop.watch(reader) { [unowned loop] in
            count.turns += 1
            var byte: UInt8 = 0
            while recv(reader, &byte, 1, 0) == 1 { count.datagrams += 1 }
            if stayAwake { loop.stayAwake() }
            if count.datagrams == 300 { loop.stop() }
        }
        try loop.addTimer(milliseconds: 5000, repeating: false) { [unowned loop] in loop.stop() }  // watchdog
        let sender = Thread {
            var byte: UInt8 = 1
            for _ in 0..<300 {
                _ = send(writer, &byte, 1, 0)
                usleep(1000)
            }
        }
        sender.start()
        loop.run()
        return (count.turns, count.datagrams)
    }
}
