import Foundation
import Glibc
import XCTest
@testable import Framework

final class WakeupCoalescingTests: XCTestCase {
    private let ms: Int64 = 1_000_000

    func testOffNeverPauses() {
        var policy = WakeupCoalescing()
        XCTAssertEqual(policy.pause(now: 10_000 * ms), 0)
    }

    func testQuietLoopPausesTheWindow() {
        var policy = WakeupCoalescing()
        policy.window = 20 * ms
        XCTAssertEqual(policy.pause(now: 10_000 * ms), 20 * ms)
        XCTAssertEqual(policy.pause(now: 10_020 * ms), 20 * ms, "every quiet turn")
    }

    func testStayingAwakeStopsPausesForTheQuietPeriod() {
        var policy = WakeupCoalescing()
        policy.window = 20 * ms
        policy.awake = true
        XCTAssertEqual(policy.pause(now: 10_000 * ms), 0, "the turn that moved data")
        XCTAssertFalse(policy.awake, "the mark is per turn")
        XCTAssertEqual(policy.pause(now: 10_500 * ms), 0, "half a second later: still not quiet")
        XCTAssertEqual(policy.pause(now: 10_999 * ms), 0)
        XCTAssertEqual(policy.pause(now: 11_000 * ms), 20 * ms, "a second without data: quiet")
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

    /// A timer due during a pause fires when the pause ends: late by at most the window
    /// (plus scheduling noise), never skipped.
    func testTimersFireAtMostOneWindowLateWhilePausing() throws {
        let loop = try EventLoop()
        loop.coalesceWakeups(windowMilliseconds: 20)
        final class Record { var fires: [Int64] = [] }
        let record = Record()
        let start = MonotonicClock.nanoseconds()
        try loop.addTimer(milliseconds: 5, repeating: true) { [unowned loop] in
            record.fires.append(MonotonicClock.nanoseconds())
            if record.fires.count == 10 { loop.stop() }
        }
        try loop.addTimer(milliseconds: 5000, repeating: false) { [unowned loop] in loop.stop() }  // watchdog
        loop.run()
        XCTAssertEqual(record.fires.count, 10)
        // A 5 ms timer in a loop pausing 20 ms: one firing per pause, each at most
        // ~20 ms after the previous (40 allowed for a busy VM).
        var previous = start
        for fire in record.fires {
            XCTAssertLessThan(fire - previous, 40 * ms, "fires: \(record.fires.map { ($0 - start) / ms }) ms")
            previous = fire
        }
        XCTAssertGreaterThanOrEqual(record.fires.last! - start, 9 * 15 * ms, "paused between firings: \(record.fires.map { ($0 - start) / ms }) ms")
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
