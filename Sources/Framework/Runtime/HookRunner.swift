import Glibc
import Logging

/// Runs status scripts (hooks) one at a time, in the order they were asked for, off
/// the data path: the loop only starts a process and later reaps it, never waits.
/// A script that runs past its timeout is killed. Order matters to scripts written
/// for mlvpn (`tuntap_up` configures the device before `rtun_up` adds routes), so a
/// hook starts only after the previous one ended.
public final class HookRunner {
    public struct Hook {
        public var script: String
        public var arguments: [String]
        public var environment: [String: String]
        public var timeout: Double

        public init(script: String, arguments: [String], environment: [String: String], timeout: Double) {
            self.script = script
            self.arguments = arguments
            self.environment = environment
            self.timeout = timeout
        }

        var commandLine: String { ([script] + arguments).joined(separator: " ") }
    }

    private let loop: EventLoop
    private let logger: Logger
    private var queue: [Hook] = []
    private var running: (hook: Hook, pid: pid_t, deadline: Double)?
    private var reaper: EventLoop.Timer?

    init(loop: EventLoop, logger: Logger) {
        self.loop = loop
        self.logger = logger
    }

    /// Queue a hook; it starts when those before it have ended.
    public func run(_ hook: Hook) {
        queue.append(hook)
        if running == nil { startNext() }
    }

    public var isIdle: Bool { running == nil && queue.isEmpty }

    /// At shutdown: run what is queued to the end, waiting (each hook still bounded by
    /// its timeout), so `tuntap_down` scripts finish before the device disappears.
    public func drain() {
        while !isIdle {
            if running == nil { startNext() }
            guard running != nil else { continue }
            reap()
            if running != nil { usleep(10_000) }
        }
    }

    private func startNext() {
        while running == nil, !queue.isEmpty {
            let hook = queue.removeFirst()
            if let pid = spawn(hook) {
                running = (hook, pid, MonotonicClock.now() + hook.timeout)
                if reaper == nil {
                    reaper = try? loop.addTimer(milliseconds: 20, repeating: true) { [unowned self] in self.reap() }
                }
            }
        }
        if running == nil {
            reaper?.cancel()
            reaper = nil
        }
    }

    private func reap() {
        guard let (hook, pid, deadline) = running else { return }
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == 0 {
            guard MonotonicClock.now() >= deadline else { return }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            logger.error("hook '\(hook.commandLine)' ran longer than \(hook.timeout) s and was killed")
        } else {
            let exited = status & 0x7f == 0
            let code = (status >> 8) & 0xff
            if !exited || code != 0 {
                logger.warning("hook '\(hook.commandLine)' failed (\(exited ? "exit status \(code)" : "signal \(status & 0x7f)"))")
            } else {
                logger.debug("hook '\(hook.commandLine)' done")
            }
        }
        running = nil
        startNext()
    }

    /// Start the script with a clean signal mask (the daemon blocks its signals for
    /// the event loop's signalfd; a child must not inherit that).
    private func spawn(_ hook: Hook) -> pid_t? {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = hook.environment
        if environment["PATH"] == nil { environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        let argv = ([hook.script] + hook.arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, hook.script, nil, &attributes, argv, envp)
        guard rc == 0 else {
            logger.error("hook '\(hook.commandLine)' could not start: \(String(cString: strerror(rc))); check the path and that it is executable")
            return nil
        }
        logger.info("hook: \(hook.commandLine)")
        return pid
    }
}
