import XCTest
@testable import Bonding
import Framework

/// The scheduler's decisions through its static functions, on real `BondPath`s (each
/// with a UDP link bound to 127.0.0.1 and a kernel-chosen port) whose health, rate and
/// queue clock are set by hand.
final class SchedulerDecisionTests: XCTestCase {
    private static let packetSize = 1400

    /// A path with a delivery rate of `mbit` Mbit/s; up with a queue-free RTT of `rtt`
    /// (one echo at time `rtt` for a probe sent at 0), or down when `rtt` is nil.
    private func makePath(_ name: String, index: Int, mbit: Double, rtt: Double?, fallback: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line) throws -> BondPath {
        let path = try makeBondPath(name, index: index, fallback: fallback, tolerances: PathHealth.Tolerances(),
                                    bandwidthHint: mbit * 125_000)
        XCTAssertEqual(path.tier, BondPath.unusable, "a new path is down", file: file, line: line)
        if let rtt {
            let id = path.health.probeSent(now: 0)
            XCTAssertEqual(path.health.echoReceived(id: id, sentAt: 0, now: rtt), .up, file: file, line: line)
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
    private func schedule(_ paths: [BondPath], count: Int, now: Double, gains: [Double]? = nil) -> [Int] {
        let gains = gains ?? [Double](repeating: 1, count: paths.count)
        var perPath = [Int](repeating: 0, count: paths.count)
        for _ in 0..<count {
            let chosen = SchedulerStage.earliest(paths, size: Self.packetSize, now: now, gains: gains, except: -1)
            guard chosen >= 0 else { continue }
            perPath[chosen] += 1
            let path = paths[chosen]
            path.freeAt = max(path.freeAt, now) + Double(Self.packetSize) / (path.rate.estimate * gains[chosen])
        }
        return perPath
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

    func testSplitFollowsGains() throws {
        let a = try makePath("a", index: 0, mbit: 20, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 20, rtt: 0.02)
        let split = schedule([a, b], count: 2250, now: 1.0, gains: [1.25, 1.0])
        XCTAssertEqual(split[0] + split[1], 2250)
        XCTAssertEqual(Double(split[0]) / Double(split[1]), 1.25, accuracy: 1.25 * 0.05, "split \(split)")
    }

    func testPathWithMoreQueueDelayGetsNothingUntilShortQueueExceedsTheDifference() throws {
        let near = try makePath("near", index: 0, mbit: 40, rtt: 0.0625)
        let far = try makePath("far", index: 1, mbit: 40, rtt: 0.0625)
        // A second, longer echo on the far path: srtt = 7/8 * 0.0625 + 1/8 * 0.3125 = 0.09375,
        // min RTT stays 0.0625, so the probes see 31.25 ms of queue there.
        let id = far.health.probeSent(now: 1.0)
        XCTAssertNil(far.health.echoReceived(id: id, sentAt: 1.0, now: 1.3125))
        XCTAssertEqual(near.queueDelay, 0)
        XCTAssertEqual(far.queueDelay, 0.03125)

        let paths = [near, far]
        let now = 2.0
        var firstOnFar: Int?
        for n in 0..<200 {
            let nearQueue = max(near.freeAt, now) - now
            let chosen = SchedulerStage.earliest(paths, size: Self.packetSize, now: now, gains: [1, 1], except: -1)
            guard chosen >= 0 else { return XCTFail("no path chosen for packet \(n)") }
            if nearQueue < 0.03125 - 1e-9 {
                XCTAssertEqual(chosen, 0, "packet \(n): near queue \(nearQueue) s is shorter than the far path's 31.25 ms")
            }
            if chosen == 1 && firstOnFar == nil { firstOnFar = n }
            let path = paths[chosen]
            path.freeAt = max(path.freeAt, now) + Double(Self.packetSize) / path.rate.estimate  // 0.28 ms each
        }
        // 111 packets of 0.28 ms make 31.08 ms, 112 make 31.36 ms: the 113th goes to the far path.
        XCTAssertEqual(firstOnFar, 112)
    }

    func testPropagationDelayCounts() throws {
        // Long but empty: one echo each, so srtt equals min RTT and the queue delay is 0.
        let near = try makePath("near", index: 0, mbit: 10, rtt: 0.02)
        let far = try makePath("far", index: 1, mbit: 100, rtt: 0.1)
        XCTAssertEqual(near.queueDelay, 0)
        XCTAssertEqual(far.propagationDelay, 0.05)
        // 1.12 ms + 10 ms on the near path beats 0.112 ms + 50 ms on the far one, in either order.
        XCTAssertEqual(SchedulerStage.earliest([near, far], size: Self.packetSize, now: 5, gains: [1, 1], except: -1), 0)
        XCTAssertEqual(SchedulerStage.earliest([far, near], size: Self.packetSize, now: 5, gains: [1, 1], except: -1), 1)
        // Once the near queue is deeper than the 40 ms difference, the far path is earlier.
        near.freeAt = 5.041
        XCTAssertEqual(SchedulerStage.earliest([near, far], size: Self.packetSize, now: 5, gains: [1, 1], except: -1), 1)
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

    func testNoUsablePathGivesMinusOne() throws {
        let down = try makePath("down", index: 0, mbit: 10, rtt: nil)
        XCTAssertEqual(SchedulerStage.earliest([down], size: Self.packetSize, now: 1, gains: [1], except: -1), -1)
        XCTAssertEqual(SchedulerStage.earliest([], size: Self.packetSize, now: 1, gains: [], except: -1), -1)
    }

    // MARK: except (redundant mode)

    func testExceptPicksTheSecondBestPath() throws {
        let a = try makePath("a", index: 0, mbit: 40, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 20, rtt: 0.04)
        let paths = [a, b]
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1, gains: [1, 1], except: -1), 0)
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1, gains: [1, 1], except: 0), 1)
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1, gains: [1, 1], except: 1), 0)
        XCTAssertEqual(SchedulerStage.earliest([a], size: Self.packetSize, now: 1, gains: [1], except: 0), -1,
                       "no second path: no copy")
    }

    func testExceptFallsBackToAWorseTier() throws {
        let normal = try makePath("normal", index: 0, mbit: 40, rtt: 0.02)
        let fallback = try makePath("fallback", index: 1, mbit: 10, rtt: 0.05, fallback: true)
        let down = try makePath("down", index: 2, mbit: 100, rtt: nil)
        let paths = [normal, fallback, down]
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1, gains: [1, 1, 1], except: -1), 0)
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1, gains: [1, 1, 1], except: 0), 1)
    }

    // MARK: probeGains

    func testProbeGainsCycleThroughPhasesForTwoPaths() {
        var gains = [1.0, 1.0]
        // Phase = floor(now / 0.1) mod 8; path 0 probes in phase 0, path 1 in phase 4.
        let expected: [(now: Double, gains: [Double])] = [
            (0.05, [1.25, 1]), (0.15, [0.9, 1]), (0.25, [1, 1]), (0.35, [1, 1]),
            (0.45, [1, 1.25]), (0.55, [1, 0.9]), (0.65, [1, 1]), (0.75, [1, 1]),
            (0.85, [1.25, 1]), (8.15, [0.9, 1]),
        ]
        for (now, want) in expected {
            SchedulerStage.probeGains(&gains, now: now)
            XCTAssertEqual(gains, want, "at \(now)")
        }
    }

    func testProbeGainsForThreePaths() {
        var gains = [1.0, 1.0, 1.0]
        // Path starts: 0, 8/3 = 2, 16/3 = 5.
        SchedulerStage.probeGains(&gains, now: 0.25)  // phase 2
        XCTAssertEqual(gains, [1, 1.25, 1])
        SchedulerStage.probeGains(&gains, now: 0.35)  // phase 3
        XCTAssertEqual(gains, [1, 0.9, 1])
        SchedulerStage.probeGains(&gains, now: 0.55)  // phase 5
        XCTAssertEqual(gains, [1, 1, 1.25])
        SchedulerStage.probeGains(&gains, now: 0.65)  // phase 6
        XCTAssertEqual(gains, [1, 1, 0.9])
        SchedulerStage.probeGains(&gains, now: 0.75)  // phase 7
        XCTAssertEqual(gains, [1, 1, 1])
    }

    func testProbeGainsDrainPhaseWrapsForLastOfEightPaths() {
        var gains = [Double](repeating: 1, count: 8)
        SchedulerStage.probeGains(&gains, now: 0.75)  // phase 7: path 7 probes, path 6 drains
        XCTAssertEqual(gains, [1, 1, 1, 1, 1, 1, 0.9, 1.25])
        SchedulerStage.probeGains(&gains, now: 0.85)  // phase 0: path 0 probes, path 7 drains
        XCTAssertEqual(gains, [1.25, 1, 1, 1, 1, 1, 1, 0.9])
    }

    func testProbeGainsLeaveASinglePathAlone() {
        var gains = [0.5]
        SchedulerStage.probeGains(&gains, now: 0.05)
        XCTAssertEqual(gains, [0.5])
    }

    // MARK: dropCommonBacklog

    func testCommonBacklogIsRemovedKeepingDifferences() throws {
        let a = try makePath("a", index: 0, mbit: 10, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 10, rtt: 0.02)
        a.freeAt = 10.0625
        b.freeAt = 10.015625
        SchedulerStage.dropCommonBacklog([a, b], now: 10)
        XCTAssertEqual(a.freeAt, 10.046875)
        XCTAssertEqual(b.freeAt, 10.0)
    }

    func testNothingIsRemovedWhenAPathIsIdle() throws {
        let a = try makePath("a", index: 0, mbit: 10, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 10, rtt: 0.02)
        a.freeAt = 10.0625
        b.freeAt = 9.5  // drained before now
        SchedulerStage.dropCommonBacklog([a, b], now: 10)
        XCTAssertEqual(a.freeAt, 10.0625)
        XCTAssertEqual(b.freeAt, 9.5)
        b.freeAt = 10  // drains exactly now: no backlog either
        SchedulerStage.dropCommonBacklog([a, b], now: 10)
        XCTAssertEqual(a.freeAt, 10.0625)
    }

    func testUnusablePathDoesNotLimitTheCommonBacklog() throws {
        let a = try makePath("a", index: 0, mbit: 10, rtt: 0.02)
        let b = try makePath("b", index: 1, mbit: 10, rtt: 0.02)
        let down = try makePath("down", index: 2, mbit: 10, rtt: nil)
        a.freeAt = 10.0625
        b.freeAt = 10.015625
        down.freeAt = 3
        SchedulerStage.dropCommonBacklog([a, b, down], now: 10)
        XCTAssertEqual(a.freeAt, 10.046875)
        XCTAssertEqual(b.freeAt, 10.0)
    }

    func testNoUsablePathsLeavesClocksAlone() throws {
        let down = try makePath("down", index: 0, mbit: 10, rtt: nil)
        down.freeAt = 12
        SchedulerStage.dropCommonBacklog([down], now: 10)
        XCTAssertEqual(down.freeAt, 12)
    }

    func testDroppingCommonBacklogKeepsDecisions() throws {
        let fast = try makePath("fast", index: 0, mbit: 40, rtt: 0.02)
        let slow = try makePath("slow", index: 1, mbit: 20, rtt: 0.02)
        let paths = [fast, slow]
        _ = schedule(paths, count: 300, now: 1.0)
        let before = SchedulerStage.earliest(paths, size: Self.packetSize, now: 1.0, gains: [1, 1], except: -1)
        let gap = fast.freeAt - slow.freeAt
        SchedulerStage.dropCommonBacklog(paths, now: 1.0)
        XCTAssertEqual(min(fast.freeAt, slow.freeAt), 1.0, accuracy: 1e-12)
        XCTAssertEqual(fast.freeAt - slow.freeAt, gap, accuracy: 1e-12)
        XCTAssertEqual(SchedulerStage.earliest(paths, size: Self.packetSize, now: 1.0, gains: [1, 1], except: -1), before)
    }
}
