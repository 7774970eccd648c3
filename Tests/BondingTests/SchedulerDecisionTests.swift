import XCTest
@testable import Bonding
import Framework

/// The scheduler's decisions through its static functions, on real `BondPath`s (each
/// with a UDP link bound to 127.0.0.1 and a kernel-chosen port) whose health, rate and
/// queue clock are set by hand.
final class SchedulerDecisionTests: XCTestCase {
    private static let packetSize = 1400

    /// A path with a delivery rate of `mbit` Mbit/s; up with a queue-free RTT of `rtt`
    /// (one echo at time `rtt` for a probe sent at 0, which took half of it one way),
    /// or down when `rtt` is nil.
    private func makePath(_ name: String, index: Int, mbit: Double, rtt: Double?, fallback: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line) throws -> BondPath {
        let path = try makeBondPath(name, index: index, fallback: fallback, tolerances: PathHealth.Tolerances(),
                                    bandwidthHint: mbit * 125_000)
        XCTAssertEqual(path.tier, BondPath.unusable, "a new path is down", file: file, line: line)
        if let rtt {
            let id = path.health.probeSent(now: 0)
            XCTAssertEqual(path.health.echoReceived(id: id, sentAt: 0, now: rtt), .up, file: file, line: line)
            path.outbound.sample(sentAt: 0, arrivedAt: rtt / 2, now: rtt)
        }
        return path
    }

    /// A new (down) path on a loopback UDP link.
    private func makeBondPath(_ name: String, index: Int, fallback: Bool, tolerances: PathHealth.Tolerances,
                              bandwidthHint: Double) throws -> BondPath {
        let bind = try XCTUnwrap(SocketAddress.parse("127.0.0.1:0"))
        let remote = try XCTUnwrap(SocketAddress.parse("127.0.0.1:9"))
        let link = try UDPLink(name: name, index: index, bind: bind, remote: nil, device: nil, settings: Settings(), batchSize: 1)
        return BondPath(name: name, link: link, remote: remote, fallbackOnly: fallback, tolerances: tolerances,
                        bandwidthHint: bandwidthHint, now: 0)
    }

    /// Schedules `count` packets at `now` as the stage does (earliest path, then its
    /// queue clock advanced by the packet's time on it); returns packets per path.
    private func schedule(_ paths: [BondPath], count: Int, now: Double, probes: [Double]? = nil, bulk: Bool = false) -> [Int] {
        var perPath = [Int](repeating: 0, count: paths.count)
        for _ in 0..<count {
            let chosen = earliest(paths, now: now, probes: probes, bulk: bulk)
            guard chosen >= 0 else { continue }
            perPath[chosen] += 1
            let path = paths[chosen]
            path.freeAt = max(path.freeAt, now) + Double(Self.packetSize) / path.rate.estimate
        }
        return perPath
    }

    /// The stage's choice for one packet of `packetSize` bytes.
    private func earliest(_ paths: [BondPath], now: Double, probes: [Double]? = nil, bulk: Bool = false, except: Int = -1) -> Int {
        SchedulerStage.earliest(paths, size: Self.packetSize, now: now, probes: probes ?? [Double](repeating: 0, count: paths.count),
                                baseline: SchedulerStage.baseline(paths), bulk: bulk, except: except)
    }

    // MARK: proportional split and delay

    func testSplitFollowsDeliveryRates() throws {
        let fast = try makePath("fast", index: 0, mbit: 40, rtt: 0.02)
        let slow = try makePath("slow", index: 1, mbit: 20, rtt: 0.02)
        XCTAssertEqual(fast.rate.estimate, 5_000_000)
        XCTAssertEqual(slow.rate.estimate, 2_500_000)
        let split = schedule([fast, slow], count: 3000, now: 1.0)
        XCTAssertEqual(split[0] + split[1], 3000)
        let ratio = Double(split[0]) / Double(split[1])
        XCTAssertEqual(ratio, 2.0, accuracy: 0.1, "split \(split)")
    }

    func testAProbingPathTakesItsAllowanceMoreBulkAndNoMoreSmallPackets() throws {
        // 20 Mbit/s is 2.5 MB/s: an allowance of 5.6 ms is ten 1400-byte packets.
        let a = try makePath("a", index: 0, mbit: 20, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 20, rtt: 0.02)
        let bulk = schedule([a, b], count: 1000, now: 1.0, probes: [0.0056, 0], bulk: true)
        XCTAssertEqual(bulk[0] + bulk[1], 1000)
        XCTAssertEqual(Double(bulk[0] - bulk[1]), 10, accuracy: 1, "ten more on the probing path, the rest split evenly: \(bulk)")
        let c = try makePath("c", index: 0, mbit: 20, rtt: 0.02)
        let d = try makePath("d", index: 1, mbit: 20, rtt: 0.02)
        XCTAssertEqual(schedule([c, d], count: 1000, now: 1.0, probes: [0.0056, 0], bulk: false), [500, 500],
                       "a ping is not put behind a probe")
    }

    func testSmallPacketsTakeTheShortPathUntilItsQueueExceedsTheDifference() throws {
        // Equal rates, one way 10 and 40 ms: a small packet goes on the far path only
        // once the near path's queue is deeper than the 30 ms difference.
        let near = try makePath("near", index: 0, mbit: 40, rtt: 0.02)
        let far = try makePath("far", index: 1, mbit: 40, rtt: 0.08)
        XCTAssertEqual(far.propagation(above: SchedulerStage.baseline([near, far])), 0.03, accuracy: 1e-12)
        let paths = [near, far]
        let now = 2.0
        var firstOnFar: Int?
        for n in 0..<200 {
            let chosen = earliest(paths, now: now)
            if chosen == 1 && firstOnFar == nil { firstOnFar = n }
            let path = paths[chosen]
            path.freeAt = max(path.freeAt, now) + Double(Self.packetSize) / path.rate.estimate  // 0.28 ms each
        }
        // With 108 packets queued on the near path (30.24 ms), the next one reaches the
        // far end at 30.52 ms that way and at 30.28 ms by the far path: index 108.
        XCTAssertEqual(firstOnFar, 108)
    }

    func testBulkPacketsSplitByCapacityWhateverTheDelay() throws {
        // The far end aligns bulk packets, so delay does not tell the paths apart: the
        // split follows the rates from the first packet on.
        let near = try makePath("near", index: 0, mbit: 40, rtt: 0.02)
        let far = try makePath("far", index: 1, mbit: 20, rtt: 0.08)
        let split = schedule([near, far], count: 300, now: 1.0, bulk: true)
        XCTAssertEqual(Double(split[0]) / Double(split[1]), 2.0, accuracy: 0.05, "split \(split)")
        let small = try makePath("near2", index: 0, mbit: 40, rtt: 0.02)
        let smallFar = try makePath("far2", index: 1, mbit: 20, rtt: 0.08)
        XCTAssertEqual(schedule([small, smallFar], count: 50, now: 1.0), [50, 0], "small packets: the short path first")
    }

    func testPropagationDelayCounts() throws {
        let near = try makePath("near", index: 0, mbit: 10, rtt: 0.02)
        let far = try makePath("far", index: 1, mbit: 100, rtt: 0.1)
        XCTAssertEqual(SchedulerStage.baseline([near, far]), 0.01)
        XCTAssertEqual(near.propagation(above: 0.01), 0)
        XCTAssertEqual(far.propagation(above: 0.01), 0.04, accuracy: 1e-12)
        // 1.12 ms + 0 on the near path beats 0.112 ms + 40 ms on the far one, in either order.
        XCTAssertEqual(earliest([near, far], now: 5), 0)
        XCTAssertEqual(earliest([far, near], now: 5), 1)
        // Once the near queue is deeper than the 40 ms difference, the far path is earlier.
        near.freeAt = 5.041
        XCTAssertEqual(earliest([near, far], now: 5), 1)
    }

    func testAPathNotYetMeasuredCountsNoExtraDelay() throws {
        let path = try makePath("new", index: 0, mbit: 10, rtt: nil)
        XCTAssertNil(path.outbound.base)
        XCTAssertEqual(path.propagation(above: 0.01), 0)
        XCTAssertEqual(SchedulerStage.baseline([path]), 0, "no usable path: no baseline")
    }

    // MARK: anchoring

    func testAnEchoSetsTheVirtualQueueToTheQueueItsProbeMet() throws {
        let path = try makePath("wan", index: 0, mbit: 10, rtt: 0.02)
        path.freeAt = 1.010  // 10 ms queued at 1.0, by the rate estimate
        path.probeSent(id: 7, now: 1.0)
        // The probe met 25 ms at the bottleneck (another sender, or an optimistic rate):
        // at 1.02, when 0 ms is left by the estimate, 15 ms is really still queued.
        path.anchor(probe: 7, queue: 0.025, now: 1.02)
        XCTAssertEqual(path.backlog(now: 1.02), 0.015, accuracy: 1e-12)
    }

    func testAnEchoThatMetLessQueueShortensTheVirtualQueue() throws {
        let path = try makePath("wan", index: 0, mbit: 10, rtt: 0.02)
        path.freeAt = 1.050
        path.probeSent(id: 3, now: 1.0)
        path.anchor(probe: 3, queue: 0.010, now: 1.02)  // 40 ms fewer than the clock said
        XCTAssertEqual(path.backlog(now: 1.02), 0, accuracy: 1e-12, "never below empty")
        path.freeAt = 1.100
        path.probeSent(id: 4, now: 1.05)
        path.anchor(probe: 4, queue: 0.040, now: 1.06)  // expected 50 ms, met 40
        XCTAssertEqual(path.backlog(now: 1.06), 0.03, accuracy: 1e-12)
    }

    // MARK: tiers

    func testTiersFollowStateAndFallback() throws {
        let normal = try makePath("normal", index: 0, mbit: 10, rtt: 0.02)
        let fallback = try makePath("fallback", index: 1, mbit: 10, rtt: 0.02, fallback: true)
        let down = try makePath("down", index: 2, mbit: 10, rtt: nil)
        XCTAssertEqual(normal.tier, 0)
        XCTAssertEqual(fallback.tier, 2)
        XCTAssertEqual(down.tier, BondPath.unusable)
        XCTAssertTrue(fallback.isFallback)

        let peerChoice = try makePath("peer", index: 3, mbit: 10, rtt: 0.02)
        peerChoice.peerFallbackOnly = true
        XCTAssertEqual(peerChoice.tier, 2, "the peer's fallback setting counts too")
    }

    func testFallbackPathGetsNothingWhileNormalPathIsUp() throws {
        let normal = try makePath("normal", index: 0, mbit: 1, rtt: 0.1)
        let fallback = try makePath("fallback", index: 1, mbit: 100, rtt: 0.01, fallback: true)
        let split = schedule([normal, fallback], count: 1000, now: 1.0)
        XCTAssertEqual(split, [1000, 0])
    }

    func testFallbackPathGetsEverythingWhenNormalPathIsDown() throws {
        let normal = try makePath("normal", index: 0, mbit: 40, rtt: 0.02)
        let fallback = try makePath("fallback", index: 1, mbit: 10, rtt: 0.05, fallback: true)
        XCTAssertEqual(normal.health.tick(now: 1.0), .down)  // silent since 0.02
        XCTAssertEqual(normal.tier, BondPath.unusable)
        let split = schedule([normal, fallback], count: 1000, now: 1.0)
        XCTAssertEqual(split, [0, 1000])
    }

    func testLossyNormalPathBeatsFallbackThatIsUp() throws {
        let lossy = try makePath("lossy", index: 0, mbit: 1, rtt: nil)
        var ids: [UInt32] = []
        for _ in 0..<10 { ids.append(lossy.health.probeSent(now: 0)) }
        XCTAssertEqual(lossy.health.echoReceived(id: ids[0], sentAt: 0, now: 0.02), .up)
        XCTAssertEqual(lossy.health.tick(now: 0.2), .lossy)  // 9 of 10 probes lost
        XCTAssertEqual(lossy.tier, 1)

        let fallback = try makePath("fallback", index: 1, mbit: 100, rtt: 0.01, fallback: true)
        XCTAssertEqual(fallback.tier, 2)
        XCTAssertEqual(schedule([lossy, fallback], count: 500, now: 1.0), [500, 0])
    }

    func testSlowNormalPathIsTierOne() throws {
        let path = try makeBondPath("slow", index: 0, fallback: false,
                                    tolerances: PathHealth.Tolerances(lossPercent: 20, latency: 0.1, timeout: 1),
                                    bandwidthHint: 0)
        XCTAssertEqual(path.rate.estimate, BondPath.defaultRate, "no hint: the default rate")
        let id = path.health.probeSent(now: 0)
        XCTAssertEqual(path.health.echoReceived(id: id, sentAt: 0, now: 0.2), .slow)
        XCTAssertEqual(path.tier, 1)
        path.fallbackOnly = true
        XCTAssertEqual(path.tier, 3)
    }

    func testAQuietPathCarriesDataOnlyWhenNoOtherPathIsHealthy() throws {
        let fast = try makePath("fast", index: 0, mbit: 40, rtt: 0.01)
        let slow = try makePath("slow", index: 1, mbit: 20, rtt: 0.01)
        // Echo wait: max(20 ms, 2 × 10 + 4 × 5 ms) = 40 ms. Fast's probe at 0.1 goes
        // unanswered; slow's is echoed.
        _ = fast.health.probeSent(now: 0.1)
        let id = slow.health.probeSent(now: 0.1)
        _ = slow.health.echoReceived(id: id, sentAt: 0.1, now: 0.11)
        XCTAssertNil(fast.health.tick(now: 0.15), "quiet is not a state: hooks and logs see nothing")
        XCTAssertTrue(fast.health.isQuiet)
        XCTAssertEqual(fast.tier, 1)
        XCTAssertEqual(schedule([fast, slow], count: 300, now: 0.15, bulk: true), [0, 300])
        // With the other path down, the quiet one carries everything.
        XCTAssertEqual(slow.health.tick(now: 0.4), .down)
        XCTAssertEqual(schedule([fast, slow], count: 300, now: 0.4, bulk: true), [300, 0])
    }

    /// One look at both paths, 25 ms after the last (the session looks every 12.5 ms;
    /// the rules count packets per look, not per second), after
    /// `fast` and `slow` more packets arrived on each and `sent` more were sent on each.
    /// Probes are echoed on time (the paths' own, at 0), so only traffic can make
    /// a path quiet here.
    private var lookTime = 0.0
    private func look(_ paths: (fast: BondPath, slow: BondPath), _ fast: UInt64, _ slow: UInt64, sent: UInt64 = 40) {
        lookTime += 0.025
        paths.fast.receivedPackets += fast
        paths.slow.receivedPackets += slow
        paths.fast.sentPackets += sent
        paths.slow.sentPackets += sent
        let anyArrivals = paths.fast.broughtSinceLastLook || paths.slow.broughtSinceLastLook
        for path in [paths.fast, paths.slow] {
            XCTAssertNil(path.look(now: lookTime, anyArrivals: anyArrivals), "no state change: quiet is not a state")
        }
    }

    func testABusyPathWhoseArrivalsStopWhileAnotherSpeaksIsQuietUntilAPacketComes() throws {
        let paths = (fast: try makePath("fast", index: 0, mbit: 40, rtt: 0.01), slow: try makePath("slow", index: 1, mbit: 20, rtt: 0.01))
        look(paths, 40, 20)
        look(paths, 40, 20)
        XCTAssertFalse(paths.fast.isQuiet)
        look(paths, 0, 20)  // cut: nothing more from the far side on fast
        XCTAssertTrue(paths.fast.isQuiet)
        XCTAssertEqual(paths.fast.tier, 1)
        XCTAssertEqual(paths.fast.quietSpells, 1)
        XCTAssertEqual(paths.fast.health.state, .up, "its probes are not overdue yet")
        look(paths, 0, 20)
        XCTAssertTrue(paths.fast.isQuiet, "silent as long as nothing comes")
        look(paths, 1, 20)  // a probe got through
        XCTAssertFalse(paths.fast.isQuiet)
        XCTAssertEqual(paths.fast.tier, 0)
        XCTAssertEqual(paths.fast.quietSpells, 1)
    }

    func testAQuietSpellIsCountedOnceWhetherTrafficOrAProbeOrBothSayIt() throws {
        let paths = (fast: try makePath("fast", index: 0, mbit: 40, rtt: 0.01), slow: try makePath("slow", index: 1, mbit: 20, rtt: 0.01))
        look(paths, 40, 20)                                  // 0.025
        let probe = paths.fast.health.probeSent(now: 0.04)   // due after 2 × 10 + 4 × 5 = 40 ms
        look(paths, 40, 20)                                  // 0.05
        look(paths, 0, 20)                                   // 0.075: its traffic stopped
        XCTAssertTrue(paths.fast.isQuiet)
        look(paths, 0, 20)                                   // 0.1: and its probe is overdue
        XCTAssertTrue(paths.fast.health.isQuiet)
        look(paths, 5, 20)                                   // 0.125: traffic again, the probe still unanswered
        XCTAssertTrue(paths.fast.isQuiet)
        XCTAssertEqual(paths.fast.quietSpells, 1)
        XCTAssertNil(paths.fast.health.echoReceived(id: probe, sentAt: 0.04, now: 0.13))
        XCTAssertFalse(paths.fast.isQuiet)
        look(paths, 40, 20)
        XCTAssertFalse(paths.fast.isQuiet)
        XCTAssertEqual(paths.fast.quietSpells, 1)
    }

    func testAPathThatWasNotBusyOrATunnelThatFellSilentAsAWholeIsNotQuiet() throws {
        let paths = (fast: try makePath("fast", index: 0, mbit: 40, rtt: 0.01), slow: try makePath("slow", index: 1, mbit: 20, rtt: 0.01))
        look(paths, BondPath.busy - 1, 20)
        look(paths, 0, 20)
        XCTAssertFalse(paths.fast.isQuiet, "a probe or a few pings do not make a path busy")
        look(paths, 40, 20)
        look(paths, 0, 0)
        XCTAssertFalse(paths.fast.isQuiet, "the far side stopped sending on every path")
        XCTAssertFalse(paths.slow.isQuiet)
        // Both ends paused: this side sends only a probe, the far side only its probes.
        look(paths, 40, 20)
        look(paths, 0, 1, sent: 1)
        XCTAssertFalse(paths.fast.isQuiet, "a far side with nothing to answer is not cut")
    }

    func testAPathThatWentDownIsNotQuietThoughItsTrafficStopped() throws {
        let paths = (fast: try makePath("fast", index: 0, mbit: 40, rtt: 0.01), slow: try makePath("slow", index: 1, mbit: 20, rtt: 0.01))
        look(paths, 40, 20)
        look(paths, 40, 20)
        look(paths, 0, 20)
        XCTAssertTrue(paths.fast.isQuiet)
        // No echo for longer than the timeout (0.25 s): down, and status says so alone.
        lookTime += 0.3
        XCTAssertEqual(paths.fast.look(now: lookTime, anyArrivals: true), .down)
        XCTAssertFalse(paths.fast.isQuiet, "down, not quiet")
        XCTAssertEqual(paths.fast.tier, BondPath.unusable)
    }

    func testNoUsablePathGivesMinusOne() throws {
        let down = try makePath("down", index: 0, mbit: 10, rtt: nil)
        XCTAssertEqual(earliest([down], now: 1), -1)
        XCTAssertEqual(earliest([], now: 1), -1)
    }

    // MARK: except (redundant mode)

    func testExceptPicksTheSecondBestPath() throws {
        let a = try makePath("a", index: 0, mbit: 40, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 20, rtt: 0.04)
        let paths = [a, b]
        XCTAssertEqual(earliest(paths, now: 1), 0)
        XCTAssertEqual(earliest(paths, now: 1, except: 0), 1)
        XCTAssertEqual(earliest(paths, now: 1, except: 1), 0)
        XCTAssertEqual(earliest([a], now: 1, except: 0), -1,
                       "no second path: no copy")
    }

    func testExceptFallsBackToAWorseTier() throws {
        let normal = try makePath("normal", index: 0, mbit: 40, rtt: 0.02)
        let fallback = try makePath("fallback", index: 1, mbit: 10, rtt: 0.05, fallback: true)
        let down = try makePath("down", index: 2, mbit: 100, rtt: nil)
        let paths = [normal, fallback, down]
        XCTAssertEqual(earliest(paths, now: 1), 0)
        XCTAssertEqual(earliest(paths, now: 1, except: 0), 1)
    }

    // MARK: probe allowances

    /// Each path's allowance at `now` with a link queue of 3 ms.
    private func allowances(count: Int, now: Double, backlogged: Set<Int> = []) -> [Double] {
        (0..<count).map {
            SchedulerStage.probeAllowance(of: $0, count: count, now: now, linkQueue: 0.003, backlogged: backlogged.contains($0))
        }
    }

    func testProbeAllowancesCycleThroughPhasesForTwoPaths() {
        // Phase = floor(now / 0.1) mod 8; path 0 probes in phase 0, path 1 in phase 4;
        // nothing to drain afterwards (a probe holds at most one link queue more).
        let expected: [(now: Double, allowances: [Double])] = [
            (0.05, [0.003, 0]), (0.15, [0, 0]), (0.25, [0, 0]), (0.35, [0, 0]),
            (0.45, [0, 0.003]), (0.55, [0, 0]), (0.65, [0, 0]), (0.75, [0, 0]),
            (0.85, [0.003, 0]), (8.05, [0.003, 0]),
        ]
        for (now, want) in expected {
            XCTAssertEqual(allowances(count: 2, now: now), want, "at \(now)")
        }
    }

    func testProbeAllowancesForThreeAndEightPaths() {
        // Path starts: 0, 8/3 = 2, 16/3 = 5.
        XCTAssertEqual(allowances(count: 3, now: 0.25), [0, 0.003, 0])  // phase 2
        XCTAssertEqual(allowances(count: 3, now: 0.35), [0, 0, 0])      // phase 3
        XCTAssertEqual(allowances(count: 3, now: 0.55), [0, 0, 0.003])  // phase 5
        XCTAssertEqual(allowances(count: 8, now: 0.75), [0, 0, 0, 0, 0, 0, 0, 0.003])  // phase 7
        XCTAssertEqual(allowances(count: 8, now: 0.85), [0.003, 0, 0, 0, 0, 0, 0, 0])  // phase 0
    }

    func testNoProbeForALonePathOrABackloggedOne() {
        XCTAssertEqual(allowances(count: 1, now: 0.05), [0], "nothing to move a lone path's traffic from")
        XCTAssertEqual(allowances(count: 2, now: 0.05, backlogged: [0]), [0, 0], "full already: its delivery measures it")
    }
}

/// The wait the receiving side gives bulk data from each path (`BondingSession.align`).
final class AlignmentTests: XCTestCase {
    func path(_ name: String, inbound oneWay: Double?, fallback: Bool = false) throws -> BondPath {
        let link = try UDPLink(name: name, index: 0, bind: XCTUnwrap(SocketAddress.parse("127.0.0.1:0")), remote: nil,
                               device: nil, settings: Settings(), batchSize: 1)
        let path = BondPath(name: name, link: link, remote: try XCTUnwrap(SocketAddress.parse("127.0.0.1:9")),
                            fallbackOnly: fallback, tolerances: PathHealth.Tolerances(), bandwidthHint: 0, now: 0)
        let id = path.health.probeSent(now: 0)
        _ = path.health.echoReceived(id: id, sentAt: 0, now: 0.001)  // up
        if let oneWay { path.inbound.sample(sentAt: 0, arrivedAt: 500 + oneWay, now: 0.1) }  // far clock 500 s ahead
        return path
    }

    func testShorterPathsWaitForTheLongestOfTheBestTier() throws {
        let near = try path("near", inbound: 0.010), far = try path("far", inbound: 0.040), mid = try path("mid", inbound: 0.025)
        BondingSession.align([near, far, mid], maximum: 0.3)
        XCTAssertEqual(near.alignWait, 0.030, accuracy: 1e-9)
        XCTAssertEqual(mid.alignWait, 0.015, accuracy: 1e-9)
        XCTAssertEqual(far.alignWait, 0, accuracy: 1e-9)
    }

    func testAFallbackPathDoesNotSetTheWaitWhileANormalOneIsUp() throws {
        let near = try path("near", inbound: 0.010), backup = try path("backup", inbound: 0.200, fallback: true)
        BondingSession.align([near, backup], maximum: 0.3)
        XCTAssertEqual(near.alignWait, 0)
        XCTAssertEqual(backup.alignWait, 0, "longer than the longest of the best tier: no wait")
    }

    func testDownOrUnmeasuredPathsWaitNothingAndSetNothing() throws {
        let near = try path("near", inbound: 0.010), far = try path("far", inbound: 0.040), new = try path("new", inbound: nil)
        XCTAssertEqual(far.health.tick(now: 5), .down)
        BondingSession.align([near, far, new], maximum: 0.3)
        XCTAssertEqual(near.alignWait, 0, "the long path is down: nothing to wait for")
        XCTAssertEqual(far.alignWait, 0)
        XCTAssertEqual(new.alignWait, 0)
    }

    func testTheWaitIsCappedAtTheLongestHold() throws {
        let near = try path("near", inbound: 0.010), far = try path("far", inbound: 0.900)
        BondingSession.align([near, far], maximum: 0.3)
        XCTAssertEqual(near.alignWait, 0.3)
    }
}

extension AlignmentTests {
    func testUnderAMillisecondIsNotWorthHolding() throws {
        let near = try path("near", inbound: 0.0101), far = try path("far", inbound: 0.0108)
        BondingSession.align([near, far], maximum: 0.3)
        XCTAssertEqual(near.alignWait, 0)
    }
}

extension AlignmentTests {
    func testAPathTheFarSideFindsDegradedDoesNotSetTheWait() throws {
        // The far side's latency tolerance put its 4G link out of aggregation: its bulk
        // goes by DSL alone, and waiting for the 4G link's delay would only add latency.
        let dsl = try path("dsl", inbound: 0.010), lte = try path("lte", inbound: 0.060)
        lte.peerDegraded = true
        XCTAssertEqual(lte.tier, 0, "this side finds it fine")
        XCTAssertEqual(lte.peerTier, 1)
        BondingSession.align([dsl, lte], maximum: 0.3)
        XCTAssertEqual(dsl.alignWait, 0)
        lte.peerDegraded = false
        BondingSession.align([dsl, lte], maximum: 0.3)
        XCTAssertEqual(dsl.alignWait, 0.05, accuracy: 1e-9)
    }
}

