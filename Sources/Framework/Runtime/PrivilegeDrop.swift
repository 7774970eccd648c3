import CLinux
import Glibc

/// Giving up root once the tunnel has started (the site file's `user:`).
///
/// What needs root happens in `Tunnel.start`: the device, the sockets, the status
/// socket, the HTTP listener. What the daemon still does later — a broker's
/// per-session TAPs, kernel L2TP tunnels and sessions over netlink, device removal,
/// the hooks' `ip` and `tc` — the kernel checks against `CAP_NET_ADMIN` alone. So the
/// daemon keeps that capability (and `CAP_NET_BIND_SERVICE` when a link binds a port
/// below 1024: a broker opens a socket per client on its ports, a reload re-binds),
/// raised as ambient so hooks started with posix_spawn have it too, and nothing else.
/// A privileged helper process (OpenSSH's monitor, mlvpn's privsep) would keep root
/// somewhere for the same operations and add a protocol to attack; with one
/// capability that covers them all, the daemon needs none.
enum PrivilegeDrop {
    /// The capabilities tunneld may keep (numbers from linux/capability.h).
    enum Capability: Int, CaseIterable, Sendable {
        case netBindService = 10
        case netAdmin = 12

        var name: String {
            switch self {
            case .netBindService: return "cap_net_bind_service"
            case .netAdmin: return "cap_net_admin"
            }
        }

        static func mask(_ capabilities: [Capability]) -> UInt64 {
            capabilities.reduce(0) { $0 | UInt64(1) << UInt64($1.rawValue) }
        }

        static func names(_ mask: UInt64) -> String {
            let names = allCases.filter { mask & (UInt64(1) << UInt64($0.rawValue)) != 0 }.map(\.name)
            return names.isEmpty ? "no capabilities" : names.joined(separator: ", ")
        }
    }

    /// What the running tunnel still needs.
    static func capabilities(for spec: TunnelSpec) -> [Capability] {
        let lowPort = spec.links.contains { (1..<1024).contains($0.bind.port) }
        return lowPort ? [.netBindService, .netAdmin] : [.netAdmin]
    }

    /// Become `user` on every thread, keeping only `keep`; from root the ids change,
    /// as `user` already (systemd's `User=`) only the capabilities shrink. Reads every
    /// thread's credentials back and throws if one kept more: the daemon must not run
    /// half-dropped. Returns the capabilities kept.
    @discardableResult
    static func apply(_ user: DaemonUser, keep: [Capability]) throws -> UInt64 {
        let mask = Capability.mask(keep)
        let switching = geteuid() == 0
        guard switching || geteuid() == user.uid else {
            throw ConfigurationError("'user: \(user.name)': tunneld runs as \(DaemonUser.userName(geteuid())), not root, so it cannot "
                + "become \(user.name); start it as root, or as \(user.name) (systemd: User=\(user.name))")
        }
        try drop(switching: switching, user, mask)
        if !misfits(user, mask, switching: switching).isEmpty {
            // A thread started while the change went round: give every thread the final sets again.
            try drop(switching: false, user, mask)
        }
        let left = misfits(user, mask, switching: switching)
        guard left.isEmpty else {
            throw ConfigurationError("after switching to \(user.name), threads \(left.map(\.thread)) still hold other ids or "
                + "capabilities; refusing to run half-privileged")
        }
        return ThreadCredentials.all().first?.permitted ?? 0
    }

    private static func drop(switching: Bool, _ user: DaemonUser, _ mask: UInt64) throws {
        var step: UnsafePointer<CChar>?
        let result = user.groups.withUnsafeBufferPointer {
            tl_drop_privileges(switching ? 1 : 0, user.uid, user.gid, $0.baseAddress, $0.count, mask, &step)
        }
        guard result == 0 else {
            let call = step.map { String(cString: $0) } ?? "?"
            var hint = ""
            if result == -EPERM && switching {
                hint = " (switching users needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP; under systemd use User=\(user.name) instead)"
            }
            throw ConfigurationError("cannot run as \(user.name): \(call): \(String(cString: strerror(-result)))\(hint)")
        }
    }

    /// Threads whose ids are not all `user`'s or that hold a capability outside `mask`.
    private static func misfits(_ user: DaemonUser, _ mask: UInt64, switching: Bool) -> [ThreadCredentials] {
        ThreadCredentials.all().filter { thread in
            let outside = (thread.permitted | thread.effective | thread.inheritable | thread.ambient) & ~mask
            return thread.uids.contains { $0 != user.uid } || (switching && thread.gids.contains { $0 != user.gid })
                || outside != 0 || (switching && thread.bounding & ~mask != 0)
        }
    }

    /// What will not work as `user` though the tunnel started: said once at start,
    /// instead of at every reload or session.
    static func warnings(for spec: TunnelSpec, user: DaemonUser, kept: UInt64) -> [String] {
        var warnings: [String] = []
        if kept & (UInt64(1) << UInt64(Capability.netAdmin.rawValue)) == 0 {
            warnings.append("running without cap_net_admin (not among the capabilities tunneld was given): devices made at run time, "
                + "kernel L2TP sessions and hooks that change interfaces will fail")
        }
        if access(spec.file, R_OK) != 0 {
            warnings.append("\(user.name) cannot read \(spec.file): a reload (SIGHUP) will fail; make it readable by \(user.name)")
        }
        if spec.devicesPerSession && access("/dev/net/tun", R_OK | W_OK) != 0 {
            warnings.append("\(user.name) cannot open /dev/net/tun: sessions that need a TUN/TAP device (the userspace data plane) "
                + "will fail; give it mode 0666, udev's default ('chmod 666 /dev/net/tun')")
        }
        return warnings
    }
}
