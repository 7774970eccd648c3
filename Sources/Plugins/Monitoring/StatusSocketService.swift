import Foundation
import Framework
import Glibc
import Logging

/// The `status` service: a UNIX socket (mode 0600) that answers every connection
/// with the tunnel's status as one JSON document and closes it. It reads nothing
/// from the client, so a client that connects and stalls costs one accept and one
/// write into the socket buffer, never a wait on the loop.
final class StatusSocketService: Service {
    let path: String
    private let fd: Int32
    private let tunnel: Tunnel
    private var token: EventLoop.Token?

    /// `/run/tunneld/<site file name without .yaml>.sock` unless `socket` says otherwise.
    static func defaultPath(site: String) -> String {
        var name = String(site.split(separator: "/").last ?? "tunneld")
        for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        return "/run/tunneld/\(name).sock"
    }

    init(context: ServiceContext) throws {
        tunnel = context.tunnel
        let configured = context.settings.string(MonitoringPlugin.statusSocket)
        path = configured.isEmpty ? StatusSocketService.defaultPath(site: tunnel.spec.file) : context.settings.path("socket")!
        var address = try UnixSocket.address(path)
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !folder.isEmpty { mkdir(folder, 0o755) }
        // A socket file left by a crashed daemon is removed; a live one is not stolen.
        if let probe = try? UnixSocket.connect(path) {
            close(probe)
            throw ConfigurationError("status socket '\(path)' is in use by another running tunneld; give this site its own 'status: { socket: … }'")
        }
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("status socket") }
        // Created private: no moment where another user could connect.
        let oldMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(oldMask)
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 64) == 0 else {
            let error = SystemError("status socket '\(path)'")
            close(fd)
            throw error
        }
        if let user = tunnel.spec.user, geteuid() == 0 {
            // The daemon gives up root after start (`user:`) and must still remove its
            // socket at exit: as under systemd, whose RuntimeDirectory belongs to User=,
            // the socket and the shared default folder become the user's (root still connects).
            _ = chown(path, user.uid, user.gid)
            if folder == "/run/tunneld" { _ = chown(folder, user.uid, user.gid) }
        }
        token = try tunnel.loop.watch(fd) { [unowned self] in self.acceptAll() }
        tunnel.logger.info("status on \(path) (tunneld status \(path))")
    }

    private func acceptAll() {
        while true {
            // Written with MSG_DONTWAIT, so non-blocking mode does not matter for it;
            // close-on-exec does, since a status script may start before it is closed
            // (scripts are started on this thread, so none can slip in between).
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            // The status is taken here, on the loop (it reads the sessions' own
            // state); encoding and sending happen off it, so the packets wait only
            // for the copy, not for JSON.
            let status = tunnel.status()
            let logger = tunnel.logger
            StatusSocketService.writer.async {
                StatusSocketService.answer(client, status, logger: logger)
                close(client)
            }
        }
    }

    /// One serial queue for all answers: a burst of clients cannot start a burst of threads.
    private static let writer = DispatchQueue(label: "tunneld.status-socket")

    private static func answer(_ client: Int32, _ status: TunnelStatus, logger: Logger) {
        guard var document = try? StatusJSON.encode(status) else { return }
        document.append(0x0a)
        // Room for the whole document, so the write below never has to wait.
        var size = Int32(min(document.count + 4096, 16 << 20))
        setsockopt(client, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let sent = document.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if sent >= 0 && sent < document.count {
            logger.warning("status: \(document.count)-byte document cut at \(sent) bytes (client too slow)")
        }
    }

    func stop() {
        if let token { tunnel.loop.unwatch(token) }
        token = nil
        close(fd)
        unlink(path)
    }
}
