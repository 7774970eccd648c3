/// What one path delivers now, in bytes per second, from the receiver's byte count
/// and clock carried in echoes: the largest sample of the last `window` (about a
/// second), like BBR's bandwidth filter. Samples taken while the sender offered
/// less than the estimate ("application-limited") may only raise it: an idle path
/// has not become slower. A configured bandwidth is only the starting value.
struct DeliveryRate {
    static let window = 10
    static let sampleSpan = 0.1
    private(set) var estimate: Double
    private var samples: [Double]
    private var next = 0
    private var lastReceived: (bytes: UInt64, at: Double)?
    private var sentSinceSample = 0
    private var sampleStarted: Double

    init(prior bytesPerSecond: Double, now: Double) {
        estimate = bytesPerSecond
        samples = [Double](repeating: 0, count: DeliveryRate.window)
        sampleStarted = now
    }

    mutating func noteSent(_ bytes: Int) { sentSinceSample += bytes }

    /// An echo said the receiver had taken `bytes` from this path by its time `at`.
    mutating func echo(receivedBytes bytes: UInt64, at: Double, now: Double) {
        guard let last = lastReceived, bytes >= last.bytes, at > last.at else {
            lastReceived = (bytes, at)  // first echo, or the peer restarted its count
            return
        }
        let span = at - last.at
        guard span >= DeliveryRate.sampleSpan else { return }
        let rate = Double(bytes - last.bytes) / span
        let offered = Double(sentSinceSample) / max(now - sampleStarted, 1e-3)
        let applicationLimited = offered < 0.9 * estimate
        if !applicationLimited || rate > estimate {
            samples[next] = rate
            next = (next + 1) % DeliveryRate.window
            estimate = max(samples.max()!, DeliveryRate.floor)
        }
        lastReceived = (bytes, at)
        sentSinceSample = 0
        sampleStarted = now
    }

    /// Never below 1 Mbit/s, so a path that measured little still gets a share to grow from.
    static let floor = 125_000.0
}
