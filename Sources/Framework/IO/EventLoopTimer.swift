extension EventLoop {
    /// A timer of an event loop. All of a loop's timers share its one timerfd through
    /// a `TimerQueue`, so a timer is a small object and arming one moves a record in
    /// memory, not a system call. Use it on the loop's thread only.
    public final class Timer {
        /// Weak: a timer the caller keeps may outlive its loop; it is inert then.
        weak var queue: TimerQueue?
        /// The timer's record in the queue.
        let id: Int
        /// Nil once cancelled.
        var handler: Handler?

        init(queue: TimerQueue, handler: @escaping Handler) {
            self.queue = queue
            self.handler = handler
            id = queue.register()
        }

        deinit {
            queue?.release(id)
        }

        /// True while the timer will fire (armed, and not yet fired if a one-shot).
        public var isArmed: Bool { queue?.isArmed(id) ?? false }

        /// Fire `milliseconds` from now (and every `milliseconds` after that if
        /// `repeating`), replacing any earlier arming; 0 disarms. Does nothing once
        /// cancelled. Allocates nothing.
        public func arm(milliseconds: Int, repeating: Bool) {
            arm(milliseconds: milliseconds, period: repeating ? milliseconds : 0)
        }

        /// Fire `milliseconds` from now, then every `period` milliseconds (0: once).
        /// A first delay apart from the period spreads many timers of one period
        /// (10 000 sessions' keepalives after a restart) instead of firing them together.
        ///
        /// Armed less than 128 ms ahead and repeating (if at all) more often than that,
        /// a timer fires at its deadline; otherwise up to 1/128 of the longer of the
        /// two later, so that far-off timers share wake-ups (`TimerQueue` says why).
        public func arm(milliseconds: Int, period: Int) {
            arm(nanoseconds: Int64(milliseconds) * 1_000_000, period: Int64(max(period, 0)) * 1_000_000)
        }

        /// Fire every `seconds`, the first time `seconds` from now, to the nanosecond: a
        /// period that is not whole milliseconds (a quarter of 50 ms) stays exact.
        public func arm(every seconds: Double) {
            let period = Int64(seconds * 1e9)
            arm(nanoseconds: period, period: period)
        }

        /// Fire once, `seconds` from now, to the nanosecond rather than the millisecond
        /// (a pacer's next turn is a fraction of a millisecond away); 0 or less disarms.
        public func arm(after seconds: Double) {
            arm(nanoseconds: Int64(seconds * 1e9), period: 0)
        }

        private func arm(nanoseconds delay: Int64, period: Int64) {
            guard handler != nil, let queue else { return }
            guard delay > 0 else {
                queue.disarm(id)
                return
            }
            queue.schedule(self, at: MonotonicClock.nanoseconds() + delay, delay: delay, period: period)
        }

        /// Disarm for good and let go of the handler (and what it captured).
        public func cancel() {
            queue?.disarm(id)
            handler = nil
        }
    }
}
