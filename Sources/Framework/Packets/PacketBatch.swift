import Glibc

/// Keeps records that point into a batch's slots beyond the pass that handed them
/// over (a reorder buffer holding packets behind a gap), instead of copying them.
public protocol PacketBatchBorrower: AnyObject {
    /// `batch`'s slots are about to be filled again: copy out what still points into them.
    func batchWillRefill(_ batch: PacketBatch)
}

/// A batch of up to `capacity` packets, each in a slot that the batch owns for its
/// whole life. Sources fill a batch (one `recvmmsg`, or a TUN drain), the pipeline
/// passes it through its stages, sinks empty it; then it is reset and refilled.
/// Nothing here allocates after `init`.
public final class PacketBatch {
    public let capacity: Int
    public let slotSize: Int
    public let headroom: Int
    /// Bytes kept free after each packet for trailers; sources never fill them.
    public let tailroom: Int
    /// Packets `0..<count` are live.
    public private(set) var count: Int = 0
    @usableFromInline let packets: UnsafeMutablePointer<Packet>
    /// The slots; nil for a view, whose records point into other batches' slots.
    private let memory: UnsafeMutableRawPointer?
    /// Where drops are counted: the session's counters inside a pipeline, the
    /// tunnel's before a session is known.
    @usableFromInline var dropCounters: TrafficCounters?
    /// Packets marked by `drop`/`discard` and not yet removed: lets `removeDropped`,
    /// which runs after every stage, return at once when the stage dropped nothing.
    @usableFromInline var marked = 0
    /// Records used since the last reset (`reset` clears only these).
    private var used = 0
    /// True for a batch whose owner resets it before every refill and never writes its
    /// slots otherwise (the tunnel's link batches): its slots may be lent.
    public var lendsSlots = false
    /// For a view filled from one lending batch (the session dispatcher's per-session
    /// views): that batch. Unowned: the dispatcher sets it only while the batch is live.
    public unowned(unsafe) var viewSource: PacketBatch?
    /// Who borrowed slots since the last reset; told at the next.
    private var borrowers: [PacketBatchBorrower] = []

    public init(capacity: Int, slotSize: Int, headroom: Int, tailroom: Int = 0) {
        precondition(capacity > 0 && headroom + tailroom < slotSize)
        self.capacity = capacity
        self.slotSize = slotSize
        self.headroom = headroom
        self.tailroom = tailroom
        let memory = UnsafeMutableRawPointer.allocate(byteCount: capacity * slotSize, alignment: 64)
        self.memory = memory
        packets = .allocate(capacity: capacity)
        for index in 0..<capacity {
            (packets + index).initialize(to: Packet(base: memory + index * slotSize, capacity: slotSize, offset: headroom))
        }
    }

    /// A view: `capacity` empty records and no slots of its own. `append` fills it with
    /// packets that live in other batches' slots (a reorder buffer releasing held
    /// packets together with just-arrived ones), so they go to a sink in one call
    /// without copying a byte. The view is valid while those slots are untouched.
    public init(viewCapacity capacity: Int, headroom: Int, tailroom: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        slotSize = 0
        self.headroom = headroom
        self.tailroom = tailroom
        memory = nil
        packets = .allocate(capacity: capacity)
        let empty = UnsafeMutableRawPointer(packets)  // never dereferenced: length 0
        packets.initialize(repeating: Packet(base: empty, capacity: 0, offset: 0), count: capacity)
    }

    deinit {
        packets.deinitialize(count: capacity)
        packets.deallocate()
        memory?.deallocate()
    }

    /// Add a packet record (its bytes stay where they are). False when full.
    @discardableResult
    public func append(_ packet: Packet) -> Bool {
        guard count < capacity else { return false }
        packets[count] = packet
        packets[count].dropReason = nil
        count += 1
        used = max(used, count)
        return true
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

    /// Bytes in the live packets (for per-batch counters).
    public var byteCount: Int {
        var total = 0
        for index in 0..<count { total += packets[index].length }
        return total
    }

    /// The batch whose slots this batch's records point into, if it lends them.
    public var lender: PacketBatch? { memory == nil ? viewSource : (lendsSlots ? self : nil) }

    /// True when `packet`'s bytes lie in this batch's slots.
    @inline(__always)
    public func holds(_ packet: Packet) -> Bool {
        guard let memory else { return false }
        return packet.base >= memory && packet.base + packet.capacity <= memory + capacity * slotSize
    }

    /// `borrower` keeps records pointing into these slots: tell it before the next refill.
    public func lend(to borrower: PacketBatchBorrower) {
        for existing in borrowers where existing === borrower { return }
        borrowers.append(borrower)
    }

    /// Point record `index` at its own slot again, empty (after it held a borrowed record).
    public func restoreSlot(_ index: Int) {
        guard let memory else { return }
        packets[index] = Packet(base: memory + index * slotSize, capacity: slotSize, offset: headroom)
    }

    /// Forget all packets; every used slot goes back to an empty packet at the headroom.
    /// Borrowers copy out what they still hold of the slots first.
    public func reset() {
        if !borrowers.isEmpty {
            for borrower in borrowers { borrower.batchWillRefill(self) }
            borrowers.removeAll(keepingCapacity: true)
        }
        guard memory != nil else {
            count = 0
            used = 0
            marked = 0
            return
        }
        for index in 0..<used {
            packets[index].offset = headroom
            packets[index].length = 0
            packets[index].link = 0
            packets[index].sequence = 0
            packets[index].mark = 0
            packets[index].dropReason = nil
            packets[index].authenticated = false
            packets[index].peer.storage.sin6_family = 0
        }
        count = 0
        used = 0
        marked = 0
    }

    /// Make the record at `count` live, after a source filled it in place.
    public func commit(length: Int) {
        packets[count].length = length
        count += 1
        used = max(used, count)
    }

    /// Set the number of live packets after a source filled records `0..<n` in place.
    public func setCount(_ n: Int) {
        precondition(n >= 0 && n <= capacity)
        count = n
        used = max(used, count)
    }

    /// The next free record, for a source that fills one packet at a time.
    public var nextFree: UnsafeMutablePointer<Packet>? { count < capacity ? packets + count : nil }

    /// Mark packet `index` dropped for `reason`; `removeDropped()` removes and counts it.
    @inlinable
    public func drop(_ index: Int, _ reason: DropReason) {
        if packets[index].dropReason == nil { marked += 1 }
        packets[index].dropReason = reason
    }

    /// Mark packet `index` for removal without counting a drop (it was consumed, e.g.
    /// a control message handed to its handler).
    public func discard(_ index: Int) {
        drop(index, DropReason.discarded)
    }

    /// Remove marked packets, counting each drop under its reason, keeping the order of
    /// the rest. Slots of removed packets stay with the batch (moved past `count`).
    public func removeDropped() {
        guard marked > 0 else { return }
        var kept = 0
        for index in 0..<count {
            if let reason = packets[index].dropReason {
                if reason != DropReason.discarded { dropCounters?.countDrop(reason) }
                packets[index].dropReason = nil
                continue
            }
            if kept != index {
                let live = packets[index]
                packets[index] = packets[kept]
                packets[kept] = live
            }
            kept += 1
        }
        count = kept
        marked = 0
    }

    /// Remove all live packets without counting (a sink wrote them out).
    public func consumeAll() {
        count = 0
        marked = 0
    }
}
