import CLinux
import Glibc

/// Starting a hook's process and reading how it ended.
enum HookProcess {
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Start `hook`: its script with an argv (never through a shell), every argument
    /// and environment value sanitised (`HookArgument`), and a clean signal mask —
    /// the daemon blocks its signals for the event loop's signalfd, and a child must
    /// not inherit that. The pid, or why posix_spawn failed.
    static func spawn(_ hook: HookRunner.Hook) -> Result<pid_t, SystemError> {
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

        var environment: [String: String] = [:]
        for (name, value) in hook.environment {
            environment[HookArgument.sanitizeName(name)] = HookArgument.sanitize(value)
        }
        if environment["PATH"] == nil { environment["PATH"] = defaultPath }
        let argv = ([hook.script] + hook.arguments.map(HookArgument.sanitize)).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if hook.mayFail { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, hook.script, &actions, &attributes, argv, envp)
        guard rc == 0 else { return .failure(SystemError("posix_spawn", code: rc)) }
        return .success(pid)
    }

    /// A descriptor readable once `pid` has ended, or -errno.
    static func openPidfd(_ pid: pid_t) -> Int32 {
        tl_pidfd_open(pid, 0)
    }

    /// Why a process with this wait status failed; nil if it exited with status 0.
    static func failure(status: Int32) -> String? {
        let signal = status & 0x7f
        guard signal == 0 else { return "signal \(signal)" }
        let code = (status >> 8) & 0xff
        return code == 0 ? nil : "exit status \(code)"
    }
}
