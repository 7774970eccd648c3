import Foundation
import XCTest

/// `handshake_refused`: an initiation that passes every check of `crypto.aead` (mac1,
/// a known static key, a fresh timestamp, a common cipher) but for which the session
/// manager makes no session. The stock case is a bonding server at `max-sessions`:
/// real daemons, a hub that takes one site and two sites that are both in its
/// `peers`. The refusal lives in the bonding plugin, which the crypto unit tests do
/// not link, so it is tested here.
final class HandshakeRefusedTests: LabTestCase {
    /// The hub's status, decoded (`tunneld status --json` on its socket).
    private func status(_ socket: String) throws -> [String: Any] {
        let json = try lab.run(Lab.binary, "status", socket, "--json").output
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
    }

    /// Tunnel drops (before a session is known: where handshake drops are counted).
    private func tunnelDrops(_ status: [String: Any]) -> [String: Int] {
        (((status["tunnel"] as? [String: Any])?["drops"]) as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
    }

    private func sessionNames(_ status: [String: Any]) -> [String] {
        (status["sessions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    /// Site two dials a hub that already serves `max-sessions: 1` (site one). It sends
    /// one initiation on each of its two uplinks and, with `handshake-retry: 60000`,
    /// no retry within the test: the hub counts exactly 2 `handshake_refused`, keeps
    /// no session for site two, logs the refusal once (the second falls within the
    /// log limiter's 5 s), and site one's session carries pings before, during and
    /// after. When site one has gone (its session timed out), site two gets in: the
    /// refusals left nothing behind.
    func testInitiationsPastMaxSessionsAreCountedAndTheSessionUpKeepsWorking() throws {
        let bond = try BondingLab(lab)
        let uplink = BondingLab.Uplink(name: "wan1", rate: "30mbit", delayMs: 1)
        let one = try bond.site("c", uplinks: [uplink], firstNetwork: 1)
        let two = try bond.site("d", uplinks: [uplink, .init(name: "wan2", rate: "30mbit", delayMs: 1)], firstNetwork: 3)
        let hubFile = try bond.hubFile(peers: ["one=\(one.publicKey)", "two=\(two.publicKey)"], extra: """
        sessions: { max-sessions: 1, session-timeout: 2000, routes: ["one=10.99.0.1/32", "two=10.99.0.5/32"] }
        """)
        let hub = try lab.tunneld(bond.hub, site: hubFile, name: "hub")
        let hubSocket = lab.directory.appendingPathComponent("hub.sock").path
        let fileOne = try bond.clientFile("one.yaml", key: one.key, address: "10.99.0.1/30", uplinks: [uplink], firstNetwork: 1)
        let clientOne = try lab.tunneld(one.ns, site: fileOne, name: "one")
        try bond.waitUp(clientOne, links: ["wan1"])
        try lab.exec(one.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertEqual(tunnelDrops(try status(hubSocket)), [:], "nothing refused yet")

        // Like BondingLab.clientFile, with a retry longer than the test, so site two
        // sends exactly one initiation per uplink.
        let fileTwo = try lab.file("two.yaml", """
        profile: bonding-client
        device: { name: tun0, address: 10.99.0.5/30 }
        links:
          - { name: wan1, bind: "10.201.3.1:5081", remote: "10.201.3.2:6001" }
          - { name: wan2, bind: "10.201.4.1:5081", remote: "10.201.4.2:6001" }
        settings:
          crypto.aead: { private-key-file: \(two.key), peer-public-key: "\(bond.hubPublicKey)", handshake-retry: 60000 }
        status: { socket: \(lab.directory.appendingPathComponent("two.sock").path) }
        """)
        let clientTwo = try lab.tunneld(two.ns, site: fileTwo, name: "two")
        let deadline = Date().addingTimeInterval(10)
        // One initiation per path: the first is refused, the second is its copy (no
        // second Diffie-Hellman).
        while tunnelDrops(try status(hubSocket)).values.reduce(0, +) < 2 && Date() < deadline { usleep(50_000) }
        // Longer than the default retry (1 s): had site two retried, it would show.
        sleep(2)
        let during = try status(hubSocket)
        XCTAssertEqual(tunnelDrops(during), ["handshake_refused": 1, "handshake_duplicate": 1], hub.output)
        XCTAssertEqual(sessionNames(during), ["one"], "no session, no state for site two")
        try lab.exec(one.ns, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertFalse(clientTwo.output.contains("→ up"), clientTwo.output)
        XCTAssertEqual(hub.output.components(separatedBy: "bonding-server: refusing site two: max-sessions (1) reached; raise it or end another site").count - 1, 1,
                       hub.output)

        // Site one goes; once the hub has ended its session, site two (restarted: its
        // next retry is a minute away) connects and carries pings.
        XCTAssertEqual(clientOne.stop(), 0)
        let ended = Date().addingTimeInterval(10)
        while !hub.output.contains("site one ended") && Date() < ended { usleep(50_000) }
        XCTAssertTrue(hub.output.contains("bonding-server: site one ended (silent for 2 s)"), hub.output)
        XCTAssertEqual(clientTwo.stop(), 0)
        let again = try lab.tunneld(two.ns, site: fileTwo, name: "two-again")
        try bond.waitUp(again, links: ["wan1", "wan2"])
        // Site two's /30 is not the hub's: a route each way, as in testTwoSitesOnOneHub.
        try lab.exec(two.ns, "ip", "route", "add", "10.99.0.2/32", "dev", "tun0")
        try lab.exec(bond.hub, "ip", "route", "add", "10.99.0.4/30", "dev", "tun0")
        try lab.exec(two.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertEqual(again.stop(), 0)

        XCTAssertEqual(hub.stop(), 0)
        // No refusal since (the restarted site's copy of its accepted initiation on its
        // second path is another counter: handshake_duplicate).
        XCTAssertEqual(counters(in: hub.output, for: "tunnel")["drop.handshake_refused"], 1, hub.output)
        XCTAssertEqual(hub.output.components(separatedBy: "bonding-server: site one connected").count - 1, 1, hub.output)
        XCTAssertEqual(hub.output.components(separatedBy: "bonding-server: site two connected").count - 1, 1, hub.output)
    }
}
