import XCTest

/// Hostile or broken datagrams reach a running tunnel: each is dropped and counted
/// under its reason, and the daemon keeps running.
final class BadInputTests: LabTestCase {
    func testMalformedDatagramsAreCountedAndDropped() throws {
        let hosts = try twoHosts()
        // Only side a runs tunneld; the "peer" at 10.201.1.2:5080 is a script.
        let siteA = try lab.file("a.yaml", plainSite(address: "10.99.0.1/30", bind: "10.201.1.1:5080", remote: "10.201.1.2:5080"))
        let a = try lab.tunneld(hosts.a, site: siteA, name: "tunneld-a")

        let script = """
        import socket, time
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("10.201.1.2", 5080))
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("10.201.1.2", 5999))
        target = ("10.201.1.1", 5080)
        peer.sendto(b"\\x00garbage", target)              # unclaimed first byte
        peer.sendto(b"", target)                          # empty: truncated
        peer.sendto(b"\\x45" + b"\\x00" * 2999, target)   # larger than a slot: oversize
        peer.sendto(b"\\x45\\x00\\x00\\x54\\x00", target) # IPv4 header cut short: truncated (session)
        peer.sendto(b"\\x45\\x00\\xff\\xff" + b"\\x00" * 60, target)  # length field beyond the data: truncated (session)
        peer.sendto(b"\\x4f" + b"\\x00" * 40, target)     # header length 60 > total 0: malformed (session)
        stranger.sendto(b"\\x45" + b"\\x00" * 40, target) # valid-looking, wrong source: unknown_peer
        time.sleep(0.3)
        """
        try lab.exec(hosts.b, "python3", "-c", script)
        usleep(300_000)
        XCTAssertTrue(a.process.isRunning, "tunneld died on bad input: \(a.output)")
        XCTAssertEqual(a.stop(), 0)

        let tunnel = counters(in: a.output, for: "tunnel")
        XCTAssertEqual(tunnel["drop.unclaimed"], 1, a.output)
        XCTAssertEqual(tunnel["drop.truncated"], 1, a.output)
        XCTAssertEqual(tunnel["drop.oversize"], 1, a.output)
        XCTAssertEqual(tunnel["drop.unknown_peer"], 1, a.output)
        let session = counters(in: a.output, for: "session=peer")
        XCTAssertEqual(session["drop.truncated"], 2, a.output)
        XCTAssertEqual(session["drop.malformed"], 1, a.output)
        XCTAssertEqual(session["rx_packets"], 3, "packets that reached the egress check")
    }
}
