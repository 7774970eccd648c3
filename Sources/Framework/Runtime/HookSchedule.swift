/// Which hook starts next. Hooks with the same key run one after another in the
/// order they were submitted (a session's `up` ends before its `down` starts); hooks
/// of different keys run side by side, at most `limit` at once, and keys take turns
/// in the order they became ready. A nil key is one key like any other, so callers
/// that give none keep running in order among themselves.
struct HookSchedule<Item> {
    private struct Lane {
        var pending = FIFO<Item>()
        var busy = false
    }

    /// Only keys with something queued or running: 10 000 sessions' keys come and go.
    private var lanes: [String?: Lane] = [:]
    /// Keys with a hook queued and none running, in the order they became so.
    private var ready = FIFO<String?>()
    private(set) var running = 0
    private(set) var queued = 0

    mutating func submit(_ item: Item, key: String?) {
        queued += 1
        lanes[key, default: Lane()].pending.append(item)
        if let lane = lanes[key], !lane.busy, lane.pending.count == 1 { ready.append(key) }
    }

    /// The next item to start, if fewer than `limit` (at least 1) run and one is
    /// ready; its key is busy until `finished(key:)`.
    mutating func next(limit: Int) -> (item: Item, key: String?)? {
        guard running < max(limit, 1), let key = ready.popFirst(),
              let item = lanes[key]?.pending.popFirst() else { return nil }
        lanes[key]?.busy = true
        running += 1
        queued -= 1
        return (item, key)
    }

    /// What `next` handed out for `key` has ended.
    mutating func finished(key: String?) {
        running -= 1
        guard let lane = lanes[key], !lane.pending.isEmpty else {
            lanes[key] = nil
            return
        }
        lanes[key]?.busy = false
        ready.append(key)
    }
}
