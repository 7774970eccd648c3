/// How much the bond's links can take now: each link may hold `linkQueue` seconds of
/// queue by the scheduler's virtual clock (`BondPath.freeAt`, which every echo sets
/// right by the queue its probe really met), and no more. The rest waits in the
/// `BondQueue`, where it is managed, instead of in the modem, where it is not.
///
/// A path in its probe (`SchedulerStage.probeAllowance`) may hold twice `linkQueue`:
/// if it has capacity the estimate does not know of, the extra drains at once and the
/// next echoes let more through, so the estimate keeps probing upward, paced or not.
enum BondPacer {
    /// Bytes the best usable tier of paths can take before each queue passes its allowance
    /// (`linkQueue`, twice that in a probe); nil when no path is usable (the scheduler
    /// drops what comes, as it always did).
    static func room(_ paths: [BondPath], now: Double, linkQueue: Double) -> Int? {
        let tier = bestTier(paths)
        guard tier != BondPath.unusable else { return nil }
        var room = 0.0
        for index in 0..<paths.count where paths[index].tier == tier {
            let path = paths[index]
            let allowed = linkQueue + SchedulerStage.probeAllowance(of: index, count: paths.count, now: now,
                                                                     linkQueue: linkQueue, backlogged: path.isBacklogged)
            let free = allowed - path.backlog(now: now)
            // A rate never measured at a queue is a guess (a new tunnel starts from
            // 10 Mbit/s): pacing at it would hold TCP's start-up back for seconds
            // (what is offered is what is delivered, so the guess would only grow by
            // what each echo finds drained). Until the link has shown its rate, it is
            // not paced.
            guard path.rate.confirmed else { return Int.max }
            if free > 0 {
                room += free * path.rate.estimate
            }
        }
        return Int(room)
    }

    /// When the first path of the best tier is down to half its allowed queue: the
    /// pacer's next turn, so each turn releases a few packets, not one.
    static func nextTurn(_ paths: [BondPath], now: Double, linkQueue: Double) -> Double {
        let tier = bestTier(paths)
        var earliest = Double.infinity
        for path in paths where path.tier == tier {
            earliest = min(earliest, path.freeAt - linkQueue / 2)
        }
        return max(earliest, now)
    }

    private static func bestTier(_ paths: [BondPath]) -> Int {
        var tier = BondPath.unusable
        for path in paths { tier = min(tier, path.tier) }
        return tier
    }
}
