/// At most one log line per interval from a place that remote input can trigger at will
/// (a refused request, an unhandled message): a flood is counted by its drop counters, and
/// must not also fill the disk or cost a formatted line per packet. The lines it holds back
/// are summed into the next one it lets through.
public struct LogLimiter: Sendable {
    public let interval: Double
    private var last = -Double.infinity
    private var held = 0

    public init(interval: Double = 5) {
        self.interval = interval
    }

    /// Whether a line may be logged at `now` (monotonic seconds), and how many were held
    /// back since the last one; nil when this one is held back too.
    public mutating func admit(now: Double) -> Int? {
        guard now - last >= interval else {
            held += 1
            return nil
        }
        defer { (last, held) = (now, 0) }
        return held
    }

    /// What to append to a line `admit` let through after holding back `held` lines.
    public static func heldNote(_ held: Int) -> String {
        held == 0 ? "" : " (and \(held) more since the last such line)"
    }
}
