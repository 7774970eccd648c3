import XCTest
@testable import Framework
@testable import Monitoring

final class StatusFormatTests: XCTestCase {
    let sample = TunnelStatus(
        daemon: .init(version: "0.4.0", pid: 42, profile: "p2p", site: "/etc/tunneld/site.yaml", started: 1000, uptimeSeconds: 3725, lastReload: nil, reloads: 0),
        device: .init(name: "tun0", kind: "tun", mtu: 1400,
                      counters: .init(txPackets: 3, txBytes: 2048, rxPackets: 2, rxBytes: 100, drops: [:])),
        tunnel: .init(txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, drops: ["handshake_bad_mac": 2]),
        sessions: [.init(id: 1, name: "peer", peer: "192.0.2.2:5080", state: "up", since: 1000, dataPlane: "userspace",
                         counters: .init(txPackets: 3, txBytes: 3 * 1024 * 1024, rxPackets: 2, rxBytes: 100, drops: ["no_key": 1, "forged": 4]))],
        links: [.init(name: "wan1", local: "192.0.2.1:5080", remote: nil,
                      counters: .init(txPackets: 4, txBytes: 500, rxPackets: 3, rxBytes: 400, drops: [:]))])

    func testJSONUsesSnakeCaseAndRoundTrips() throws {
        let data = try StatusJSON.encode(sample)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["daemon", "device", "tunnel", "sessions", "links"])
        let daemon = try XCTUnwrap(object["daemon"] as? [String: Any])
        XCTAssertEqual(daemon["uptime_seconds"] as? Double, 3725)
        let session = try XCTUnwrap((object["sessions"] as? [[String: Any]])?.first)
        XCTAssertEqual(session["data_plane"] as? String, "userspace")
        XCTAssertEqual((session["counters"] as? [String: Any])?["tx_bytes"] as? Int, 3 * 1024 * 1024)
        XCTAssertEqual(try StatusJSON.decode(data), sample)
    }

    func testTable() {
        let table = StatusTable.render(sample, socket: "/run/tunneld/site.sock")
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "tunnel /etc/tunneld/site.yaml  (profile p2p, pid 42, up 1h 2m 5s, tunneld 0.4.0, /run/tunneld/site.sock)")
        XCTAssertEqual(lines[1], "  device tun0 (tun, mtu 1400)  tx 2.0 KiB in 3 packets, rx 100 B in 2 packets")
        XCTAssertTrue(lines[2].hasPrefix("  session peer: up for "), lines[2])
        XCTAssertTrue(lines[2].hasSuffix(", peer 192.0.2.2:5080, userspace"), lines[2])
        XCTAssertEqual(lines[3], "    tx 3.0 MiB in 3 packets, rx 100 B in 2 packets; dropped forged=4 no_key=1")
        XCTAssertEqual(lines[4], "  link wan1: 192.0.2.1:5080 → (learnt from the peer)")
        XCTAssertEqual(lines[6], "  before any session: handshake_bad_mac=2")
    }

    func testBondedSessionsShowOneAlignedRowPerLink() {
        let status = MonitoringSamples.status(paths: [MonitoringSamples.path("fast"),
                                                      MonitoringSamples.path("slow", state: "down", srtt: nil, loss: 100, disconnects: 2)])
        let lines = StatusTable.render(status, socket: "s").split(separator: "\n").map(String.init)
        let header = try! XCTUnwrap(lines.firstIndex { $0.hasPrefix("    LINK") })
        XCTAssertEqual(lines[header], "    LINK  STATE  LOCAL → REMOTE                  SRTT         LOSS   RATE         TX      RX       DOWNS  LAST RX")
        XCTAssertEqual(lines[header + 1], "    fast  up     10.0.0.2:5081 → 192.0.2.1:5080  12.5±1.2 ms  0 %    40.0 Mbit/s  1000 B  2.0 KiB  0      0.1 s")
        XCTAssertEqual(lines[header + 2], "    slow  down   10.0.0.2:5081 → 192.0.2.1:5080  -            100 %  40.0 Mbit/s  1000 B  2.0 KiB  2      0.1 s")
        XCTAssertTrue(lines[0].contains("reloaded "), lines[0])
        XCTAssertTrue(lines.contains { $0.hasPrefix("    reorder: 10 in order, 4 held (1 now, wait 25.0 ms)") })
    }

    func testDurationsAndSizes() {
        XCTAssertEqual(StatusTable.duration(59.9), "59s")
        XCTAssertEqual(StatusTable.duration(61), "1m 1s")
        XCTAssertEqual(StatusTable.duration(86_400), "24h 0m 0s")
        XCTAssertEqual(StatusTable.bytes(1023), "1023 B")
        XCTAssertEqual(StatusTable.bytes(1536), "1.5 KiB")
        XCTAssertEqual(StatusTable.bytes(5 << 40), "5.0 TiB")
    }

    func testDefaultSocketPath() {
        XCTAssertEqual(StatusSocketService.defaultPath(site: "/etc/tunneld/site-a.yaml"), "/run/tunneld/site-a.sock")
        XCTAssertEqual(StatusSocketService.defaultPath(site: "hub.yml"), "/run/tunneld/hub.sock")
        XCTAssertEqual(StatusSocketService.defaultPath(site: "conf"), "/run/tunneld/conf.sock")
    }
}
