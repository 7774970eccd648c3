import Atomics

/// A fixed block of 64-bit counters written by the data path's one thread and read
/// from anywhere (status, metrics, tests).
///
/// The writer does a relaxed load and a relaxed store, which on x86-64 and arm64 is
/// a plain load and store: no lock, no read-modify-write, no allocation. Readers see
/// each counter's value at some recent moment, which is all monitoring needs.
public final class CounterBlock: @unchecked Sendable {
    let count: Int
    @usableFromInline let storage: UnsafeMutablePointer<UInt64.AtomicRepresentation>

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: UInt64.AtomicRepresentation(0), count: count)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    /// Add `amount` to counter `index`. Only the data-path thread may call this.
    @inlinable
    public func add(_ index: Int, _ amount: UInt64 = 1) {
        let cell = UnsafeAtomic<UInt64>(at: storage + index)
        cell.store(cell.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Read counter `index` from any thread.
    @inlinable
    func value(_ index: Int) -> UInt64 {
        UnsafeAtomic<UInt64>(at: storage + index).load(ordering: .relaxed)
    }
}

/// Traffic counters of one session or link: packets and bytes each way, and drops by reason.
public final class TrafficCounters: @unchecked Sendable {
    public static let txPackets = 0, txBytes = 1, rxPackets = 2, rxBytes = 3
    @usableFromInline static let dropBase = 4

    public let block = CounterBlock(count: TrafficCounters.dropBase + DropReason.capacity)

    public init() {}

    @inlinable func countSent(bytes: Int) {
        block.add(TrafficCounters.txPackets)
        block.add(TrafficCounters.txBytes, UInt64(bytes))
    }

    @inlinable func countSent(packets: Int, bytes: Int) {
        block.add(TrafficCounters.txPackets, UInt64(packets))
        block.add(TrafficCounters.txBytes, UInt64(bytes))
    }

    @inlinable func countReceived(bytes: Int) {
        block.add(TrafficCounters.rxPackets)
        block.add(TrafficCounters.rxBytes, UInt64(bytes))
    }

    @inlinable public func countDrop(_ reason: DropReason) {
        block.add(TrafficCounters.dropBase + reason.id)
    }

    func drops(_ reason: DropReason) -> UInt64 { block.value(TrafficCounters.dropBase + reason.id) }
    var sentPackets: UInt64 { block.value(TrafficCounters.txPackets) }
    var sentBytes: UInt64 { block.value(TrafficCounters.txBytes) }
    var receivedPackets: UInt64 { block.value(TrafficCounters.rxPackets) }
    var receivedBytes: UInt64 { block.value(TrafficCounters.rxBytes) }

    /// Non-zero drop counters by name, for status output and logs.
    func dropSummary(names: [String]) -> [(String, UInt64)] {
        names.enumerated().compactMap { index, name in
            let value = block.value(TrafficCounters.dropBase + index)
            return value == 0 ? nil : (name, value)
        }
    }
}
