import Framework
import NIOConcurrencyHelpers

/// The tunnel's status, taken on its loop once per interval and handed to the HTTP
/// thread. However many requests arrive, the data path builds one status per
/// interval: hostile or eager clients cannot make it do more.
final class StatusSnapshots: Sendable {
    struct Snapshot: Sendable {
        var status: TunnelStatus
        var history: StatusHistory
        /// Counts snapshots, so what was rendered from one can be reused until the next.
        var generation = 0
    }

    private let latest: NIOLockedValueBox<Snapshot>

    init(first status: TunnelStatus, at time: Double, intervalMilliseconds: Int, windowSeconds: Double) {
        var history = StatusHistory(intervalSeconds: Double(intervalMilliseconds) / 1000, windowSeconds: windowSeconds)
        history.record(status, at: time)
        latest = NIOLockedValueBox(Snapshot(status: status, history: history))
    }

    /// Publish a new status (taken by the tunnel's loop, the only thread that may).
    func publish(_ status: TunnelStatus, at time: Double) {
        latest.withLockedValue {
            $0.status = status
            $0.history.record(status, at: time)
            $0.generation += 1
        }
    }

    /// The last status taken, from any thread.
    var current: Snapshot { latest.withLockedValue { $0 } }

    /// What `render` makes of the current snapshot, made once per snapshot and per
    /// `key` however many clients ask: JSON encoding is most of an answer's cost.
    func rendered(_ key: String, _ render: (Snapshot) -> [UInt8]?) -> [UInt8]? {
        let snapshot = current
        if let hit = cache.withLockedValue({ $0[key] }), hit.generation == snapshot.generation { return hit.bytes }
        guard let bytes = render(snapshot) else { return nil }
        cache.withLockedValue { $0[key] = (snapshot.generation, bytes) }
        return bytes
    }

    private let cache = NIOLockedValueBox([String: (generation: Int, bytes: [UInt8])]())
}
