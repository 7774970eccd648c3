import Glibc
import Logging

/// Runs status scripts (hooks) off the data path: the loop only starts a process and
/// later reaps it, never waits. Hooks of one key run in the order they were asked for
/// (`HookSchedule`), so a session's `up` script has ended before its `down` starts,
/// and mlvpn's `tuntap_up` configures the device before `rtun_up` adds routes; hooks
/// of different keys run side by side, up to `concurrencyLimit`, so 10 000 broker
/// sessions' scripts do not wait on each other. A script that runs past its timeout
/// is killed.
///
/// An ended process is noticed through its pidfd on the loop; where pidfd_open is
/// missing (Linux before 5.3, some sandboxes) a 20 ms timer polls with waitpid instead.
public final class HookRunner {
    public struct Hook {
        var script: String
        var arguments: [String]
        var environment: [String: String]
        var timeout: Double
        /// A command whose failure is normal (deleting what may not exist): its
        /// stderr goes to /dev/null and a failure is logged at debug level only.
        var mayFail: Bool

        public init(script: String, arguments: [String], environment: [String: String], timeout: Double, mayFail: Bool = false) {
            self.script = script
            self.arguments = arguments
            self.environment = environment
            self.timeout = timeout
            self.mayFail = mayFail
        }

        /// For logs: the arguments as the script gets them, so none can forge a line.
        var commandLine: String { ([script] + arguments.map(HookArgument.sanitize)).joined(separator: " ") }
    }

    /// For status output. `completed` exited with status 0; `failed` did not start,
    /// exited otherwise or died of a signal; `timedOut` ran past the timeout and was killed.
    public struct Counters: Equatable, Sendable {
        var running = 0
        var queued = 0
        var completed = 0
        var failed = 0
        var timedOut = 0
    }

    /// A hook whose process runs.
    private final class Process {
        let hook: Hook
        let key: String?
        let pid: pid_t
        /// When it is killed (monotonic nanoseconds).
        let deadline: Int64
        var pidfd: Int32 = -1
        var watch: EventLoop.Token?
        var timeout: EventLoop.Timer?
        var killed = false

        init(hook: Hook, key: String?, pid: pid_t) {
            self.hook = hook
            self.key = key
            self.pid = pid
            deadline = MonotonicClock.nanoseconds() + Int64(hook.timeout * 1e9)
        }
    }

    /// How many hooks may run at once; more wait their turn.
    var concurrencyLimit: Int {
        didSet { startReady() }
    }

    private let loop: EventLoop
    private let logger: Logger
    private let openPidfd: (pid_t) -> Int32
    private var schedule = HookSchedule<Hook>()
    private var processes: [pid_t: Process] = [:]
    private var finished = Counters()
    /// Reaps the processes that have no pidfd; armed while there are any.
    private var poller: EventLoop.Timer?
    private var polled = 0
    private var pidfdFailureLogged = false

    /// `openPidfd` is for tests of the polling fallback.
    init(loop: EventLoop, logger: Logger, concurrencyLimit: Int = 32,
         openPidfd: @escaping (pid_t) -> Int32 = HookProcess.openPidfd) {
        self.loop = loop
        self.logger = logger
        self.concurrencyLimit = concurrencyLimit
        self.openPidfd = openPidfd
    }

    /// Queue a hook; it starts once the hooks of its key queued before it have ended
    /// and fewer than `concurrencyLimit` run. No key: one shared key, in order.
    public func run(_ hook: Hook, key: String? = nil) {
        schedule.submit(hook, key: key)
        startReady()
    }

    var isIdle: Bool { schedule.running == 0 && schedule.queued == 0 }

    var counters: Counters {
        var counters = finished
        counters.running = schedule.running
        counters.queued = schedule.queued
        return counters
    }

    /// At shutdown, with the loop stopped: run what is queued to the end, waiting
    /// (each hook still bounded by its timeout), so `tuntap_down` scripts finish
    /// before the device disappears.
    func drain() {
        while !isIdle {
            startReady()
            waitForAnExit()
            let now = MonotonicClock.nanoseconds()
            for process in Array(processes.values) {
                if now >= process.deadline { expire(process) }
                reap(process)
            }
        }
    }

    private func startReady() {
        while let (hook, key) = schedule.next(limit: concurrencyLimit) {
            switch HookProcess.spawn(hook) {
            case .success(let pid):
                logger.info("hook: \(hook.commandLine)")
                watch(Process(hook: hook, key: key, pid: pid))
            case .failure(let error):
                logger.error("hook '\(hook.commandLine)' could not start: \(error); check the path and that it is executable")
                finished.failed += 1
                schedule.finished(key: key)
            }
        }
    }

    /// Arrange to hear of the process's end, and for its timeout.
    private func watch(_ process: Process) {
        processes[process.pid] = process
        let timeout = max(1, Int((process.hook.timeout * 1000).rounded(.up)))
        process.timeout = loop.timer { [unowned self, unowned process] in self.expire(process) }
        process.timeout?.arm(milliseconds: timeout, repeating: false)
        let fd = openPidfd(process.pid)
        if fd >= 0 {
            if let token = try? loop.watch(fd, { [unowned self, unowned process] in self.reap(process) }) {
                process.pidfd = fd
                process.watch = token
                return
            }
            close(fd)
        } else if !pidfdFailureLogged {
            pidfdFailureLogged = true
            logger.warning("pidfd_open failed (\(String(cString: strerror(-fd)))); hooks are reaped by polling every 20 ms")
        }
        polled += 1
        if poller == nil {
            poller = loop.timer { [unowned self] in
                for process in Array(self.processes.values) where process.watch == nil { self.reap(process) }
            }
        }
        if poller?.isArmed == false { poller?.arm(milliseconds: 20, repeating: true) }
    }

    private func expire(_ process: Process) {
        guard !process.killed else { return }
        process.killed = true
        kill(process.pid, SIGKILL)  // not reaped yet, so the pid is still this process's
        logger.error("hook '\(process.hook.commandLine)' ran longer than \(process.hook.timeout) s and was killed")
    }

    /// If the process has ended: collect it, count it, and start what may start now.
    private func reap(_ process: Process) {
        // Once reaped, the pid may be reused by the next hook: never wait on it again.
        guard processes[process.pid] === process else { return }
        var status: Int32 = 0
        let rc = waitpid(process.pid, &status, WNOHANG)
        let code = errno
        if rc == 0 { return }
        processes[process.pid] = nil
        process.timeout?.cancel()
        if let watch = process.watch {
            loop.unwatch(watch)
            close(process.pidfd)
        } else {
            polled -= 1
            if polled == 0 { poller?.arm(milliseconds: 0, repeating: false) }
        }
        if process.killed {
            finished.timedOut += 1
        } else if rc < 0 {
            finished.failed += 1
            logger.error("hook '\(process.hook.commandLine)' could not be waited for: \(String(cString: strerror(code)))")
        } else if let failure = HookProcess.failure(status: status) {
            finished.failed += 1
            if process.hook.mayFail {
                logger.debug("hook '\(process.hook.commandLine)' failed (\(failure)), as it may")
            } else {
                logger.warning("hook '\(process.hook.commandLine)' failed (\(failure))")
            }
        } else {
            finished.completed += 1
            logger.debug("hook '\(process.hook.commandLine)' done")
        }
        schedule.finished(key: process.key)
        startReady()
    }

    /// For `drain`, without the loop: sleep until a process ends or the next hook's
    /// timeout; processes without a pidfd are looked at every 10 ms.
    private func waitForAnExit() {
        guard !processes.isEmpty else { return }
        let now = MonotonicClock.nanoseconds()
        var descriptors = processes.values.filter { $0.pidfd >= 0 }.map { pollfd(fd: $0.pidfd, events: Int16(POLLIN), revents: 0) }
        var timeout = processes.values.filter { !$0.killed }
            .map { Int(max(0, $0.deadline - now) / 1_000_000) + 1 }.min() ?? -1
        if descriptors.count < processes.count { timeout = timeout < 0 ? 10 : min(timeout, 10) }
        _ = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: timeout))
    }
}
