/// tunneldigger's two limits on new tunnels (§3.5 steps 1–2), process-wide across
/// ports: a minimum gap between successful creations, and per client IP at most
/// `perIPCount` attempts within `perIPWindow` seconds. Unlike upstream, the per-IP
/// table forgets addresses whose attempts all aged out, so it cannot grow without
/// bound under a spoofed flood.
struct ConnectionRateLimiter {
    var minimumGap: Double
    var perIPCount: Int
    var perIPWindow: Double
    private var lastCreation = -Double.infinity
    private var attempts: [[UInt8]: [Double]] = [:]
    private var lastPrune = 0.0

    enum Verdict: Equatable { case allowed, globalLimit, perIPLimit }

    init(minimumGap: Double, perIPCount: Int, perIPWindow: Double) {
        (self.minimumGap, self.perIPCount, self.perIPWindow) = (minimumGap, perIPCount, perIPWindow)
    }

    /// Check a PREPARE from `address` (IP bytes) at `now`; an allowed attempt is
    /// recorded against the address even if creating the tunnel fails later.
    mutating func check(_ address: [UInt8], now: Double) -> Verdict {
        if minimumGap > 0, now - lastCreation < minimumGap { return .globalLimit }
        if perIPCount > 0, perIPWindow > 0 {
            prune(now: now)
            var times = attempts[address] ?? []
            if times.count >= perIPCount, let oldest = times.first, now - oldest <= perIPWindow {
                return .perIPLimit
            }
            times.append(now)
            if times.count > perIPCount { times.removeFirst(times.count - perIPCount) }
            attempts[address] = times
        }
        return .allowed
    }

    /// A tunnel was created at `now` (starts the global gap).
    mutating func created(now: Double) {
        lastCreation = now
    }

    var trackedAddresses: Int { attempts.count }

    private mutating func prune(now: Double) {
        guard now - lastPrune > perIPWindow else { return }
        lastPrune = now
        attempts = attempts.filter { now - ($0.value.last ?? 0) <= perIPWindow }
    }
}
