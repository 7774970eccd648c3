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

    // MARK: expanding the 32 bits a record carries

    func testExpandBeforeAnyCounterIsTheLowHalf() {
        let window = ReplayWindow()
        XCTAssertEqual(window.expand(0), 0)
        XCTAssertEqual(window.expand(7), 7)
        XCTAssertEqual(window.expand(0xFFFF_FFFF), 0xFFFF_FFFF)
    }

    func testExpandPicksTheCounterNearestTheNewest() {
        let window = ReplayWindow()
        _ = window.accept(0x5_0000_0010)
        XCTAssertEqual(window.expand(0x0000_0011), 0x5_0000_0011, "just ahead")
        XCTAssertEqual(window.expand(0x0000_0001), 0x5_0000_0001, "just behind")
        XCTAssertEqual(window.expand(0xFFFF_FFF0), 0x4_FFFF_FFF0, "behind, across the 2^32 boundary")
        XCTAssertEqual(window.expand(0x8000_0010), 0x5_8000_0010, "2^31 ahead is still ahead")
        XCTAssertEqual(window.expand(0x8000_0011), 0x4_8000_0011, "beyond 2^31 ahead: behind instead")
    }

    func testExpandAcrossTheBoundaryGoingForward() {
        let window = ReplayWindow()
        _ = window.accept(0x2_FFFF_FFF0)
        XCTAssertEqual(window.expand(0x0000_0005), 0x3_0000_0005)
        XCTAssertEqual(window.expand(0xFFFF_FFFF), 0x2_FFFF_FFFF)
    }
}
