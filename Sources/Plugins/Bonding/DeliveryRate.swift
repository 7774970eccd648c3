/// What one path delivers now, in bytes per second, from the receiver's byte count
/// and clock carried in echoes, over spans of at least `sampleSpan`.
///
/// A sample counts when the sender offered at least 90 % of the estimate (half, when
/// the path was queued throughout the span); one taken while it offered less
/// ("application-limited") may only raise it: an idle path has not become slower, and
/// a path that other traffic queues on while the tunnel sends little has not either.
///
/// A span that starts with a queue at the bottleneck (the probe that opened it met
/// one) cannot overstate the rate: while a queue waits, a token bucket saves no
/// tokens, so nothing is delivered faster than the rate. A span that starts with the
/// path idle can, when a bucket lets a burst through (the test links' tbf does: 256 KB
/// at line speed). So the estimate is the largest sample of the last `window` spans
/// (about a second) that started queued, or of all of them when none did. A
/// configured bandwidth is only the start.
/// The estimate need not be exact: every echo also sets the scheduler's virtual queue
/// right (`BondPath.anchor`), so a rate that is off costs one probe interval of error.
struct DeliveryRate {
    static let window = 10
    static let sampleSpan = 0.1
    private(set) var estimate: Double
    /// A sample over a span queued at both ends, and not cut short by the growth
    /// limit, was taken: the estimate is the path's rate, not the configured or
    /// default guess.
    private(set) var confirmed = false
    private var samples: [Double]
    private var queued: [Bool]
    private var scratch = [Double](repeating: 0, count: DeliveryRate.window)
    private var next = 0
    private var lastReceived: (bytes: UInt64, at: Double, queued: Bool)?
    private var sentSinceSample = 0
    private var sampleStarted: Double

    init(prior bytesPerSecond: Double, now: Double) {
        estimate = bytesPerSecond
        samples = [Double](repeating: 0, count: DeliveryRate.window)
        queued = [Bool](repeating: false, count: DeliveryRate.window)
        sampleStarted = now
    }

    mutating func noteSent(_ bytes: Int) { sentSinceSample += bytes }

    /// An echo said the receiver had taken `bytes` from this path by its time `at`;
    /// the probe it answers met a queue when `queued`.
    mutating func echo(receivedBytes bytes: UInt64, at: Double, queued nowQueued: Bool, now: Double) {
        guard let last = lastReceived, bytes >= last.bytes, at > last.at else {
            lastReceived = (bytes, at, nowQueued)  // first echo, or the peer restarted its count
            return
        }
        let span = at - last.at
        guard span >= DeliveryRate.sampleSpan else { return }
        // A "queue" can also be a stall at either end (a busy CPU), when a bucket may
        // still hold tokens; one sample may therefore raise the estimate by half at most
        // (10 Mbit/s to 100 Mbit/s still takes well under a second).
        let measured = Double(bytes - last.bytes) / span
        let rate = min(measured, DeliveryRate.growth * estimate)
        let offered = Double(sentSinceSample) / max(now - sampleStarted, 1e-3)
        let queuedSpan = last.queued && nowQueued
        if offered >= (queuedSpan ? DeliveryRate.offeredQueued : DeliveryRate.offeredIdle) * estimate || rate > estimate {
            samples[next] = rate
            // Queued at both ends: the bucket had no tokens when the span began and
            // the link was still busy when it ended, so nothing but the rate was
            // delivered in between (a queue at the start alone can drain mid-span and
            // let the bucket refill).
            // A sample the growth limit cut short says only "at least this much": it
            // raises the estimate but does not measure the link. Were it to confirm the
            // rate, the pacer would hold a link that does 38 Mbit/s to 22 during TCP's
            // start-up, and CoDel would end the start-up at half the path's BDP.
            let capped = measured > rate
            queued[next] = queuedSpan && !capped
            if queued[next] { confirmed = true }
            next = (next + 1) % DeliveryRate.window
            var best = 0.0, bestQueued = 0.0
            var queuedCount = 0
            for slot in 0..<DeliveryRate.window {
                best = max(best, samples[slot])
                if queued[slot] {
                    bestQueued = max(bestQueued, samples[slot])
                    scratch[queuedCount] = samples[slot]
                    queuedCount += 1
                }
            }
            if queuedCount >= DeliveryRate.medianFrom {
                // Several samples at a queue: their median. The largest of them can be a
                // stall's artefact (a busy CPU at either end reads as a queue while a
                // bucket still holds tokens), and a rate above the link's lets its real
                // queue grow past the pacer's allowance between two echoes.
                scratch.withUnsafeMutableBufferPointer { $0[0..<queuedCount].sort() }
                estimate = max(scratch[queuedCount / 2], DeliveryRate.floor)
            } else {
                estimate = max(bestQueued > 0 ? bestQueued : best, DeliveryRate.floor)
            }
            // A raise the growth limit cut short still raises: the link delivered at least
            // that much, whatever older samples at a queue said.
            if capped { estimate = max(estimate, rate) }
        }
        lastReceived = (bytes, at, nowQueued)
        sentSinceSample = 0
        sampleStarted = now
    }

    static let growth = 1.5
    /// What the sender must have offered, as a share of the estimate, for a sample to
    /// lower it. Over a span with the path queued throughout, half will do: the link
    /// was busy all along and the tunnel was a large part of that, so what came
    /// through is what the tunnel gets. An estimate above the link's rate must be able
    /// to come down that way: the scheduler then offers the link its share of what TCP
    /// sends, and TCP sends only what the links carry, so the offer stays under 90 % of
    /// an estimate that is 20 % too high, and an estimate that only an offer of 90 %
    /// could lower would stay too high for good (the link's queue with it).
    static let offeredIdle = 0.9
    static let offeredQueued = 0.5
    /// Queued samples from which the median, not the largest, is the estimate.
    static let medianFrom = 3

    /// Never below 1 Mbit/s, so a path that measured little still gets a share to grow from.
    static let floor = 125_000.0
}
