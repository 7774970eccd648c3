import Foundation
import XCTest

/// The l2tp-broker profile as tunneldigger clients see it: real `tunneld` processes
/// in a namespace, clients speaking the control protocol over loopback, real TAP
/// devices per session (this kernel has no L2TP, so the userspace data plane runs).
final class L2TPBrokerTests: LabTestCase {
    private var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    private var loadgen: String { URL(fileURLWithPath: Lab.binary).deletingLastPathComponent().appendingPathComponent("td-loadgen").path }
    private var probe: String { root.appendingPathComponent("Tests/Tools/l2tp-probe.py").path }

    private func broker(_ ns: String, maxTunnels: Int = 100, extra: String = "") throws -> (Lab.Daemon, hooks: String) {
        let hooks = lab.directory.appendingPathComponent("hooks.log").path
        // One script per hook, as tunneldigger installations have them; each gets
        // tunneldigger's arguments only (interface $3) and logs its name before them.
        var scripts: [String: String] = [:]
        for hook in ["session.up", "session.pre-down", "session.down"] {
            let script = try lab.file(hook, """
                #!/bin/sh
                echo "\(hook) $@" >> \(hooks)
                \(hook == "session.up" ? "ip link set \"$3\" up; ip addr add 10.99.5.1/24 dev \"$3\"" : "")
                """)
            chmod(script, 0o755)
            scripts[hook] = script
        }
        let site = try lab.file("broker.yaml", """
            profile: l2tp-broker
            links:
              - { name: td, bind: "127.0.0.1:8942" }
            sessions:
              max-tunnels: \(maxTunnels)
              tunnel-id-base: 100
              pmtu: 1446
              session.up: \(scripts["session.up"]!)
              session.pre-down: \(scripts["session.pre-down"]!)
              session.down: \(scripts["session.down"]!)
            \(extra)
            """)
        return (try lab.tunneld(ns, site: site, name: "broker"), hooks)
    }

    private func values(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    private func taps(_ ns: String) throws -> Int {
        try lab.exec(ns, "ip", "-o", "link", "show", "type", "tun").output.split(separator: "\n").count
    }

    /// 30 clients dial in: each gets a tunnel, an interface and a session.up hook with
    /// tunneldigger's nine arguments; SIGTERM tells every client (ERROR 0x02), runs
    /// the down hooks and leaves no interface behind.
    func testClientsEstablishAndShutdownCleansUp() throws {
        let ns = try lab.namespace("l")
        let (daemon, hooks) = try broker(ns)
        let mark = lab.directory.appendingPathComponent("mark").path
        let clients = try lab.spawn(ns, [loadgen, "--broker", "127.0.0.1:8942", "--clients", "30", "--rate", "300",
                                         "--hold", "2", "--await-shutdown", "15", "--mark", mark, "--timeout", "40"], name: "loadgen")
        var up = 0
        for _ in 0..<200 {
            up = ((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("session.up ") }.count
            if up == 30 { break }
            usleep(50_000)
        }
        XCTAssertEqual(up, 30, "session.up hooks")
        XCTAssertEqual(try taps(ns), 30, "one TAP per tunnel")
        let firstUp = try String(contentsOfFile: hooks, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("session.up 100 ") }
        let fields = firstUp?.split(separator: " ").map(String.init) ?? []
        XCTAssertEqual(fields.count, 10, "event + nine arguments: \(fields)")
        if fields.count == 10 {
            XCTAssertEqual(Array(fields[1...4]), ["100", "100", "l2tp100-100", "1446"])
            XCTAssertEqual(fields[5], "127.0.0.1")
            XCTAssertEqual(fields[7], "8942")
            XCTAssertTrue(fields[8].hasPrefix("loadgen-"))
            XCTAssertEqual(fields[9], "8942")
        }
        sleep(3)  // past the loadgen's hold
        FileManager.default.createFile(atPath: mark, contents: nil)
        XCTAssertEqual(daemon.stop(), 0, daemon.output)
        clients.process.waitUntilExit()
        let report = values(clients.output)
        XCTAssertEqual(clients.process.terminationStatus, 0, clients.output)
        XCTAssertEqual(report["established"], "30")
        XCTAssertEqual(report["errors_by_reason"], "0x02:30")
        XCTAssertEqual(try taps(ns), 0, "interfaces left after shutdown")
        let log = try String(contentsOfFile: hooks, encoding: .utf8)
        XCTAssertEqual(log.split(separator: "\n").filter { $0.hasPrefix("session.down ") }.count, 30)
        XCTAssertEqual(log.split(separator: "\n").filter { $0.hasPrefix("session.pre-down ") }.count, 30)
    }

    /// A flood of PREPAREs the broker must refuse (one tunnel id, twenty clients retrying
    /// every 0.1 s) is counted in full but logged once per interval (5 s), not per PREPARE.
    func testRefusalFloodIsCountedNotLoggedPerMessage() throws {
        let ns = try lab.namespace("f")
        let (daemon, _) = try broker(ns, maxTunnels: 1)
        let clients = try lab.spawn(ns, [loadgen, "--broker", "127.0.0.1:8942", "--clients", "20", "--burst", "--retry", "0.1",
                                         "--timeout", "3"], name: "loadgen")
        clients.process.waitUntilExit()
        XCTAssertEqual(daemon.stop(), 0, daemon.output)
        let refused = counters(in: daemon.output, for: "tunnel")["drop.l2tp_refused_no_tunnel_id"] ?? 0
        let lines = daemon.output.split(separator: "\n").filter { $0.contains("refused: all 1 tunnel ids in use") }
        XCTAssertGreaterThanOrEqual(refused, 100, daemon.output)
        XCTAssertLessThanOrEqual(lines.count, 1, "refusals logged: \(lines.count) of \(refused)")
    }

    /// An Ethernet frame crosses the pseudowire both ways, byte-exact: an ARP request
    /// sent as an L2TPv3 data packet reaches the session's TAP, and the broker host's
    /// ARP reply comes back with the client's session id in the header. Malformed and
    /// forged control datagrams before it are counted and change nothing.
    func testFramesCrossThePseudowireAndHostileControlIsCounted() throws {
        let ns = try lab.namespace("d")
        let (daemon, _) = try broker(ns)
        let result = try lab.exec(ns, "/usr/bin/python3", probe, "127.0.0.1", "8942", "7", "10.99.5.1", "hostile", timeout: 30)
        let report = values(result.output)
        XCTAssertEqual(report["broker_tunnel"], "100")
        XCTAssertEqual(report["features"], "1", "unique session ids agreed")
        XCTAssertEqual(report["retransmit_same"], "yes", "a retransmitted PREPARE gets the same TUNNEL, features included")
        XCTAssertEqual(report["reply_header"], "000300000000000700000000", "header: version 3, the client's session id 7, zero sublayer")
        XCTAssertEqual(report["reply_ethertype"], "0806")
        XCTAssertEqual(report["reply_dst"], "020000000002")
        XCTAssertEqual(report["reply_arp_op"], "2")
        XCTAssertEqual(report["reply_sender_ip"], "10.99.5.1")
        XCTAssertEqual(report["error_answer"], "01", "the broker answers a client's ERROR with ERROR 0x01")
        XCTAssertEqual(daemon.stop(), 0)
        let tunnel = counters(in: daemon.output, for: "tunnel")
        // Truncated and L beyond the datagram: malformed; a first byte of 0x81 is no
        // protocol's at all (neither control 0x80 nor data below 0x80): unclaimed.
        XCTAssertEqual(tunnel["drop.l2tp_malformed"], 2, daemon.output)
        XCTAssertEqual(tunnel["drop.unclaimed"], 1, daemon.output)
        XCTAssertEqual(tunnel["drop.l2tp_bad_cookie"], 1, daemon.output)
    }
}
