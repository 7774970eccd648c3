import Framework

/// Bounds the work unauthenticated initiations can cause a responder.
///
/// * Per source IP address, a token bucket: `perSecond` initiations a second, bursts
///   of 5. The table is bounded; when it is full of active sources, new sources
///   are refused until entries age out.
/// * Load: more than `loadThreshold` initiations within one second puts the
///   responder under load for the next second, and it then demands cookies (mac2).
final class HandshakeRateLimiter {
    static let burst = 5.0
    static let maxSources = 4096

    private let perSecond: Double
    private let loadThreshold: Int
    private var buckets: [[UInt8]: (tokens: Double, last: Double)] = [:]
    private var windowStart = 0.0
    private var windowCount = 0
    private var previousWindowCount = 0

    init(perSecond: Int, loadThreshold: Int) {
        self.perSecond = Double(perSecond)
        self.loadThreshold = loadThreshold
    }

    /// Count one initiation (with a valid mac1) and say whether we are under load.
    func noteInitiation(now: Double) -> Bool {
        if now - windowStart >= 1 {
            previousWindowCount = now - windowStart >= 2 ? 0 : windowCount
            windowStart = now
            windowCount = 0
        }
        windowCount += 1
        return windowCount > loadThreshold || previousWindowCount > loadThreshold
    }

    /// Take a token for `source`; false when its bucket is empty.
    func allow(_ source: SocketAddress, now: Double) -> Bool {
        let key = source.addressBytes
        if var bucket = buckets[key] {
            bucket.tokens = min(HandshakeRateLimiter.burst, bucket.tokens + (now - bucket.last) * perSecond)
            bucket.last = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            return true
        }
        if buckets.count >= HandshakeRateLimiter.maxSources {
            // Forget sources whose buckets have refilled: they are like new ones.
            let refill = HandshakeRateLimiter.burst / perSecond
            buckets = buckets.filter { now - $0.value.last < refill }
            guard buckets.count < HandshakeRateLimiter.maxSources else { return false }
        }
        buckets[key] = (HandshakeRateLimiter.burst - 1, now)
        return true
    }
}
