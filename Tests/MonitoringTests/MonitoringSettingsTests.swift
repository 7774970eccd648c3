import XCTest
@testable import Framework
@testable import Monitoring

/// The monitoring services as a site file configures them.
final class MonitoringSettingsTests: XCTestCase {
    func load(_ extra: String) throws -> TunnelSpec {
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(MonitoringPlugin.plugin)
        let stock = try StockProfiles.parse("""
            profiles:
              plain:
                summary: "test"
                sessions: static
                pipeline: { ingress: tun, reorder: none, encrypt: none, schedule: none, transport: udp, egress: tun }
            """, file: "plugins.yaml", registry: registry)
        return try ProfileLoader(registry: registry, stock: stock).load(siteText: """
            profile: plain
            device: { name: tun7, address: 10.99.0.1/30 }
            links: [{ name: wan1, bind: 127.0.0.1:5080, remote: 127.0.0.2:5080 }]
            \(extra)
            """, file: "site.yaml")
    }

    func services(_ extra: String) throws -> [String] {
        try load(extra).services.map(\.descriptor.name)
    }

    func testTheStatusSocketIsOnByDefaultAndHTTPOnlyWhenConfigured() throws {
        XCTAssertEqual(try services(""), ["status"])
        XCTAssertEqual(try services("status: off"), [])
        XCTAssertEqual(try services("http: { listen: \"127.0.0.1:9100\" }"), ["status", "http"])
        let http = try XCTUnwrap(try load("http: { listen: \"[::1]:9100\", interval: 250ms, history: 600 }").services.last)
        XCTAssertEqual(http.settings.endpoint("listen")?.description, "[::1]:9100")
        XCTAssertEqual(http.settings.integer("interval"), 250)
        XCTAssertEqual(http.settings.integer("history"), 600)
        XCTAssertEqual(http.settings.integer("max-connections"), 64)
    }

    func testBrokenHTTPSettingsNameTheirPlace() {
        assertError("site.yaml:4:7: 'http' requires the setting 'listen' (an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080): address:port to serve on, e.g. 127.0.0.1:9100 (the status is not secret, but keep it off untrusted networks)") { try self.load("http: { interval: 1s }") }
        assertError("site.yaml:4:17: 'listen' of 'http' must be an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080, found 'localhost'") {
            try self.load("http: { listen: localhost }")
        }
        assertError("site.yaml:4:42: 'interval' of 'http' must be a duration such as 250ms or 2s (100...60000 ms), found 5 ms") {
            try self.load("http: { listen: \"127.0.0.1:9\", interval: 5ms }")
        }
    }

    func assertError(_ expected: String, line: UInt = #line, _ body: () throws -> Any) {
        do {
            _ = try body()
            XCTFail("no error", line: line)
        } catch {
            XCTAssertEqual("\(error)", expected, line: line)
        }
    }
}
