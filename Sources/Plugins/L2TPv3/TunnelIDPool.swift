/// The broker's tunnel ids: `base ..< base + count`, lowest free first (upstream
/// takes an arbitrary one; lowest-first keeps interface names short and stable).
/// An id the kernel refuses as taken leaves the pool only until the broker restarts,
/// and is logged, instead of silently shrinking the pool for good (upstream #14).
struct TunnelIDPool {
    let range: ClosedRange<UInt32>
    /// Free ids, highest first, so `popLast` yields the lowest.
    private var free: [UInt32]
    private(set) var retired: Set<UInt32> = []

    init(base: UInt32, count: Int) {
        range = base...(base + UInt32(max(count, 1)) - 1)
        free = Array(range.reversed())
    }

    var available: Int { free.count }
    var inUse: Int { range.count - free.count - retired.count }

    mutating func take() -> UInt32? { free.popLast() }

    /// Return `id` (its tunnel closed). Kept sorted so the lowest goes out first.
    mutating func give(_ id: UInt32) {
        guard range.contains(id), !retired.contains(id) else { return }
        // Binary search in a descending array.
        var low = 0, high = free.count
        while low < high {
            let mid = (low + high) / 2
            if free[mid] > id { low = mid + 1 } else { high = mid }
        }
        if low < free.count, free[low] == id { return }
        free.insert(id, at: low)
    }

    /// The kernel said `id` is in use by someone else: do not hand it out again.
    mutating func retire(_ id: UInt32) {
        retired.insert(id)
    }
}
