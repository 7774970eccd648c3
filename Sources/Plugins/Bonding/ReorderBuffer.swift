import Framework

/// Puts packets that crossed paths of different delay back into the sender's order.
///
/// In-order packets pass without a copy: their records go to the output view, the
/// bytes stay in the received batch. A packet that must wait keeps its bytes in the
/// received batch too when that batch lends its slots (`PacketBatch.lend`: the
/// tunnel's link reads alternate between two batches), and is copied into a slot of
/// its own only if it still waits when that batch is about to be refilled. On fast
/// links most waits end with the other link's next read, so most holds copy nothing.
/// Own slots: at most `capacity`, allocated 64 at a time where a packet is first
/// held, and given back once nothing has been held for `idleTrim` seconds — so a hub's
/// idle or in-order sessions hold no packet memory (a full 4096-slot buffer is about
/// 7 MB). A packet waits
///  * behind a gap (an earlier sequence missing), or
///  * for its `wait` (delay alignment): bulk data that came by a shorter path is held
///    until the longest path could have brought it, so a TCP flow spread over links
///    of 10 and 40 ms sees one steady delay instead of one that jumps with its load.
///
/// A gap is given up
///  * at once when it is known lost: every live path has passed it. Paths are first
///    in, first out, so a path has passed a sequence once it brought a later one or a
///    probe marked "everything before N was sent" with N beyond it. Only the missing
///    sequences every path has passed go; a later gap waits for its own proof;
///  * after `holdTime`, counted from when the packet after it was ready;
///  * when a packet arrives too far ahead to fit the buffer (oldest gaps first).
/// Packets behind the sequence are delivered anyway when never seen (`late`, better
/// than a TCP retransmission) and dropped when seen already (`duplicate`).
final class ReorderBuffer: PacketBatchBorrower {
    struct Counters {
        var inOrder: UInt64 = 0, held: UInt64 = 0, aligned: UInt64 = 0, releasedByTimeout: UInt64 = 0
        var releasedAsLost: UInt64 = 0, overflow: UInt64 = 0, late: UInt64 = 0, duplicate: UInt64 = 0
        /// Urgent packets delivered ahead of a gap.
        var early: UInt64 = 0
        /// Held packets (gaps and alignment) whose bytes stayed in the batch they came
        /// in, and those of them copied when that batch was about to be refilled.
        var heldInPlace: UInt64 = 0, copiedAtRefill: UInt64 = 0
    }

    enum Verdict: Equatable { case deliver, held, late, duplicate }

    let capacity: Int
    private let mask: UInt32
    /// Slot memory, 64 slots per chunk, made on first use (nil: never held there, or trimmed).
    private var chunks: [PacketBatch?]
    private static let chunkShift = 6
    private let slotSize: Int, headroom: Int, tailroom: Int
    /// When a packet was last held, for `trimIfIdle`.
    private var lastHeld = 0.0
    /// Chunks allocated now.
    private(set) var allocatedChunks = 0
    /// An empty buffer this long gives its chunks back.
    static let idleTrim = 5.0
    /// What the buffer knows of one sequence slot.
    private struct Slot {
        /// The sequence whose slot this is (held or delivered).
        var seen = UInt32.max
        var isHeld = false
        /// Delivered ahead of `next` (an urgent packet, see `accept`): `next` steps over it.
        var deliveredEarly = false
        /// When a held packet may go (its arrival plus its alignment wait).
        var readyAt = 0.0
    }
    /// `capacity` slots. Raw memory, not arrays: every packet reads and writes its slot,
    /// and an array in a class property costs an exclusivity check and a uniqueness
    /// check per write (8 % of a bonding hub's CPU before).
    private let slots: UnsafeMutablePointer<Slot>
    private(set) var heldCount = 0
    private(set) var next: UInt32 = 0
    private var started = false
    /// Records in `output` that point into `storage`, not yet handed on.
    private var pendingFromStorage = 0
    /// Held packets whose bytes are still in a lending batch: (slot, sequence, batch).
    /// Entries go stale when the packet is released; `batchWillRefill` sorts them out.
    private var borrowed: [(slot: Int, sequence: UInt32, from: ObjectIdentifier)] = []
    private let tally = UnsafeMutablePointer<Counters>.allocate(capacity: 1)
    var counters: Counters { tally.pointee }

    /// Per path (by index modulo `pathSlots`): the highest sequence it can no longer
    /// bring, and when it was last heard from.
    static let pathSlots = 16
    private struct PathMark {
        var passed: UInt32 = 0
        var heard = -1.0
    }
    private let marks = UnsafeMutablePointer<PathMark>.allocate(capacity: ReorderBuffer.pathSlots)
    /// Paths (bit per slot) their health says are down: they cannot bring a missing
    /// packet any more, so they do not hold up a gap (the link that was just cut).
    var deadPaths: UInt16 = 0
    /// When this process last stalled (`EventLoop.lastStall`): a gap's hold counts from
    /// then at the earliest, since what was on its way starts again only now. Seen in
    /// CI: a stall of a loaded VM released 138 gaps whose 180 packets came right after.
    var stalled = -Double.infinity

    /// Where released packets go, in order; `flush` hands them on and empties it.
    let output: PacketBatch
    private let flush: (PacketBatch) -> Void

    init(capacity requested: Int, slotSize: Int, headroom: Int, tailroom: Int, flush: @escaping (PacketBatch) -> Void) {
        var size = 64
        while size < requested { size <<= 1 }
        capacity = size
        mask = UInt32(size - 1)
        chunks = [PacketBatch?](repeating: nil, count: max(1, size >> Self.chunkShift))
        (self.slotSize, self.headroom, self.tailroom) = (slotSize, headroom, tailroom)
        slots = .allocate(capacity: size)
        slots.initialize(repeating: Slot(), count: size)
        marks.initialize(repeating: PathMark(), count: ReorderBuffer.pathSlots)
        tally.initialize(to: Counters())
        output = PacketBatch(viewCapacity: 256, headroom: headroom, tailroom: tailroom)
        self.flush = flush
    }

    deinit {
        slots.deallocate()
        marks.deallocate()
        tally.deallocate()
    }

    /// Take one received packet (its header already removed) with sequence `sequence`
    /// that came by path `path` (nil if unknown), to be delivered no sooner than
    /// `wait` seconds from `now` (delay alignment; 0 for none).
    @discardableResult
    ///
    /// An `urgent` packet (a small one of a flow that is not bulk: a ping, DNS, VoIP, an
    /// ACK) never waits behind a gap: it goes at once and `next` steps over it later.
    /// Its flow has no other packet in flight to overtake, and waiting for the bulk
    /// packets of other flows still queued on a slower link is the latency this exists
    /// to avoid.
    ///
    /// `lender`: the batch `packet` came in, if it lends its slots (the packet may then
    /// be held without a copy until that batch is refilled).
    func accept(_ packet: Packet, sequence: UInt32, path: Int?, wait: Double = 0, urgent: Bool = false, now: Double,
                lender: PacketBatch? = nil) -> Verdict {
        if !started {
            started = true
            next = sequence
        }
        if let path { note(path: path, passed: sequence, now: now) }
        let distance = BondingWire.distance(sequence, from: next)
        if distance < 0 {
            let slot = slots + Int(sequence & mask)
            if slot.pointee.seen == sequence {
                tally.pointee.duplicate += 1
                return .duplicate
            }
            tally.pointee.late += 1
            slot.pointee.seen = sequence
            slot.pointee.deliveredEarly = false
            emit(packet)
            return .late
        }
        if distance == 0 && heldCount == 0 && wait <= 0 {
            tally.pointee.inOrder += 1
            let slot = slots + Int(sequence & mask)
            slot.pointee.seen = sequence
            slot.pointee.deliveredEarly = false
            next = BondingWire.next(next)
            emit(packet)
            releaseInOrder(now: now)  // over packets delivered early
            return .deliver
        }
        // Too far ahead: make room, oldest first (what waits for its time goes early).
        while BondingWire.distance(sequence, from: next) >= Int32(capacity) {
            tally.pointee.overflow += 1
            if heldCount == 0 {
                next = (sequence &- UInt32(capacity - 1)) & 0xFF_FFFF
            } else if slots[Int(next & mask)].isHeld {
                releaseHead()
            } else {
                skipGap()
            }
        }
        let slot = Int(sequence & mask)
        let state = slots + slot
        if state.pointee.isHeld || (state.pointee.deliveredEarly && state.pointee.seen == sequence) {
            tally.pointee.duplicate += 1
            return .duplicate
        }
        let verdict: Verdict
        if sequence == next && wait <= 0 {
            tally.pointee.inOrder += 1
            state.pointee.seen = sequence
            state.pointee.deliveredEarly = false
            next = BondingWire.next(next)
            emit(packet)
            verdict = .deliver
        } else if urgent && wait <= 0 {
            tally.pointee.early += 1
            state.pointee.seen = sequence
            state.pointee.deliveredEarly = true
            emit(packet)
            verdict = .deliver
        } else {
            hold(packet, slot: slot, sequence: sequence, until: now + max(wait, 0), lender: lender)
            if wait > 0 { tally.pointee.aligned += 1 } else { tally.pointee.held += 1 }
            verdict = .held
        }
        releaseInOrder(now: now)
        return verdict
    }

    /// A probe or echo came by `path` saying its sender's next data packet would be
    /// `nextSequence`: that path will bring nothing before it any more.
    func marker(path: Int, nextSequence: UInt32, now: Double) {
        note(path: path, passed: nextSequence &- 1 & 0xFF_FFFF, now: now)
    }

    private func note(path: Int, passed sequence: UInt32, now: Double) {
        let mark = marks + path % ReorderBuffer.pathSlots
        if mark.pointee.heard < 0 || BondingWire.distance(sequence, from: mark.pointee.passed) > 0 { mark.pointee.passed = sequence }
        mark.pointee.heard = now
    }

    /// After a batch, a marker or a timer: deliver what is ready, give up gaps that
    /// are known lost or waited `holdTime` (since `stalled`, if that is later).
    func releaseDue(now: Double, holdTime: Double) {
        while heldCount > 0 {
            releaseInOrder(now: now)
            if heldCount == 0 || slots[Int(next & mask)].isHeld { break }  // waiting for its time, not for a gap
            if let through = knownLostThrough(now: now) {
                // Only what every live path has passed is lost; later missing packets
                // may still be on their way.
                tally.pointee.releasedAsLost += 1
                while !slots[Int(next & mask)].isHeld && BondingWire.distance(through, from: next) >= 0 { next = BondingWire.next(next) }
            } else if let ready = earliestReady(), now - max(ready, stalled) >= holdTime {
                tally.pointee.releasedByTimeout += 1
                skipGap()
            } else {
                break
            }
        }
        finish()
    }

    /// When something held may next become deliverable: the head's alignment time,
    /// or the hold time after the earliest ready packet behind a gap (or `stalled`).
    /// Nil when empty.
    func nextWake(holdTime: Double) -> Double? {
        guard heldCount > 0 else { return nil }
        let head = slots[Int(next & mask)]
        if head.isHeld { return head.readyAt }
        return earliestReady().map { max($0, stalled) + holdTime }
    }

    /// The earliest time a held packet was ready to go, if any is held.
    private func earliestReady() -> Double? {
        guard heldCount > 0 else { return nil }
        var earliest = Double.infinity
        var sequence = next
        var found = 0
        while found < heldCount {
            let slot = slots[Int(sequence & mask)]
            if slot.isHeld {
                earliest = min(earliest, slot.readyAt)
                found += 1
            }
            sequence = BondingWire.next(sequence)
        }
        return earliest
    }

    /// Hand on whatever is in the output.
    func finish() {
        if !output.isEmpty { flush(output) }
        output.reset()
        pendingFromStorage = 0
    }

    /// Drop everything held (shutdown).
    func clear() {
        for slot in 0..<capacity { slots[slot].isHeld = false }
        borrowed.removeAll()
        heldCount = 0
        output.reset()
    }

    // MARK: internals

    private func emit(_ packet: Packet) {
        if !output.append(packet) {
            finish()
            output.append(packet)
        }
    }

    private func hold(_ packet: Packet, slot: Int, sequence: UInt32, until ready: Double, lender: PacketBatch?) {
        let chunk = self.chunk(for: slot)
        let index = slot & ((1 << Self.chunkShift) - 1)
        let borrow = lender?.holds(packet) ?? false
        if borrow, let lender {
            // The record, not the bytes: they stay in the lender's slot until it refills.
            var record = packet
            record.dropReason = nil
            chunk[index] = record
            let id = ObjectIdentifier(lender)
            // Entries of a lender go at its refill, so one still here means it knows us.
            if borrowed.last?.from != id { lender.lend(to: self) }
            borrowed.append((slot, sequence, id))
            tally.pointee.heldInPlace += 1
        } else {
            copyIn(packet, chunk: chunk, index: index)
        }
        lastHeld = ready
        slots[slot] = Slot(seen: sequence, isHeld: true, deliveredEarly: false, readyAt: ready)
        heldCount += 1
    }

    /// Copy `packet` into the own slot `index` of `chunk`.
    private func copyIn(_ packet: Packet, chunk: PacketBatch, index: Int) {
        // The slot may still be referenced by a released record not yet handed on.
        if pendingFromStorage > 0 { finish() }
        chunk.restoreSlot(index)  // its record may point into a lender from an earlier borrow
        var copy = chunk[index]
        copy.length = min(packet.length, copy.capacity - headroom - tailroom)
        (copy.base + copy.offset).copyMemory(from: packet.base + packet.offset, byteCount: copy.length)
        copy.link = packet.link
        copy.peer = packet.peer
        copy.authenticated = packet.authenticated
        copy.dropReason = nil
        chunk[index] = copy
    }

    /// A lending batch is about to be refilled: what is still held of it is copied into
    /// own slots now.
    func batchWillRefill(_ batch: PacketBatch) {
        let id = ObjectIdentifier(batch)
        var kept = 0
        for entry in borrowed {
            let state = slots + entry.slot
            // Released since (a sequence is held once): nothing to copy, whichever batch
            // it came in, so the entry goes. Most packets are held for a few ms, and the
            // ring has 16 batches: the list stays short instead of walking stale entries.
            guard state.pointee.isHeld, state.pointee.seen == entry.sequence else { continue }
            if entry.from != id {
                borrowed[kept] = entry
                kept += 1
                continue
            }
            let chunk = chunks[entry.slot >> Self.chunkShift]!
            let index = entry.slot & ((1 << Self.chunkShift) - 1)
            copyIn(chunk[index], chunk: chunk, index: index)
            tally.pointee.copiedAtRefill += 1
        }
        borrowed.removeLast(borrowed.count - kept)
    }

    /// Deliver held packets from `next` on while they are consecutive and ready.
    private func releaseInOrder(now: Double) {
        while true {
            let slot = slots + Int(next & mask)
            if slot.pointee.deliveredEarly && slot.pointee.seen == next {
                slot.pointee.deliveredEarly = false
                next = BondingWire.next(next)
                continue
            }
            guard heldCount > 0, slot.pointee.isHeld, slot.pointee.readyAt <= now else { return }
            releaseHead()
        }
    }

    /// Deliver the held packet at `next`.
    private func releaseHead() {
        let slot = Int(next & mask)
        slots[slot].isHeld = false
        heldCount -= 1
        pendingFromStorage += 1
        emit(chunks[slot >> Self.chunkShift]![slot & ((1 << Self.chunkShift) - 1)])
        next = BondingWire.next(next)
    }

    /// The chunk holding `slot`'s memory, made now if it has none (the only
    /// allocation here, once per 64 slots until the buffer is trimmed).
    private func chunk(for slot: Int) -> PacketBatch {
        if let chunk = chunks[slot >> Self.chunkShift] { return chunk }
        let chunk = PacketBatch(capacity: 1 << Self.chunkShift, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        chunk.setCount(1 << Self.chunkShift)
        chunks[slot >> Self.chunkShift] = chunk
        allocatedChunks += 1
        return chunk
    }

    /// Give the slot memory back when nothing is held or pending and nothing was held
    /// for `idleTrim` seconds (called from the session's periodic tick).
    func trimIfIdle(now: Double) {
        guard allocatedChunks > 0, heldCount == 0, pendingFromStorage == 0, now - lastHeld >= Self.idleTrim else { return }
        for index in chunks.indices { chunks[index] = nil }
        allocatedChunks = 0
    }

    /// Give up the gap at `next`: move on to the first held packet (there is one).
    private func skipGap() {
        while !slots[Int(next & mask)].isHeld { next = BondingWire.next(next) }
    }

    /// A path not heard from for this long (no data, no probe) cannot fill a gap.
    static let activeFor = 1.0

    /// The gap at `next` is lost when every path heard from lately has passed it: then
    /// everything up to the least of what they passed is (nil: the gap may still come).
    private func knownLostThrough(now: Double) -> UInt32? {
        var through: UInt32?
        for slot in 0..<ReorderBuffer.pathSlots
        where marks[slot].heard >= 0 && now - marks[slot].heard <= ReorderBuffer.activeFor && deadPaths & (1 << slot) == 0 {
            let passed = marks[slot].passed
            if BondingWire.distance(passed, from: next) < 0 { return nil }
            if through.map({ BondingWire.distance(passed, from: $0) < 0 }) ?? true { through = passed }
        }
        return through
    }
}
