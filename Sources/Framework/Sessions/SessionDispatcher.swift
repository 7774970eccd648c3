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
    /// Counting sort of a batch's packets by owner: where each owner's run starts in
    /// `order`, and the next free place of each run while filling it.
    private var starts: [Int]
    private var cursors: [Int]
    private var order: [Int]
    private var pass: UInt32 = 0

    public init(batchSize: Int, headroom: Int, tailroom: Int) {
        view = PacketBatch(viewCapacity: batchSize, headroom: headroom, tailroom: tailroom)
        owners = []
        owners.reserveCapacity(batchSize)
        starts = [Int](repeating: 0, count: batchSize + 1)
        cursors = [Int](repeating: 0, count: batchSize + 1)
        order = [Int](repeating: 0, count: batchSize)
    }

    /// `owner` names each packet's session (nil: dropped as `unowned`). Outbound
    /// batches go down the owners' pipelines (`send`), inbound ones up (`receive`).
    public func dispatch(_ batch: PacketBatch, outbound: Bool, unowned: DropReason, owner: (Packet) -> Session?) {
        owners.removeAll(keepingCapacity: true)
        pass = pass == UInt32.max ? 1 : pass + 1
        let me = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        for index in 0..<batch.count where batch[index].dropReason == nil {
            guard let session = owner(batch[index]), session.pipeline != nil else {
                batch.drop(index, unowned)
                continue
            }
            // The session remembers its slot for this pass: no search per packet.
            if session.dispatchOwner != me || session.dispatchPass != pass {
                session.dispatchOwner = me
                session.dispatchPass = pass
                session.dispatchSlot = owners.count
                owners.append(session)
            }
            batch[index].sequence = UInt64(session.dispatchSlot)
        }
        batch.removeDropped()
        if owners.count == 1 {
            run(owners[0], batch, outbound)
        } else if owners.count > 1 {
            splitByOwner(batch)
            view.viewSource = batch.lender
            defer { view.viewSource = nil }
            for slot in owners.indices {
                view.reset()
                for position in starts[slot]..<starts[slot + 1] { view.append(batch[order[position]]) }
                run(owners[slot], view, outbound)
            }
            view.reset()
            batch.consumeAll()
        }
        owners.removeAll(keepingCapacity: true)
    }

    /// Fill `order` with the batch's packet indices grouped by owner slot, in
    /// arrival order within each group: O(batch + owners).
    private func splitByOwner(_ batch: PacketBatch) {
        let groups = owners.count
        for slot in 0...groups { starts[slot] = 0 }
        for index in 0..<batch.count { starts[Int(batch[index].sequence) + 1] += 1 }
        for slot in 0..<groups { starts[slot + 1] += starts[slot] }
        for slot in 0..<groups { cursors[slot] = starts[slot] }
        for index in 0..<batch.count {
            let slot = Int(batch[index].sequence)
            order[cursors[slot]] = index
            cursors[slot] += 1
        }
    }

    private func run(_ session: Session, _ batch: PacketBatch, _ outbound: Bool) {
        guard let pipeline = session.pipeline else { return }
        outbound ? pipeline.send(batch) : pipeline.receive(batch)
    }
}
