import Framework
import Glibc

/// The broker's kernel data plane (§3.1, §5.4): for each tunnel a UDP socket bound
/// to the listening address and port (`SO_REUSEPORT`) and connected to the client,
/// handed to the kernel with TUNNEL_CREATE, then an Ethernet session named
/// `l2tp<T>-<S>`. Frames never reach userspace; control datagrams still do, on the
/// tunnel's socket. The netlink requests run on a worker thread, in order, so a
/// burst of handshakes never stalls the loop.
final class KernelBrokerPlane: BrokerDataPlane {
    unowned let tunnel: Tunnel
    let name = "kernel"
    let sharesListeningSockets = false
    private let worker: NetlinkWorker<KernelL2TP>

    init(tunnel: Tunnel, l2tp: sending KernelL2TP) throws {
        self.tunnel = tunnel
        worker = try NetlinkWorker(resource: l2tp, loop: tunnel.loop)
    }

    func open(_ t: BrokerTunnel, routes: PseudowireRoutes, done: @escaping (Result<Session, any Error>) -> Void) {
        let listening = t.link
        let socket: UDPLink
        do {
            socket = try tunnel.openLink(name: t.interface, bind: listening.localAddress, device: listening.device,
                                         options: UDPLink.Options(reusePort: true, connectTo: t.client, pmtuDiscovery: .probe,
                                                                  socketBuffer: 256 << 10, coalescedReceive: false))
        } catch {
            done(.failure(error))
            return
        }
        t.link = socket
        let (id, peerID, sessionID, peerSessionID) = (t.id, t.peerTunnelID, t.sessionID, t.peerSessionID)
        let (interface, mtu, fd) = (t.interface, UInt16(clamping: t.mtu), socket.fd)
        let sessionName = "l2tp tunnel \(id) session \(sessionID)"
        worker.submitFromLoop({ l2tp in
            do {
                try l2tp.createTunnel(id: id, peerID: peerID, socketFD: fd)
            } catch let error as NetlinkError where error.code == EEXIST {
                throw TunnelIDTaken(id: id)
            }
            do {
                try l2tp.createSession(tunnelID: id, sessionID: sessionID, peerSessionID: peerSessionID, interface: interface)
            } catch {
                try? l2tp.deleteTunnel(id: id)
                if let netlink = error as? NetlinkError, netlink.code == EEXIST { throw SessionIDTaken(id: sessionID) }
                throw error
            }
            try l2tp.setSessionMTU(tunnelID: id, sessionID: sessionID, mtu: mtu)
        }, completion: { [unowned self] result in
            switch result {
            case .success:
                try? TunDevice.setMTU(Int(mtu), interface: interface)
                done(.success(tunnel.makeKernelSession(name: interface, peer: t.client, description: sessionName, device: interface)))
            case .failure(let error):
                // Closing the socket removes a kernel tunnel made with it.
                tunnel.closeLink(socket)
                done(.failure(error))
            }
        })
    }

    func setMTU(_ t: BrokerTunnel, _ mtu: Int) throws {
        try TunDevice.setMTU(mtu, interface: t.interface)
        let (id, sessionID, logger) = (t.id, t.sessionID, tunnel.logger)
        worker.submitFromLoop({ l2tp in try l2tp.setSessionMTU(tunnelID: id, sessionID: sessionID, mtu: UInt16(clamping: mtu)) },
                      completion: { result in
                          if case .failure(let error) = result { logger.warning("l2tp-broker: MTU of session \(id)/\(sessionID): \(error)") }
                      })
    }

    func close(_ t: BrokerTunnel) {
        tunnel.endSession(t.session)
        let (id, sessionID, socket) = (t.id, t.sessionID, t.link)
        // The session first (as upstream); the tunnel goes with its socket.
        worker.submitFromLoop({ l2tp in try? l2tp.deleteSession(tunnelID: id, sessionID: sessionID) },
                      completion: { [unowned self] _ in tunnel.closeLink(socket) })
    }
}
