/// The health of one path, from its own probes and their echoes: smoothed RTT and
/// variation (Jacobson/Karels, RFC 6298 gains), loss over the last `window` probes,
/// and the state the scheduler acts on. Pure value logic with time passed in, so
/// every transition is unit-tested.
///
/// States and hysteresis:
/// * `down` after `timeout` without an echo (at least a few probe intervals and a
///   few RTTs, so a slow path is not taken for a dead one). Detection therefore
///   takes `timeout` whether or not traffic flows: probes run all the time.
/// * a path that was down comes back `up` after `rejoinEchoes` echoes in a row; the
///   first time, after one (nothing to distrust yet).
/// * `lossy` when loss exceeds the tolerance; back once it falls to half of it.
/// * `slow` when srtt exceeds the latency tolerance; back below 80 % of it.
///
/// Apart from the state, a live path is `quiet` while its newest probe that should
/// have been echoed by now was not (and nothing was echoed since): the scheduler
/// moves data off it at once, and the path goes down only after `timeout`. A cut
/// then loses about one probe interval of the path's traffic instead of the whole
/// timeout's, which TCP recovers from without waiting out a retransmission timer.
struct PathHealth {
    enum State: String, Sendable { case down, up, lossy, slow }

    struct Tolerances: Equatable {
        /// Percent of probes lost over the window; 100 disables.
        var lossPercent: Double = 20
        /// Seconds of srtt; 0 disables.
        var latency: Double = 0
        /// Seconds without an echo before the path is down.
        var timeout: Double = 0.25
    }

    static let window = 40
    static let rejoinEchoes = 3

    private(set) var state: State = .down
    var tolerances: Tolerances
    private(set) var srtt: Double?
    private(set) var rttvar: Double = 0
    /// Lowest RTT seen lately: the path's propagation delay without queues.
    private(set) var minRTT: Double?
    private var minRTTAt: Double = 0
    private(set) var lastEcho: Double?
    private(set) var wasEverUp = false
    private var echoesInARow = 0
    private var started: Double
    private(set) var nextProbeID: UInt32 = 1
    /// Sent time of the last `window` probes by id % window; `answered` marks echoes.
    private var sentAt = [Double](repeating: -1, count: PathHealth.window)
    private var sentID = [UInt32](repeating: 0, count: PathHealth.window)
    private var answered = [Bool](repeating: false, count: PathHealth.window)
    private(set) var downTransitions = 0
    /// The newest probe that is due has no echo, and none came after it was sent.
    private(set) var isQuiet = false

    init(tolerances: Tolerances, now: Double) {
        self.tolerances = tolerances
        started = now
    }

    /// Seconds without an echo after which the path is down: the tolerance, or more
    /// when the path's own RTT says an echo may legitimately take longer.
    var timeout: Double {
        guard let srtt else { return tolerances.timeout }
        return max(tolerances.timeout, 2 * srtt + 4 * rttvar)
    }

    /// A probe goes out now: its id.
    mutating func probeSent(now: Double) -> UInt32 {
        let id = nextProbeID
        nextProbeID = nextProbeID == UInt32.max ? 1 : nextProbeID + 1
        let slot = Int(id % UInt32(PathHealth.window))
        sentAt[slot] = now
        sentID[slot] = id
        answered[slot] = false
        return id
    }

    /// An echo came back for probe `id`, sent at `sentAt` (our clock). Returns the
    /// new state if it changed. Echoes of unknown or already answered probes, and
    /// timestamps from the future, are ignored (nothing learnt, nothing changed).
    mutating func echoReceived(id: UInt32, sentAt probeTime: Double, now: Double) -> State? {
        guard expects(id: id, sentAt: probeTime, now: now) else { return nil }
        let slot = Int(id % UInt32(PathHealth.window))
        answered[slot] = true
        let rtt = now - probeTime
        if let s = srtt {
            rttvar = 0.75 * rttvar + 0.25 * abs(s - rtt)
            srtt = 0.875 * s + 0.125 * rtt
        } else {
            srtt = rtt
            rttvar = rtt / 2
        }
        // A minimum that forgets after 10 s, so a longer route is learnt.
        if minRTT == nil || rtt <= minRTT! || now - minRTTAt > 10 {
            minRTT = rtt
            minRTTAt = now
        }
        lastEcho = now
        echoesInARow += 1
        return evaluate(now: now)
    }

    /// True for the first echo of a probe in the window, with the time it was sent.
    func expects(id: UInt32, sentAt probeTime: Double, now: Double) -> Bool {
        let slot = Int(id % UInt32(PathHealth.window))
        return sentID[slot] == id && !answered[slot] && abs(sentAt[slot] - probeTime) < 1e-5 && probeTime <= now
    }

    /// Called on every probe tick: notices silence. Returns the new state if it changed.
    mutating func tick(now: Double) -> State? {
        evaluate(now: now)
    }

    /// Percent of the probes in the window that were not echoed, counting only probes
    /// old enough that their echo should have arrived.
    func lossPercent(now: Double) -> Double {
        let grace = lossGrace
        var considered = 0, lost = 0
        for slot in 0..<PathHealth.window where sentAt[slot] >= 0 && now - sentAt[slot] > grace {
            considered += 1
            if !answered[slot] { lost += 1 }
        }
        return considered == 0 ? 0 : Double(lost) * 100 / Double(considered)
    }

    /// How old an unanswered probe must be to count as lost.
    private var lossGrace: Double { max(0.1, 2 * (srtt ?? 0.1) + 4 * rttvar) }

    private mutating func evaluate(now: Double) -> State? {
        let before = state
        let silentSince = lastEcho ?? started
        if now - silentSince > timeout {
            if state != .down {
                state = .down
                downTransitions += 1
            }
            echoesInARow = 0
        } else if state == .down {
            if echoesInARow >= (wasEverUp ? PathHealth.rejoinEchoes : 1) {
                state = .up
                wasEverUp = true
                // Losses from before the outage say nothing about the path now; probes
                // still in flight do, and keep their slots.
                let grace = lossGrace
                for slot in 0..<PathHealth.window where !answered[slot] && now - sentAt[slot] > grace { sentAt[slot] = -1 }
            }
        }
        if state != .down { state = quality(now: now) }
        isQuiet = state != .down && newestDueProbeUnanswered(now: now)
        return state == before ? nil : state
    }

    /// How long an echo may take before its probe is overdue: the RTO-style bound of
    /// the RTT, and not under 20 ms, so that scheduling jitter on a sub-millisecond
    /// path is not taken for silence.
    var echoWait: Double { max(0.02, 2 * (srtt ?? tolerances.timeout) + 4 * rttvar) }

    private func newestDueProbeUnanswered(now: Double) -> Bool {
        let wait = echoWait
        var newest = -1
        for slot in 0..<PathHealth.window where sentAt[slot] >= 0 && now - sentAt[slot] > wait
            && (newest < 0 || sentAt[slot] > sentAt[newest]) {
            newest = slot
        }
        guard newest >= 0 else { return false }
        return (lastEcho ?? -.infinity) < sentAt[newest]
    }

    /// up, lossy or slow for a live path, with the exit thresholds below the entry ones.
    private func quality(now: Double) -> State {
        let loss = lossPercent(now: now)
        let tolerance = tolerances.lossPercent
        if tolerance < 100 && (loss > tolerance || (state == .lossy && loss > tolerance / 2)) { return .lossy }
        if tolerances.latency > 0, let srtt,
           srtt > tolerances.latency || (state == .slow && srtt > 0.8 * tolerances.latency) { return .slow }
        return .up
    }
}
