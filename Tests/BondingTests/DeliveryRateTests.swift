import XCTest
@testable import Bonding
import Framework

// Receiver times step by 0.125 s so every rate below is an exact division.
final class DeliveryRateTests: XCTestCase {
    func testPriorIsTheEstimateUntilASampleIsTaken() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        XCTAssertEqual(rate.estimate, 1_000_000)
        rate.noteSent(500_000)
        rate.echo(receivedBytes: 0, at: 10.0, queued: false, now: 0.05)  // first echo: only a baseline
        XCTAssertEqual(rate.estimate, 1_000_000)
    }

    func testSampleIsBytesOverReceiverTimeOnceSpanReachesATenthOfASecond() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.noteSent(500_000)  // offered 2.5 MB/s over 0.2 s: not application-limited
        rate.echo(receivedBytes: 0, at: 10.0, queued: false, now: 0.05)
        // 0.0625 s after the baseline: too short, and the baseline stays.
        rate.echo(receivedBytes: 40_000, at: 10.0625, queued: false, now: 0.1)
        XCTAssertEqual(rate.estimate, 1_000_000)
        // 50 000 bytes in 0.125 s from the first baseline (not 10 000 from the ignored echo).
        rate.echo(receivedBytes: 50_000, at: 10.125, queued: false, now: 0.2)
        XCTAssertEqual(rate.estimate, 400_000)
    }

    func testSampleUsesReceiverClockNotSenderClock() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 1_000, at: 5.0, queued: false, now: 0)
        // The sender's clock moved 1 s, the receiver's 0.25 s: 100 000 / 0.25.
        rate.echo(receivedBytes: 101_000, at: 5.25, queued: false, now: 1.0)
        XCTAssertEqual(rate.estimate, 400_000)
    }

    func testSpanOfExactlyATenthOfASecondIsASample() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.echo(receivedBytes: 30_000, at: DeliveryRate.sampleSpan, queued: false, now: 0.1)
        XCTAssertEqual(rate.estimate, 30_000 / DeliveryRate.sampleSpan)
    }

    func testApplicationLimitedSampleCannotLowerTheEstimate() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.noteSent(1_000)  // offered 8 000 B/s, far below 90 % of the estimate
        rate.echo(receivedBytes: 50_000, at: 0.125, queued: false, now: 0.125)  // 400 000 B/s
        XCTAssertEqual(rate.estimate, 1_000_000)
    }

    func testApplicationLimitedSampleCanRaiseTheEstimate() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.noteSent(1_000)
        rate.echo(receivedBytes: 50_000, at: 0.125, queued: false, now: 0.125)  // limited, lower: ignored, new baseline
        rate.noteSent(1_000)
        rate.echo(receivedBytes: 237_500, at: 0.25, queued: false, now: 0.25)  // limited but 1 500 000 B/s
        XCTAssertEqual(rate.estimate, 1_500_000)
    }

    func testSampleBelowEstimateLowersItWhenSenderOfferedEnough() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.noteSent(125_000)  // offered 1 000 000 B/s over 0.125 s: not application-limited
        rate.echo(receivedBytes: 50_000, at: 0.125, queued: false, now: 0.125)
        XCTAssertEqual(rate.estimate, 400_000)
    }

    func testEstimateIsMaximumOfLastTenSamples() {
        var rate = DeliveryRate(prior: 600_000, now: 0)
        var bytes: UInt64 = 0
        var at = 0.0
        rate.echo(receivedBytes: bytes, at: at, queued: false, now: at)
        func sample(_ delta: UInt64) {
            rate.noteSent(10_000_000)  // never application-limited
            bytes += delta
            at += 0.125
            rate.echo(receivedBytes: bytes, at: at, queued: false, now: at)
        }
        sample(100_000)  // 800 000 B/s
        XCTAssertEqual(rate.estimate, 800_000)
        for n in 2...10 {
            sample(25_000)  // 200 000 B/s
            XCTAssertEqual(rate.estimate, 800_000, "sample \(n)")
        }
        sample(25_000)  // the 11th sample pushes the 800 000 out of the window
        XCTAssertEqual(rate.estimate, 200_000)
    }

    func testEstimateNeverFallsBelowFloor() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 125, at: 0.125, queued: false, now: 0.125)  // 1 000 B/s
        XCTAssertEqual(rate.estimate, DeliveryRate.floor)
        XCTAssertEqual(DeliveryRate.floor, 125_000)
    }

    func testByteCounterGoingBackwardsResetsTheBaseline() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 5_000_000, at: 1.0, queued: false, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 1_000, at: 1.125, queued: false, now: 0.125)  // the peer restarted its count
        XCTAssertEqual(rate.estimate, 1_000_000)
        rate.echo(receivedBytes: 51_000, at: 1.25, queued: false, now: 0.25)  // 50 000 in 0.125 s from the new baseline
        XCTAssertEqual(rate.estimate, 400_000)
    }

    func testReceiverClockGoingBackwardsResetsTheBaseline() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 100.0, queued: false, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 10_000, at: 2.0, queued: false, now: 0.125)  // earlier than the baseline
        XCTAssertEqual(rate.estimate, 1_000_000)
        rate.echo(receivedBytes: 60_000, at: 2.125, queued: false, now: 0.25)
        XCTAssertEqual(rate.estimate, 400_000)
    }

    // MARK: queued samples and growth

    /// One sample over 0.125 s: `sent` bytes offered, `received` delivered, the path
    /// queued (or not) at the span's start and end.
    private func afterOneSpan(prior: Double, queued: (start: Bool, end: Bool), sent: Int, received: UInt64) -> DeliveryRate {
        var rate = DeliveryRate(prior: prior, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: queued.start, now: 0)
        rate.noteSent(sent)
        rate.echo(receivedBytes: received, at: 0.125, queued: queued.end, now: 0.125)
        return rate
    }

    func testOneSampleRaisesTheEstimateByHalfAtMost() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: true, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 1_000_000, at: 0.125, queued: true, now: 0.125)  // 8 000 000 B/s
        XCTAssertEqual(rate.estimate, 1_500_000)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 2_000_000, at: 0.25, queued: true, now: 0.25)
        XCTAssertEqual(rate.estimate, 2_250_000)
        XCTAssertFalse(rate.confirmed, "a sample cut short by the growth limit is a lower bound, not the link's rate")
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 2_375_000, at: 0.375, queued: true, now: 0.375)  // 3 000 000 B/s: within 1.5 × 2 250 000
        XCTAssertTrue(rate.confirmed)
        XCTAssertEqual(rate.estimate, 3_000_000, "the only measured sample at a queue")
    }

    func testASpanThatStartedQueuedOutranksLargerIdleSamples() {
        // A token bucket lets a burst through an idle path: 1 500 000 B/s measured on a
        // path that does 1 000 000. Once a span starts with a queue, its sample rules.
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: false, now: 0)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 187_500, at: 0.125, queued: true, now: 0.125)  // idle start: 1 500 000
        XCTAssertEqual(rate.estimate, 1_500_000)
        rate.noteSent(10_000_000)
        rate.echo(receivedBytes: 312_500, at: 0.25, queued: true, now: 0.25)  // queued start: 1 000 000
        XCTAssertEqual(rate.estimate, 1_000_000)
    }

    func testQueuedButApplicationLimitedSampleCannotLowerTheEstimate() {
        // Other traffic filled the uplink while this side sent only probes: the queue
        // was someone else's, and the path has not become slower for the tunnel.
        let rate = afterOneSpan(prior: 1_000_000, queued: (true, true), sent: 1_000, received: 1_000)
        XCTAssertEqual(rate.estimate, 1_000_000)
    }

    func testQueuedSpanLowersAnEstimateAboveTheLinkThoughLessThanNinetyPercentWasOffered() {
        // The estimate is 1 250 000 B/s on a link that does 1 000 000; the scheduler
        // offered the link what TCP sent, 1 040 000 B/s (83 % of the estimate), and the
        // path was queued all along: the link, not the sender, set what came through.
        let rate = afterOneSpan(prior: 1_250_000, queued: (true, true), sent: 130_000, received: 125_000)
        XCTAssertEqual(rate.estimate, 1_000_000)
        XCTAssertTrue(rate.confirmed)
    }

    func testQueuedSpanWithLessThanHalfOfferedCannotLowerTheEstimate() {
        // 480 000 B/s offered: under half of the estimate.
        let rate = afterOneSpan(prior: 1_000_000, queued: (true, true), sent: 60_000, received: 60_000)
        XCTAssertEqual(rate.estimate, 1_000_000)
        XCTAssertFalse(rate.confirmed)
    }

    func testARaiseCutShortByTheGrowthLimitStillRaisesAQueuedEstimate() {
        var rate = DeliveryRate(prior: 1_000_000, now: 0)
        rate.echo(receivedBytes: 0, at: 0, queued: true, now: 0)
        rate.noteSent(200_000)
        rate.echo(receivedBytes: 125_000, at: 0.125, queued: true, now: 0.125)  // measured at a queue: 1 000 000
        XCTAssertTrue(rate.confirmed)
        rate.noteSent(400_000)
        rate.echo(receivedBytes: 375_000, at: 0.25, queued: true, now: 0.25)  // 2 000 000, cut to 1 500 000
        XCTAssertEqual(rate.estimate, 1_500_000)
        rate.noteSent(400_000)
        rate.echo(receivedBytes: 625_000, at: 0.375, queued: true, now: 0.375)  // 2 000 000: measured now
        XCTAssertEqual(rate.estimate, 2_000_000)
    }

    func testSpanQueuedAtOneEndOnlyNeedsNinetyPercentOffered() {
        let rate = afterOneSpan(prior: 1_250_000, queued: (false, true), sent: 130_000, received: 125_000)
        XCTAssertEqual(rate.estimate, 1_250_000)
        XCTAssertFalse(rate.confirmed)
    }
}
