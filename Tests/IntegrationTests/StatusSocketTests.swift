import XCTest

/// The status socket of a running tunnel: `tunneld status` as a table and as JSON,
/// the socket's mode, a stalled client, a second daemon on the same socket, cleanup.
final class StatusSocketTests: LabTestCase {
    func testStatusOfARunningTunnel() throws {
        let hosts = try twoHosts()
        let socketA = lab.directory.appendingPathComponent("a.sock").path
        let socketB = lab.directory.appendingPathComponent("b.sock").path
        let (a, b) = try plainTunnel(hosts, extraA: "status: { socket: \(socketA) }", extraB: "status: { socket: \(socketB) }")
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)

        let mode = try FileManager.default.attributesOfItem(atPath: socketA)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)

        // A client that connects and never reads must not hold the tunnel up.
        let stalled = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketA.utf8) + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(stalled, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(connected, 0)
        defer { close(stalled) }
        let again = try lab.exec(hosts.a, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(again.output.contains("2 received"), again.output)

        let json = try lab.run(Lab.binary, "status", socketA, "--json").output
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
        let daemon = try XCTUnwrap(object["daemon"] as? [String: Any])
        XCTAssertEqual(daemon["profile"] as? String, "plain")
        XCTAssertEqual(daemon["pid"] as? Int, Int(a.process.processIdentifier))
        let session = try XCTUnwrap((object["sessions"] as? [[String: Any]])?.first)
        XCTAssertEqual(session["name"] as? String, "peer")
        XCTAssertEqual(session["state"] as? String, "up")
        XCTAssertEqual(session["peer"] as? String, "10.201.1.2:5080")
        let counters = try XCTUnwrap(session["counters"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(counters["tx_packets"] as? Int ?? 0, 5, "5 pings went out")
        let link = try XCTUnwrap((object["links"] as? [[String: Any]])?.first)
        XCTAssertEqual(link["name"] as? String, "wan1")
        XCTAssertEqual(link["local"] as? String, "10.201.1.1:5080")

        let table = try lab.run(Lab.binary, "status", socketA).output
        XCTAssertTrue(table.contains("session peer: up for"), table)
        XCTAssertTrue(table.contains("link wan1: 10.201.1.1:5080 → 10.201.1.2:5080"), table)

        // A second daemon may not take a live socket.
        let clash = try lab.file("clash.yaml", plainSite(address: "10.99.0.5/30", bind: "10.201.1.1:5090", remote: "10.201.1.2:5090",
                                                         extra: "status: { socket: \(socketA) }")
            .replacingOccurrences(of: "name: tun0", with: "name: tun5"))
        let refused = try lab.exec(hosts.a, Lab.binary, "run", clash, "--stock", Lab.stockProfiles, allowFailure: true)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.output.contains("status socket '\(socketA)' is in use by another running tunneld"), refused.output)

        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketA), "the socket is removed at shutdown")
        let gone = try lab.run(Lab.binary, "status", socketA, allowFailure: true)
        XCTAssertEqual(gone.status, 1)
        XCTAssertTrue(gone.output.contains("cannot connect to '\(socketA)': No such file or directory (is tunneld running"), gone.output)
    }
}
