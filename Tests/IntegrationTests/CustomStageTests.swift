import XCTest

/// The example custom stage in the path of a running tunnel.
final class CustomStageTests: LabTestCase {
    /// example.dscp-filter after the ingress drops EF-marked (DSCP 46) packets and
    /// counts them; unmarked traffic still passes.
    func testDSCPFilterDropsMarkedPacketsInRunningTunnel() throws {
        let hosts = try twoHosts()
        let filter = "stages:\n  - { use: example.dscp-filter, after: ingress, settings: { drop: [46], direction: send } }"
        let (a, b) = try plainTunnel(hosts, extraA: filter)

        let plain = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.99.0.2")
        XCTAssertTrue(plain.output.contains("3 received"), plain.output)
        // TOS 0xb8 = DSCP 46 (EF).
        let marked = try lab.exec(hosts.a, "ping", "-Q", "0xb8", "-c", "4", "-i", "0.2", "-W", "1", "10.99.0.2", allowFailure: true)
        XCTAssertTrue(marked.output.contains("4 packets transmitted, 0 received"), marked.output)

        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        let session = counters(in: a.output, for: "session=peer")
        XCTAssertEqual(session["drop.dscp_filtered"], 4, a.output)
        XCTAssertTrue(a.output.contains("tun → example.dscp-filter → udp"), a.output)
    }
}
