import Glibc
import XCTest
@testable import Framework

final class EventLoopTests: XCTestCase {
    final class Box { var values: [String] = []; var count = 0 }

    /// A guard timer so a broken loop fails the test instead of hanging it.
    @discardableResult
    private func watchdog(_ loop: EventLoop, ms: Int = 3000, _ box: Box) throws -> EventLoop.Timer {
        try loop.addTimer(milliseconds: ms, repeating: false) { [unowned loop] in
            box.values.append("watchdog")
            loop.stop()
        }
    }

    func testRepeatingTimerFiresAndStopEndsRun() throws {
        let loop = try EventLoop()
        let box = Box()
        try watchdog(loop, box)
        let start = monotonicSeconds()
        try loop.addTimer(milliseconds: 20, repeating: true) { [unowned loop] in
            box.count += 1
            if box.count == 5 { loop.stop() }
        }
        loop.run()
        let elapsed = monotonicSeconds() - start
        XCTAssertEqual(box.count, 5)
        XCTAssertEqual(box.values, [], "stopped by the timer, not the watchdog")
        XCTAssertGreaterThanOrEqual(elapsed, 0.095)
        XCTAssertLessThan(elapsed, 2.0)
    }

    func testATimerArmedEveryFractionOfAMillisecondKeepsItsPeriod() throws {
        let loop = try EventLoop()
        let box = Box()
        try watchdog(loop, box)
        let start = monotonicSeconds()
        loop.addTimer(every: 0.0125) { [unowned loop] in  // a bond's look: a quarter of 50 ms, not 12 ms
            box.count += 1
            if box.count == 8 { loop.stop() }
        }
        loop.run()
        XCTAssertEqual(box.count, 8)
        XCTAssertEqual(box.values, [], "stopped by the timer, not the watchdog")
        XCTAssertGreaterThanOrEqual(monotonicSeconds() - start, 0.0995, "8 × 12.5 ms; whole milliseconds would give 96 ms")
    }

    func testOneShotTimerFiresOnce() throws {
        let loop = try EventLoop()
        let box = Box()
        try loop.addTimer(milliseconds: 10, repeating: false) { box.count += 1 }
        try loop.addTimer(milliseconds: 150, repeating: false) { [unowned loop] in loop.stop() }
        loop.run()
        XCTAssertEqual(box.count, 1)
    }

    func testAWakeUpLongAfterATimerWasDueIsAStall() throws {
        let loop = try EventLoop()
        let box = Box()
        try loop.addTimer(milliseconds: 5, repeating: false) { box.count += 1 }
        XCTAssertEqual(loop.poll(timeoutMilliseconds: 500), 1)
        XCTAssertEqual(box.count, 1)
        XCTAssertEqual(loop.stalls, 0, "a timer served on time is no stall")

        try loop.addTimer(milliseconds: 5, repeating: false) { box.count += 1 }
        XCTAssertEqual(loop.poll(timeoutMilliseconds: 0), 0)  // the timerfd is armed, then the process does not run
        usleep(40_000)
        let woke = monotonicSeconds()
        XCTAssertEqual(loop.poll(timeoutMilliseconds: 500), 1)
        XCTAssertEqual(box.count, 2)
        XCTAssertEqual(loop.stalls, 1)
        XCTAssertEqual(loop.lastStall, woke, accuracy: 0.005)
    }

    func testCancelledTimerDoesNotFire() throws {
        let loop = try EventLoop()
        let box = Box()
        let timer = try loop.addTimer(milliseconds: 30, repeating: true) { box.count += 1 }
        timer.cancel()
        timer.cancel()  // twice is harmless
        try loop.addTimer(milliseconds: 120, repeating: false) { [unowned loop] in loop.stop() }
        loop.run()
        XCTAssertEqual(box.count, 0)
    }

    func testRearmedTimer() throws {
        let loop = try EventLoop()
        let box = Box()
        let timer = try loop.addTimer(milliseconds: 5000, repeating: false) { [unowned loop] in
            box.values.append("fired")
            loop.stop()
        }
        try watchdog(loop, box)
        timer.arm(milliseconds: 10, repeating: false)
        loop.run()
        XCTAssertEqual(box.values, ["fired"])
    }

    func testWatchedPipeCallsHandler() throws {
        let loop = try EventLoop()
        let box = Box()
        try watchdog(loop, box)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let reader = fds[0]
        try loop.watch(reader) { [unowned loop] in
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = read(reader, &buffer, 16)
            box.values.append(String(decoding: buffer[0..<max(n, 0)], as: UTF8.self))
            loop.stop()
        }
        // Written from a timer, i.e. after the loop has started waiting.
        try loop.addTimer(milliseconds: 10, repeating: false) {
            _ = "ping".withCString { write(fds[1], $0, 4) }
        }
        loop.run()
        XCTAssertEqual(box.values, ["ping"])
    }

    func testLevelTriggeredAndUnwatch() throws {
        let loop = try EventLoop()
        let box = Box()
        try watchdog(loop, ms: 200, box)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = "abc".withCString { write(fds[1], $0, 3) }
        var token: EventLoop.Token?
        let reader = fds[0]
        token = try loop.watch(reader) { [unowned loop] in
            // Read one byte per call: unread data makes the loop call again.
            var byte: UInt8 = 0
            _ = read(reader, &byte, 1)
            box.count += 1
            if box.count == 3, let token { loop.unwatch(token) }
        }
        loop.run()
        XCTAssertEqual(box.count, 3)
        XCTAssertEqual(box.values, ["watchdog"], "after unwatch only the watchdog ends the loop")
    }

    func testWatchingABadDescriptorThrows() throws {
        let loop = try EventLoop()
        XCTAssertThrowsError(try loop.watch(-1) {}) { error in
            XCTAssertEqual("\(error)", "epoll_ctl(add fd -1): Bad file descriptor")
        }
        // The failed token is reused and works.
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let box = Box()
        try loop.watch(fds[0]) { [unowned loop] in box.count += 1; loop.stop() }
        _ = "x".withCString { write(fds[1], $0, 1) }
        try watchdog(loop, box)
        loop.run()
        XCTAssertEqual(box.count, 1)
    }
}
