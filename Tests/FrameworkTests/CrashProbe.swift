import Glibc
import XCTest

/// How a child process ended.
enum ChildEnd: Equatable, CustomStringConvertible {
    case exited(Int32)
    /// Killed by a signal; `message` is the first line the child wrote to stderr.
    case signalled(Int32, message: String)
    case timedOut

    var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signalled(let signal, let message): return "killed by signal \(signal) (a trap or crash): \(message)"
        case .timedOut: return "did not finish within the time limit"
        }
    }
}

/// Runs `body` in a forked child, so code that traps (an arithmetic overflow, a
/// precondition) fails one test instead of ending the whole test run. The child
/// exits with status 0 when `body` returns.
func runInChild(timeoutSeconds: Double = 10, _ body: () -> Void) -> ChildEnd {
    fflush(nil)  // nothing buffered is written twice
    // The child's stderr (crash reports, backtraces) goes to a file; its first line is
    // kept for the failure message.
    var template = Array("/tmp/tunneld-test-child-XXXXXX".utf8CString)
    let log = mkstemp(&template)
    let logPath = String(cString: template)
    defer { if log >= 0 { close(log); unlink(logPath) } }
    let pid = fork()
    if pid == 0 {
        if log >= 0 { dup2(log, 2) }
        body()
        _exit(0)
    }
    guard pid > 0 else { return .exited(-1) }
    let deadline = monotonicSeconds() + timeoutSeconds
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { break }
        if r < 0 { return .exited(-1) }
        if monotonicSeconds() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return .timedOut
        }
        usleep(2000)
    }
    let signal = status & 0x7f
    guard signal != 0 else { return .exited((status >> 8) & 0xff) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let n = log >= 0 ? pread(log, &bytes, bytes.count, 0) : 0
    let text = String(decoding: bytes[0..<max(n, 0)], as: UTF8.self)
    let first = text.split(separator: "\n").first { !$0.allSatisfy(\.isWhitespace) } ?? ""
    return .signalled(signal, message: String(first))
}

final class CrashProbeTests: XCTestCase {
    /// The probe itself tells a clean exit from a trap.
    func testProbeSeesTraps() {
        XCTAssertEqual(runInChild {}, .exited(0))
        XCTAssertEqual(runInChild { _exit(3) }, .exited(3))
        let end = runInChild {
            let values = [Int.max]
            _ = values[0] + Int(getpid() > 0 ? 1 : 0)  // overflows: traps
        }
        guard case .signalled = end else { return XCTFail("expected a trap, got: \(end)") }
    }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
