import Foundation
import XCTest

/// `tunneld import tunneldigger` end to end: a broker's l2tp_broker.cfg and a C client's
/// command line are imported with the release binary, validated, and run as real
/// tunneld processes in two namespaces (this kernel has no L2TP: `data-plane: auto`
/// picks the userspace one); ping crosses the pseudowire both ways.
final class ImportTunneldiggerTests: LabTestCase {
    private func script(_ name: String, _ body: String) throws -> String {
        let path = try lab.file(name, "#!/bin/sh\n\(body)\n")
        chmod(path, 0o755)
        return path
    }

    private func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @discardableResult
    private func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    private func pings(_ ns: String, _ target: String) throws -> Bool {
        try lab.exec(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", target, allowFailure: true, timeout: 30).status == 0
    }

    func testImportedBrokerAndClientCarryTraffic() throws {
        let b = try lab.namespace("b"), c = try lab.namespace("c")
        try lab.link(b, "10.201.1.1/24", c, "10.201.1.2/24", name: "\(lab.tag)p")

        // Broker hooks as a tunneldigger installation has them, one script per hook,
        // reading tunneldigger's arguments as upstream's session.up.sh does: $3 is the
        // interface.
        let brokerHooks = lab.directory.appendingPathComponent("broker-hooks.log").path
        let up = try script("session-up.sh", """
            echo "$@" >> \(brokerHooks)
            ip link set "$3" up && ip addr add 10.99.8.1/24 dev "$3"
            """)
        let down = try script("session-down.sh", "echo \"$@\" >> \(brokerHooks)")
        let config = try lab.file("l2tp_broker.cfg", """
            [broker]
            address = 10.201.1.1
            port = 8942,8943
            interface = \(lab.tag)pa
            max_tunnels = 16
            tunnel_id_base = 100
            namespace = default
            connection_rate_limit = 0.2
            connection_rate_limit_per_ip_count = 0
            connection_rate_limit_per_ip_time = 0
            pmtu = 0

            [log]
            verbosity = INFO
            log_ip_addresses = false

            [hooks]
            session.up = \(up)
            session.pre-down =
            session.down = \(down)
            session.mtu-changed =
            broker.connection-rate-limit =
            """)
        let brokerSite = lab.directory.appendingPathComponent("broker.yaml").path
        let brokerImport = try lab.run(Lab.binary, "import", "tunneldigger", "broker", config, "--output", brokerSite)
        XCTAssertEqual(brokerImport.output, "wrote \(brokerSite); check it with: tunneld validate \(brokerSite)\n")
        let brokerYAML = try String(contentsOfFile: brokerSite, encoding: .utf8)
        XCTAssertTrue(brokerYAML.contains("  - { name: port-8943, bind: \"10.201.1.1:8943\", device: \(lab.tag)pa }"), brokerYAML)
        XCTAssertTrue(brokerYAML.contains("[broker] namespace = default: tunneldigger before 0.4"), brokerYAML)
        try lab.run(Lab.binary, "validate", brokerSite, "--stock", Lab.stockProfiles)

        let clientHooks = lab.directory.appendingPathComponent("client-hooks.log").path
        let clientHook = try script("client-hook.sh", """
            echo "$@" >> \(clientHooks)
            if [ "$1" = session.up ]; then ip link set "$2" up; ip addr add 10.99.8.2/24 dev "$2"; fi
            """)
        let clientSite = lab.directory.appendingPathComponent("client.yaml").path
        try lab.run(Lab.binary, "import", "tunneldigger", "client", "--output", clientSite, "--",
                    "-u", "imported-router", "-i", "l2tp0", "-b", "10.201.1.1:8942", "-b", "10.201.1.1:8943", "-a",
                    "-s", clientHook, "-t", "7", "-L", "10000", "-l", "10.201.1.2", "-I", "\(lab.tag)pb", "-f")
        try lab.run(Lab.binary, "validate", clientSite, "--stock", Lab.stockProfiles)

        let broker = try lab.tunneld(b, site: brokerSite, name: "broker")
        let client = try lab.tunneld(c, site: clientSite, name: "client")
        XCTAssertTrue(eventually(20) { lines(clientHooks) == ["session.up l2tp0"] }, "client hooks: \(lines(clientHooks))\n\(client.output)")
        XCTAssertTrue(eventually(5) { lines(brokerHooks).contains { $0.contains(" imported-router ") } }, "broker hooks: \(lines(brokerHooks))\n\(broker.output)")
        XCTAssertTrue(try eventually(10) { try pings(c, "10.99.8.1") }, "router → broker through the pseudowire")
        XCTAssertTrue(try pings(b, "10.99.8.2"), "broker → router")

        XCTAssertEqual(client.stop(), 0, client.output)
        XCTAssertTrue(eventually(5) { lines(clientHooks).last == "session.down l2tp0" }, "\(lines(clientHooks))")
        XCTAssertTrue(eventually(5) { lines(brokerHooks).count >= 2 }, "the broker's session.down ran: \(lines(brokerHooks))")
        XCTAssertEqual(broker.stop(), 0, broker.output)
    }

    /// The commands' failures: a malformed file names its place, an unknown C client
    /// option is named, an existing output file is never overwritten; each exits 1.
    func testFailuresExitOneAndSayWhere() throws {
        let bad = try lab.file("bad.cfg", "[broker]\naddress 10.0.0.1\n")
        let parse = try lab.run(Lab.binary, "import", "tunneldigger", "broker", bad, allowFailure: true)
        XCTAssertEqual(parse.status, 1)
        XCTAssertEqual(parse.output, "\(bad):2:1: 'address 10.0.0.1' is not 'key = value'; add the '=' or comment the line out with '#'\n")

        let option = try lab.run(Lab.binary, "import", "tunneldigger", "client", "--", "-u", "x", "-i", "l2tp0", "-b", "h:1", "-x",
                                 allowFailure: true)
        XCTAssertEqual(option.status, 1)
        XCTAssertEqual(option.output, "-x is not an option of the tunneldigger client; it has -u, -b, -i, -I, -l, -s, -t, -L, -a, -g, -r, -f, -h\n")

        let existing = try lab.file("existing.yaml", "profile: l2tp-client\n")
        let clobber = try lab.run(Lab.binary, "import", "tunneldigger", "client", "--output", existing, "--", "-u", "x", "-i", "l2tp0", "-b", "h:1",
                                  allowFailure: true)
        XCTAssertEqual(clobber.status, 1)
        XCTAssertTrue(clobber.output.contains("cannot create '\(existing)': File exists (an existing file is never overwritten)"), clobber.output)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "profile: l2tp-client\n")
    }
}
