/// Spare packet slots for stages that hold packets across calls (reorder buffers,
/// queues). Slots are allocated once; `take` and `give` only move pointers.
/// Confined to the data-path thread: no lock.
public final class BufferPool {
    public let slotSize: Int
    public let headroom: Int
    private let memory: UnsafeMutableRawPointer
    private let free: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private let total: Int
    public private(set) var available: Int

    public init(slots: Int, slotSize: Int, headroom: Int) {
        self.slotSize = slotSize
        self.headroom = headroom
        total = slots
        memory = .allocate(byteCount: max(1, slots) * slotSize, alignment: 64)
        free = .allocate(capacity: max(1, slots))
        for index in 0..<slots { free[index] = memory + index * slotSize }
        available = slots
    }

    deinit {
        free.deallocate()
        memory.deallocate()
    }

    /// An empty packet in a spare slot, or nil when the pool is exhausted (bounded memory:
    /// the caller drops or releases something instead of growing).
    public func take() -> Packet? {
        guard available > 0 else { return nil }
        available -= 1
        return Packet(base: free[available], capacity: slotSize, offset: headroom)
    }

    /// Return a slot. Slots that came from batches of the same size are welcome too.
    public func give(_ packet: Packet) {
        precondition(available < total && packet.capacity == slotSize, "slot returned to the wrong pool")
        free[available] = packet.base
        available += 1
    }
}
