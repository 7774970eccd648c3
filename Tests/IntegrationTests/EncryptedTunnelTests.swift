import XCTest

/// The encrypted `p2p` profile between two real tunneld processes in two namespaces:
/// keys made with `tunneld genkey`, traffic through, rekeys under load, wrong keys.
final class EncryptedTunnelTests: LabTestCase {
    /// A new private key file (via `tunneld genkey --out`) and its public key.
    func makeKey(_ name: String) throws -> (path: String, publicKey: String) {
        let path = lab.directory.appendingPathComponent(name).path
        try lab.run(Lab.binary, "genkey", "--out", path)
        let publicKey = try lab.run(Lab.binary, "pubkey", path).output.trimmingCharacters(in: .whitespacesAndNewlines)
        return (path, publicKey)
    }

    func p2pSite(address: String, bind: String, remote: String?, crypto: String, extra: String = "") -> String {
        """
        profile: p2p
        device: { name: tun0, address: \(address) }
        links:
          - { name: wan1, bind: "\(bind)"\(remote.map { ", remote: \"\($0)\"" } ?? "") }
        settings:
          crypto.aead: { \(crypto) }
        \(extra)
        """
    }

    /// a dials b (b has no remote: it learns a's address from the handshake).
    func encryptedTunnel(_ hosts: (a: String, b: String), cryptoA: String, cryptoB: String,
                         extra: String = "") throws -> (a: Lab.Daemon, b: Lab.Daemon) {
        let siteB = try lab.file("b.yaml", p2pSite(address: "10.99.0.2/30", bind: "10.201.1.2:5080", remote: nil, crypto: cryptoB, extra: extra))
        let siteA = try lab.file("a.yaml", p2pSite(address: "10.99.0.1/30", bind: "10.201.1.1:5080", remote: "10.201.1.2:5080",
                                                   crypto: cryptoA, extra: extra))
        let b = try lab.tunneld(hosts.b, site: siteB, name: "tunneld-b")
        let a = try lab.tunneld(hosts.a, site: siteA, name: "tunneld-a")
        return (a, b)
    }

    func keyedTunnel(_ hosts: (a: String, b: String), extraCrypto: String = "", extra: String = "") throws -> (a: Lab.Daemon, b: Lab.Daemon) {
        let keyA = try makeKey("a.key"), keyB = try makeKey("b.key")
        return try encryptedTunnel(hosts, cryptoA: "private-key-file: a.key, peer-public-key: \"\(keyB.publicKey)\"\(extraCrypto)",
                                   cryptoB: "private-key-file: b.key, peer-public-key: \"\(keyA.publicKey)\"\(extraCrypto)", extra: extra)
    }

    func waitForLog(_ daemon: Lab.Daemon, _ text: String, seconds: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if daemon.output.contains(text) { return true }
            usleep(20_000)
        }
        return false
    }

    /// Send 20 MB through TCP and compare SHA-256 at both ends.
    func transfer(_ hosts: (a: String, b: String), megabytes: Int, port: Int = 5001) throws {
        let source = lab.directory.appendingPathComponent("source-\(port).bin").path
        try lab.run("dd", "if=/dev/urandom", "of=\(source)", "bs=1M", "count=\(megabytes)", "status=none")
        let server = try lab.spawn(hosts.b, ["socat", "-u", "TCP-LISTEN:\(port),reuseaddr", "SYSTEM:sha256sum"], name: "socat-\(port)")
        try waitForListener(hosts.b, port: port)
        try lab.exec(hosts.a, "socat", "-u", "OPEN:\(source)", "TCP:10.99.0.2:\(port)", timeout: 60)
        XCTAssertEqual(server.stop(signal: 0, timeout: 20), 0, "receiver did not finish: \(server.output)")
        let expected = try lab.run("sha256sum", source).output.prefix(64)
        XCTAssertTrue(server.output.hasPrefix(String(expected)), "payload corrupted: got \(server.output), expected \(expected)")
    }

    func testPingAndTCPThroughTheEncryptedTunnel() throws {
        let hosts = try twoHosts(rate: "400mbit")
        let (a, b) = try keyedTunnel(hosts)
        XCTAssertTrue(waitForLog(a, "keys established as initiator"), a.output)
        XCTAssertTrue(waitForLog(b, "keys established as responder"), b.output)
        XCTAssertTrue(b.output.contains("link wan1: peer is now 10.201.1.1:5080"), b.output)
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        try transfer(hosts, megabytes: 20)
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        for log in [a.output, b.output] {
            // Nothing is dropped, not even what the kernel sent before the first
            // handshake finished: that waited in the staged queue.
            let drops = counters(in: log, for: "session=peer").keys.filter { $0.hasPrefix("drop.") }
            XCTAssertEqual(drops, [], log)
            XCTAssertFalse(log.contains("drop.handshake"), log)
            // Every record carries 24 bytes of header and tag on top of the packet.
            let session = counters(in: log, for: "session=peer"), link = counters(in: log, for: "link=wan1")
            XCTAssertGreaterThanOrEqual(link["tx_bytes"]!, session["tx_bytes"]! + 24 * session["tx_packets"]!)
        }
    }

    /// New keys every second while ping and a TCP transfer run: nothing is lost, no
    /// record is refused, and several rekeys happened.
    func testRekeyUnderContinuousTrafficLosesNothing() throws {
        let hosts = try twoHosts(rate: "200mbit")
        let (a, b) = try keyedTunnel(hosts, extraCrypto: ", rekey-after: 1s", extra: "log: debug")
        XCTAssertTrue(waitForLog(a, "keys established"), a.output)
        XCTAssertTrue(waitForLog(b, "keys established"), b.output)
        usleep(200_000)
        kill(a.process.processIdentifier, SIGUSR1)
        kill(b.process.processIdentifier, SIGUSR1)
        XCTAssertTrue(waitForLog(a, "counters session=peer"))
        XCTAssertTrue(waitForLog(b, "counters session=peer"))
        let before = [counters(in: a.output, for: "session=peer"), counters(in: b.output, for: "session=peer")]

        let pinger = try lab.spawn(hosts.a, ["ping", "-c", "400", "-i", "0.01", "-W", "2", "10.99.0.2"], name: "ping")
        try transfer(hosts, megabytes: 40)
        XCTAssertEqual(pinger.stop(signal: 0, timeout: 20), 0, pinger.output)
        XCTAssertTrue(pinger.output.contains("400 packets transmitted, 400 received"), pinger.output)
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        // a initiated the first keys, so a renews them every second; b only answers.
        let renewed = a.output.components(separatedBy: "keys renewed as initiator").count - 1
        XCTAssertGreaterThanOrEqual(renewed, 3, "rekeys during about 5 s of traffic: \(a.output)")
        for (index, log) in [a.output, b.output].enumerated() {
            let after = counters(in: log, for: "session=peer")
            let drops = after.filter { $0.key.hasPrefix("drop.") && $0.value != before[index][$0.key] }
            XCTAssertEqual(drops, [:], "drops during the rekeys: \(log)")
        }
    }

    /// b does not know a's key: a's initiations are counted, no keys form, no traffic
    /// passes; what a was given to send waits for keys, then expires.
    func testUnknownKeyGetsNoSession() throws {
        let hosts = try twoHosts()
        _ = try makeKey("a.key")
        let keyB = try makeKey("b.key"), other = try makeKey("other.key")
        let (a, b) = try encryptedTunnel(hosts, cryptoA: "private-key-file: a.key, peer-public-key: \"\(keyB.publicKey)\", handshake-retry: 200ms, staged-timeout: 500ms",
                                         cryptoB: "private-key-file: b.key, peer-public-key: \"\(other.publicKey)\"")
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.3", "-W", "1", "10.99.0.2", allowFailure: true)
        XCTAssertTrue(ping.output.contains("0 received"), ping.output)
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        XCTAssertGreaterThanOrEqual(counters(in: b.output, for: "tunnel")["drop.handshake_unknown_peer"] ?? 0, 3, b.output)
        XCTAssertGreaterThanOrEqual(counters(in: a.output, for: "session=peer")["drop.staged_timeout"] ?? 0, 3, a.output)
        XCTAssertFalse(a.output.contains("keys established"))
        XCTAssertFalse(b.output.contains("keys established"))
        XCTAssertTrue(b.output.contains("(remote learnt from the first datagram)") && !b.output.contains("peer is now"),
                      "an unauthenticated sender must not become the peer: \(b.output)")
    }

    /// The passphrase mode across processes: both ends stretch the same file.
    func testPassphraseMode() throws {
        let hosts = try twoHosts()
        _ = try lab.file("pass", "a long shared passphrase for the lab\n")
        let crypto = "passphrase-file: pass, passphrase-context: lab"
        let (a, b) = try encryptedTunnel(hosts, cryptoA: crypto, cryptoB: crypto)
        XCTAssertTrue(waitForLog(a, "keys established"), a.output)
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        XCTAssertEqual(a.stop(), 0)
        XCTAssertEqual(b.stop(), 0)
        XCTAssertFalse(a.output.contains("long shared passphrase"), "secrets never reach the log")
    }
}
