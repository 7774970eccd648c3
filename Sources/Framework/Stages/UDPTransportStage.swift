/// The `udp` transport stage: sends each packet on the link chosen for it
/// (`packet.link`, set by the schedule stage; link 0 when there is none) with batched
/// `sendmmsg`. Received datagrams arrive already demultiplexed, so its receive side
/// passes them on unchanged.
final class UDPTransportStage: Stage {
    /// The site's links, read per batch: a reload may add or remove links.
    let currentLinks: () -> [UDPLink]
    /// Runtime links that carry data (a client's socket to its broker).
    let currentDataLinks: () -> [UDPLink]

    init(links: @escaping () -> [UDPLink], dataLinks: @escaping () -> [UDPLink] = { [] }) {
        currentLinks = links
        currentDataLinks = dataLinks
    }

    func send(_ batch: PacketBatch) {
        let links = currentLinks()
        let dataLinks = currentDataLinks()
        let linkCount = Int32(links.count)
        for index in 0..<batch.count {
            let target = batch[index].link
            if target >= 0 && target < linkCount { continue }
            if target >= Int32(Tunnel.runtimeLinkIndexBase), dataLinks.contains(where: { $0.index == Int(target) }) { continue }
            batch.drop(index, .noLink)
        }
        if links.count == 1 && dataLinks.isEmpty {
            links[0].send(batch)
        } else {
            for link in links { link.send(batch) }
            for link in dataLinks { link.send(batch) }
        }
        batch.removeDropped()  // counts send failures
        batch.consumeAll()
    }

    static let descriptor = StageDescriptor(
        name: "udp",
        summary: "datagrams over the tunnel's UDP links (batched recvmmsg/sendmmsg)",
        slots: [.transport],
        make: { context in
            UDPTransportStage(links: { [unowned tunnel = context.tunnel] in tunnel.links },
                              dataLinks: { [unowned tunnel = context.tunnel] in tunnel.dataLinks })
        })
}
