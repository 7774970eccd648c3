import CLinux
import Glibc

/// The one event loop of a tunnel: file descriptors, timers and signals on a single
/// epoll set, served on the calling thread. The data path runs inside these callbacks
/// synchronously, so a packet never waits for a task switch.
///
/// Level-triggered: a handler that leaves data unread is called again, which keeps one
/// busy source from starving the others (handlers bound their work per call).
public final class EventLoop {
    public typealias Handler = () -> Void

    public struct Token: Hashable, Sendable {
        let value: Int
    }

    private let epoll: Int32
    private var handlers: [Handler?] = []
    private var fds: [Int32] = []
    private var freeTokens: [Int] = []
    private var running = false
    private let mailbox: LoopMailbox
    /// Where epoll_wait reports; a plain buffer, not an array, because the loop's own
    /// overhead per wake-up counts (tests run unoptimised, where array closures and
    /// range loops are generic calls).
    private static let readyCapacity = 64
    private let readyEvents = UnsafeMutablePointer<epoll_event>.allocate(capacity: EventLoop.readyCapacity)
    /// Every timer of this loop, on one timerfd armed for the earliest deadline.
    private let timers = TimerQueue()
    private let timerFD: Int32
    /// The deadline the timerfd is armed for (0: disarmed).
    private var timerFDDue: Int64 = 0
    /// Work to run once the ready events of this turn are handled (batched sends).
    private var endOfTurn: [Handler] = []
    /// Pauses between turns while only control traffic flows (off unless asked for).
    private var coalescing = WakeupCoalescing()
    /// When this loop last woke up more than `stallThreshold` after its timer was due:
    /// the process or the whole machine did not run (a descheduled VM, a CPU hog,
    /// SIGSTOP). Packets that arrived meanwhile wait in socket buffers, and those that
    /// peers or relays on the same machine held back are only now being sent: what
    /// times out a wait for the network (the reorder hold) starts it again from here.
    public private(set) var lastStall = -Double.infinity
    /// Wake-ups that came that late, since the loop was made.
    public private(set) var stalls = 0
    /// Later than this is a stall; a busy turn or a broker's wake-up pause stays under it.
    static let stallThreshold: Int64 = 10_000_000

    init() throws {
        mailbox = try LoopMailbox()
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epoll < 0 { throw SystemError("epoll_create1") }
        timerFD = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        if timerFD < 0 {
            let code = errno
            close(epoll)
            throw SystemError("timerfd_create", code: code)
        }
        try watch(mailbox.fd) { [mailbox] in mailbox.drain() }
        try watch(timerFD) { [unowned self] in self.timerFDExpired() }
    }

    /// Run `work` on this loop's thread soon. Safe to call from any thread: how work
    /// done elsewhere (a netlink request, a device removal) reports back.
    public var poster: @Sendable (@escaping @Sendable () -> Void) -> Void {
        { [mailbox] work in mailbox.post(work) }
    }

    /// `poster`, called from the loop's own thread or any other.
    func post(_ work: @escaping @Sendable () -> Void) {
        mailbox.post(work)
    }

    deinit {
        close(timerFD)
        for fd in signalFDs { close(fd) }
        close(epoll)
        readyEvents.deallocate()
    }

    /// Call `handler` whenever `fd` is readable.
    @discardableResult
    public func watch(_ fd: Int32, _ handler: @escaping Handler) throws -> Token {
        let token: Int
        if let reused = freeTokens.popLast() {
            token = reused
            handlers[token] = handler
            fds[token] = fd
        } else {
            token = handlers.count
            handlers.append(handler)
            fds.append(fd)
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64(token)
        if epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), fd, &event) < 0 {
            let code = errno
            handlers[token] = nil
            freeTokens.append(token)
            throw SystemError("epoll_ctl(add fd \(fd))", code: code)
        }
        return Token(value: token)
    }

    /// Stop watching; the caller still owns and closes the descriptor.
    public func unwatch(_ token: Token) {
        guard token.value < handlers.count, handlers[token.value] != nil else { return }
        var unused = epoll_event()
        epoll_ctl(epoll, Int32(EPOLL_CTL_DEL), fds[token.value], &unused)
        handlers[token.value] = nil
        freeTokens.append(token.value)
    }

    // MARK: timers

    /// A timer that fires `handler` `milliseconds` after each `arm` (and then every
    /// `milliseconds` if `repeating`); 0 here creates it disarmed. The loop keeps an
    /// armed timer alive, so a caller that never re-arms or cancels may drop it.
    @discardableResult
    public func addTimer(milliseconds: Int, repeating: Bool, _ handler: @escaping Handler) throws -> Timer {
        let timer = timer(handler)
        timer.arm(milliseconds: milliseconds, repeating: repeating)
        return timer
    }

    /// A timer that fires `handler` every `seconds`, the first time `seconds` from now,
    /// to the nanosecond (a quarter of 50 ms stays 12.5 ms, not 12). It cannot fail.
    @discardableResult
    public func addTimer(every seconds: Double, _ handler: @escaping Handler) -> Timer {
        let timer = timer(handler)
        timer.arm(every: seconds)
        return timer
    }

    /// Timers that exist on this loop, armed or not (status: a soak watches it stay flat).
    public var timerCount: Int { timers.registered }

    /// A disarmed timer. It cannot fail (no descriptor of its own); `addTimer(milliseconds:)`
    /// throws only because its callers were written for a timerfd per timer.
    func timer(_ handler: @escaping Handler) -> Timer {
        Timer(queue: timers, handler: handler)
    }

    /// Point the timerfd at the earliest deadline, if that changed since last time.
    /// Called just before the loop sleeps, so however many timers handlers re-armed,
    /// it costs at most one system call per wake-up; nothing armed: the timerfd is
    /// disarmed and the loop sleeps until a descriptor wakes it.
    private func programTimerFD() {
        let due = timers.earliest ?? 0
        guard due != timerFDDue else { return }
        timerFDDue = due
        // Absolute, so the time spent between reading the clock and this call does not
        // make the timer late; a deadline already past fires at once.
        var spec = itimerspec()
        spec.it_value = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
        timerfd_settime(timerFD, Int32(TFD_TIMER_ABSTIME), &spec, nil)
    }

    private func timerFDExpired() {
        var expirations: UInt64 = 0
        _ = read(timerFD, &expirations, 8)
        timers.fireDue(now: MonotonicClock.nanoseconds())
    }

    // MARK: signals

    private var signalFDs: Set<Int32> = []

    /// Block `signals` for this thread and any it creates later. Call at the start of
    /// the process, before other threads exist, so signals reach the signalfd only.
    public static func blockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Deliver `signal` to `handler` from the loop (the signal must be blocked first).
    func onSignal(_ signal: Int32, _ handler: @escaping Handler) throws {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        let fd = signalfd(-1, &set, Int32(SFD_NONBLOCK | SFD_CLOEXEC))
        if fd < 0 { throw SystemError("signalfd") }
        signalFDs.insert(fd)
        try watch(fd) {
            var info = signalfd_siginfo()
            while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                handler()
            }
        }
    }

    // MARK: running

    /// Serve events until `stop()`.
    func run() {
        running = true
        while running {
            if poll(timeoutMilliseconds: -1) < 0 { break }
            if coalescing.window > 0 { pauseIfQuiet() }
        }
    }

    /// Pause up to `windowMilliseconds` between turns once no data has moved for a
    /// second (`WakeupCoalescing` says why); 0 turns it off. For loops whose sockets
    /// mostly carry control traffic from many peers, such as a broker's.
    public func coalesceWakeups(windowMilliseconds: Int) {
        coalescing.window = Int64(max(windowMilliseconds, 0)) * 1_000_000
    }

    /// Something in this turn should not wait for the next: data moved (a device read,
    /// a data datagram), or a source had more than one turn's worth. The next turns do
    /// not pause until a second has passed without it. Cheap enough to call per batch.
    @inline(__always)
    public func stayAwake() { coalescing.awake = true }

    private func pauseIfQuiet() {
        let pause = coalescing.pause(now: MonotonicClock.nanoseconds())
        guard pause > 0 else { return }
        var interval = timespec(tv_sec: Int(pause / 1_000_000_000), tv_nsec: Int(pause % 1_000_000_000))
        _ = nanosleep(&interval, nil)
    }

    /// Wait up to `timeoutMilliseconds` (-1: forever) for events and handle those
    /// that are ready; the number handled, or -1 if waiting failed. `run()` is this in
    /// a loop; tests call it directly to drive several loops from one thread.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32) -> Int {
        programTimerFD()
        let n = Int(epoll_wait(epoll, readyEvents, Int32(Self.readyCapacity), timeoutMilliseconds))
        if n < 0 { return errno == EINTR ? 0 : -1 }
        // Before any handler: the first may be a socket whose data came during the stall.
        if timerFDDue != 0 && n > 0 { noticeStall() }
        var index = 0
        while index < n {
            let token = Int(readyEvents[index].data.u64)
            if token < handlers.count, let handler = handlers[token] { handler() }
            index += 1
        }
        if !endOfTurn.isEmpty { runEndOfTurn() }
        return n
    }

    private func noticeStall() {
        let now = MonotonicClock.nanoseconds()
        guard now - timerFDDue > Self.stallThreshold else { return }
        stalls += 1
        lastStall = Double(now) / 1e9
    }

    /// Run `work` once, after the events being handled now (and any timers among
    /// them), before the loop sleeps: how many small sends become one `sendmmsg`.
    public func atEndOfTurn(_ work: @escaping Handler) {
        endOfTurn.append(work)
    }

    private func runEndOfTurn() {
        var work: [Handler] = []
        swap(&work, &endOfTurn)
        for handler in work { handler() }
        // Keep the array's storage for the next turn.
        work.removeAll(keepingCapacity: true)
        if endOfTurn.isEmpty { swap(&work, &endOfTurn) }
    }

    /// Make `run()` return after the current event.
    func stop() { running = false }
}
