/// The `udp` transport stage: sends each packet on the link chosen for it
/// (`packet.link`, set by the schedule stage; link 0 when there is none) with batched
/// `sendmmsg`. Received datagrams arrive already demultiplexed, so its receive side
/// passes them on unchanged.
final class UDPTransportStage: Stage {
    /// The tunnel's links, read per batch: a reload may add or remove links.
    let currentLinks: () -> [UDPLink]

    init(links: @escaping () -> [UDPLink]) {
        currentLinks = links
    }

    func send(_ batch: PacketBatch) {
        let links = currentLinks()
        let linkCount = Int32(links.count)
        for index in 0..<batch.count where batch[index].link < 0 || batch[index].link >= linkCount {
            batch.drop(index, .noLink)
        }
        if links.count == 1 {
            links[0].send(batch)
        } else {
            for link in links { link.send(batch) }
        }
        batch.removeDropped()  // counts send failures
        batch.consumeAll()
    }

    static let descriptor = StageDescriptor(
        name: "udp",
        summary: "datagrams over the tunnel's UDP links (batched recvmmsg/sendmmsg)",
        slots: [.transport],
        make: { context in
            guard !context.tunnel.links.isEmpty else { throw ConfigurationError("stage 'udp' needs at least one link") }
            return UDPTransportStage { [unowned tunnel = context.tunnel] in tunnel.links }
        })
}
