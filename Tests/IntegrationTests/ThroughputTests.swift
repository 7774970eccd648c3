import XCTest

/// The engine's speed bar: single-stream TCP through the plain profile carries at
/// least 1 Gbit/s on a 2-core machine, measured next to raw veth in the same run.
final class ThroughputTests: LabTestCase {
    func testPlainTunnelCarriesAtLeastOneGigabit() throws {
        let hosts = try twoHosts()
        let (a, b) = try plainTunnel(hosts)
        let raw = try iperf(from: hosts.a, to: hosts.b, address: "10.201.1.2")
        let tunnel = try iperf(from: hosts.a, to: hosts.b, address: "10.99.0.2")
        print(String(format: "throughput: raw veth %.2f Gbit/s, plain tunnel %.2f Gbit/s, ratio %.3f",
                     raw / 1e9, tunnel / 1e9, tunnel / raw))
        XCTAssertGreaterThan(tunnel, 1e9, "the plain tunnel must carry at least 1 Gbit/s")
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
    }

    /// Receiver-side bits per second of a 4-second single-stream iperf3 run.
    func iperf(from client: String, to server: String, address: String) throws -> Double {
        // Not -D: a daemonizing child outlives its parent, which Process then never reaps.
        let daemon = try lab.spawn(server, ["iperf3", "-s", "-1", "-p", "5201"], name: "iperf3-server-\(address)")
        defer { daemon.stop(signal: SIGKILL) }
        try waitForListener(server, port: 5201)
        let output = try lab.exec(client, "iperf3", "-c", address, "-p", "5201", "-t", "4", "-J", timeout: 30).output
        guard let data = output.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let end = json["end"] as? [String: Any],
              let received = end["sum_received"] as? [String: Any],
              let bps = received["bits_per_second"] as? Double else {
            throw LabError("cannot read iperf3 output: \(output)")
        }
        return bps
    }
}
