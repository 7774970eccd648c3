import Framework

/// What the client needs to make its pseudowire once the broker answered TUNNEL.
struct ClientPseudowire {
    let interface: String
    let tunnelID: UInt32
    let sessionID: UInt32
    let peerTunnelID: UInt32
    let peerSessionID: UInt32
    /// The connected socket to the broker (handed to the kernel on its data plane).
    let link: UDPLink
    let broker: SocketAddress
}

/// Where the client's pseudowire carries frames: a TAP device here, or the kernel's
/// L2TPv3 session over generic netlink.
protocol ClientDataPlane: AnyObject {
    var name: String { get }
    func open(_ wire: ClientPseudowire) throws -> Session
    func setMTU(_ session: Session, _ wire: ClientPseudowire, _ mtu: Int) throws
    func close(_ session: Session, _ wire: ClientPseudowire)
    /// Before each attempt: remove what an earlier run left with our tunnel id (§2.2).
    func clearLeftovers(tunnelID: UInt32)
}

/// The userspace data plane: a TAP device named as the client's `-i`, left down for
/// the `session.up` hook to bring up and address, as the kernel leaves an l2tp_eth device.
final class UserspaceClientPlane: ClientDataPlane {
    unowned let tunnel: Tunnel
    let routes: PseudowireRoutes
    let name = "userspace"

    init(tunnel: Tunnel) {
        self.tunnel = tunnel
        routes = tunnel.shared(PseudowireRoutes.self) { PseudowireRoutes() }
    }

    func open(_ wire: ClientPseudowire) throws -> Session {
        routes.pending[wire.interface] = PseudowireRoute(peerSessionID: wire.peerSessionID, link: Int32(wire.link.index), client: wire.broker)
        defer { routes.pending[wire.interface] = nil }
        return try tunnel.makeSession(name: wire.interface, peer: wire.broker,
                                      device: Tunnel.SessionDevice(name: wire.interface, mtu: TunnelMTU.initial, up: false))
    }

    func setMTU(_ session: Session, _ wire: ClientPseudowire, _ mtu: Int) throws {
        try session.device?.setMTU(mtu)
    }

    func close(_ session: Session, _ wire: ClientPseudowire) {
        tunnel.endSession(session)
    }

    func clearLeftovers(tunnelID: UInt32) {}  // our TAP devices end with the process
}

/// The kernel's data plane (§5.4, client rows). The requests are short and the
/// client has one session, so they run on the loop; frames never reach userspace.
final class KernelClientPlane: ClientDataPlane {
    unowned let tunnel: Tunnel
    let l2tp: KernelL2TP
    let name = "kernel"

    init(tunnel: Tunnel, l2tp: KernelL2TP) {
        self.tunnel = tunnel
        self.l2tp = l2tp
    }

    func open(_ wire: ClientPseudowire) throws -> Session {
        try l2tp.createTunnel(id: wire.tunnelID, peerID: wire.peerTunnelID, socketFD: wire.link.fd)
        do {
            try l2tp.createSession(tunnelID: wire.tunnelID, sessionID: wire.sessionID,
                                   peerSessionID: wire.peerSessionID, interface: wire.interface)
        } catch {
            try? l2tp.deleteTunnel(id: wire.tunnelID)
            throw error
        }
        return tunnel.makeKernelSession(name: wire.interface, peer: wire.broker,
                                        description: "l2tp tunnel \(wire.tunnelID) session \(wire.sessionID)", device: wire.interface)
    }

    func setMTU(_ session: Session, _ wire: ClientPseudowire, _ mtu: Int) throws {
        try TunDevice.setMTU(mtu, interface: wire.interface)
        // The C client sends session id 1 here whatever the session is; this is its own.
        try l2tp.setSessionMTU(tunnelID: wire.tunnelID, sessionID: wire.sessionID, mtu: UInt16(clamping: mtu))
    }

    func close(_ session: Session, _ wire: ClientPseudowire) {
        try? l2tp.deleteSession(tunnelID: wire.tunnelID, sessionID: wire.sessionID)
        try? l2tp.deleteTunnel(id: wire.tunnelID)
        tunnel.endSession(session)
    }

    func clearLeftovers(tunnelID: UInt32) {
        do {
            let removed = try l2tp.removeStale(tunnelIDs: tunnelID...tunnelID)
            if removed.tunnels > 0 { tunnel.logger.notice("l2tp-client: removed a leftover kernel tunnel \(tunnelID)") }
        } catch {
            tunnel.logger.warning("l2tp-client: cannot look for a leftover kernel tunnel \(tunnelID): \(error)")
        }
    }
}
