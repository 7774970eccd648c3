import Framework

/// Where one session's frames go: the peer's session id for the header, the socket
/// and the client address. Shared by the session's manager (which fills it at the
/// handshake and may move it) and its pseudowire stage (which reads it per batch).
final class PseudowireRoute {
    var peerSessionID: UInt32
    /// Index of the listening link in the tunnel's links (the transport sends there).
    var link: Int32
    var client: SocketAddress

    init(peerSessionID: UInt32, link: Int32, client: SocketAddress) {
        (self.peerSessionID, self.link, self.client) = (peerSessionID, link, client)
    }
}

/// Routes of sessions being built: the manager files one under the session's name
/// just before `makeSession`, the stage's factory takes it.
final class PseudowireRoutes {
    var pending: [String: PseudowireRoute] = [:]
}

/// `l2tpv3.pseudowire`, the schedule slot of the L2TP profiles: the userspace L2TPv3
/// data plane (RFC 3931 over UDP, Ethernet pseudowire), byte-identical to what the
/// Linux kernel sends for a tunneldigger session (§4.1): `00 03 00 00`, the receiver's
/// session id, a zero default L2-specific sublayer, then the frame.
///
/// On send it prepends that header and points the packet at the session's client;
/// on receive it strips it (the manager has already matched the datagram to this
/// session by address and session id).
final class PseudowireStage: Stage {
    let route: PseudowireRoute

    init(route: PseudowireRoute) {
        self.route = route
    }

    func send(_ batch: PacketBatch) {
        let sessionID = route.peerSessionID
        let link = route.link
        let client = route.client
        for index in 0..<batch.count {
            guard let header = batch[index].prepend(PseudowireHeader.size) else {
                batch.drop(index, .noRoom)
                continue
            }
            PseudowireHeader.write(sessionID: sessionID, to: header)
            batch[index].link = link
            batch[index].peer = client
        }
    }

    /// Anything shorter than the header and an Ethernet header (the session manager
    /// hands those from the session's own address here to be counted) is `truncated`.
    func receive(_ batch: PacketBatch) {
        for index in 0..<batch.count
        where batch[index].length < PseudowireHeader.minimumDatagram || !batch[index].trimFront(PseudowireHeader.size) {
            batch.drop(index, .truncated)
        }
    }

    static let descriptor = StageDescriptor(
        name: "l2tpv3.pseudowire",
        summary: "L2TPv3 over UDP, Ethernet pseudowire (tunneldigger's data packets): the userspace data plane of the l2tp profiles",
        slots: [.schedule],
        // Data datagrams start with T = 0 (first byte below 0x80); 0x80 is the
        // tunneldigger control protocol's magic, claimed by the session manager.
        dataFirstBytes: [0x00...0x7F],
        make: { context in
            let routes = context.tunnel.shared(PseudowireRoutes.self) { PseudowireRoutes() }
            guard let route = routes.pending.removeValue(forKey: context.session.name) else {
                throw ConfigurationError("stage 'l2tpv3.pseudowire' works only with the l2tp-broker and l2tp-client session managers")
            }
            return PseudowireStage(route: route)
        })
}
