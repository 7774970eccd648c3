import Foundation
import Glibc
import Logging
import XCTest
@testable import Framework

/// Real scripts in a temporary directory: they log when they start and end, so the
/// tests see what ran at once and in which order.
final class HookRunnerTests: XCTestCase {
    /// Keeps what the runner logs, to check what it says about kills and fallbacks.
    final class LogRecorder: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        var lines: [String] { lock.withLock { stored } }
        func append(_ line: String) { lock.withLock { stored.append(line) } }
    }

    struct RecordingHandler: LogHandler {
        let recorder: LogRecorder
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            recorder.append("\(event.level) \(event.message)")
        }
    }

    private var directory = ""
    private var loop: EventLoop!
    private var log = LogRecorder()

    override func setUpWithError() throws {
        var template = Array("/tmp/tunneld-hooks.XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
        loop = try EventLoop()
        log = LogRecorder()
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: directory)
        loop = nil
    }

    private func runner(limit: Int = 32, openPidfd: @escaping (pid_t) -> Int32 = HookProcess.openPidfd) -> HookRunner {
        let recorder = log
        let logger = Logger(label: "hooks") { _ in RecordingHandler(recorder: recorder) }
        return HookRunner(loop: loop, logger: logger, concurrencyLimit: limit, openPidfd: openPidfd)
    }

    /// An executable shell script in the temporary directory.
    private func script(_ name: String, _ body: String) throws -> String {
        let path = "\(directory)/\(name)"
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    /// `NAME SECONDS`: logs its start, sleeps, logs its end (monotonic-free wall
    /// nanoseconds are fine: only their order within this run matters).
    private func sleeper() throws -> String {
        try script("sleeper", """
            echo "$1 start $(date +%s%N)" >> "\(directory)/times"
            sleep "$2"
            echo "$1 end $(date +%s%N)" >> "\(directory)/times"
            """)
    }

    private func hook(_ script: String, _ arguments: [String], timeout: Double = 10,
                      environment: [String: String] = [:]) -> HookRunner.Hook {
        HookRunner.Hook(script: script, arguments: arguments, environment: environment, timeout: timeout)
    }

    /// Serve the loop until the runner is idle; the seconds it took.
    @discardableResult
    private func runUntilIdle(_ runner: HookRunner, limit: Double = 30, watch: (() -> Void)? = nil) -> Double {
        let start = MonotonicClock.now()
        while !runner.isIdle, MonotonicClock.now() - start < limit {
            loop.poll(timeoutMilliseconds: 50)
            watch?()
        }
        XCTAssertTrue(runner.isIdle, "hooks still running after \(limit) s")
        return MonotonicClock.now() - start
    }

    /// name → (start, end) in nanoseconds, from the sleeper's log.
    private func times() throws -> [String: (start: Int, end: Int)] {
        let text = try String(contentsOfFile: "\(directory)/times", encoding: .utf8)
        var starts: [String: Int] = [:]
        var result: [String: (start: Int, end: Int)] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let time = Int(parts[2]) else { continue }
            if parts[1] == "start" { starts[String(parts[0])] = time } else { result[String(parts[0])] = (starts[String(parts[0])] ?? 0, time) }
        }
        return result
    }

    /// The most intervals open at one time.
    private func maximumOverlap(_ intervals: [(start: Int, end: Int)]) -> Int {
        // At equal times an end counts before a start.
        var events: [(time: Int, change: Int)] = []
        for interval in intervals {
            events.append((interval.start, 1))
            events.append((interval.end, -1))
        }
        events.sort { ($0.time, $0.change) < ($1.time, $1.change) }
        var open = 0
        var most = 0
        for (_, change) in events {
            open += change
            most = max(most, open)
        }
        return most
    }

    func testConcurrencyReachesTheLimitAndNotBeyond() throws {
        let runner = runner(limit: 4)
        let sleeper = try sleeper()
        for index in 0..<12 { runner.run(hook(sleeper, ["h\(index)", "0.3"]), key: "session-\(index)") }
        XCTAssertEqual(runner.counters.running, 4)
        XCTAssertEqual(runner.counters.queued, 8)
        var mostRunning = 0
        let seconds = runUntilIdle(runner) { mostRunning = max(mostRunning, runner.counters.running) }
        let intervals = try times()
        XCTAssertEqual(intervals.count, 12)
        XCTAssertEqual(maximumOverlap(Array(intervals.values)), 4, "scripts' own times: four at once, never five")
        XCTAssertEqual(mostRunning, 4)
        XCTAssertEqual(runner.counters, HookRunner.Counters(running: 0, queued: 0, completed: 12, failed: 0, timedOut: 0))
        XCTAssertLessThan(seconds, 0.3 * 12 / 2, "three rounds of four, not twelve one by one")
    }

    func testHooksOfOneKeyRunInOrderWhileOtherKeysOverlap() throws {
        let runner = runner(limit: 8)
        let sleeper = try sleeper()
        runner.run(hook(sleeper, ["a-up", "0.3"]), key: "a")
        runner.run(hook(sleeper, ["b-up", "0.3"]), key: "b")
        runner.run(hook(sleeper, ["a-down", "0"]), key: "a")
        runner.run(hook(sleeper, ["c-up", "0.3"]), key: "c")
        // No key: one shared key, as bonding's tuntap_up → rtun_up relies on.
        runner.run(hook(sleeper, ["tuntap_up", "0.3"]))
        runner.run(hook(sleeper, ["rtun_up", "0"]))
        runUntilIdle(runner)
        let times = try times()
        XCTAssertEqual(times.count, 6)
        let aUp = try XCTUnwrap(times["a-up"]), aDown = try XCTUnwrap(times["a-down"])
        XCTAssertLessThanOrEqual(aUp.end, aDown.start, "a's down starts after its up ended")
        XCTAssertLessThanOrEqual(try XCTUnwrap(times["tuntap_up"]).end, try XCTUnwrap(times["rtun_up"]).start)
        for other in ["b-up", "c-up", "tuntap_up"] {
            let interval = try XCTUnwrap(times[other])
            XCTAssertLessThan(interval.start, aUp.end, "\(other) ran beside a-up")
        }
        XCTAssertEqual(runner.counters.completed, 6)
    }

    func testTimedOutHookIsKilledAndItsKeyGoesOn() throws {
        let runner = runner()
        let stuck = try script("stuck", "exec sleep 30")
        let sleeper = try sleeper()
        runner.run(hook(stuck, [], timeout: 0.2), key: "k")
        runner.run(hook(sleeper, ["after", "0"]), key: "k")
        let seconds = runUntilIdle(runner, limit: 10)
        XCTAssertLessThan(seconds, 2)
        XCTAssertNotNil(try times()["after"])
        XCTAssertEqual(runner.counters.timedOut, 1)
        XCTAssertEqual(runner.counters.completed, 1)
        XCTAssertTrue(log.lines.contains { $0.hasPrefix("error") && $0.contains("stuck") && $0.contains("killed") }, "\(log.lines)")
    }

    func testArgumentsAndEnvironmentArriveSanitisedAndLiteral() throws {
        let runner = runner()
        let out = "\(directory)/out"
        let echo = try script("echo", """
            for argument in "$@"; do printf '%s\\n' "$argument"; done > "\(out)"
            printf '%s|%s' "$VALUE" "$NAME" >> "\(out)"
            """)
        let long = String(repeating: "y", count: 300)
        runner.run(hook(echo, ["plain", "$(rm -rf /)", "new\nline", "café", long, "", "a\u{0}b"],
                        environment: ["VALUE": "x\ny;`id`", "NAME": "tab\there"]))
        runUntilIdle(runner)
        let expected = "plain\n$(rm -rf /)\nnew_line\ncaf__\n" + String(repeating: "y", count: 255) + "\n\na_b\n" + "x_y;`id`|tab_here"
        let got = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertEqual(got, Data(expected.utf8), String(decoding: got, as: UTF8.self))
        XCTAssertEqual(runner.counters.completed, 1)
    }

    func testAThousandHooksComplete() throws {
        let runner = runner()
        let trivial = try script("trivial", "exit 0")
        let start = MonotonicClock.now()
        for index in 0..<1_000 { runner.run(hook(trivial, ["session-\(index)", "up"]), key: "session-\(index)") }
        let seconds = runUntilIdle(runner, limit: 60)
        let total = MonotonicClock.now() - start
        print("1 000 hooks (32 at once) ran in \(total) s (\(seconds) s serving the loop)")
        XCTAssertEqual(runner.counters.completed, 1_000)
        // The broker must get through 10 000 in 20 s.
        XCTAssertLessThan(total, 2.0)
    }

    func testDrainRunsEverythingQueuedWithoutTheLoop() throws {
        let runner = runner()
        let sleeper = try sleeper()
        let stuck = try script("stuck", "exec sleep 30")
        runner.run(hook(sleeper, ["rtun_down", "0.2"]))
        runner.run(hook(sleeper, ["tuntap_down", "0.2"]))
        runner.run(hook(stuck, [], timeout: 0.3), key: "other")
        let start = MonotonicClock.now()
        runner.drain()
        let seconds = MonotonicClock.now() - start
        XCTAssertTrue(runner.isIdle)
        let times = try times()
        XCTAssertLessThanOrEqual(try XCTUnwrap(times["rtun_down"]).end, try XCTUnwrap(times["tuntap_down"]).start)
        XCTAssertEqual(runner.counters, HookRunner.Counters(running: 0, queued: 0, completed: 2, failed: 0, timedOut: 1))
        XCTAssertGreaterThanOrEqual(seconds, 0.4)
        XCTAssertLessThan(seconds, 3)
    }

    func testWithoutPidfdHooksAreReapedByPolling() throws {
        let runner = runner(openPidfd: { _ in -ENOSYS })
        let sleeper = try sleeper()
        for index in 0..<5 { runner.run(hook(sleeper, ["p\(index)", "0.05"]), key: "p\(index)") }
        runUntilIdle(runner, limit: 10)
        XCTAssertEqual(runner.counters.completed, 5)
        XCTAssertEqual(log.lines.filter { $0.contains("pidfd_open failed") }.count, 1, "logged once")
    }

    func testAScriptThatCannotStartCountsAsFailedAndTheKeyGoesOn() throws {
        let runner = runner()
        let sleeper = try sleeper()
        runner.run(hook("\(directory)/missing", []), key: "k")
        runner.run(hook(sleeper, ["next", "0"]), key: "k")
        runUntilIdle(runner)
        XCTAssertEqual(runner.counters.failed, 1)
        XCTAssertEqual(runner.counters.completed, 1)
        XCTAssertTrue(log.lines.contains { $0.contains("could not start") })
    }
}
