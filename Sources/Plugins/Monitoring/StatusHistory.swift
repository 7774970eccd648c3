import Framework

/// Per-link throughput, RTT and loss over the last minutes, one sample per tick: what
/// the live page plots. A plain value, filled on the tunnel's loop and copied out
/// under the snapshot lock.
struct StatusHistory: Sendable, Encodable {
    /// `[unix time, tx bit/s, rx bit/s, srtt ms or nil, loss % or nil]`: arrays keep
    /// five minutes of several links small enough to send every second.
    typealias Sample = [Double?]

    struct Series: Sendable, Encodable {
        let session: String
        /// The path's name; empty for a session that is not spread over paths.
        let link: String
        var samples: [Sample] = []
    }

    struct Key: Hashable, Sendable {
        let session: String
        let link: String
    }

    let intervalSeconds: Double
    let capacity: Int
    private(set) var takenAt: Double = 0
    private var order: [Key] = []
    private var series: [Key: Series] = [:]
    /// Byte counters at the previous tick, to turn totals into rates.
    private var previous: [Key: (time: Double, tx: UInt64, rx: UInt64)] = [:]

    init(intervalSeconds: Double, windowSeconds: Double) {
        self.intervalSeconds = intervalSeconds
        capacity = max(2, Int((windowSeconds / intervalSeconds).rounded()))
    }

    /// Add one sample per session path (or per session without paths) from `status`.
    mutating func record(_ status: TunnelStatus, at now: Double) {
        takenAt = now
        var present = Set<Key>()
        for session in status.sessions {
            if let paths = session.multipath?.paths {
                for path in paths {
                    let key = Key(session: session.name, link: path.name)
                    present.insert(key)
                    append(key, now: now, tx: path.txBytes, rx: path.rxBytes, srtt: path.srttMs, loss: path.lossPercent)
                }
            } else {
                let key = Key(session: session.name, link: "")
                present.insert(key)
                append(key, now: now, tx: session.counters.txBytes, rx: session.counters.rxBytes, srtt: nil, loss: nil)
            }
        }
        // A path that is gone keeps its past on the chart until it scrolls out.
        let oldest = now - Double(capacity) * intervalSeconds
        for key in order where !present.contains(key) {
            previous[key] = nil
            if let last = series[key]?.samples.last?.first ?? nil, last >= oldest { continue }
            series[key] = nil
        }
        order.removeAll { series[$0] == nil }
    }

    private mutating func append(_ key: Key, now: Double, tx: UInt64, rx: UInt64, srtt: Double?, loss: Double?) {
        if series[key] == nil {
            series[key] = Series(session: key.session, link: key.link)
            order.append(key)
        }
        var txRate = 0.0, rxRate = 0.0
        if let last = previous[key], now > last.time {
            // A counter that went backwards belongs to a new session of the same name.
            txRate = tx >= last.tx ? Double(tx - last.tx) * 8 / (now - last.time) : 0
            rxRate = rx >= last.rx ? Double(rx - last.rx) * 8 / (now - last.time) : 0
        }
        previous[key] = (now, tx, rx)
        series[key]!.samples.append([now, txRate, rxRate, srtt, loss])
        if series[key]!.samples.count > capacity { series[key]!.samples.removeFirst() }
    }

    enum CodingKeys: String, CodingKey { case intervalSeconds, takenAt, series }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(intervalSeconds, forKey: .intervalSeconds)
        try container.encode(takenAt, forKey: .takenAt)
        try container.encode(order.compactMap { series[$0] }, forKey: .series)
    }
}
