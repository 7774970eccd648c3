/// Splits a batch between the sessions its packets belong to and runs each
/// session's pipeline once on its share, for managers that serve many peers over
/// shared sockets (a bonding hub, an L2TP broker).
///
/// The work is proportional to the batch, never to the number of sessions: packets
/// are tagged with the index of their session among the batch's distinct owners
/// (at most one per packet), and each owner's share goes through a view of the
/// batch, so no packet is copied and nothing is allocated.
public final class SessionDispatcher {
    private let view: PacketBatch
    private var owners: [Session]

    public init(batchSize: Int, headroom: Int, tailroom: Int) {
        view = PacketBatch(viewCapacity: batchSize, headroom: headroom, tailroom: tailroom)
        owners = []
        owners.reserveCapacity(batchSize)
    }

    /// `owner` names each packet's session (nil: dropped as `unowned`). Outbound
    /// batches go down the owners' pipelines (`send`), inbound ones up (`receive`).
    public func dispatch(_ batch: PacketBatch, outbound: Bool, unowned: DropReason, owner: (Packet) -> Session?) {
        owners.removeAll(keepingCapacity: true)
        for index in 0..<batch.count where batch[index].dropReason == nil {
            guard let session = owner(batch[index]), session.pipeline != nil else {
                batch.drop(index, unowned)
                continue
            }
            // Packets of one session usually come together: check the latest first.
            var slot = owners.count - 1
            while slot >= 0 && owners[slot] !== session { slot -= 1 }
            if slot < 0 {
                owners.append(session)
                slot = owners.count - 1
            }
            batch[index].sequence = UInt64(slot)
        }
        batch.removeDropped()
        if owners.count == 1 {
            run(owners[0], batch, outbound)
        } else if owners.count > 1 {
            for slot in owners.indices {
                view.reset()
                for index in 0..<batch.count where batch[index].sequence == UInt64(slot) { view.append(batch[index]) }
                run(owners[slot], view, outbound)
            }
            view.reset()
            batch.consumeAll()
        }
        owners.removeAll(keepingCapacity: true)
    }

    private func run(_ session: Session, _ batch: PacketBatch, _ outbound: Bool) {
        guard let pipeline = session.pipeline else { return }
        outbound ? pipeline.send(batch) : pipeline.receive(batch)
    }
}
