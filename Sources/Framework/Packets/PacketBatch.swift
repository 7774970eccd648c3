import Glibc

/// A batch of up to `capacity` packets, each in a slot that the batch owns for its
/// whole life. Sources fill a batch (one `recvmmsg`, or a TUN drain), the pipeline
/// passes it through its stages, sinks empty it; then it is reset and refilled.
/// Nothing here allocates after `init`.
///
/// A stage that must keep a packet beyond the call (a reorder buffer) exchanges the
/// packet's slot for a spare one from a `BufferPool`, so slot ownership moves
/// without a copy.
public final class PacketBatch {
    public let capacity: Int
    public let slotSize: Int
    public let headroom: Int
    /// Bytes kept free after each packet for trailers; sources never fill them.
    public let tailroom: Int
    /// Packets `0..<count` are live.
    public private(set) var count: Int = 0
    @usableFromInline let packets: UnsafeMutablePointer<Packet>
    private let memory: UnsafeMutableRawPointer
    /// Where drops are counted while the batch travels one session's pipeline.
    @usableFromInline var dropCounters: TrafficCounters?

    public init(capacity: Int, slotSize: Int, headroom: Int, tailroom: Int = 0) {
        precondition(capacity > 0 && headroom + tailroom < slotSize)
        self.capacity = capacity
        self.slotSize = slotSize
        self.headroom = headroom
        self.tailroom = tailroom
        memory = .allocate(byteCount: capacity * slotSize, alignment: 64)
        packets = .allocate(capacity: capacity)
        for index in 0..<capacity {
            (packets + index).initialize(to: Packet(base: memory + index * slotSize, capacity: slotSize, offset: headroom))
        }
    }

    deinit {
        packets.deinitialize(count: capacity)
        packets.deallocate()
        memory.deallocate()
    }

    /// Access packet `index` in place.
    @inlinable
    public subscript(index: Int) -> Packet {
        _read { yield packets[index] }
        _modify { yield &packets[index] }
    }

    /// Pointer to all `capacity` packet records (for batched system calls).
    @inlinable public var records: UnsafeMutablePointer<Packet> { packets }

    @inlinable public var isEmpty: Bool { count == 0 }

    /// Forget all packets; every slot goes back to an empty packet at the headroom.
    public func reset() {
        for index in 0..<capacity { resetRecord(index) }
        count = 0
    }

    func resetRecord(_ index: Int) {
        packets[index].offset = headroom
        packets[index].length = 0
        packets[index].link = 0
        packets[index].sequence = 0
        packets[index].dropReason = nil
        packets[index].peer.storage.sin6_family = 0
    }

    /// Make packet `count` live (already filled in place by a source) and return its index.
    public func commit(length: Int) {
        packets[count].length = length
        count += 1
    }

    /// Set the number of live packets after a source filled records `0..<n` in place.
    public func setCount(_ n: Int) {
        precondition(n >= 0 && n <= capacity)
        count = n
    }

    /// The next free record, for a source that fills one packet at a time.
    public var nextFree: UnsafeMutablePointer<Packet>? { count < capacity ? packets + count : nil }

    /// Mark packet `index` dropped; it is removed by `removeDropped()`.
    @inlinable
    public func drop(_ index: Int, _ reason: DropReason) {
        packets[index].dropReason = reason
    }

    /// Remove dropped packets, counting each under its reason, keeping the order of
    /// the rest. Slots of removed packets stay with the batch (moved past `count`).
    public func removeDropped() {
        var kept = 0
        for index in 0..<count {
            if let reason = packets[index].dropReason {
                if reason != BatchMarks.taken { dropCounters?.countDrop(reason) }
                packets[index].dropReason = nil
                continue
            }
            if kept != index { swapAt(kept, index) }
            kept += 1
        }
        count = kept
    }

    /// Empty the batch, counting every live packet as dropped for `reason`.
    public func dropAll(_ reason: DropReason) {
        for _ in 0..<count { dropCounters?.countDrop(reason) }
        count = 0
    }

    /// Remove all live packets without counting (a sink consumed them).
    public func consumeAll() { count = 0 }

    func swapAt(_ a: Int, _ b: Int) {
        let tmp = packets[a]
        packets[a] = packets[b]
        packets[b] = tmp
    }

    /// Move packet `index` of this batch to the end of `other`, taking one of
    /// `other`'s free slots in exchange (so both batches keep `capacity` slots).
    /// Used to split a received batch between sessions. False if `other` is full.
    public func move(_ index: Int, to other: PacketBatch) -> Bool {
        guard other.count < other.capacity, other.slotSize == slotSize else { return false }
        let free = other.packets[other.count]
        other.packets[other.count] = packets[index]
        other.count += 1
        packets[index] = free
        packets[index].offset = headroom
        packets[index].length = 0
        packets[index].dropReason = BatchMarks.taken  // empty record: removed, not counted
        return true
    }

    /// Exchange the slot of packet `index` with `spare` (an empty slot from a pool),
    /// returning the packet so the caller can keep it. The batch's record becomes an
    /// empty packet in `spare`, marked to be removed without counting a drop.
    public func take(_ index: Int, leaving spare: Packet) -> Packet {
        let taken = packets[index]
        packets[index] = spare
        packets[index].offset = headroom
        packets[index].length = 0
        packets[index].dropReason = BatchMarks.taken
        return taken
    }

    /// Append `packet` (a slot from a pool) and return the slot it displaced, which
    /// the caller returns to its pool. Nil if the batch is full.
    public func insert(_ packet: Packet) -> Packet? {
        guard count < capacity else { return nil }
        let displaced = packets[count]
        packets[count] = packet
        packets[count].dropReason = nil
        count += 1
        return displaced
    }
}

/// Internal marks that reuse the drop machinery without counting a drop.
enum BatchMarks {
    static let taken = DropReason(id: DropReason.capacity - 1)
}
