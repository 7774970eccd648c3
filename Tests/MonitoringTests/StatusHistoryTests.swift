import XCTest
@testable import Framework
@testable import Monitoring

/// The live page's history: rates from byte totals, bounded length, paths that go.
final class StatusHistoryTests: XCTestCase {
    typealias S = MonitoringSamples

    func series(_ history: StatusHistory) throws -> [[String: Any]] {
        let data = try StatusJSON.encoder(pretty: false).encode(history)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["interval_seconds"] as? Double, history.intervalSeconds)
        XCTAssertEqual(object["taken_at"] as? Double, history.takenAt)
        return try XCTUnwrap(object["series"] as? [[String: Any]])
    }

    func testRatesComeFromByteDifferencesOverTime() throws {
        var history = StatusHistory(intervalSeconds: 1, windowSeconds: 300)
        history.record(S.status(paths: [S.path("fast", tx: 1000, rx: 0)], office: true), at: 100)
        history.record(S.status(paths: [S.path("fast", loss: 5, tx: 251_000, rx: 125_000)], office: true), at: 102)
        let all = try series(history)
        XCTAssertEqual(all.map { $0["link"] as? String }, ["fast", ""])
        XCTAssertEqual(all.map { $0["session"] as? String }, ["hub", "office"])
        let samples = try XCTUnwrap(all[0]["samples"] as? [[Any]])
        XCTAssertEqual(samples.count, 2)
        XCTAssertEqual(samples[0][1] as? Double, 0, "no rate before a second sample")
        XCTAssertEqual(samples[1][0] as? Double, 102)
        XCTAssertEqual(samples[1][1] as? Double, 1_000_000, "250 kB in 2 s is 1 Mbit/s")
        XCTAssertEqual(samples[1][2] as? Double, 500_000)
        XCTAssertEqual(samples[1][3] as? Double, 12.5)
        XCTAssertEqual(samples[1][4] as? Double, 5)
        let office = try XCTUnwrap(all[1]["samples"] as? [[Any]])
        XCTAssertTrue(office[1][3] is NSNull, "a session without paths has no RTT")
    }

    func testACounterThatGoesBackIsANewSessionNotANegativeRate() throws {
        var history = StatusHistory(intervalSeconds: 1, windowSeconds: 300)
        history.record(S.status(paths: [S.path("fast", tx: 90_000)]), at: 1)
        history.record(S.status(paths: [S.path("fast", tx: 1000)]), at: 2)
        let samples = try XCTUnwrap(try series(history)[0]["samples"] as? [[Any]])
        XCTAssertEqual(samples[1][1] as? Double, 0)
    }

    func testLengthIsBoundedByTheWindow() throws {
        var history = StatusHistory(intervalSeconds: 0.5, windowSeconds: 10)
        for tick in 0..<100 { history.record(S.status(paths: [S.path("fast")]), at: Double(tick) / 2) }
        let samples = try XCTUnwrap(try series(history)[0]["samples"] as? [[Any]])
        XCTAssertEqual(samples.count, 20)
        XCTAssertEqual(samples.last?[0] as? Double, 49.5)
    }

    func testAPathThatIsGoneStaysUntilItScrollsOut() throws {
        var history = StatusHistory(intervalSeconds: 1, windowSeconds: 10)
        history.record(S.status(paths: [S.path("fast"), S.path("slow")]), at: 0)
        history.record(S.status(paths: [S.path("fast")]), at: 5)
        XCTAssertEqual(try series(history).map { $0["link"] as? String }, ["fast", "slow"])
        history.record(S.status(paths: [S.path("fast")]), at: 11)
        XCTAssertEqual(try series(history).map { $0["link"] as? String }, ["fast"])
    }
}
