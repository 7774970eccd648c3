import XCTest

/// The first tunnel: two real tunneld processes in two namespaces, traffic through.
final class PlainTunnelTests: LabTestCase {
    /// Ping, then 50 MB over TCP across a 400 Mbit/s link with the checksum compared
    /// end to end, then SIGTERM: clean exit and the device is gone.
    func testPingAndFiftyMegabytesOverTCPThenCleanShutdown() throws {
        let hosts = try twoHosts(rate: "400mbit")
        let (a, b) = try plainTunnel(hosts)

        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)

        let source = lab.directory.appendingPathComponent("source.bin").path
        let received = lab.directory.appendingPathComponent("received.bin").path
        try lab.run("dd", "if=/dev/urandom", "of=\(source)", "bs=1M", "count=50", "status=none")
        let server = try lab.spawn(hosts.b, ["socat", "-u", "TCP-LISTEN:5001,reuseaddr", "OPEN:\(received),creat,trunc"], name: "socat-server")
        try waitForListener(hosts.b, port: 5001)
        try lab.exec(hosts.a, "socat", "-u", "OPEN:\(source)", "TCP:10.99.0.2:5001", timeout: 60)
        XCTAssertEqual(server.stop(signal: 0, timeout: 20), 0, "receiver did not finish: \(server.output)")
        let sums = try lab.run("sha256sum", source, received).output.split(separator: "\n").map { $0.prefix(64) }
        XCTAssertEqual(sums.count, 2)
        XCTAssertEqual(sums.first, sums.last, "payload corrupted in the tunnel")
        let size = try FileManager.default.attributesOfItem(atPath: received)[.size] as? Int
        XCTAssertEqual(size, 50 * 1024 * 1024)

        for (daemon, ns) in [(a, hosts.a), (b, hosts.b)] {
            XCTAssertEqual(daemon.stop(), 0, "tunneld did not exit cleanly: \(daemon.output)")
            XCTAssertTrue(daemon.output.contains("device tun0 removed"), daemon.output)
            let show = try lab.exec(ns, "ip", "link", "show", "tun0", allowFailure: true)
            XCTAssertNotEqual(show.status, 0, "tun0 still exists after SIGTERM in \(ns)")
        }
        // Counters agree: what a sent, b received. The tbf qdisc may drop a datagram
        // silently (UDP reports success), so allow 0.1 %; tunneld itself drops nothing.
        let sent = counters(in: a.output, for: "session=peer")
        let got = counters(in: b.output, for: "session=peer")
        let tx = sent["tx_packets"] ?? 0, rx = got["rx_packets"] ?? 0
        XCTAssertGreaterThan(tx, 36_000)  // 50 MB / 1360-byte segments
        XCTAssertGreaterThanOrEqual(Double(rx), Double(tx) * 0.999, "a sent \(tx), b received \(rx)")
        for log in [a.output, b.output] {
            for what in ["tunnel", "session=peer", "link=wan1", "device=tun0"] {
                XCTAssertEqual(counters(in: log, for: what).keys.filter { $0.hasPrefix("drop.") }, [], "\(what): \(log)")
            }
        }
    }

    /// The underlay and the inner traffic are both IPv6, and a link is bound to a device.
    func testIPv6OverIPv6Link() throws {
        let a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.link(a, "fd01::1/64", b, "fd01::2/64", name: "\(lab.tag)v")
        // Side a also binds its link to the veth (SO_BINDTODEVICE).
        let siteA = try lab.file("a.yaml", plainSite(address: "fd99::1/64", bind: "[fd01::1]:5080", remote: "[fd01::2]:5080")
            .replacingOccurrences(of: "remote: \"[fd01::2]:5080\" }", with: "remote: \"[fd01::2]:5080\", device: \(lab.tag)va }"))
        let siteB = try lab.file("b.yaml", plainSite(address: "fd99::2/64", bind: "[fd01::2]:5080", remote: "[fd01::1]:5080"))
        let da = try lab.tunneld(a, site: siteA, name: "tunneld-a")
        let db = try lab.tunneld(b, site: siteB, name: "tunneld-b")
        let ping = try lab.exec(a, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd99::2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        // A TCP transfer over IPv6 exercises the TCPv6 segmentation and coalescing.
        let server = try lab.spawn(b, ["socat", "-u", "TCP6-LISTEN:5001,reuseaddr", "SYSTEM:sha256sum"], name: "socat6")
        try waitForListener(b, port: 5001)
        let source = lab.directory.appendingPathComponent("v6.bin").path
        try lab.run("dd", "if=/dev/urandom", "of=\(source)", "bs=1M", "count=8", "status=none")
        try lab.exec(a, "socat", "-u", "OPEN:\(source)", "TCP6:[fd99::2]:5001")
        XCTAssertEqual(server.stop(signal: 0, timeout: 20), 0)
        let expected = try lab.run("sha256sum", source).output.prefix(64)
        XCTAssertTrue(server.output.hasPrefix(String(expected)), "got \(server.output), expected \(expected)")
        XCTAssertEqual(da.stop(), 0)
        XCTAssertEqual(db.stop(), 0)
    }

    /// The plain-tap profile carries Ethernet frames between two TAP devices.
    func testTapProfileCarriesEthernet() throws {
        let hosts = try twoHosts()
        func site(_ address: String, _ bind: String, _ remote: String) -> String {
            plainSite(address: address, bind: bind, remote: remote).replacingOccurrences(of: "profile: plain", with: "profile: plain-tap")
                .replacingOccurrences(of: "name: tun0", with: "name: tap0")
        }
        let a = try lab.tunneld(hosts.a, site: try lab.file("a.yaml", site("10.99.0.1/30", "10.201.1.1:5080", "10.201.1.2:5080")), name: "a")
        let b = try lab.tunneld(hosts.b, site: try lab.file("b.yaml", site("10.99.0.2/30", "10.201.1.2:5080", "10.201.1.1:5080")), name: "b")
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        XCTAssertTrue(a.output.contains("device tap0 removed"))
    }
}
