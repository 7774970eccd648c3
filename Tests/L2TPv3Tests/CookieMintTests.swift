import Framework
import XCTest
@testable import L2TPv3

/// A clock the test moves by hand (tests are single-threaded, hence unchecked).
final class ManualClock: @unchecked Sendable {
    var seconds: Double
    init(_ seconds: Double) { self.seconds = seconds }
    var function: @Sendable () -> Double { { self.seconds } }
}

final class CookieMintTests: XCTestCase {
    static let secret = [UInt8](0..<32)
    let client = SocketAddress.parse("192.0.2.10:40000")!

    /// A mint whose epoch is tick 0 at `start` seconds, with the fixed secret.
    func makeMint(start: Double = 0) -> (CookieMint, ManualClock) {
        let clock = ManualClock(start)
        return (CookieMint(secret: Self.secret, clock: clock.function), clock)
    }

    func at(tick: Int, _ clock: ManualClock, start: Double = 0) {
        clock.seconds = start + Double(tick) * 64
    }

    /// Pins the MAC input encoding: HMAC-SHA256(secret 00…1f,
    /// 04 | c0 00 02 0a | 9c 40 | 00 05) = a0 d4 9a ac fb df …, computed independently.
    func testIssuedCookieMatchesTheDocumentedEncoding() {
        let (mint, clock) = makeMint()
        at(tick: 5, clock)
        XCTAssertEqual(mint.tick, 5)
        XCTAssertEqual(mint.issue(for: client).bytes, hex("00 05 a0 d4 9a ac fb df"))
    }

    func testIPv6ClientEncoding() {
        // 06 | 2001:db8::1 | 0f a0 | 00 00 → 52 2d 3e b6 e6 89 …
        let (mint, _) = makeMint()
        let v6 = SocketAddress.parse("[2001:db8::1]:4000")!
        let cookie = mint.issue(for: v6)
        XCTAssertEqual(cookie.bytes, hex("00 00 52 2d 3e b6 e6 89"))
        XCTAssertTrue(mint.verify(cookie, from: v6))
        XCTAssertFalse(mint.verify(cookie, from: SocketAddress.parse("[2001:db8::2]:4000")!))
        XCTAssertFalse(mint.verify(cookie, from: SocketAddress.parse("[2001:db8::1]:4001")!))
        XCTAssertFalse(mint.verify(cookie, from: client))
    }

    func testTicksAreAlignedTo64SecondsOfWallClock() {
        let start = 64.0 * 26_000_000 + 63.5  // half a second before a tick boundary
        let (mint, clock) = makeMint(start: start)
        XCTAssertEqual(mint.tick, 0)
        clock.seconds = start + 0.4
        XCTAssertEqual(mint.tick, 0)
        clock.seconds = start + 0.5
        XCTAssertEqual(mint.tick, 1)
        clock.seconds = start + 0.5 + 64 * 65535
        XCTAssertEqual(mint.tick, 0)  // mod 65536
        clock.seconds = start - 64
        XCTAssertEqual(mint.tick, 65535)  // a clock stepping back wraps, no trap
        clock.seconds = .nan
        _ = mint.tick
        clock.seconds = .infinity
        _ = mint.tick
        clock.seconds = 1e300
        _ = mint.tick
    }

    /// The reference's §6.3 check, with our MAC: issued at tick 5, accepted at 3…7,
    /// dropped at 2 and 8.
    func testAcceptedWithinTwoTicksEitherWay() {
        let (mint, clock) = makeMint()
        at(tick: 5, clock)
        let cookie = mint.issue(for: client)
        XCTAssertEqual(cookie.timestamp, 5)
        for tick in 0...10 {
            at(tick: tick, clock)
            XCTAssertEqual(mint.verify(cookie, from: client), (3...7).contains(tick), "tick \(tick)")
        }
        // The end of tick 7 is still inside; the start of tick 8 is not.
        clock.seconds = 8 * 64 - 0.001
        XCTAssertTrue(mint.verify(cookie, from: client))
        clock.seconds = 8 * 64
        XCTAssertFalse(mint.verify(cookie, from: client))
    }

    func testBoundToAddressAndPort() {
        let (mint, _) = makeMint()
        let cookie = mint.issue(for: client)
        XCTAssertTrue(mint.verify(cookie, from: client))
        XCTAssertFalse(mint.verify(cookie, from: SocketAddress.parse("192.0.2.11:40000")!))
        XCTAssertFalse(mint.verify(cookie, from: SocketAddress.parse("192.0.2.10:40001")!))
        XCTAssertNotEqual(mint.issue(for: SocketAddress.parse("192.0.2.11:40000")!), cookie)
        // An IPv4-mapped IPv6 address is a different source.
        XCTAssertFalse(mint.verify(cookie, from: SocketAddress.parse("[::ffff:192.0.2.10]:40000")!))
    }

    func testEveryFlippedBitIsRejected() {
        let (mint, clock) = makeMint()
        at(tick: 5, clock)
        let cookie = mint.issue(for: client)
        XCTAssertTrue(mint.verify(cookie, from: client))
        // Every MAC bit, and every timestamp bit (even 5 → 4 or 7, inside the window).
        for bit in 0..<64 {
            let flipped = Cookie(value: cookie.value ^ (1 << UInt64(bit)))
            XCTAssertFalse(mint.verify(flipped, from: client), "bit \(bit)")
        }
    }

    func testTickWrapIsHandled() {
        let (mint, clock) = makeMint()
        at(tick: 65535, clock)
        let late = mint.issue(for: client)
        XCTAssertEqual(late.timestamp, 65535)
        at(tick: 65536 + 1, clock)
        XCTAssertEqual(mint.tick, 1)
        XCTAssertTrue(mint.verify(late, from: client))
        at(tick: 65536 + 2, clock)
        XCTAssertFalse(mint.verify(late, from: client))

        // And from the other side: a cookie stamped 1 seen at tick 65535.
        at(tick: 65536 + 1, clock)
        let early = mint.issue(for: client)
        XCTAssertEqual(early.timestamp, 1)
        at(tick: 65535, clock)
        XCTAssertTrue(mint.verify(early, from: client))
        at(tick: 65534, clock)
        XCTAssertFalse(mint.verify(early, from: client))
    }

    func testSecretsAreIndependent() {
        let (mint, _) = makeMint()
        let other = CookieMint(secret: [UInt8](repeating: 7, count: 32), clock: { 0 })
        let cookie = mint.issue(for: client)
        XCTAssertFalse(other.verify(cookie, from: client))
        // The default secret is random per mint.
        let a = CookieMint(clock: { 0 })
        let b = CookieMint(clock: { 0 })
        XCTAssertNotEqual(a.issue(for: client), b.issue(for: client))
        XCTAssertTrue(a.verify(a.issue(for: client), from: client))
        XCTAssertFalse(b.verify(a.issue(for: client), from: client))
    }

    func testAnySecretLength() {
        let short = CookieMint(secret: [1, 2, 3], clock: { 0 })
        let long = CookieMint(secret: [UInt8](repeating: 9, count: 100), clock: { 0 })
        XCTAssertTrue(short.verify(short.issue(for: client), from: client))
        XCTAssertTrue(long.verify(long.issue(for: client), from: client))
        XCTAssertFalse(long.verify(short.issue(for: client), from: client))
    }

    func testWallClockIsUnixTime() {
        let now = CookieMint.wallClock()
        XCTAssertGreaterThan(now, 1_700_000_000)  // after 2023
        XCTAssertLessThan(now, 4_000_000_000)
    }
}
