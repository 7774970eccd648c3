/// Which packets of a batch join into which TCP super-packet: the per-batch flow table
/// of receive-side coalescing. Segments of several flows arrive interleaved (two
/// bulk transfers, or one bond whose links deliver in turns), and joining only
/// neighbours would leave most of them single; the table follows up to `maxOpen`
/// flows at once, as Linux GRO and wireguard-go's TCP GRO table do.
///
/// A group is a run of segments of one flow that `TCPCoalescer` may join: it is
/// written where its first segment stands in the batch, so each flow keeps its order
/// (a connection has one open group at a time, and any TCP packet of it that cannot
/// join, such as a FIN, a pure ACK, a gap or a new window, closes that group first).
/// Packets of different flows may pass each other, which TCP does not notice.
///
/// Storage is allocated for the largest batch seen; planning allocates nothing.
public final class TCPFlowTable {
    /// Flows followed at once; a new flow beyond them ends the oldest group.
    static let maxOpen = 8

    private struct OpenGroup {
        var head: Int32 = -1
        var last: Int32 = -1
        var nextSequence: UInt32 = 0
        var total: Int32 = 0
        /// The last segment was full-sized without PSH, so another may follow.
        var acceptsMore = false
    }

    private var capacity = 0
    /// Per batch index: the group size when the packet heads a group, 1 when it is
    /// written alone, 0 when it was joined into an earlier packet's group.
    private var sizes: UnsafeMutablePointer<Int32>
    /// Per batch index: the next member of its group, or -1.
    private var next: UnsafeMutablePointer<Int32>
    /// Per batch index: the parsed head segment, valid where `sizes` > 1.
    private var heads: UnsafeMutablePointer<TCPCoalescer.Segment>
    private let open: UnsafeMutablePointer<OpenGroup>
    private var openCount = 0
    private var evict = 0

    public init(capacity: Int = 64) {
        self.capacity = max(capacity, 1)
        sizes = .allocate(capacity: self.capacity)
        next = .allocate(capacity: self.capacity)
        heads = .allocate(capacity: self.capacity)
        open = .allocate(capacity: Self.maxOpen)
        open.initialize(repeating: OpenGroup(), count: Self.maxOpen)
    }

    deinit {
        sizes.deallocate(); next.deallocate(); heads.deallocate()
        open.deinitialize(count: Self.maxOpen); open.deallocate()
    }

    /// Group the batch's segments by flow. Afterwards `groupSize(at:)` tells, for each
    /// packet in order, whether to skip it, write it alone or write its group.
    public func plan(_ batch: PacketBatch) {
        reserve(batch.capacity)
        openCount = 0
        evict = 0
        for index in 0..<batch.count {
            sizes[index] = 1
            next[index] = -1
            let packet = batch[index]
            let bytes = packet.base + packet.offset
            // Each candidate's checksum is checked once, here: a joined packet goes to the
            // kernel as "checksum to be completed", so a corrupt segment must stay out of it
            // (written alone, the kernel checks and drops it), as Linux GRO keeps it out.
            // Not when an AEAD tag vouched for the bytes: nothing changed them since the
            // peer's tunnel, which computed or passed on that checksum.
            guard let segment = TCPCoalescer.parse(bytes, length: packet.length),
                  packet.authenticated || TCPCoalescer.checksumValid(bytes, segment) else {
                closeGroups(ofConnectionOf: bytes, length: packet.length, in: batch)
                continue
            }
            // A connection has at most one open group: one that this segment does not
            // continue (a gap, another ACK or window) is closed before a new one starts.
            if let slot = openSlot(of: segment, bytes, in: batch) {
                if join(index, bytes, segment, slot, in: batch) { continue }
                close(slot)
            }
            if segment.flags & 0x08 == 0 { startGroup(index, segment) }
        }
    }

    /// How many packets to write at `index`: 0 (it went into an earlier super-packet),
    /// 1 (alone) or the size of the group it heads.
    @inline(__always)
    public func groupSize(at index: Int) -> Int { Int(sizes[index]) }

    /// The members of the group headed at `index`, in sequence order.
    func forEachMember(of index: Int, _ body: (Int) -> Void) {
        var member = index
        while member >= 0 {
            body(member)
            member = Int(next[member])
        }
    }

    func headSegment(at index: Int) -> TCPCoalescer.Segment { heads[index] }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        sizes.deallocate(); next.deallocate(); heads.deallocate()
        capacity = needed
        sizes = .allocate(capacity: needed)
        next = .allocate(capacity: needed)
        heads = .allocate(capacity: needed)
    }

    /// The open group of the segment's connection, if any.
    private func openSlot(of segment: TCPCoalescer.Segment, _ bytes: UnsafeRawPointer, in batch: PacketBatch) -> Int? {
        for slot in 0..<openCount {
            let head = Int(open[slot].head)
            let first = batch[head]
            if TCPCoalescer.sameConnection(heads[head].connection, first.base + first.offset, segment.connection, bytes) { return slot }
        }
        return nil
    }

    /// Join the segment to the group in `slot` if it continues it: same header fields,
    /// the next sequence number, no longer than the head, room left.
    private func join(_ index: Int, _ bytes: UnsafeRawPointer, _ segment: TCPCoalescer.Segment, _ slot: Int,
                      in batch: PacketBatch) -> Bool {
        var group = open[slot]
        let head = heads[Int(group.head)]
        let first = batch[Int(group.head)]
        guard group.acceptsMore, segment.sequence == group.nextSequence,
              segment.payloadLength <= head.payloadLength,
              Int(group.total) + segment.payloadLength <= TCPCoalescer.maxLength,
              Int(sizes[Int(group.head)]) < TCPCoalescer.maxSegments,
              TCPCoalescer.sameFlow(first.base + first.offset, head, bytes, segment) else { return false }
        next[Int(group.last)] = Int32(index)
        sizes[Int(group.head)] += 1
        sizes[index] = 0
        group.last = Int32(index)
        group.total += Int32(segment.payloadLength)
        group.nextSequence &+= UInt32(segment.payloadLength)
        // Only the last segment may be short or carry PSH.
        group.acceptsMore = segment.payloadLength == head.payloadLength && segment.flags & 0x08 == 0
        open[slot] = group
        return true
    }

    private func startGroup(_ index: Int, _ segment: TCPCoalescer.Segment) {
        heads[index] = segment
        let group = OpenGroup(head: Int32(index), last: Int32(index),
                              nextSequence: segment.sequence &+ UInt32(segment.payloadLength),
                              total: Int32(segment.headerLength + segment.payloadLength), acceptsMore: true)
        if openCount < Self.maxOpen {
            open[openCount] = group
            openCount += 1
        } else {
            open[evict] = group
            evict = (evict + 1) % Self.maxOpen
        }
    }

    private func close(_ slot: Int) {
        openCount -= 1
        open[slot] = open[openCount]
        if evict >= openCount { evict = 0 }
    }

    /// A packet that cannot join (a pure ACK, FIN, options, a fragment, a bad checksum…)
    /// ends the groups of its connection, so nothing of that flow behind it is written
    /// ahead of it. A fragment's ports are unknown: it ends every group between its hosts.
    private func closeGroups(ofConnectionOf bytes: UnsafeRawPointer, length: Int, in batch: PacketBatch) {
        guard openCount > 0, let connection = TCPCoalescer.connection(bytes, length: length) else { return }
        var slot = 0
        while slot < openCount {
            let head = Int(open[slot].head)
            let first = batch[head]
            if TCPCoalescer.sameConnection(heads[head].connection, first.base + first.offset, connection, bytes) {
                close(slot)
            } else {
                slot += 1
            }
        }
    }
}
