import XCTest
@testable import Bonding
import Framework

final class BondingWireTests: XCTestCase {
    func testSequenceDistanceWrapsAt24Bits() {
        XCTAssertEqual(BondingWire.distance(5, from: 3), 2)
        XCTAssertEqual(BondingWire.distance(3, from: 5), -2)
        XCTAssertEqual(BondingWire.distance(1, from: 0xFF_FFFF), 2)
        XCTAssertEqual(BondingWire.distance(0xFF_FFFF, from: 1), -2)
        XCTAssertEqual(BondingWire.next(0xFF_FFFF), 0)
    }
}
