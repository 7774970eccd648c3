import Framework
import Glibc

/// Where a broker's tunnels carry frames: a TAP device per session here
/// (`UserspaceBrokerPlane`), or the kernel's L2TPv3 over generic netlink.
protocol BrokerDataPlane: AnyObject {
    var name: String { get }
    /// Make the tunnel's session (and its interface), or throw why not.
    func open(_ t: BrokerTunnel, routes: PseudowireRoutes) throws -> Session
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

    init(tunnel: Tunnel) { self.tunnel = tunnel }

    func open(_ t: BrokerTunnel, routes: PseudowireRoutes) throws -> Session {
        routes.pending[t.interface] = PseudowireRoute(peerSessionID: t.peerSessionID, link: Int32(t.link.index), client: t.client)
        defer { routes.pending[t.interface] = nil }
        do {
            return try tunnel.makeSession(name: t.interface, peer: t.client,
                                          device: Tunnel.SessionDevice(name: t.interface, mtu: t.mtu, up: false))
        } catch let error as SystemError where error.code == EBUSY || error.code == EEXIST || error.code == EINVAL {
            // A device of that name belongs to someone else: keep away from this id.
            throw TunnelIDTaken(id: t.id)
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
    static func kernel(_ choice: BrokerSettings.DataPlaneChoice, role: String, tunnel: Tunnel) throws -> KernelL2TP? {
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
    static func choose(_ choice: BrokerSettings.DataPlaneChoice, tunnel: Tunnel, idRange: ClosedRange<UInt32>) throws -> BrokerDataPlane {
        if try L2TPDataPlanes.kernel(choice, role: "l2tp-broker", tunnel: tunnel) != nil {
            // The broker's kernel data plane (a connected socket per tunnel handed to
            // the kernel) is not built yet; the client's is. Say so rather than pretend.
            tunnel.logger.warning("l2tp-broker: tunneld's broker has no kernel data plane yet; using the userspace one (a TAP device per session)")
        }
        return UserspaceBrokerPlane(tunnel: tunnel)
    }
}
