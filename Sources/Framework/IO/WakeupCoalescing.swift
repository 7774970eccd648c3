/// When an event loop pauses between turns so that datagrams arriving meanwhile are
/// handled in one turn: interrupt moderation, as a NIC does it, for a loop that spends
/// long stretches carrying only control traffic.
///
/// A broker holding 10 000 tunnels receives 2 000 keepalives a second, each on its own;
/// waking for each (epoll_wait, recvmmsg, the scheduler) costs more than handling it.
/// Once no data has moved for `quietAfter`, the loop sleeps up to `window` after a
/// turn before it waits again, so it wakes about 1/`window` times a second however many
/// keepalives come. Data moving (a device read, a data datagram) ends the pauses from
/// the next turn on, so only the first data packet after a quiet spell can wait, and
/// at most `window`; so does a source with more than one turn's worth to read (a burst
/// of handshakes is served at full speed). Timers share the pause: one due during it
/// fires when it ends, at most `window` late (timer slack, as the kernel's for a sleeping
/// task), which keepalive, timeout and retransmission timers of seconds do not notice.
/// Bounding the pause by the next deadline instead would let 30 000 timers spread over
/// 5 s wake the loop almost as often as the datagrams did.
struct WakeupCoalescing {
    /// Longest pause, in nanoseconds; 0: never pause.
    var window: Int64 = 0
    /// How long without data before pauses start.
    var quietAfter: Int64 = 1_000_000_000
    /// Set during a turn when data moved or a source was busy (a plain store, no
    /// clock read per packet).
    var awake = false
    /// When a turn last set `awake` (monotonic nanoseconds).
    private var lastData: Int64 = 0

    /// How long to pause after the turn that ended at `now`; 0 for not at all.
    mutating func pause(now: Int64) -> Int64 {
        guard window > 0 else { return 0 }
        if awake {
            awake = false
            lastData = now
            return 0
        }
        guard now - lastData >= quietAfter else { return 0 }
        return window
    }
}
