/// The timers of one event loop, earliest first; the loop arms its one timerfd for
/// `earliest` and calls `fireDue` when it expires.
///
/// Why a min-heap whose timers know their place in it (an indexed heap), not a timer
/// wheel, nor a heap with lazy cancellation:
/// * Deadlines are exact. A wheel fires on its tick, so the reorder stage's few-ms
///   one-shots would need a 1 ms tick — a thousand wake-ups a second even while the
///   next timer is minutes away — or a second, precise structure beside the wheel.
///   The heap's root is the next deadline itself: the timerfd is armed for it, so the
///   loop sleeps until something is due and not a moment longer.
/// * Arm, re-arm and cancel are O(log n) sifts in place (about 8 levels at 30 000
///   timers). Because a timer knows its place, a re-arm moves it instead of leaving
///   a tombstone behind: with lazy cancellation the reorder timer, re-armed per
///   batch, would grow the heap by an entry each time and need purges.
/// * The heap is plain integers in buffers the queue owns, so a sift does no reference
///   counting and re-arming allocates nothing. Each entry holds its due time beside
///   the timer's id, and the heap is 4-ary with every group of siblings on one cache
///   line: at 30 000 timers the heap is as big as the L2 cache, and what a sift
///   costs is its cache misses — about 8 levels of one line each instead of a binary
///   heap's 15 levels with the due times elsewhere.
/// A wheel's O(1) pays off with millions of timers, most cancelled before they fire;
/// at tens of thousands the heap's log n is cheaper than the wake-ups a tick costs.
///
/// Coalescing: what costs is waking up, not the heap. 10 000 sessions' 5 s keepalives
/// at random phases would wake the loop 2 000 times a second, so a timer armed far
/// ahead may fire a little late — up to 1/256 of how far ahead it was armed (or of
/// its period, if longer), rounded down to a power of two of milliseconds (5 s:
/// 16 ms, 120 s: 256 ms) — on a grid shared by all timers, which then fire together.
/// Timers armed less than 256 ms ahead (the reorder stage's, probes, retransmits)
/// fire at their deadline exactly.
final class TimerQueue {
    /// One heap slot: when the timer fires, and which timer.
    private struct Entry {
        var due: Int64
        var id: Int
    }

    /// What the queue knows of one timer besides its due time, by the timer's id.
    private struct Record {
        /// When it was asked to fire (monotonic nanoseconds); a repeating timer's next
        /// is this + `period`, so the grain's rounding never accumulates into drift.
        var deadline: Int64 = 0
        /// Nanoseconds between firings; 0 for a one-shot.
        var period: Int64 = 0
        /// The grain of `period`.
        var periodGrain: Int64 = 0
    }

    private static let arity = 4
    /// Logical index 0 sits at slot 3 of a 64-byte aligned block, so the children of
    /// index i (4i+1 … 4i+4, at slots 4(i+1) … 4(i+1)+3) fill one 64-byte line.
    private static let rootOffset = 3
    private var heapBlock: UnsafeMutableRawPointer
    /// Entries in heap order by `due`; the first `count` are in use.
    private var heap: UnsafeMutablePointer<Entry>
    /// By id: the index in `heap`, -1 while disarmed.
    private var positions: UnsafeMutablePointer<Int>
    private var records: UnsafeMutablePointer<Record>
    private var capacity: Int
    /// Ids handed out so far; some may be free again.
    private var ids = 0
    private var freeIDs: [Int] = []
    /// The armed timers, by id: the loop keeps a timer alive while it may fire.
    private var armed: [EventLoop.Timer?] = []
    /// How many timers are armed.
    private(set) var count = 0

    init() {
        capacity = 64
        (heapBlock, heap) = Self.allocateHeap(capacity)
        positions = .allocate(capacity: capacity)
        records = .allocate(capacity: capacity)
    }

    deinit {
        heapBlock.deallocate()
        positions.deallocate()
        records.deallocate()
    }

    /// The next time a timer fires (monotonic nanoseconds), nil when none is armed.
    var earliest: Int64? { count > 0 ? heap[0].due : nil }

    /// An id for a new timer, disarmed.
    func register() -> Int {
        if let id = freeIDs.popLast() { return id }
        if ids == capacity { grow() }
        (positions + ids).initialize(to: -1)
        (records + ids).initialize(to: Record())
        armed.append(nil)
        ids += 1
        return ids - 1
    }

    /// A timer is gone (only a disarmed one can be): its id may be reused.
    func release(_ id: Int) {
        freeIDs.append(id)
    }

    func isArmed(_ id: Int) -> Bool { positions[id] >= 0 }

    /// Arm `timer` (or move it, if armed) to fire at `deadline`, then every `period`
    /// nanoseconds if that is not 0. `delay` is how far ahead of now `deadline` is:
    /// with the period, it sets how late the first firing may be to coalesce.
    func schedule(_ timer: EventLoop.Timer, at deadline: Int64, delay: Int64, period: Int64) {
        let id = timer.id
        records[id] = Record(deadline: deadline, period: period, periodGrain: Self.grain(of: period))
        // A repeating timer's first firing is one of its periods, as late as the others may be.
        let due = Self.roundUp(deadline, to: Self.grain(of: max(delay, period)))
        let position = positions[id]
        if position >= 0 {
            heap[position].due = due
            restore(position)
        } else {
            heap[count] = Entry(due: due, id: id)
            positions[id] = count
            count += 1
            armed[id] = timer
            siftUp(count - 1)
        }
    }

    /// Disarm the timer with `id`; nothing if it is not armed.
    func disarm(_ id: Int) {
        let position = positions[id]
        guard position >= 0 else { return }
        positions[id] = -1
        count -= 1
        if position < count {
            let last = heap[count]
            heap[position] = last
            positions[last.id] = position
            restore(position)
        }
        armed[id] = nil  // last: this may free the timer
    }

    /// Fire every timer due at `now`, earliest first. A repeating timer is moved to
    /// its next deadline (previous deadline + period, skipping periods the loop slept
    /// through so a late loop never fires a burst) and a one-shot is disarmed before
    /// its handler runs, so the handler may re-arm or cancel it, or any other timer.
    /// Timers armed by handlers are due after `now`, so this always ends.
    func fireDue(now: Int64) {
        while count > 0 {
            let top = heap[0]
            guard top.due <= now, let timer = armed[top.id] else { return }
            let record = records[top.id]
            if record.period > 0 {
                var next = record.deadline + record.period
                if next <= now { next += ((now - next) / record.period + 1) * record.period }
                records[top.id].deadline = next
                heap[0].due = Self.roundUp(next, to: record.periodGrain)
                siftDown(0)
            } else {
                disarm(top.id)
            }
            if let handler = timer.handler { handler() }
        }
    }

    /// How late a deadline `interval` ahead may fire: the largest power of two of
    /// milliseconds not above interval / 256; 0 under 256 ms.
    static func grain(of interval: Int64) -> Int64 {
        let milliseconds = interval / 256_000_000
        guard milliseconds > 0 else { return 0 }
        return (Int64(1) << (63 - milliseconds.leadingZeroBitCount)) * 1_000_000
    }

    private static func roundUp(_ time: Int64, to grain: Int64) -> Int64 {
        grain == 0 ? time : (time + grain - 1) / grain * grain
    }

    private static func allocateHeap(_ capacity: Int) -> (UnsafeMutableRawPointer, UnsafeMutablePointer<Entry>) {
        let block = UnsafeMutableRawPointer.allocate(byteCount: (capacity + rootOffset) * MemoryLayout<Entry>.stride,
                                                     alignment: 64)
        let entries = block.bindMemory(to: Entry.self, capacity: capacity + rootOffset)
        return (block, entries + rootOffset)
    }

    private func grow() {
        let larger = capacity * 2
        let (newBlock, newHeap) = Self.allocateHeap(larger)
        newHeap.moveInitialize(from: heap, count: count)
        heapBlock.deallocate()
        (heapBlock, heap) = (newBlock, newHeap)
        let newPositions = UnsafeMutablePointer<Int>.allocate(capacity: larger)
        newPositions.moveInitialize(from: positions, count: ids)
        positions.deallocate()
        positions = newPositions
        let newRecords = UnsafeMutablePointer<Record>.allocate(capacity: larger)
        newRecords.moveInitialize(from: records, count: ids)
        records.deallocate()
        records = newRecords
        capacity = larger
    }

    /// After the due time at `position` changed: move it up or down to its place.
    private func restore(_ position: Int) {
        if position > 0, heap[position].due < heap[(position - 1) / Self.arity].due {
            siftUp(position)
        } else {
            siftDown(position)
        }
    }

    // Both sifts carry the moving entry in a hole and write it once, at its place.

    private func siftUp(_ start: Int) {
        let heap = self.heap, positions = self.positions
        let moving = heap[start]
        var index = start
        while index > 0 {
            let parent = (index - 1) / Self.arity
            guard moving.due < heap[parent].due else { break }
            heap[index] = heap[parent]
            positions[heap[index].id] = index
            index = parent
        }
        heap[index] = moving
        positions[moving.id] = index
    }

    private func siftDown(_ start: Int) {
        let heap = self.heap, positions = self.positions, count = self.count
        let moving = heap[start]
        var index = start
        while true {
            let first = Self.arity * index + 1
            guard first < count else { break }
            var earliest = first
            var child = first + 1
            let end = min(first + Self.arity, count)
            while child < end {  // not a for-in: ranges are slow generic code in debug builds
                if heap[child].due < heap[earliest].due { earliest = child }
                child += 1
            }
            guard heap[earliest].due < moving.due else { break }
            heap[index] = heap[earliest]
            positions[heap[index].id] = index
            index = earliest
        }
        heap[index] = moving
        positions[moving.id] = index
    }
}
