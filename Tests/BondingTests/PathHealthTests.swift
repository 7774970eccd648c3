import XCTest
@testable import Bonding
import Framework

// Times are multiples of powers of two where exact boundaries matter, so the
// arithmetic in the assertions is exact.
final class PathHealthTests: XCTestCase {
    /// Send `count` probes at `time`; their ids in order.
    private func probes(_ health: inout PathHealth, _ count: Int, at time: Double = 0) -> [UInt32] {
        (0..<count).map { _ in health.probeSent(now: time) }
    }

    private typealias Tolerances = PathHealth.Tolerances

    /// Sends one probe at `at` and echoes it after `rtt`; returns the state change.
    private func roundTrip(_ health: inout PathHealth, at: Double, rtt: Double) -> PathHealth.State? {
        let id = health.probeSent(now: at)
        return health.echoReceived(id: id, sentAt: at, now: at + rtt)
    }

    // MARK: up and down

    func testNewPathIsDownAndStaysDownWithoutEchoes() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        XCTAssertEqual(health.state, .down)
        XCTAssertNil(health.srtt)
        _ = health.probeSent(now: 0)
        XCTAssertNil(health.tick(now: 0.1))
        XCTAssertNil(health.tick(now: 5))
        XCTAssertEqual(health.state, .down)
        XCTAssertEqual(health.downTransitions, 0)
    }

    func testFirstEchoBringsPathUp() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        let id = health.probeSent(now: 0)
        XCTAssertEqual(id, 1)
        XCTAssertEqual(health.echoReceived(id: id, sentAt: 0, now: 0.03125), .up)
        XCTAssertEqual(health.state, .up)
        XCTAssertTrue(health.wasEverUp)
        XCTAssertEqual(health.lastEcho, 0.03125)
    }

    func testProbeIDsCountUpFromOne() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        XCTAssertEqual(health.probeSent(now: 0), 1)
        XCTAssertEqual(health.probeSent(now: 0), 2)
        XCTAssertEqual(health.probeSent(now: 0), 3)
        XCTAssertEqual(health.nextProbeID, 4)
    }

    func testSilenceOfExactlyTimeoutKeepsPathUpAndLongerTakesItDown() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 0.25), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        // 2 * srtt + 4 * rttvar = 2/32 + 4/64 = 0.125, below the 0.25 tolerance.
        XCTAssertEqual(health.timeout, 0.25)
        XCTAssertNil(health.tick(now: 0.03125 + 0.25))
        XCTAssertEqual(health.state, .up)
        XCTAssertEqual(health.tick(now: 0.03125 + 0.251), .down)
        XCTAssertEqual(health.state, .down)
        XCTAssertEqual(health.downTransitions, 1)
        // Staying silent is no further transition.
        XCTAssertNil(health.tick(now: 2))
        XCTAssertEqual(health.downTransitions, 1)
    }

    // MARK: quiet

    // Loss tolerance 100: one lost probe of two would make the path lossy.
    func testAnUnansweredDueProbeMakesThePathQuietUntilTheNextEcho() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 100, latency: 0, timeout: 0.25), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        // 2 * srtt + 4 * rttvar = 2/32 + 4/64 = 0.125.
        XCTAssertEqual(health.echoWait, 0.125)
        _ = health.probeSent(now: 0.0625)
        XCTAssertNil(health.tick(now: 0.0625 + 0.125))
        XCTAssertFalse(health.isQuiet, "an echo may still take exactly the wait")
        XCTAssertNil(health.tick(now: 0.0625 + 0.125 + 1.0 / 1024))
        XCTAssertTrue(health.isQuiet)
        XCTAssertEqual(health.state, .up, "down only after the timeout")
        // The next probe's echo ends it, though the lost probe stays unanswered.
        XCTAssertNil(roundTrip(&health, at: 0.1875 + 0.0625, rtt: 0.03125))
        XCTAssertFalse(health.isQuiet)
        XCTAssertNil(health.tick(now: 0.5))
        XCTAssertFalse(health.isQuiet)
    }

    func testAProbeAnsweredAfterALaterOneLeavesThePathLive() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 100, latency: 0, timeout: 0.25), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        let first = health.probeSent(now: 0.0625)
        let second = health.probeSent(now: 0.09375)
        // The second probe's echo comes first: the path answers, whatever became of the first.
        XCTAssertNil(health.echoReceived(id: second, sentAt: 0.09375, now: 0.125))
        XCTAssertNil(health.tick(now: 0.21875))
        XCTAssertFalse(health.isQuiet)
        XCTAssertNil(health.echoReceived(id: first, sentAt: 0.0625, now: 0.25))
        XCTAssertFalse(health.isQuiet)
    }

    func testADownPathIsNotQuietAndTheEchoWaitHasAFloor() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        _ = health.probeSent(now: 0)
        XCTAssertNil(health.tick(now: 1))
        XCTAssertEqual(health.state, .down)
        XCTAssertFalse(health.isQuiet, "down, not quiet")
        // A path of 0.2 ms: 20 ms, not 0.6, before its probe is overdue.
        XCTAssertEqual(roundTrip(&health, at: 2, rtt: 0.0002), .up)
        XCTAssertEqual(health.echoWait, 0.02)
        _ = health.probeSent(now: 2.05)
        XCTAssertNil(health.tick(now: 2.069))
        XCTAssertFalse(health.isQuiet)
        XCTAssertNil(health.tick(now: 2.071))
        XCTAssertTrue(health.isQuiet)
    }

    func testRejoinAfterOutageNeedsThreeEchoesInARow() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        XCTAssertEqual(health.tick(now: 0.5), .down)

        XCTAssertNil(roundTrip(&health, at: 1.0, rtt: 0.03125))
        XCTAssertEqual(health.state, .down)
        XCTAssertNil(roundTrip(&health, at: 1.125, rtt: 0.03125))
        XCTAssertEqual(health.state, .down)
        XCTAssertEqual(roundTrip(&health, at: 1.25, rtt: 0.03125), .up)
        XCTAssertEqual(health.state, .up)
    }

    func testSilenceDuringRejoinRestartsTheCount() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        XCTAssertEqual(health.tick(now: 0.5), .down)
        XCTAssertNil(roundTrip(&health, at: 1.0, rtt: 0.03125))
        XCTAssertNil(roundTrip(&health, at: 1.125, rtt: 0.03125))
        // Silent again for longer than the timeout: the two echoes no longer count.
        XCTAssertNil(health.tick(now: 2.0))
        XCTAssertNil(roundTrip(&health, at: 3.0, rtt: 0.03125))
        XCTAssertNil(roundTrip(&health, at: 3.125, rtt: 0.03125))
        XCTAssertEqual(health.state, .down)
        XCTAssertEqual(roundTrip(&health, at: 3.25, rtt: 0.03125), .up)
    }

    func testLossesFromBeforeAnOutageAreForgottenOnRejoin() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 0.25), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        for _ in 0..<10 { _ = health.probeSent(now: 0.0625) }  // lost in the outage
        XCTAssertEqual(health.tick(now: 0.5), .down)
        XCTAssertNil(roundTrip(&health, at: 1.0, rtt: 0.03125))
        XCTAssertNil(roundTrip(&health, at: 1.125, rtt: 0.03125))
        XCTAssertEqual(roundTrip(&health, at: 1.25, rtt: 0.03125), .up)
        XCTAssertEqual(health.lossPercent(now: 1.5), 0)
        XCTAssertNil(health.tick(now: 1.4))
        XCTAssertEqual(health.state, .up)
    }

    // MARK: RTT estimation

    func testSmoothedRTTAndVariationFollowRFC6298() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.125), .up)
        // First sample: srtt = R, rttvar = R / 2.
        XCTAssertEqual(health.srtt, 0.125)
        XCTAssertEqual(health.rttvar, 0.0625)

        XCTAssertNil(roundTrip(&health, at: 1.0, rtt: 0.25))
        // rttvar = 3/4 * 0.0625 + 1/4 * |0.125 - 0.25| = 0.078125
        // srtt   = 7/8 * 0.125  + 1/8 * 0.25           = 0.140625
        XCTAssertEqual(health.rttvar, 0.078125)
        XCTAssertEqual(health.srtt, 0.140625)

        XCTAssertNil(roundTrip(&health, at: 2.0, rtt: 0.0625))
        // rttvar = 3/4 * 0.078125 + 1/4 * |0.140625 - 0.0625| = 0.078125
        // srtt   = 7/8 * 0.140625 + 1/8 * 0.0625             = 0.130859375
        XCTAssertEqual(health.rttvar, 0.078125)
        XCTAssertEqual(health.srtt, 0.130859375)
        XCTAssertEqual(health.minRTT, 0.0625)
    }

    func testTimeoutGrowsWithSmoothedRTT() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 0.25), now: 0)
        XCTAssertEqual(health.timeout, 0.25)  // no srtt yet: the tolerance
        _ = roundTrip(&health, at: 0, rtt: 0.125)
        _ = roundTrip(&health, at: 1.0, rtt: 0.25)
        _ = roundTrip(&health, at: 2.0, rtt: 0.0625)
        // 2 * 0.130859375 + 4 * 0.078125
        XCTAssertEqual(health.timeout, 0.57421875)
        let lastEcho = 2.0625
        XCTAssertEqual(health.lastEcho, lastEcho)
        // Longer than the tolerance but within the RTT-based timeout: still up.
        XCTAssertNil(health.tick(now: lastEcho + 0.3))
        XCTAssertNil(health.tick(now: lastEcho + 0.57421875))
        XCTAssertEqual(health.state, .up)
        XCTAssertEqual(health.tick(now: lastEcho + 0.58), .down)
    }

    func testMinRTTKeepsLowestAndForgetsAfterTenSeconds() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 100, latency: 0, timeout: 100), now: 0)
        _ = roundTrip(&health, at: 0, rtt: 0.0625)
        XCTAssertEqual(health.minRTT, 0.0625)
        _ = roundTrip(&health, at: 1, rtt: 0.125)
        XCTAssertEqual(health.minRTT, 0.0625)
        _ = roundTrip(&health, at: 2, rtt: 0.03125)
        XCTAssertEqual(health.minRTT, 0.03125)
        // More than 10 s after the minimum was set: a longer route is learnt.
        _ = roundTrip(&health, at: 20, rtt: 0.125)
        XCTAssertEqual(health.minRTT, 0.125)
    }

    // MARK: ignored echoes

    func testEchoForUnknownIDIsIgnored() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        _ = health.probeSent(now: 0)
        XCTAssertNil(health.echoReceived(id: 99, sentAt: 0, now: 0.03125))
        XCTAssertNil(health.srtt)
        XCTAssertNil(health.lastEcho)
        XCTAssertEqual(health.state, .down)
    }

    func testEchoWithWrongTimestampIsIgnored() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        let id = health.probeSent(now: 0)
        XCTAssertNil(health.echoReceived(id: id, sentAt: 0.01, now: 0.03125))
        XCTAssertNil(health.srtt)
        XCTAssertEqual(health.state, .down)
        // The right timestamp is still accepted afterwards.
        XCTAssertEqual(health.echoReceived(id: id, sentAt: 0, now: 0.03125), .up)
    }

    func testEchoFromTheFutureIsIgnored() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        let id = health.probeSent(now: 1.0)
        XCTAssertNil(health.echoReceived(id: id, sentAt: 1.0, now: 0.5))
        XCTAssertNil(health.srtt)
        XCTAssertEqual(health.state, .down)
    }

    func testDuplicateEchoIsIgnored() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        let id = health.probeSent(now: 0)
        XCTAssertEqual(health.echoReceived(id: id, sentAt: 0, now: 0.03125), .up)
        XCTAssertNil(health.echoReceived(id: id, sentAt: 0, now: 0.0625))
        XCTAssertEqual(health.srtt, 0.03125)
        XCTAssertEqual(health.rttvar, 0.015625)
        XCTAssertEqual(health.lastEcho, 0.03125)
    }

    func testEchoForProbeThatLeftTheWindowIsIgnored() {
        var health = PathHealth(tolerances: Tolerances(), now: 0)
        let first = health.probeSent(now: 0)
        for _ in 0..<PathHealth.window { _ = health.probeSent(now: 0) }  // id 41 takes slot of id 1
        XCTAssertNil(health.echoReceived(id: first, sentAt: 0, now: 0.03125))
        XCTAssertNil(health.srtt)
        XCTAssertEqual(health.state, .down)
    }

    // MARK: lossy

    func testLossAtToleranceIsNotLossyAboveItIs() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 10), now: 0)
        let ids = probes(&health, 10)
        XCTAssertEqual(health.echoReceived(id: ids[0], sentAt: 0, now: 0.03125), .up)
        for id in ids[1..<8] { XCTAssertNil(health.echoReceived(id: id, sentAt: 0, now: 0.03125)) }
        // 2 of 10 lost: exactly 20 %, not above.
        XCTAssertEqual(health.lossPercent(now: 0.5), 20)
        XCTAssertNil(health.tick(now: 0.5))
        XCTAssertEqual(health.state, .up)
        // One more lost: 3 of 11.
        _ = health.probeSent(now: 0.5)
        XCTAssertEqual(health.tick(now: 1.0), .lossy)
        XCTAssertEqual(health.state, .lossy)
    }

    func testLossIgnoresProbesYoungerThanTheirGraceTime() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 10), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        for _ in 0..<5 { _ = health.probeSent(now: 1.0) }
        // Grace is max(0.1, 2 * srtt + 4 * rttvar) = 0.125 s: at 1.05 the five are not counted yet.
        XCTAssertEqual(health.lossPercent(now: 1.05), 0)
        XCTAssertNil(health.tick(now: 1.05))
        XCTAssertEqual(health.lossPercent(now: 1.5), 500.0 / 6)
        XCTAssertEqual(health.tick(now: 1.5), .lossy)
    }

    func testLossyLeavesOnlyAtHalfTheTolerance() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 10), now: 0)
        let ids = probes(&health, 10)
        XCTAssertEqual(health.echoReceived(id: ids[0], sentAt: 0, now: 0.03125), .up)
        for id in ids[1..<7] { XCTAssertNil(health.echoReceived(id: id, sentAt: 0, now: 0.03125)) }
        XCTAssertEqual(health.tick(now: 0.5), .lossy)  // 3 of 10 = 30 %

        func answered(_ count: Int, at time: Double) {
            for _ in 0..<count { _ = roundTrip(&health, at: time, rtt: 0.03125) }
        }
        answered(10, at: 1.0)
        XCTAssertEqual(health.lossPercent(now: 2.0), 15)  // 3 of 20: below 20 but above 10
        XCTAssertNil(health.tick(now: 2.0))
        XCTAssertEqual(health.state, .lossy)

        answered(9, at: 2.0)
        XCTAssertEqual(health.lossPercent(now: 3.0), 300.0 / 29)  // 3 of 29: just above 10
        XCTAssertNil(health.tick(now: 3.0))
        XCTAssertEqual(health.state, .lossy)

        answered(1, at: 3.0)
        XCTAssertEqual(health.lossPercent(now: 4.0), 10)  // 3 of 30: half the tolerance
        XCTAssertEqual(health.tick(now: 4.0), .up)
    }

    func testLossToleranceOf100DisablesLossy() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 100, latency: 0, timeout: 10), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.03125), .up)
        for _ in 0..<20 { _ = health.probeSent(now: 0.0625) }
        XCTAssertEqual(health.lossPercent(now: 1.0), 2000.0 / 21)
        XCTAssertNil(health.tick(now: 1.0))
        XCTAssertEqual(health.state, .up)
    }

    // MARK: slow

    func testSlowEntersAboveLatencyToleranceAndLeavesBelow80Percent() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 100, latency: 0.1, timeout: 10), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 0.125), .slow)  // first echo: up, but srtt 0.125 > 0.1

        // srtt after n samples of 0.0625 = 0.0625 + 0.0625 * 0.875^n: below 0.1 from n = 4,
        // still above 0.08 (80 %) at n = 9, below it at n = 10.
        var expected = 0.125
        for n in 1...9 {
            XCTAssertNil(roundTrip(&health, at: Double(n), rtt: 0.0625), "sample \(n)")
            expected = 0.875 * expected + 0.125 * 0.0625
            XCTAssertEqual(health.srtt!, expected, accuracy: 1e-12)
            XCTAssertEqual(health.state, .slow, "sample \(n)")
            if n >= 4 { XCTAssertLessThan(health.srtt!, 0.1) }
        }
        XCTAssertGreaterThan(health.srtt!, 0.08)
        XCTAssertEqual(roundTrip(&health, at: 10, rtt: 0.0625), .up)
        XCTAssertLessThan(health.srtt!, 0.08)

        // One long sample pushes srtt above the tolerance again.
        XCTAssertEqual(roundTrip(&health, at: 11, rtt: 0.5), .slow)
    }

    func testLatencyToleranceOfZeroDisablesSlow() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0, timeout: 10), now: 0)
        XCTAssertEqual(roundTrip(&health, at: 0, rtt: 2.0), .up)
        XCTAssertEqual(health.srtt, 2.0)
        XCTAssertEqual(health.state, .up)
    }

    func testLossyTakesPrecedenceOverSlow() {
        var health = PathHealth(tolerances: Tolerances(lossPercent: 20, latency: 0.1, timeout: 10), now: 0)
        let ids = probes(&health, 4)
        XCTAssertEqual(health.echoReceived(id: ids[0], sentAt: 0, now: 0.25), .slow)
        XCTAssertEqual(health.tick(now: 2.0), .lossy)  // 3 of 4 lost, srtt still 0.25
    }
}
