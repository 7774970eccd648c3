import XCTest
@testable import Crypto

final class ReplayWindowTests: XCTestCase {
    func testInOrderThenReplay() {
        let window = ReplayWindow()
        for counter in UInt64(0)..<100 { XCTAssertEqual(window.accept(counter), .fresh) }
        XCTAssertEqual(window.accept(50), .replayed)
        XCTAssertEqual(window.accept(99), .replayed)
        XCTAssertEqual(window.accept(0), .replayed)
    }

    func testReorderingWithinTheWidthIsAccepted() {
        let window = ReplayWindow()
        XCTAssertGreaterThanOrEqual(ReplayWindow.width, 2048, "bonded links reorder by thousands of packets")
        // Every even counter first, then the odd ones, up to the full width.
        let top = UInt64(ReplayWindow.width) - 2
        for counter in stride(from: UInt64(0), through: top, by: 2) { XCTAssertEqual(window.accept(counter), .fresh) }
        for counter in stride(from: UInt64(1), through: top - 1, by: 2) { XCTAssertEqual(window.accept(counter), .fresh, "\(counter)") }
        for counter in stride(from: UInt64(1), through: top - 1, by: 97) { XCTAssertEqual(window.accept(counter), .replayed) }
    }

    func testCountersBehindTheWindowAreTooOld() {
        let window = ReplayWindow()
        XCTAssertEqual(window.accept(10_000), .fresh)
        let edge = UInt64(10_000 - ReplayWindow.width)
        XCTAssertEqual(window.check(edge), .tooOld)
        XCTAssertEqual(window.check(edge + 1), .fresh)
        XCTAssertEqual(window.accept(edge + 1), .fresh)
        XCTAssertEqual(window.accept(edge + 1), .replayed)
    }

    func testAJumpClearsStaleBits() {
        let window = ReplayWindow()
        for counter in UInt64(0)..<64 { _ = window.accept(counter) }
        // Jump far ahead: the block that held 0..<64 is reused for new counters.
        let far = UInt64(ReplayWindow.width) * 3
        XCTAssertEqual(window.accept(far), .fresh)
        XCTAssertEqual(window.accept(far - 10), .fresh)
        XCTAssertEqual(window.accept(far - 10), .replayed)
        XCTAssertEqual(window.accept(5), .tooOld)
        XCTAssertEqual(window.accept(far + 1), .fresh)
    }

    func testFirstCounterMayBeAnything() {
        let window = ReplayWindow()
        XCTAssertEqual(window.accept(UInt64.max - 1), .fresh)
        XCTAssertEqual(window.accept(UInt64.max - 1), .replayed)
        XCTAssertEqual(window.accept(UInt64.max), .fresh)
    }
}
