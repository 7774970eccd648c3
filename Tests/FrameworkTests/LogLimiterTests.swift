import XCTest
@testable import Framework

final class LogLimiterTests: XCTestCase {
    func testOneLinePerIntervalAndTheHeldCountInTheNext() {
        var limiter = LogLimiter(interval: 5)
        XCTAssertEqual(limiter.admit(now: 100), 0, "the first line goes out")
        XCTAssertNil(limiter.admit(now: 100.1))
        XCTAssertNil(limiter.admit(now: 104.9))
        XCTAssertEqual(limiter.admit(now: 105), 2, "one interval later, with the two held back")
        XCTAssertNil(limiter.admit(now: 106))
        XCTAssertEqual(limiter.admit(now: 200), 1)
        XCTAssertEqual(limiter.admit(now: 300), 0)
    }

    func testHeldNote() {
        XCTAssertEqual(LogLimiter.heldNote(0), "")
        XCTAssertEqual(LogLimiter.heldNote(3), " (and 3 more since the last such line)")
    }
}
