import Glibc

/// Seconds on the monotonic clock: for timeouts and ages, never for wall time.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// The same clock in whole nanoseconds: timer deadlines, which must compare and
    /// add exactly (a repeating timer's deadlines are sums of its period).
    @inline(__always)
    static func nanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
