/// The timers of one event loop, earliest first; the loop arms its one timerfd for
/// `earliest` and calls `fireDue` when it expires.
///
/// Coalescing comes first, because what costs most is waking up: 10 000 sessions'
/// 5 s keepalives at random phases would wake the loop 2 000 times a second. So a
/// timer armed far ahead may fire a little late — up to 1/128 of how far ahead it
/// was armed (or of its period, if longer), rounded down to a power of two of
/// milliseconds (5 s: 32 ms, 120 s: 512 ms) — on a grid shared by all timers, which
/// then fire together. Timers armed less than 128 ms ahead (the reorder stage's,
/// probes, retransmits) fire at their deadline exactly. On these VMs a wake-up costs
/// 50–100 µs of CPU, most of it in the kernel, so the grid is what keeps 30 000
/// timers under 1 % of a core; the kernel's own timer wheel allows 12.5 %.
///
/// The structure follows: timers due at the same instant share a bucket, a list
/// linked through their records, and a binary min-heap orders the buckets. On the
/// grid, 30 000 timers of 5 s, 120 s and 600 s fall on a few hundred instants,
/// so the heap stays small and in cache; an exact timer is a bucket of its own.
/// Arming appends to a bucket (found by its instant) or adds one to the heap,
/// cancelling unlinks, firing takes from the first bucket: O(1), or O(log buckets)
/// when a bucket comes or goes.
///
/// Why not a timer wheel, nor a heap of all timers, nor lazy cancellation:
/// * Deadlines are exact. A wheel fires on its tick, so the reorder stage's few-ms
///   one-shots would need a 1 ms tick — a thousand wake-ups a second even while the
///   next timer is minutes away. Here the heap's root is the next deadline itself:
///   the timerfd is armed for it, and the loop sleeps until something is due.
/// * A heap of all 30 000 timers is deeper than the cache holds: each firing sifted
///   through ~15 cold cache lines (other processes run between wake-ups), which cost
///   more than the rest of the loop. A firing here touches its record and a bucket's end.
/// * Lazy cancellation leaves a tombstone per re-arm (the reorder timer re-arms per
///   batch) and needs purges; unlinking is exact and allocates nothing.
/// Records, buckets and the heap are plain values in buffers the queue owns: no
/// reference counting while moving them, no allocation on re-arm.
final class TimerQueue {
    /// One timer, by its id.
    private struct Record {
        /// When it was asked to fire (monotonic nanoseconds); a repeating timer's next
        /// is this + `period`, so the grain's rounding never accumulates into drift.
        var deadline: Int64 = 0
        /// When it fires: `deadline` rounded up to its grain.
        var due: Int64 = 0
        /// Nanoseconds between firings; 0 for a one-shot.
        var period: Int64 = 0
        /// The grain of `period`.
        var periodGrain: Int64 = 0
        /// The bucket it is in; -1 while disarmed.
        var bucket = -1
        /// The timer, retained while armed: the loop keeps a timer alive while it may
        /// fire. Held here rather than in an array of references, whose every access
        /// is a generic, reference-counted call in unoptimised builds.
        var timer: Unmanaged<EventLoop.Timer>?
        var previous = -1
        var next = -1
    }

    /// Timers due at one instant.
    private struct Bucket {
        /// The instant, when the bucket is shared (coalesced timers); nil for the
        /// bucket of one exact timer.
        var sharedDue: Int64?
        var head = -1
        var tail = -1
        /// Index in `heap`.
        var position = -1
    }

    private struct HeapEntry {
        var due: Int64
        var bucket: Int
    }

    // Every bucket holds a timer and every heap entry a bucket, so all three buffers
    // need at most one element per timer id: they share `capacity`. Only the loop's
    // thread touches the queue, and these are read on every firing: no dynamic
    // exclusivity checks (unoptimised builds make one per read).
    @exclusivity(unchecked) private var records: UnsafeMutablePointer<Record>
    @exclusivity(unchecked) private var buckets: UnsafeMutablePointer<Bucket>
    @exclusivity(unchecked) private var heap: UnsafeMutablePointer<HeapEntry>
    private var capacity = 64
    private var ids = 0
    private var freeIDs: [Int] = []
    private var bucketsMade = 0
    /// Buckets given back, linked through their `head`: a bucket comes and goes at
    /// nearly every wake-up, and an array's popLast is a generic call in debug builds.
    private var freeBucket = -1
    private var sharedBuckets: [Int64: Int] = [:]
    /// The shared bucket found or made last: the timers of one bucket mostly move
    /// on to the same next one, so most firings skip the dictionary.
    private var lastSharedDue = Int64.min
    private var lastShared = -1
    @exclusivity(unchecked) private var heapCount = 0
    /// How many timers are armed.
    private(set) var count = 0

    init() {
        records = .allocate(capacity: capacity)
        buckets = .allocate(capacity: capacity)
        heap = .allocate(capacity: capacity)
    }

    deinit {
        for id in 0..<ids { records[id].timer?.release() }
        records.deallocate()
        buckets.deallocate()
        heap.deallocate()
    }

    /// The next time a timer fires (monotonic nanoseconds), nil when none is armed.
    var earliest: Int64? { heapCount > 0 ? heap[0].due : nil }

    /// An id for a new timer, disarmed.
    func register() -> Int {
        if let id = freeIDs.popLast() { return id }
        if ids == capacity { grow() }
        (records + ids).initialize(to: Record())
        ids += 1
        return ids - 1
    }

    /// A timer is gone (only a disarmed one can be): its id may be reused.
    func release(_ id: Int) {
        freeIDs.append(id)
    }

    func isArmed(_ id: Int) -> Bool { records[id].bucket >= 0 }

    /// Timers that exist (armed or not): what a leak of timers would grow.
    var registered: Int { ids - freeIDs.count }

    /// Arm `timer` (or move it, if armed) to fire at `deadline`, then every `period`
    /// nanoseconds if that is not 0. `delay` is how far ahead of now `deadline` is:
    /// with the period, it sets how late the first firing may be to coalesce.
    func schedule(_ timer: EventLoop.Timer, at deadline: Int64, delay: Int64, period: Int64) {
        let id = timer.id
        if records[id].bucket >= 0 {
            unlink(id)
        } else {
            records[id].timer = .passRetained(timer)
            count += 1
        }
        records[id].deadline = deadline
        records[id].period = period
        records[id].periodGrain = Self.grain(of: period)
        // A repeating timer's first firing is one of its periods, as late as the others may be.
        link(id, at: deadline, grain: Self.grain(of: max(delay, period)))
    }

    /// Disarm the timer with `id`; nothing if it is not armed.
    func disarm(_ id: Int) {
        guard records[id].bucket >= 0, let timer = records[id].timer else { return }
        unlink(id)
        count -= 1
        records[id].timer = nil
        timer.release()  // last: this may free the timer
    }

    /// Fire every timer due at `now`, earliest first. A repeating timer is moved to
    /// its next deadline (previous deadline + period, skipping periods the loop slept
    /// through so a late loop never fires a burst) and a one-shot is disarmed before
    /// its handler runs, so the handler may re-arm or cancel it, or any other timer.
    /// Timers armed by handlers are due after `now`, so this always ends.
    func fireDue(now: Int64) {
        while heapCount > 0, heap[0].due <= now {
            let id = buckets[heap[0].bucket].head
            guard let held = records[id].timer else { return }
            // A strong reference to the end of this iteration (lexical lifetime): a
            // one-shot is released below and a handler may cancel its own timer, yet
            // the handler runs with its timer alive.
            let timer = held.takeUnretainedValue()
            unlink(id)
            let period = records[id].period
            if period > 0 {
                var next = records[id].deadline + period
                if next <= now { next += ((now - next) / period + 1) * period }
                records[id].deadline = next
                link(id, at: next, grain: records[id].periodGrain)
            } else {
                count -= 1
                records[id].timer = nil
                held.release()
            }
            if let handler = timer.handler { handler() }
        }
    }

    /// How late a deadline `interval` ahead may fire: the largest power of two of
    /// milliseconds not above interval / 128; 0 under 128 ms.
    static func grain(of interval: Int64) -> Int64 {
        let milliseconds = interval / 128_000_000
        guard milliseconds > 0 else { return 0 }
        return (Int64(1) << (63 - milliseconds.leadingZeroBitCount)) * 1_000_000
    }

    private static func roundUp(_ time: Int64, to grain: Int64) -> Int64 {
        grain == 0 ? time : (time + grain - 1) / grain * grain
    }

    // MARK: buckets

    /// Put the disarmed timer `id` in the bucket for `deadline` rounded up to `grain`.
    private func link(_ id: Int, at deadline: Int64, grain: Int64) {
        let records = self.records, buckets = self.buckets
        let due = Self.roundUp(deadline, to: grain)
        records[id].due = due
        records[id].next = -1
        if grain > 0, let shared = due == lastSharedDue ? lastShared : sharedBuckets[due] {
            (lastSharedDue, lastShared) = (due, shared)
            let tail = buckets[shared].tail
            records[id].bucket = shared
            records[id].previous = tail
            records[tail].next = id
            buckets[shared].tail = id
            return
        }
        let bucket: Int
        if freeBucket >= 0 {
            bucket = freeBucket
            freeBucket = buckets[bucket].head
        } else {
            bucket = bucketsMade
            bucketsMade += 1
        }
        buckets[bucket] = Bucket(sharedDue: grain > 0 ? due : nil, head: id, tail: id, position: heapCount)
        if grain > 0 {
            sharedBuckets[due] = bucket
            (lastSharedDue, lastShared) = (due, bucket)
        }
        records[id].bucket = bucket
        records[id].previous = -1
        heap[heapCount] = HeapEntry(due: due, bucket: bucket)
        heapCount += 1
        siftUp(heapCount - 1)
    }

    /// Take the armed timer `id` out of its bucket; a bucket left empty is given back.
    private func unlink(_ id: Int) {
        let records = self.records, buckets = self.buckets
        let bucket = records[id].bucket, previous = records[id].previous, next = records[id].next
        records[id].bucket = -1
        if previous >= 0 { records[previous].next = next } else { buckets[bucket].head = next }
        if next >= 0 { records[next].previous = previous } else { buckets[bucket].tail = previous }
        guard buckets[bucket].head < 0 else { return }
        let position = buckets[bucket].position
        heapCount -= 1
        if position < heapCount {
            heap[position] = heap[heapCount]
            buckets[heap[position].bucket].position = position
            restore(position)
        }
        if let due = buckets[bucket].sharedDue {
            sharedBuckets[due] = nil
            if lastShared == bucket { (lastSharedDue, lastShared) = (Int64.min, -1) }
        }
        buckets[bucket].head = freeBucket
        freeBucket = bucket
    }

    private func grow() {
        let larger = capacity * 2
        records = Self.moved(records, count: ids, to: larger)
        buckets = Self.moved(buckets, count: bucketsMade, to: larger)
        heap = Self.moved(heap, count: heapCount, to: larger)
        capacity = larger
    }

    private static func moved<Element>(_ buffer: UnsafeMutablePointer<Element>, count: Int,
                                       to capacity: Int) -> UnsafeMutablePointer<Element> {
        let larger = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
        larger.moveInitialize(from: buffer, count: count)
        buffer.deallocate()
        return larger
    }

    // MARK: the heap of buckets

    /// After the due time at `position` changed: move it up or down to its place.
    private func restore(_ position: Int) {
        if position > 0, heap[position].due < heap[(position - 1) / 2].due {
            siftUp(position)
        } else {
            siftDown(position)
        }
    }

    // Both sifts carry the moving entry in a hole and write it once, at its place.

    private func siftUp(_ start: Int) {
        let heap = self.heap, buckets = self.buckets
        let moving = heap[start]
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard moving.due < heap[parent].due else { break }
            heap[index] = heap[parent]
            buckets[heap[index].bucket].position = index
            index = parent
        }
        heap[index] = moving
        buckets[moving.bucket].position = index
    }

    private func siftDown(_ start: Int) {
        let heap = self.heap, buckets = self.buckets, count = heapCount
        let moving = heap[start]
        var index = start
        while true {
            var child = 2 * index + 1
            guard child < count else { break }
            if child + 1 < count, heap[child + 1].due < heap[child].due { child += 1 }
            guard heap[child].due < moving.due else { break }
            heap[index] = heap[child]
            buckets[heap[index].bucket].position = index
            index = child
        }
        heap[index] = moving
        buckets[moving.bucket].position = index
    }
}
