import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import XCTest
@testable import Framework
@testable import Monitoring

/// The HTTP side without a network: routes, and the connection guard's limits on an
/// embedded channel whose clock the test moves.
final class HTTPHandlerTests: XCTestCase {
    typealias S = MonitoringSamples

    func handler() -> HTTPStatusHandler {
        let snapshots = StatusSnapshots(first: S.status(paths: [S.path("fast")]), at: 1000, intervalMilliseconds: 1000, windowSeconds: 300)
        return HTTPStatusHandler(content: .init(snapshots: snapshots, metrics: MetricsExporter(registry: PrometheusCollectorRegistry())))
    }

    func get(_ uri: String, method: HTTPMethod = .GET) -> (HTTPResponseStatus, String, String) {
        let (status, type, body) = handler().answer(HTTPRequestHead(version: .http1_1, method: method, uri: uri))
        return (status, type, String(decoding: body, as: UTF8.self))
    }

    func testRoutes() throws {
        let (pageStatus, pageType, page) = get("/")
        XCTAssertEqual(pageStatus, .ok)
        XCTAssertEqual(pageType, "text/html; charset=utf-8")
        XCTAssertTrue(page.hasPrefix("<!doctype html>"), String(page.prefix(40)))
        // Self-contained: nothing fetched from anywhere but this server, by relative URLs.
        for external in ["http://", "https://", "src=\"/", "href=\"/", "@import", "url("] {
            XCTAssertFalse(page.contains(external), "the page refers to '\(external)'")
        }
        let (statusCode, statusType, json) = get("/status?pretty=1")
        XCTAssertEqual(statusCode, .ok)
        XCTAssertEqual(statusType, "application/json")
        XCTAssertEqual(try StatusJSON.decode(Data(json.utf8)).sessions.first?.multipath?.paths.first?.name, "fast")
        let (_, historyType, history) = get("/history")
        XCTAssertEqual(historyType, "application/json")
        XCTAssertTrue(history.contains(#""series":[{"link":"fast""#), history)
        let (metricsCode, metricsType, metrics) = get("/metrics")
        XCTAssertEqual(metricsCode, .ok)
        XCTAssertEqual(metricsType, "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertTrue(metrics.contains(#"tunneld_link_up{session="hub",link="fast"} 1"#), metrics)
        XCTAssertEqual(get("/nope").0, .notFound)
        XCTAssertEqual(get("/../etc/passwd").0, .notFound)
        XCTAssertEqual(get("/status", method: .POST).0, .methodNotAllowed)
        XCTAssertEqual(get("/status", method: .HEAD).0, .ok)
    }

    func testEachDocumentIsRenderedOncePerSnapshot() {
        let snapshots = StatusSnapshots(first: S.status(paths: [S.path("fast")]), at: 1000, intervalMilliseconds: 1000, windowSeconds: 300)
        var renders = 0
        let render = { (snapshot: StatusSnapshots.Snapshot) -> [UInt8]? in
            renders += 1
            return Array("generation \(snapshot.generation)".utf8)
        }
        XCTAssertEqual(snapshots.rendered("status", render), Array("generation 0".utf8))
        XCTAssertEqual(snapshots.rendered("status", render), Array("generation 0".utf8))
        XCTAssertEqual(renders, 1, "the second client is served the first one's bytes")
        _ = snapshots.rendered("history", render)
        XCTAssertEqual(renders, 2, "each document has its own entry")
        snapshots.publish(S.status(paths: [S.path("fast", tx: 9000)]), at: 1001)
        XCTAssertEqual(snapshots.rendered("status", render), Array("generation 1".utf8))
        XCTAssertEqual(renders, 3)
    }

    func connectedGuard(_ limits: HTTPConnectionGuard.Limits) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: HTTPConnectionGuard(limits: limits))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    func testOversizedRequestsAreAnswered431AndClosed() throws {
        let limits = HTTPConnectionGuard.Limits(maxConnections: 4, maxRequestBytes: 64, deadline: .seconds(5))
        let channel = try connectedGuard(limits)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        XCTAssertNotNil(try channel.readInbound(as: ByteBuffer.self), "a small request passes")
        try channel.writeInbound(ByteBuffer(string: "X-Filler: " + String(repeating: "a", count: 60) + "\r\n"))
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self), "the bytes over the limit go no further")
        let answer = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertTrue(String(buffer: answer).hasPrefix("HTTP/1.1 431 "))
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(limits.refused.withLockedValue { $0 }, ["too_large": 1])
        XCTAssertEqual(limits.open.withLockedValue { $0 }, 0)
    }

    func testASlowClientIsCutAtTheDeadline() throws {
        let limits = HTTPConnectionGuard.Limits(maxConnections: 4, maxRequestBytes: 16384, deadline: .seconds(5))
        let channel = try connectedGuard(limits)
        for _ in 0..<4 {
            try channel.writeInbound(ByteBuffer(string: "G"))  // one byte now and then: slowloris
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(limits.refused.withLockedValue { $0 }, ["deadline": 1])
        XCTAssertEqual(limits.open.withLockedValue { $0 }, 0)
    }

    func testConnectionsOverTheLimitAreClosedAtOnce() throws {
        let limits = HTTPConnectionGuard.Limits(maxConnections: 2, maxRequestBytes: 16384, deadline: .seconds(5))
        let first = try connectedGuard(limits), second = try connectedGuard(limits)
        let third = try connectedGuard(limits)
        third.embeddedEventLoop.run()
        XCTAssertFalse(third.isActive)
        XCTAssertTrue(first.isActive && second.isActive)
        XCTAssertEqual(limits.refused.withLockedValue { $0 }, ["too_many_connections": 1])
        try first.close().wait()
        XCTAssertEqual(limits.open.withLockedValue { $0 }, 1, "a closed connection frees its place")
        let fourth = try connectedGuard(limits)
        XCTAssertTrue(fourth.isActive)
        _ = try? second.finish()
        _ = try? fourth.finish()
    }
}
