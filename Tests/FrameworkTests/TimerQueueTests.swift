import Glibc
import XCTest
@testable import Framework

/// The loop's timers: the heap on a made-up clock (deterministic order and handler
/// interplay), then real loops for precision, drift, idleness and scale.
final class TimerQueueTests: XCTestCase {
    final class Log {
        var fired: [Int] = []
        var names: [String] = []
    }

    /// SplitMix64: a seeded generator, so a failure replays the same way.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// A timer on `queue` due at `due` on the made-up clock.
    private func timer(_ queue: TimerQueue, at due: Int64, period: Int64 = 0,
                       _ handler: @escaping EventLoop.Handler) -> EventLoop.Timer {
        let timer = EventLoop.Timer(queue: queue, handler: handler)
        queue.schedule(timer, at: due, delay: 0, period: period)
        return timer
    }

    // MARK: the queue on a made-up clock

    func testRandomDeadlinesFireInDeadlineOrderAfterCancelsAndMoves() {
        var random = SeededGenerator(state: 42)
        let queue = TimerQueue()
        let log = Log()
        let count = 5000
        // Distinct deadlines: a permutation, spaced so moved ones get fresh values.
        let dues = (0..<count).map { Int64($0) * 10 + 1 }.shuffled(using: &random)
        var timers: [EventLoop.Timer] = []
        for id in 0..<count {
            timers.append(timer(queue, at: dues[id]) { log.fired.append(id) })
        }
        var expected: [Int: Int64] = [:]
        var taken = Set(dues)
        for id in 0..<count {
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                timers[id].cancel()
                XCTAssertFalse(timers[id].isArmed)
            case 1:
                var due: Int64
                repeat {
                    due = max(5, dues[id] + Int64.random(in: -200...200, using: &random) * 10 + 5)
                } while !taken.insert(due).inserted
                queue.schedule(timers[id], at: due, delay: 0, period: 0)
                expected[id] = due
            default:
                expected[id] = dues[id]
            }
        }
        XCTAssertEqual(queue.count, expected.count)
        // Step the clock in uneven strides: whatever fires is due now and was not due
        // at the previous step.
        var now: Int64 = 0
        while queue.count > 0 {
            let previous = now
            now += Int64.random(in: 1...400, using: &random)
            let before = log.fired.count
            queue.fireDue(now: now)
            for id in log.fired[before...] {
                XCTAssertLessThanOrEqual(expected[id]!, now)
                XCTAssertGreaterThan(expected[id]!, previous)
            }
        }
        let order = expected.sorted { $0.value < $1.value }.map(\.key)
        XCTAssertEqual(log.fired.count, order.count)
        XCTAssertTrue(log.fired == order, "fired out of deadline order")
        XCTAssertTrue(timers.allSatisfy { !$0.isArmed })
    }

    func testHandlerCancelsMovesAndAddsTimersDueInTheSamePass() {
        let queue = TimerQueue()
        let log = Log()
        var later: EventLoop.Timer?
        var added: EventLoop.Timer?
        let cancelled = timer(queue, at: 20) { log.names.append("cancelled") }
        let moved = timer(queue, at: 30) { log.names.append("moved") }
        var first: EventLoop.Timer!
        first = timer(queue, at: 10) {
            log.names.append("first")
            guard log.names.count == 1 else { return }
            cancelled.cancel()
            queue.schedule(moved, at: 100, delay: 0, period: 0)
            added = self.timer(queue, at: 40) { log.names.append("added") }
            queue.schedule(first, at: 50, delay: 0, period: 0)  // a one-shot re-arming itself
            later = self.timer(queue, at: 70) { log.names.append("later") }
        }
        queue.fireDue(now: 60)
        XCTAssertEqual(log.names, ["first", "added", "first"])
        XCTAssertFalse(cancelled.isArmed)
        XCTAssertTrue(moved.isArmed)
        queue.fireDue(now: 100)
        XCTAssertEqual(log.names, ["first", "added", "first", "later", "moved"])
        XCTAssertEqual(queue.count, 0)
        XCTAssertNotNil(added)
        XCTAssertNotNil(later)
    }

    func testRepeatingTimerCancelsItselfFromItsHandler() {
        let queue = TimerQueue()
        let log = Log()
        var repeating: EventLoop.Timer!
        repeating = timer(queue, at: 5, period: 10) {
            log.fired.append(0)
            if log.fired.count == 3 { repeating.cancel() }
        }
        queue.fireDue(now: 1000)  // one firing per pass, however late
        queue.fireDue(now: 1010)
        queue.fireDue(now: 1020)
        queue.fireDue(now: 1030)
        XCTAssertEqual(log.fired.count, 3)
        XCTAssertFalse(repeating.isArmed)
        repeating.arm(milliseconds: 10, repeating: true)
        XCTAssertFalse(repeating.isArmed, "arming a cancelled timer does nothing")
    }

    func testRepeatingTimerKeepsItsGridAndSkipsMissedPeriods() {
        let queue = TimerQueue()
        var now: Int64 = 0
        var fires: [Int64] = []
        let repeating = timer(queue, at: 10, period: 10) { fires.append(now) }
        for step: Int64 in [10, 23, 30, 75, 79, 80] {
            now = step
            queue.fireDue(now: now)
        }
        // Late by 3 at 23: the next is still 30, not 33. Asleep from 40 to 70: one
        // firing at 75, no burst of four, and back on the grid at 80.
        XCTAssertEqual(fires, [10, 23, 30, 75, 80])
        XCTAssertEqual(queue.earliest, 90)
        XCTAssertTrue(repeating.isArmed)
    }

    func testFarOffTimersShareWakeUpsWithoutDrifting() {
        let ms: Int64 = 1_000_000
        XCTAssertEqual(TimerQueue.grain(of: 127 * ms), 0, "under 128 ms: exact")
        XCTAssertEqual(TimerQueue.grain(of: 128 * ms), 1 * ms)
        XCTAssertEqual(TimerQueue.grain(of: 300 * ms), 2 * ms)
        XCTAssertEqual(TimerQueue.grain(of: 5_000 * ms), 32 * ms)
        XCTAssertEqual(TimerQueue.grain(of: 120_000 * ms), 512 * ms)
        XCTAssertEqual(TimerQueue.grain(of: 600_000 * ms), 4_096 * ms)

        let queue = TimerQueue()
        let period = 5_000 * ms
        var now: Int64 = 0
        var fires: [[Int64]] = [[], []]
        let first = EventLoop.Timer(queue: queue) { fires[0].append(now) }
        let second = EventLoop.Timer(queue: queue) { fires[1].append(now) }
        let cancelled = EventLoop.Timer(queue: queue) { XCTFail("cancelled") }
        // 4 ms apart, in one 32 ms slot: one wake-up at the slot's end serves them.
        queue.schedule(first, at: 1_003 * ms, delay: period, period: period)
        queue.schedule(cancelled, at: 1_005 * ms, delay: period, period: period)
        queue.schedule(second, at: 1_007 * ms, delay: period, period: period)
        XCTAssertEqual(queue.earliest, 1_024 * ms)
        cancelled.cancel()  // from the middle of the shared slot
        var wakeups = 0
        while fires[0].count < 101 {
            now = queue.earliest!
            queue.fireDue(now: now)
            wakeups += 1
        }
        XCTAssertEqual(wakeups, 101)
        XCTAssertEqual(fires[1].count, 101)
        // The rounding never adds up: the 101st firing is as close to its deadline as
        // the first, and never before it.
        for (index, time) in fires[0].enumerated() {
            let late = time - (1_003 * ms + Int64(index) * period)
            XCTAssertTrue(late >= 0 && late < 32 * ms, "firing \(index) is \(late) ns after its deadline")
        }
    }

    // MARK: on a real loop

    /// Run `loop` until `done` or `seconds` pass.
    private func run(_ loop: EventLoop, seconds: Double, until done: () -> Bool) {
        let end = MonotonicClock.now() + seconds
        while !done(), MonotonicClock.now() < end { loop.poll(timeoutMilliseconds: 50) }
    }

    func testOneShotsFireWithinAMillisecondOfTheirDeadline() throws {
        let loop = try EventLoop()
        let rounds = 200
        var lateness: [Int64] = []
        var deadline: Int64 = 0
        var chained: EventLoop.Timer!
        // One timer re-armed from its own handler 1–4 ms ahead, like the reorder stage's.
        chained = try loop.addTimer(milliseconds: 0, repeating: false) {
            lateness.append(MonotonicClock.nanoseconds() - deadline)
            guard lateness.count < rounds else { return }
            let wait = 1 + lateness.count % 4
            deadline = MonotonicClock.nanoseconds() + Int64(wait) * 1_000_000
            chained.arm(milliseconds: wait, repeating: false)
        }
        deadline = MonotonicClock.nanoseconds() + 2_000_000
        chained.arm(milliseconds: 2, repeating: false)
        run(loop, seconds: 5) { lateness.count == rounds }
        XCTAssertEqual(lateness.count, rounds)
        let sorted = lateness.sorted()
        let median = Double(sorted[rounds / 2]) / 1e6
        let p90 = Double(sorted[rounds * 9 / 10]) / 1e6
        let worst = Double(sorted[rounds - 1]) / 1e6
        print("one-shot lateness over \(rounds) timers: median \(median) ms, p90 \(p90) ms, max \(worst) ms")
        XCTAssertGreaterThanOrEqual(sorted[0], 0, "never early")
        XCTAssertLessThan(median, 0.5)
        XCTAssertLessThan(p90, 1.0)
    }

    /// `arm(after:)` keeps sub-millisecond deadlines (the bond's pacer turns): a 0.3 ms
    /// timer fires after 0.3 ms, not after a millisecond rounded up.
    func testSubMillisecondOneShotsFireNearTheirDeadline() throws {
        let loop = try EventLoop()
        let rounds = 200
        var waited: [Int64] = []
        var armedAt: Int64 = 0
        var chained: EventLoop.Timer!
        chained = loop.timer {
            waited.append(MonotonicClock.nanoseconds() - armedAt)
            guard waited.count < rounds else { return }
            armedAt = MonotonicClock.nanoseconds()
            chained.arm(after: 0.0003)
        }
        armedAt = MonotonicClock.nanoseconds()
        chained.arm(after: 0.0003)
        run(loop, seconds: 5) { waited.count == rounds }
        XCTAssertEqual(waited.count, rounds)
        let sorted = waited.sorted()
        let median = Double(sorted[rounds / 2]) / 1e6
        print("0.3 ms one-shots over \(rounds) timers: median \(median) ms, max \(Double(sorted[rounds - 1]) / 1e6) ms")
        XCTAssertGreaterThanOrEqual(sorted[0], 300_000, "never early")
        XCTAssertLessThan(median, 0.8, "not rounded up to a millisecond and more")
        chained.arm(after: 0)
        XCTAssertFalse(chained.isArmed, "0 disarms")
    }

    func testRepeatingTimerDoesNotDrift() throws {
        let loop = try EventLoop()
        let period: Int64 = 10_000_000
        var fires: [Int64] = []
        let start = MonotonicClock.nanoseconds()
        let timer = try loop.addTimer(milliseconds: 10, repeating: true) { fires.append(MonotonicClock.nanoseconds()) }
        run(loop, seconds: 5) { fires.count == 50 }
        timer.cancel()
        XCTAssertEqual(fires.count, 50)
        // Each firing is at or after its slot on the grid; the last one is as close to
        // its slot as the first, which a period measured from each firing would not be.
        let slots = fires.map { Double(($0 - start) % period) / 1e6 }
        let laps = fires.map { ($0 - start) / period }
        print("repeating 10 ms timer: first firing \(slots[0]) ms after its slot, last \(slots[49]) ms, \(laps[49]) periods for 50 firings")
        XCTAssertEqual(laps.last, 50, "no period skipped or added")
        // Drift would make every late firing late; one wake-up the VM delayed does not
        // (a full test run once saw the 50th firing 3.1 ms late, the others on time).
        let lastTen = slots.suffix(10).sorted()
        XCTAssertLessThan(lastTen[5], 2.0, "the last ten firings' median")
        XCTAssertLessThan(slots.reduce(0, +) / Double(slots.count), 1.0)
    }

    func testIdleLoopDoesNotWakeUp() throws {
        let loop = try EventLoop()
        let soon = try loop.addTimer(milliseconds: 30, repeating: false) {}
        try loop.addTimer(milliseconds: 10_000, repeating: true) {}
        loop.poll(timeoutMilliseconds: 0)  // the timerfd is now set for `soon`
        soon.cancel()
        let start = MonotonicClock.now()
        XCTAssertEqual(loop.poll(timeoutMilliseconds: 150), 0, "the cancelled timer's deadline no longer wakes the loop")
        XCTAssertGreaterThanOrEqual(MonotonicClock.now() - start, 0.14)
    }

    func testTimerOutlivingItsLoopIsInert() throws {
        var loop: EventLoop? = try EventLoop()
        let log = Log()
        let timer = try loop!.addTimer(milliseconds: 10, repeating: true) { log.fired.append(1) }
        loop = nil
        timer.arm(milliseconds: 5, repeating: false)
        XCTAssertFalse(timer.isArmed)
        timer.cancel()
        XCTAssertEqual(log.fired, [])
    }

    /// 10 000 sessions' keepalive (5 s), liveness (120 s) and a 600 s timer each, phased
    /// at random: the loop must stay nearly free while it serves them.
    func testThirtyThousandTimersCostUnderOnePercentOfACore() throws {
        let loop = try EventLoop()
        var random = SeededGenerator(state: 7)
        var fired = 0
        var timers: [EventLoop.Timer] = []
        timers.reserveCapacity(30_000)
        let addStart = MonotonicClock.nanoseconds()
        for index in 0..<30_000 {
            let period = [5_000, 120_000, 600_000][index % 3]
            let timer = try loop.addTimer(milliseconds: 0, repeating: false) { fired += 1 }
            timer.arm(milliseconds: Int.random(in: 1...period, using: &random), period: period)
            timers.append(timer)
        }
        let addMilliseconds = Double(MonotonicClock.nanoseconds() - addStart) / 1e6

        let seconds = 3.0
        let cpuBefore = processCPUSeconds()
        let end = MonotonicClock.now() + seconds
        var wakeups = 0
        var left = seconds
        while left > 0 {
            wakeups += loop.poll(timeoutMilliseconds: Int32((left * 1000).rounded(.up)))
            left = end - MonotonicClock.now()
        }
        let cpu = processCPUSeconds() - cpuBefore
        let share = cpu / seconds * 100
        print("""
            30 000 timers: added in \(addMilliseconds) ms; over \(seconds) s \(fired) firings, \(wakeups) wake-ups, \
            CPU \(cpu * 1000) ms = \(share) % of a core
            """)
        // 10 000 keepalives of 5 s fire about 6 000 times in 3 s, the others ~80.
        XCTAssertGreaterThan(fired, 5_000)
        XCTAssertLessThan(fired, 7_500)
        XCTAssertLessThan(share, 1.0)
        for timer in timers { timer.cancel() }
    }

    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }
}
