import XCTest
@testable import Bonding

/// How long the reorder buffer waits for a gap: the live paths' delay spread plus
/// their variation, never a probe interval.
final class HoldTimeTests: XCTestCase {
    private let limits = (minimum: 0.002, maximum: 0.3)

    /// Paths as (srtt, rttvar) in seconds.
    private func hold(_ paths: (Double, Double)...) -> Double? {
        BondingSession.holdTime(for: paths.map { (srtt: $0.0, rttvar: $0.1) }, limits: limits)
    }

    func testFastEqualLinksHoldOnlyTheMinimumAndTheirVariation() throws {
        // Two unlimited veths at 0.2 ms: the hold is a couple of milliseconds, not the
        // 52 ms (one probe interval) it used to be.
        let hold = try XCTUnwrap(hold((0.0002, 0.00005), (0.0002, 0.0001)))
        XCTAssertEqual(hold, 0.002 + 4 * 0.0001, accuracy: 1e-9)
    }

    func testSpreadOfUnequalLinksIsHeld() throws {
        // 10 and 40 ms one way: 20 and 80 ms round trips, 3 ms variation on the slow one.
        let hold = try XCTUnwrap(hold((0.020, 0.001), (0.080, 0.003)))
        XCTAssertEqual(hold, 0.060 + 0.012 + 0.002, accuracy: 1e-9)
    }

    func testHoldStaysWithinItsLimits() throws {
        XCTAssertEqual(hold((0.001, 0)), 0.002)
        XCTAssertEqual(hold((0.010, 0.2), (0.5, 0.1)), 0.3)
    }

    func testNoEstimateYetKeepsTheHoldAsItWas() {
        XCTAssertNil(hold())
    }
}
