import XCTest
@testable import Bonding
import Framework

final class OneWayDelayTests: XCTestCase {
    func testBaseAndQueueWithAClockOffset() {
        // The far clock is 1000 s ahead: every sample is 1000 s plus the real delay.
        var delay = OneWayDelay()
        XCTAssertNil(delay.base)
        XCTAssertEqual(delay.queue, 0)
        delay.sample(sentAt: 10.0, arrivedAt: 1010.02, now: 10.04)
        XCTAssertEqual(delay.base!, 1000.02, accuracy: 1e-9)
        XCTAssertEqual(delay.queue, 0, accuracy: 1e-9)
        delay.sample(sentAt: 10.05, arrivedAt: 1010.085, now: 10.1)  // 15 ms behind a queue
        XCTAssertEqual(delay.base!, 1000.02, accuracy: 1e-9)
        XCTAssertEqual(delay.queue, 0.015, accuracy: 1e-9)
        delay.sample(sentAt: 10.1, arrivedAt: 1010.119, now: 10.15)  // lower: the new base
        XCTAssertEqual(delay.base!, 1000.019, accuracy: 1e-9)
        XCTAssertEqual(delay.queue, 0, accuracy: 1e-9)
    }

    func testTwoPathsBasesDifferByTheirTrueDelayDifference() {
        var short = OneWayDelay(), long = OneWayDelay()
        short.sample(sentAt: 5, arrivedAt: 77.010, now: 5.02)  // offset 72 s, 10 ms
        long.sample(sentAt: 5, arrivedAt: 77.040, now: 5.08)   // the same offset, 40 ms
        XCTAssertEqual(long.base! - short.base!, 0.03, accuracy: 1e-9)
    }

    func testAnOldMinimumAgesOutWithinTwoBuckets() {
        var delay = OneWayDelay()
        delay.sample(sentAt: 0, arrivedAt: 0.010, now: 0)  // a route of 10 ms, then a longer one
        for step in 1...20 {
            let t = Double(step) * 0.5
            delay.sample(sentAt: t, arrivedAt: t + 0.030, now: t)
            if t < OneWayDelay.bucketSpan { XCTAssertEqual(delay.base!, 0.010, accuracy: 1e-9, "at \(t)") }
        }
        // At 10 s the 10 ms sample is two bucket spans old: the base is the new route.
        XCTAssertEqual(delay.base!, 0.030, accuracy: 1e-9)
    }

    func testASilentGapForgetsBothBuckets() {
        var delay = OneWayDelay()
        delay.sample(sentAt: 0, arrivedAt: 0.010, now: 0)
        delay.sample(sentAt: 30, arrivedAt: 30.050, now: 30)  // 30 s later: nothing old is kept
        XCTAssertEqual(delay.base!, 0.050, accuracy: 1e-9)
    }
}
