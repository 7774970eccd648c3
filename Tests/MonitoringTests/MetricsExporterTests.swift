import Prometheus
import XCTest
@testable import Framework
@testable import Monitoring

/// The Prometheus exposition built from status snapshots.
final class MetricsExporterTests: XCTestCase {
    typealias S = MonitoringSamples

    func render(_ exporter: MetricsExporter, _ status: TunnelStatus) -> [String] { MonitoringSamples.render(exporter, status) }
    func value(_ lines: [String], _ series: String) -> Double? { MonitoringSamples.value(lines, series) }

    func testLinksAndSessionsAreLabelledWithHelpAndType() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        let lines = render(exporter, S.status(paths: [S.path("fast"), S.path("slow", state: "lossy", srtt: 35, loss: 5)]))
        XCTAssertTrue(lines.contains("# HELP tunneld_link_srtt_seconds Smoothed round-trip time of the link's probes."), lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains("# TYPE tunneld_link_srtt_seconds gauge"))
        XCTAssertTrue(lines.contains("# TYPE tunneld_link_bytes_total counter"))
        XCTAssertEqual(value(lines, #"tunneld_link_srtt_seconds{session="hub",link="slow"}"#), 0.035)
        XCTAssertEqual(value(lines, #"tunneld_link_loss_ratio{session="hub",link="slow"}"#), 0.05)
        XCTAssertEqual(value(lines, #"tunneld_link_state{session="hub",link="slow",state="lossy"}"#), 1)
        XCTAssertEqual(value(lines, #"tunneld_link_state{session="hub",link="slow",state="up"}"#), 0)
        XCTAssertEqual(value(lines, #"tunneld_link_up{session="hub",link="slow"}"#), 1)
        XCTAssertEqual(value(lines, #"tunneld_link_quiet_spells_total{session="hub",link="slow"}"#), 1)
        XCTAssertEqual(value(lines, #"tunneld_link_bytes_total{session="hub",link="fast",direction="rx"}"#), 2000)
        XCTAssertEqual(value(lines, #"tunneld_session_drops_total{session="hub",reason="forged"}"#), 2)
        XCTAssertEqual(value(lines, #"tunneld_reorder_packets_total{session="hub",outcome="released_as_lost"}"#), 2)
        XCTAssertEqual(value(lines, #"tunneld_unclaimed_drops_total{reason="unclaimed"}"#), 3)
        XCTAssertEqual(value(lines, #"tunneld_socket_bytes_total{socket="fast",direction="tx"}"#), 10)
        // Label values from files and peers are escaped, not trusted.
        XCTAssertTrue(lines.contains { $0.hasPrefix(#"tunneld_info{version=""#) && $0.contains(#"site="/etc/tunneld/site \"a\".yaml""#) },
                      lines.joined(separator: "\n"))
    }

    func testCountersAdvanceByWhatTheDataPathCounted() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        _ = render(exporter, S.status(paths: [S.path("fast", tx: 1000)], sessionTx: 5000))
        let lines = render(exporter, S.status(paths: [S.path("fast", tx: 4500)], sessionTx: 9000))
        XCTAssertEqual(value(lines, #"tunneld_link_bytes_total{session="hub",link="fast",direction="tx"}"#), 4500)
        XCTAssertEqual(value(lines, #"tunneld_session_bytes_total{session="hub",direction="tx"}"#), 9000)
        // A new session under the same name counts again from its own start.
        let restarted = render(exporter, S.status(paths: [S.path("fast", tx: 300)], sessionTx: 100))
        XCTAssertEqual(value(restarted, #"tunneld_link_bytes_total{session="hub",link="fast",direction="tx"}"#), 300)
        XCTAssertEqual(value(restarted, #"tunneld_session_bytes_total{session="hub",direction="tx"}"#), 100)
    }

    func testPathsAndSessionsThatAreGoneLeaveTheExposition() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        let both = render(exporter, S.status(paths: [S.path("fast"), S.path("slow")], office: true))
        XCTAssertNotNil(value(both, #"tunneld_link_up{session="hub",link="slow"}"#))
        XCTAssertEqual(value(both, #"tunneld_session_up{session="office"}"#), 0)
        let one = render(exporter, S.status(paths: [S.path("fast")]))
        XCTAssertNil(value(one, #"tunneld_link_up{session="hub",link="slow"}"#))
        XCTAssertFalse(one.contains { $0.contains(#"session="office""#) })
        XCTAssertEqual(value(one, #"tunneld_link_up{session="hub",link="fast"}"#), 1)
        XCTAssertEqual(value(one, "tunneld_sessions"), 1)
    }

    func testAnRTTNotYetMeasuredIsLeftOutRatherThanZero() {
        let exporter = MetricsExporter(registry: PrometheusCollectorRegistry())
        let lines = render(exporter, S.status(paths: [S.path("fast", state: "down", srtt: nil)]))
        XCTAssertFalse(lines.contains { $0.hasPrefix("tunneld_link_srtt_seconds{") })
        XCTAssertEqual(value(lines, #"tunneld_link_up{session="hub",link="fast"}"#), 0)
    }
}
