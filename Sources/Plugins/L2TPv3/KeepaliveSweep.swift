/// The broker's keepalives as one sweep over all tunnels instead of a timer each.
///
/// 10 000 tunnels × one keepalive per 5 s is 2 000 timer firings a second, each a
/// retain, a closure call and a bucket move in the loop's timer queue: about a tenth
/// of the idle broker's CPU. Here the interval is cut into ticks (50 ms) and each
/// tunnel has a slot, one of `interval / tick`; one repeating timer visits a slot per
/// tick, so each tunnel still gets a keepalive every `interval` exactly (on its slot's
/// phase), and the slot's keepalives leave in one `sendmmsg`. Slots are chosen at
/// random, so a burst of new tunnels is spread over the whole interval as the
/// per-tunnel timers' random first delays spread it.
///
/// Adding and removing are O(1): a tunnel knows its slot and its place in it, and
/// removal moves the slot's last tunnel into the gap.
struct KeepaliveSweep<Member: KeepaliveSweepMember> {
    /// Milliseconds between two slots.
    let tickMilliseconds: Int
    private var slots: [[Member]]
    private var cursor = 0
    private(set) var count = 0

    init(intervalMilliseconds: Int, tickMilliseconds: Int = 50) {
        self.tickMilliseconds = min(tickMilliseconds, intervalMilliseconds)
        slots = Array(repeating: [], count: max(1, intervalMilliseconds / self.tickMilliseconds))
    }

    /// Put `t` in a random slot other than the one visited next, so its first
    /// keepalive comes one tick to one interval from now.
    mutating func add(_ t: Member) {
        precondition(t.sweepSlot < 0, "a tunnel is in the keepalive sweep once")
        var slot = Int.random(in: 0..<slots.count)
        if slot == cursor, slots.count > 1 { slot = (slot + 1) % slots.count }
        t.sweepSlot = slot
        t.sweepIndex = slots[slot].count
        slots[slot].append(t)
        count += 1
    }

    mutating func remove(_ t: Member) {
        guard t.sweepSlot >= 0 else { return }
        let slot = t.sweepSlot, index = t.sweepIndex
        let last = slots[slot].removeLast()
        if last !== t {
            slots[slot][index] = last
            last.sweepIndex = index
        }
        t.sweepSlot = -1
        t.sweepIndex = -1
        count -= 1
    }

    /// The tunnels whose keepalive is due at this tick; moves on to the next slot.
    /// The caller may remove tunnels while going through them (a timed-out one closes):
    /// the array is a copy of the slot as it was.
    mutating func next() -> [Member] {
        let due = slots[cursor]
        cursor = (cursor + 1) % slots.count
        return due
    }
}

/// What the sweep keeps in each member (a broker tunnel): where it is.
protocol KeepaliveSweepMember: AnyObject {
    /// Its slot; -1 when not in the sweep.
    var sweepSlot: Int { get set }
    var sweepIndex: Int { get set }
}
