import Foundation
import Prometheus
import XCTest
// @testable: TunnelStatus and its parts have internal memberwise initialisers only.
@testable import Framework
@testable import Monitoring

/// What plugins report about their sessions and their manager (`details`,
/// `manager`): the lines of `tunneld status` and the metrics they become.
final class StatusDetailsTests: XCTestCase {
    // MARK: snake case

    func testSnakeCase() {
        XCTAssertEqual(StatusTable.snakeCase("peerTunnelId"), "peer_tunnel_id")
        XCTAssertEqual(StatusTable.snakeCase("tunnelId"), "tunnel_id")
        XCTAssertEqual(StatusTable.snakeCase("usage"), "usage")
        XCTAssertEqual(StatusTable.snakeCase("pathMtu"), "path_mtu")
        XCTAssertEqual(StatusTable.snakeCase("lastSeenSeconds"), "last_seen_seconds")
        XCTAssertEqual(StatusTable.snakeCase("Usage"), "usage", "no leading underscore")
        XCTAssertEqual(StatusTable.snakeCase("already_snake"), "already_snake")
        XCTAssertEqual(StatusTable.snakeCase(""), "")
    }

    // MARK: describe

    func testScalarsShareOneLineInTheOrderGiven() {
        let details = StatusValue.object([
            ("peerTunnelId", .uint(7)), ("uuid", .string("abc")), ("uniqueSessionIds", .bool(true)),
            ("ready", .bool(false)), ("gone", .null), ("lastSeenSeconds", .double(1.5)), ("delta", .int(-3)),
        ])
        XCTAssertEqual(StatusTable.describe(details),
                       ["peer tunnel id 7, uuid abc, unique session ids yes, ready no, last seen seconds 1.5, delta -3"])
    }

    func testArraysOfObjectsGiveOneLinePerItemPrefixedWithTheKey() {
        let details = StatusValue.object([
            ("brokers", .array([
                .object([("broker", .string("b1.example.net:8942")), ("state", .string("standby")), ("usage", .uint(40))]),
                .object([("broker", .string("b2.example.net:8942")), ("state", .string("failed")), ("usage", .null)]),
            ])),
            ("tunnels", .uint(2)),
        ])
        XCTAssertEqual(StatusTable.describe(details), [
            "tunnels 2",
            "brokers: broker b1.example.net:8942, state standby, usage 40",
            "brokers: broker b2.example.net:8942, state failed",
        ], "scalars first, then nested lines; a null usage is left out")
    }

    func testNestedObjectsArePrefixedWithTheirKey() {
        let details = StatusValue.object([("pmtuProbe", .object([("bestSize", .uint(1450)), ("round", .uint(3))]))])
        XCTAssertEqual(StatusTable.describe(details), ["pmtu probe: best size 1450, round 3"])
    }

    func testNothingToSay() {
        XCTAssertEqual(StatusTable.describe(.object([])), [])
        XCTAssertEqual(StatusTable.describe(.object([("gone", .null), ("alsoGone", .null)])), [], "only nulls: no empty line")
        XCTAssertEqual(StatusTable.describe(.uint(3)), [], "not an object")
        XCTAssertEqual(StatusTable.describe(.object([("empty", .array([]))])), [])
    }

    // MARK: the status table

    static let zero = TunnelStatus.Counters(txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, drops: [:])

    static func status(sessionDetails: StatusValue?, manager: StatusValue?) -> TunnelStatus {
        TunnelStatus(
            daemon: .init(version: TunnelStatus.version, pid: 7, profile: "l2tp-broker", site: "/etc/tunneld/broker.yaml",
                          started: 1000, uptimeSeconds: 60, lastReload: nil, reloads: 0),
            device: nil, tunnel: zero,
            sessions: [.init(id: 1, name: "l2tp100-100", peer: "192.0.2.9:40000", state: "up", since: 1000, dataPlane: "kernel",
                             device: "l2tp100-100", counters: zero, details: sessionDetails)],
            links: [.init(name: "td", local: "0.0.0.0:8942", remote: nil, counters: zero)],
            manager: manager)
    }

    func testRenderShowsSessionDetailsAndManagerDetails() {
        let status = Self.status(
            sessionDetails: .object([("tunnelId", .uint(100)), ("uuid", .string("abc")), ("mtu", .int(1446)),
                                     ("uniqueSessionIds", .bool(true))]),
            manager: .object([("usage", .uint(63)), ("maxTunnels", .uint(1024)), ("dataPlane", .string("kernel"))]))
        let lines = StatusTable.render(status, socket: "/run/tunneld/broker.sock").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 7, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[1].hasPrefix("  session l2tp100-100: up for "), lines[1])
        XCTAssertEqual(lines[2], "    tx 0 B in 0 packets, rx 0 B in 0 packets")
        XCTAssertEqual(lines[3], "    tunnel id 100, uuid abc, mtu 1446, unique session ids yes", "the session's details, below its traffic")
        XCTAssertEqual(lines[4], "  link td: 0.0.0.0:8942 → (learnt from the peer)")
        XCTAssertEqual(lines[5], "    tx 0 B in 0 packets, rx 0 B in 0 packets")
        XCTAssertEqual(lines[6], "  usage 63, max tunnels 1024, data plane kernel", "the manager's details, after the links")
    }

    func testRenderWithoutDetailsAddsNoLines() {
        let lines = StatusTable.render(Self.status(sessionDetails: nil, manager: nil), socket: "s").split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        let client = Self.status(sessionDetails: nil, manager: .object([("brokers", .array([
            .object([("broker", .string("b1.example.net:8942")), ("state", .string("keepalive")), ("usage", .uint(12))]),
        ]))]))
        XCTAssertEqual(StatusTable.render(client, socket: "s").split(separator: "\n").last.map(String.init),
                       "  brokers: broker b1.example.net:8942, state keepalive, usage 12")
    }

    func testTheTableReadsTheSameFromTheStatusSocketsJSON() throws {
        // `tunneld status` decodes the daemon's JSON (snake_case keys, sorted) before rendering.
        let status = Self.status(
            sessionDetails: .object([("tunnelId", .uint(100)), ("uuid", .string("abc")), ("mtu", .int(1446)),
                                     ("uniqueSessionIds", .bool(true)), ("gone", .null)]),
            manager: .object([("usage", .uint(63)), ("maxTunnels", .uint(1024))]))
        let decoded = try StatusJSON.decode(try StatusJSON.encode(status))
        let lines = StatusTable.render(decoded, socket: "s").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[3], "    mtu 1446, tunnel id 100, unique session ids yes, uuid abc", "keys sorted after the round trip")
        XCTAssertEqual(lines.last, "  max tunnels 1024, usage 63")
    }

    func testSnakeCaseSpellsKeysAsTheJSONDocumentDoes() throws {
        // The keys the l2tp plugins report: metric names and table words must match the JSON's.
        let keys = ["tunnelId", "sessionId", "peerTunnelId", "peerSessionId", "uuid", "client", "brokerPort", "interface",
                    "mtu", "pathMtu", "uniqueSessionIds", "lastSeenSeconds", "usage", "usageUniqueSessionIds",
                    "tunnels", "maxTunnels", "dataPlane", "broker", "state", "brokers", "pathMTU", "myURLValue", "ipv6Address"]
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        for key in keys {
            let data = try encoder.encode(StatusValue.object([(key, .null)]))
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(StatusTable.snakeCase(key), object.keys.first, key)
        }
    }

    // MARK: metrics

    func render(_ exporter: MetricsExporter, _ status: TunnelStatus) -> [String] { MonitoringSamples.render(exporter, status) }
    func value(_ lines: [String], _ series: String) -> Double? { MonitoringSamples.value(lines, series) }

    func testSessionDetailsBecomeAnInfoSeriesAndGauges() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        let status = Self.status(
            sessionDetails: .object([("tunnelId", .uint(100)), ("uuid", .string("abc")), ("mtu", .int(1446)),
                                     ("uniqueSessionIds", .bool(true)), ("gone", .null)]),
            manager: .object([("usage", .uint(63)), ("dataPlane", .string("kernel"))]))
        let lines = render(exporter, status)
        let text = lines.joined(separator: "\n")
        XCTAssertEqual(value(lines, #"tunneld_session_info{session="l2tp100-100",data_plane="kernel",tunnel_id="100",uuid="abc",unique_session_ids="true"}"#), 1, text)
        XCTAssertEqual(value(lines, #"tunneld_session_mtu{session="l2tp100-100"}"#), 1446, text)
        XCTAssertFalse(lines.contains { $0.hasPrefix("tunneld_session_tunnel_id") }, "an id is a label, not a value to graph")
        XCTAssertFalse(lines.contains { $0.contains("gone") }, "nulls are skipped")
        XCTAssertEqual(value(lines, "tunneld_manager_usage"), 63, text)
        XCTAssertTrue(lines.contains("# TYPE tunneld_manager_usage gauge"), text)
        XCTAssertFalse(lines.contains { $0.hasPrefix("tunneld_manager_data_plane") }, "text of the manager is not a gauge")
    }

    func testDetailsOfAGoneSessionLeaveTheExposition() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        _ = render(exporter, Self.status(sessionDetails: .object([("tunnelId", .uint(100)), ("mtu", .int(1446))]),
                                         manager: .object([("usage", .uint(63))])))
        let lines = render(exporter, Self.status(sessionDetails: nil, manager: .object([("usage", .uint(0))])))
        XCTAssertFalse(lines.contains { $0.hasPrefix("tunneld_session_info") || $0.hasPrefix("tunneld_session_mtu") },
                       lines.joined(separator: "\n"))
        XCTAssertEqual(value(lines, "tunneld_manager_usage"), 0, lines.joined(separator: "\n"))
    }
}
