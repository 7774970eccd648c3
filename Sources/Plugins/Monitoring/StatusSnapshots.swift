import Framework
import NIOConcurrencyHelpers

/// The tunnel's status, taken on its loop once per interval and handed to the HTTP
/// thread. However many requests arrive, the data path builds one status per
/// interval: hostile or eager clients cannot make it do more.
final class StatusSnapshots: Sendable {
    struct Snapshot: Sendable {
        var status: TunnelStatus
        var history: StatusHistory
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
        }
    }

    /// The last status taken, from any thread.
    var current: Snapshot { latest.withLockedValue { $0 } }
}
