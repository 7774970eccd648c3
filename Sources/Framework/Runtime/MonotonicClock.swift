import Glibc

/// Seconds on the monotonic clock: for timeouts and ages, never for wall time.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
