import Framework

/// Packets a session was given to send before it had keys (its first handshake, or
/// after its keys expired), kept to be sealed and sent in order the moment keys exist,
/// as WireGuard's staged queue keeps them: the first ping or TCP SYN of a tunnel that
/// is still shaking hands arrives instead of waiting for a retransmission.
///
/// Bounded both ways: at most `capacity` packets (when full, the oldest goes: the
/// newest packets are the ones a sender still waits for), and none older than the
/// caller's timeout (a packet held for seconds has been retransmitted or given up on).
///
/// The storage is one `PacketBatch` used as a ring, made on the first staged packet
/// and given back once the queue is empty again, so a session with keys, or a hub's
/// idle sessions, hold no packet memory. Staging copies a packet into a slot (its
/// own slot belongs to a batch the caller reuses at once); nothing else allocates.
final class StagedQueue {
    let capacity: Int
    private let slotSize: Int, headroom: Int, tailroom: Int
    /// The ring: `count` packets from record `head` on, wrapping at `capacity`.
    private var storage: PacketBatch?
    /// When each record was staged, by record index (same lifetime as `storage`).
    private var stagedAt: UnsafeMutablePointer<Double>?
    private var head = 0
    private(set) var count = 0

    init(capacity: Int, slotSize: Int, headroom: Int, tailroom: Int) {
        self.capacity = capacity
        (self.slotSize, self.headroom, self.tailroom) = (slotSize, headroom, tailroom)
    }

    deinit { release() }

    var isEmpty: Bool { count == 0 }

    /// Whether the ring's memory is allocated now.
    var holdsMemory: Bool { storage != nil }

    /// Whether `batch` is this queue's own storage (being flushed).
    func owns(_ batch: PacketBatch) -> Bool { storage === batch }

    enum Outcome { case staged, stagedDroppingOldest, refused }

    /// Copy `packet` in at the back. `.stagedDroppingOldest` when the queue was full
    /// and its oldest packet gave way (the caller counts that drop); `.refused` when
    /// the queue keeps nothing (capacity 0) or the packet does not fit a slot.
    func stage(_ packet: Packet, now: Double) -> Outcome {
        guard capacity > 0, packet.offset + packet.length + tailroom <= slotSize else { return .refused }
        let (storage, stagedAt) = allocated()
        var outcome = Outcome.staged
        if count == capacity {
            head = (head + 1) % capacity
            count -= 1
            outcome = .stagedDroppingOldest
        }
        let index = (head + count) % capacity
        var copy = storage[index]
        // The same offset as the original keeps the headroom the stages above used.
        copy.offset = packet.offset
        copy.length = packet.length
        (copy.base + copy.offset).copyMemory(from: packet.base + packet.offset, byteCount: packet.length)
        copy.link = packet.link
        copy.sequence = packet.sequence
        copy.mark = packet.mark
        copy.peer = packet.peer
        copy.dropReason = nil
        storage[index] = copy
        stagedAt[index] = now
        count += 1
        return outcome
    }

    /// Forget the packets staged before `cutoff` (oldest first); how many went.
    func expire(before cutoff: Double) -> Int {
        guard let stagedAt else { return 0 }
        var expired = 0
        while count > 0 && stagedAt[head] < cutoff {
            head = (head + 1) % capacity
            count -= 1
            expired += 1
        }
        if count == 0 { release() }
        return expired
    }

    /// The staged packets in the order they were staged, as a batch for the send path,
    /// and the queue emptied. Call `release()` once the batch went through.
    func drain() -> PacketBatch? {
        guard count > 0, let storage else { return nil }
        // Rotate the records (not the bytes) so the oldest is record 0: the batch is
        // then in order. Slots stay with the batch, only their records move.
        let records = storage.records
        if head != 0 {
            reverse(records, 0, capacity)
            reverse(records, 0, capacity - head)
            reverse(records, capacity - head, capacity)
        }
        storage.setCount(count)
        head = 0
        count = 0
        return storage
    }

    /// Give the packet memory back (an empty queue keeps none).
    func release() {
        storage = nil
        stagedAt?.deallocate()
        stagedAt = nil
        head = 0
        count = 0
    }

    private func allocated() -> (PacketBatch, UnsafeMutablePointer<Double>) {
        if let storage, let stagedAt { return (storage, stagedAt) }
        let batch = PacketBatch(capacity: capacity, slotSize: slotSize, headroom: headroom, tailroom: tailroom)
        batch.setCount(capacity)  // every record is a slot of the ring
        let times = UnsafeMutablePointer<Double>.allocate(capacity: capacity)
        times.initialize(repeating: 0, count: capacity)
        storage = batch
        stagedAt = times
        return (batch, times)
    }

    private func reverse(_ records: UnsafeMutablePointer<Packet>, _ start: Int, _ end: Int) {
        var low = start, high = end - 1
        while low < high {
            let record = records[low]
            records[low] = records[high]
            records[high] = record
            low += 1
            high -= 1
        }
    }
}
