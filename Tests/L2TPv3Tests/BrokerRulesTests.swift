import XCTest
@testable import L2TPv3

/// The broker's decisions that are pure arithmetic or bookkeeping (§3.5–3.7).
final class BrokerRulesTests: XCTestCase {
    func testBrokerMTURule() {
        XCTAssertEqual(TunnelMTU.initial, 1446)
        XCTAssertEqual(TunnelMTU.broker(measured: 1446, peer: nil), 1446)
        XCTAssertEqual(TunnelMTU.broker(measured: 1446, peer: 1400), 1400, "a client NTFY of 1400 lowers 1446 to 1400")
        XCTAssertEqual(TunnelMTU.broker(measured: 1500, peer: nil), 1446, "a fixed pmtu above 1446 is capped locally")
        XCTAssertEqual(TunnelMTU.broker(measured: 1000, peer: nil), 1280, "floored at 1280")
    }

    func testProberStopsAfterTheFirstAcknowledgedSizeOnACleanPath() {
        var prober = BrokerPMTUProber()
        XCTAssertEqual(prober.nextProbe(), 1500)
        XCTAssertEqual(BrokerPMTUProber.payload(forProbe: 1500), 1472)
        XCTAssertEqual(prober.acknowledged(payload: 1472), 1500)
        XCTAssertNil(prober.nextProbe(), "1500 acknowledged: nothing larger to try")
    }

    func testProberWalksDownFourTriesPerSizeAndEndsAnUnansweredRound() {
        var prober = BrokerPMTUProber()
        var sent: [Int] = []
        while let size = prober.nextProbe() { sent.append(size) }
        XCTAssertEqual(sent.count, 24, "an unanswered round ends after 24 probes instead of probing forever")
        XCTAssertEqual(Array(sent.prefix(5)), [1500, 1500, 1500, 1500, 1492])
        XCTAssertEqual(sent.last, 1334)
        prober.newRound()
        XCTAssertEqual(prober.nextProbe(), 1500)
    }

    func testProberOnALoweredPath() {
        var prober = BrokerPMTUProber()
        for _ in 0..<12 { _ = prober.nextProbe() }     // 1500, 1492, 1476 unanswered
        XCTAssertEqual(prober.nextProbe(), 1450)
        XCTAssertEqual(prober.acknowledged(payload: 1422), 1450)
        XCTAssertNil(prober.acknowledged(payload: 1372), "a smaller ACK does not lower the best")
        XCTAssertNil(prober.nextProbe(), "the next size (1450) is not above the best")
    }

    func testIDPoolHandsOutLowestFirstAndRetires() {
        var pool = TunnelIDPool(base: 100, count: 3)
        XCTAssertEqual(pool.take(), 100)
        XCTAssertEqual(pool.take(), 101)
        pool.give(100)
        XCTAssertEqual(pool.take(), 100, "a returned id is the lowest again")
        pool.retire(102)
        XCTAssertEqual(pool.take(), 102)   // taken before the kernel refused it
        pool.give(102)
        XCTAssertNil(pool.take(), "a retired id does not come back; the pool is empty")
        pool.give(999)
        XCTAssertNil(pool.take(), "ids outside the range are ignored")
        pool.give(101)
        pool.give(101)
        XCTAssertEqual(pool.available, 1, "giving twice does not duplicate")
    }

    func testGlobalRateLimit() {
        var limiter = ConnectionRateLimiter(minimumGap: 0.2, perIPCount: 0, perIPWindow: 0)
        XCTAssertEqual(limiter.check([10, 0, 0, 1], now: 10), .allowed)
        limiter.created(now: 10)
        XCTAssertEqual(limiter.check([10, 0, 0, 2], now: 10.1), .globalLimit)
        XCTAssertEqual(limiter.check([10, 0, 0, 2], now: 10.25), .allowed)
    }

    func testPerIPRateLimitAndPruning() {
        var limiter = ConnectionRateLimiter(minimumGap: 0, perIPCount: 2, perIPWindow: 10)
        let a: [UInt8] = [192, 0, 2, 1]
        XCTAssertEqual(limiter.check(a, now: 0), .allowed)
        XCTAssertEqual(limiter.check(a, now: 1), .allowed)
        XCTAssertEqual(limiter.check(a, now: 2), .perIPLimit)
        XCTAssertEqual(limiter.check([192, 0, 2, 2], now: 2), .allowed, "other addresses are not affected")
        XCTAssertEqual(limiter.check(a, now: 10.5), .allowed, "the oldest attempt aged out")
        _ = limiter.check([192, 0, 2, 3], now: 40)
        XCTAssertEqual(limiter.trackedAddresses, 1, "addresses whose attempts all aged out are forgotten")
    }
}
