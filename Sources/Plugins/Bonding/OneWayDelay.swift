/// One direction's delay on one path, from timestamps taken on two clocks that are
/// not synchronised: a sample is (arrival on the receiver's clock − departure on the
/// sender's), true one-way delay plus an unknown but constant clock offset. The
/// lowest sample of the last 10 s or so is the path's base (propagation, no queue);
/// a sample minus that base is the queue the packet met, exactly, whatever the
/// offset. Bases of two paths between the same two hosts share the offset, so their
/// difference is the true difference in propagation delay. (Clock drift between
/// hosts, tens of ppm, moves the base by well under a millisecond in 10 s.)
struct OneWayDelay {
    /// The minimum is kept in two buckets of `bucketSpan`, so an old minimum ages out
    /// within 10 s without the base jumping up to the newest sample.
    static let bucketSpan = 5.0
    private var current = Double.infinity
    private var previous = Double.infinity
    private var bucketStart: Double?
    /// The newest sample.
    private(set) var latest: Double?

    /// The lowest recent sample (nil before the first).
    var base: Double? {
        let lowest = min(current, previous)
        return lowest.isFinite ? lowest : nil
    }

    /// The queue the newest sample met: how far it is above the base.
    var queue: Double {
        guard let latest, let base else { return 0 }
        return latest - base
    }

    /// A packet sent at `sentAt` (sender's clock) arrived at `arrivedAt` (receiver's),
    /// read at `now` (this side's clock, for the window).
    mutating func sample(sentAt: Double, arrivedAt: Double, now: Double) {
        let delay = arrivedAt - sentAt
        if let start = bucketStart, now - start < OneWayDelay.bucketSpan {
            current = min(current, delay)
        } else {
            previous = bucketStart.map { now - $0 < 2 * OneWayDelay.bucketSpan } == true ? current : .infinity
            current = delay
            bucketStart = now
        }
        latest = delay
    }
}
