import Framework
import Glibc

/// Where a broker's tunnels carry frames: a TAP device per session here
/// (`UserspaceBrokerPlane`), or the kernel's L2TPv3 over generic netlink.
protocol BrokerDataPlane: AnyObject {
    var name: String { get }
    /// Whether control datagrams to clients share the listening sockets (and can be
    /// batched), rather than each tunnel having its own socket.
    var sharesListeningSockets: Bool { get }
    /// Make the tunnel's session and interface; `done` runs on the loop (at once, or
    /// when the kernel has answered) with the session or why not. May give the
    /// tunnel a socket of its own (`t.link`) before it returns.
    func open(_ t: BrokerTunnel, routes: PseudowireRoutes, done: @escaping (Result<Session, any Error>) -> Void)
    func setMTU(_ t: BrokerTunnel, _ mtu: Int) throws
    /// Remove the tunnel's session and interface (batched with others that end now).
    func close(_ t: BrokerTunnel)
}

/// The kernel refused the tunnel id (another program holds it): retire it.
struct TunnelIDTaken: Error, CustomStringConvertible {
    let id: UInt32
    var description: String { "tunnel id \(id) is in use by another program" }
}

/// The kernel refused a second session with the same id (kernels with system-wide
/// unique L2TPv3 session ids, §3.5 step 5).
struct SessionIDTaken: Error, CustomStringConvertible {
    let id: UInt32
    var description: String { "the kernel already has an L2TPv3 session with id \(id)" }
}

/// The userspace data plane: one TAP device per session, named and sized as
/// tunneldigger's kernel sessions are, and left down for the `session.up` hook to
/// bring up (as the kernel leaves a new l2tp_eth device), so the same scripts work.
final class UserspaceBrokerPlane: BrokerDataPlane {
    unowned let tunnel: Tunnel
    let name = "userspace"
    let sharesListeningSockets = true

    init(tunnel: Tunnel) { self.tunnel = tunnel }

    func open(_ t: BrokerTunnel, routes: PseudowireRoutes, done: @escaping (Result<Session, any Error>) -> Void) {
        routes.pending[t.interface] = PseudowireRoute(peerSessionID: t.peerSessionID, link: Int32(t.link.index), client: t.client)
        defer { routes.pending[t.interface] = nil }
        do {
            done(.success(try tunnel.makeSession(name: t.interface, peer: t.client,
                                                 device: Tunnel.SessionDevice(name: t.interface, mtu: t.mtu, up: false))))
        } catch let error as SystemError where error.code == EBUSY || error.code == EEXIST || error.code == EINVAL {
            // A device of that name belongs to someone else: keep away from this id.
            done(.failure(TunnelIDTaken(id: t.id)))
        } catch {
            done(.failure(error))
        }
    }

    func setMTU(_ t: BrokerTunnel, _ mtu: Int) throws {
        try t.session.device?.setMTU(mtu)
    }

    func close(_ t: BrokerTunnel) {
        tunnel.endSession(t.session)
    }
}

enum L2TPDataPlanes {
    /// The kernel's L2TP when the settings allow it and its generic-netlink family
    /// resolves; nil for the userspace data plane. Says which it chose.
    static func kernel(_ choice: L2TPSettings.DataPlane, role: String, tunnel: Tunnel) throws -> sending KernelL2TP? {
        let logger = tunnel.logger
        if choice == .userspace {
            logger.notice("\(role): userspace data plane (a TAP device per session), as configured")
            return nil
        }
        if let kernel = try? KernelL2TP.open() {
            logger.notice("\(role): kernel data plane (generic-netlink family 'l2tp' is id \(kernel.family))")
            return kernel
        }
        if choice == .kernel {
            throw ConfigurationError("data-plane: kernel, but this kernel has no L2TP (generic-netlink family 'l2tp' not found; load l2tp_netlink and l2tp_eth) — use data-plane: auto or userspace")
        }
        logger.notice("\(role): the kernel has no L2TP (generic-netlink family 'l2tp' not found); userspace data plane (a TAP device per session)")
        return nil
    }
}

enum BrokerDataPlanes {
    /// The data plane the settings ask for; with the kernel's, tunnels of the id
    /// range that an earlier run left behind are removed first (§3.8).
    static func choose(_ choice: L2TPSettings.DataPlane, tunnel: Tunnel, idRange: ClosedRange<UInt32>) throws -> BrokerDataPlane {
        guard let kernel = try L2TPDataPlanes.kernel(choice, role: "l2tp-broker", tunnel: tunnel) else {
            return UserspaceBrokerPlane(tunnel: tunnel)
        }
        do {
            let removed = try kernel.removeStale(tunnelIDs: idRange)
            if removed.sessions + removed.tunnels > 0 {
                tunnel.logger.notice("l2tp-broker: removed \(removed.tunnels) stale kernel tunnels and \(removed.sessions) sessions with ids \(idRange.lowerBound)…\(idRange.upperBound)")
            }
        } catch {
            throw ConfigurationError("cannot list the kernel's L2TP tunnels to remove stale ones (\(error)); is tunneld running as root?")
        }
        return try KernelBrokerPlane(tunnel: tunnel, l2tp: kernel)
    }
}
