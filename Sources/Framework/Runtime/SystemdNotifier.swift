import CLinux
import Glibc

/// systemd's readiness protocol (sd_notify(3)), spoken directly: one datagram of
/// `KEY=VALUE` lines to the socket in `$NOTIFY_SOCKET`. Without that variable (not
/// started by systemd with `Type=notify`) every call does nothing.
///
/// The messages tunneld sends: `READY=1` once the device, links and services are up;
/// `RELOADING=1` then `READY=1` around a SIGHUP reload; `STOPPING=1` at shutdown;
/// `WATCHDOG=1` from the loop itself when the unit sets `WatchdogSec=`, so a wedged
/// data path is restarted by systemd.
final class SystemdNotifier {
    private let address: sockaddr_un?
    private let addressLength: socklen_t
    private let fd: Int32
    /// Half of `$WATCHDOG_USEC`, when the watchdog is on for this process.
    let watchdogInterval: Double?

    init(environment: [String: String] = SystemdNotifier.processEnvironment()) {
        var watchdog: Double?
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdog = Double(usec) / 2e6
        }
        guard let path = environment["NOTIFY_SOCKET"], path.hasPrefix("/") || path.hasPrefix("@"),
              path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            (address, addressLength, fd, watchdogInterval) = (nil, 0, -1, nil)
            return
        }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        // '@' names a socket in the abstract namespace: a leading NUL byte, no terminator.
        var bytes = Array(path.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &target.sun_path) { $0.copyBytes(from: bytes) }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        address = target
        addressLength = socklen_t(offset + bytes.count + (bytes[0] == 0 ? 0 : 1))
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        watchdogInterval = watchdog
    }

    deinit { if fd >= 0 { close(fd) } }

    var isActive: Bool { fd >= 0 }

    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let value = getenv(key) { result[key] = String(cString: value) }
        }
        return result
    }

    /// Send `lines` as one message. Best effort: systemd not listening is not an error
    /// the tunnel could act on.
    func notify(_ lines: [String]) {
        guard fd >= 0, var target = address else { return }
        let message = lines.joined(separator: "\n")
        _ = message.withCString { text in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
    }

    func ready(status: String) { notify(["READY=1", "STATUS=\(status)"]) }

    /// Before a reload: systemd wants the monotonic time with it (systemd 253+).
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        notify(["RELOADING=1", "MONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)"])
    }

    func stopping() { notify(["STOPPING=1"]) }
    func watchdog() { notify(["WATCHDOG=1"]) }
}
