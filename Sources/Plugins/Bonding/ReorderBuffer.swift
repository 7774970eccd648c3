import Framework

/// Puts packets that crossed paths of different delay back into the sender's order.
///
/// In-order packets pass without a copy: their records go to the output view, the
/// bytes stay in the received batch. A packet that arrives ahead of a gap is copied
/// into a slot of its own (memory is fixed: `capacity` slots). A gap is given up
///  * at once when it is known lost: every path that carried data lately has already
///    delivered a later sequence, and each path is FIFO;
///  * after `holdTime`, measured from the arrival of the oldest held packet;
///  * when a packet arrives too far ahead to fit the buffer (oldest gaps first).
/// Packets behind the sequence are delivered anyway when never seen (`late`, better
/// than a TCP retransmission) and dropped when seen already (`duplicate`).
final class ReorderBuffer {
    struct Counters {
        var inOrder: UInt64 = 0, held: UInt64 = 0, releasedByTimeout: UInt64 = 0, releasedAsLost: UInt64 = 0
        var overflow: UInt64 = 0, late: UInt64 = 0, duplicate: UInt64 = 0
    }

    enum Verdict: Equatable { case deliver, held, late, duplicate }

    let capacity: Int
    private let mask: UInt32
    private let storage: PacketBatch
    private var seen: [UInt32]       // sequence whose slot this is (held or delivered)
    private var isHeld: [Bool]
    private var heldAt: [Double]
    private(set) var heldCount = 0
    private(set) var next: UInt32 = 0
    private var started = false
    /// Records in `output` that point into `storage`, not yet handed on.
    private var pendingFromStorage = 0
    private(set) var counters = Counters()

    /// Per path (by index modulo `pathSlots`): the highest sequence it brought and when.
    static let pathSlots = 16
    private var pathLast = [UInt32](repeating: 0, count: ReorderBuffer.pathSlots)
    private var pathSeen = [Double](repeating: -1, count: ReorderBuffer.pathSlots)
    /// Paths (bit per slot) their health says are down: they cannot bring a missing
    /// packet any more, so they do not hold up a gap (the link that was just cut).
    var deadPaths: UInt16 = 0

    /// Where released packets go, in order; `flush` hands them on and empties it.
    let output: PacketBatch
    private let flush: (PacketBatch) -> Void

    init(capacity requested: Int, slotSize: Int, headroom: Int, tailroom: Int, flush: @escaping (PacketBatch) -> Void) {
        var size = 64
        while size < requested { size <<= 1 }
        capacity = size
        mask = UInt32(size - 1)
        storage = PacketBatch(capacity: size, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        storage.setCount(size)
        seen = [UInt32](repeating: UInt32.max, count: size)
        isHeld = [Bool](repeating: false, count: size)
        heldAt = [Double](repeating: 0, count: size)
        output = PacketBatch(viewCapacity: 256, headroom: headroom, tailroom: tailroom)
        self.flush = flush
    }

    /// Take one received packet (its header already removed) with sequence `sequence`
    /// that came by path `path` (nil if unknown).
    @discardableResult
    func accept(_ packet: Packet, sequence: UInt32, path: Int?, now: Double) -> Verdict {
        if !started {
            started = true
            next = sequence
        }
        if let path {
            let slot = path % ReorderBuffer.pathSlots
            if pathSeen[slot] < 0 || BondingWire.distance(sequence, from: pathLast[slot]) > 0 { pathLast[slot] = sequence }
            pathSeen[slot] = now
        }
        let distance = BondingWire.distance(sequence, from: next)
        if distance < 0 {
            let slot = Int(sequence & mask)
            if seen[slot] == sequence {
                counters.duplicate += 1
                return .duplicate
            }
            counters.late += 1
            seen[slot] = sequence
            emit(packet)
            return .late
        }
        if distance == 0 && heldCount == 0 {
            counters.inOrder += 1
            seen[Int(sequence & mask)] = sequence
            next = BondingWire.next(next)
            emit(packet)
            return .deliver
        }
        while BondingWire.distance(sequence, from: next) >= Int32(capacity) {
            skipGap(counting: &counters.overflow)  // too far ahead: make room, oldest first
        }
        let slot = Int(sequence & mask)
        if isHeld[slot] {
            counters.duplicate += 1
            return .duplicate
        }
        let verdict: Verdict
        if sequence == next {
            counters.inOrder += 1
            seen[slot] = sequence
            next = BondingWire.next(next)
            emit(packet)
            verdict = .deliver
        } else {
            hold(packet, slot: slot, sequence: sequence, now: now)
            verdict = .held
        }
        releaseInOrder()
        return verdict
    }

    /// After a batch: give up gaps that are known lost or waited `holdTime`.
    func releaseDue(now: Double, holdTime: Double) {
        while heldCount > 0 {
            if isKnownLost(now: now, holdTime: holdTime) {
                skipGap(counting: &counters.releasedAsLost)
            } else if let oldest = oldestHeldAt(), now - oldest >= holdTime {
                skipGap(counting: &counters.releasedByTimeout)
            } else {
                break
            }
        }
        finish()
    }

    /// When the oldest held packet arrived, if any is held.
    func oldestHeldAt() -> Double? {
        guard heldCount > 0 else { return nil }
        var oldest = Double.infinity
        var sequence = next
        var found = 0
        while found < heldCount {
            let slot = Int(sequence & mask)
            if isHeld[slot] {
                oldest = min(oldest, heldAt[slot])
                found += 1
            }
            sequence = BondingWire.next(sequence)
        }
        return oldest
    }

    /// Hand on whatever is in the output.
    func finish() {
        if !output.isEmpty { flush(output) }
        output.reset()
        pendingFromStorage = 0
    }

    /// Drop everything held (shutdown).
    func clear() {
        for slot in 0..<capacity { isHeld[slot] = false }
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

    private func hold(_ packet: Packet, slot: Int, sequence: UInt32, now: Double) {
        // The slot may still be referenced by a released record not yet handed on.
        if pendingFromStorage > 0 { finish() }
        var copy = storage[slot]
        copy.offset = storage.headroom
        copy.length = min(packet.length, copy.capacity - storage.headroom - storage.tailroom)
        (copy.base + copy.offset).copyMemory(from: packet.base + packet.offset, byteCount: copy.length)
        copy.link = packet.link
        copy.peer = packet.peer
        copy.dropReason = nil
        storage[slot] = copy
        isHeld[slot] = true
        heldAt[slot] = now
        seen[slot] = sequence
        heldCount += 1
        counters.held += 1
    }

    /// Deliver held packets from `next` on while they are consecutive.
    private func releaseInOrder() {
        while heldCount > 0 {
            let slot = Int(next & mask)
            guard isHeld[slot] else { return }
            isHeld[slot] = false
            heldCount -= 1
            pendingFromStorage += 1
            emit(storage[slot])
            next = BondingWire.next(next)
        }
    }

    /// Give up the gap at `next`: move to the first held packet and release from there.
    private func skipGap(counting counter: inout UInt64) {
        guard heldCount > 0 else {
            next = BondingWire.next(next)
            return
        }
        counter += 1
        while !isHeld[Int(next & mask)] { next = BondingWire.next(next) }
        releaseInOrder()
    }

    /// A path that brought data within this long may still bring the missing packet.
    /// Generous on purpose: a lightly used long path (a few packets a second) must not
    /// count as idle, or its packets are given up before they arrive.
    static let activeFor = 2.0

    /// The gap at `next` is lost when every path that brought data lately has
    /// already brought something later.
    private func isKnownLost(now: Double, holdTime: Double) -> Bool {
        var active = 0
        for slot in 0..<ReorderBuffer.pathSlots
        where pathSeen[slot] >= 0 && now - pathSeen[slot] <= ReorderBuffer.activeFor && deadPaths & (1 << slot) == 0 {
            active += 1
            if BondingWire.distance(pathLast[slot], from: next) <= 0 { return false }
        }
        return active > 0
    }
}
