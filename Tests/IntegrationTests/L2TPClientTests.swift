import Foundation
import XCTest

/// tunneld's l2tp-client against tunneld's l2tp-broker: real processes in namespaces,
/// real TAP devices on both sides (this kernel has no L2TP, so both run the userspace
/// data plane), Ethernet bridged on the broker, traffic through the pseudowires.
final class L2TPClientTests: LabTestCase {
    /// The broker's namespace with a bridge 10.99.6.1/24 that every session joins
    /// (the usual mesh setup: the session.up hook enslaves the interface).
    private func brokerHost() throws -> String {
        let b = try lab.namespace("b")
        try lab.exec(b, "ip", "link", "add", "br0", "type", "bridge")
        try lab.exec(b, "ip", "addr", "add", "10.99.6.1/24", "dev", "br0")
        try lab.exec(b, "ip", "link", "set", "br0", "up")
        return b
    }

    /// The broker's host and one router's, joined at 10.201.1.1 — 10.201.1.2.
    private func brokerAndRouter() throws -> (broker: String, router: String) {
        let b = try brokerHost()
        let c = try lab.namespace("c")
        try lab.link(b, "10.201.1.1/24", c, "10.201.1.2/24", name: "\(lab.tag)p")
        return (b, c)
    }

    /// A hook script that logs its arguments to `log` and runs `action`.
    private func hook(_ name: String, log: String, _ action: String) throws -> String {
        let path = try lab.file(name, """
            #!/bin/sh
            echo "$@" >> \(log)
            \(action)
            """)
        chmod(path, 0o755)
        return path
    }

    /// Broker hook scripts as a tunneldigger installation has them: one per hook, given
    /// tunneldigger's arguments only (the interface is $3). Each logs its name and its
    /// arguments to `log`; session.up puts the interface in br0. Returns their folder.
    private func brokerHooks(_ name: String, log: String) throws -> String {
        let folder = lab.directory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for hook in ["session.up", "session.pre-down", "session.down", "session.mtu-changed"] {
            let path = "\(folder)/\(hook)"
            try """
                #!/bin/sh
                echo "\(hook) $@" >> \(log)
                \(hook == "session.up" ? "ip link set \"$3\" master br0 && ip link set \"$3\" up" : "")
                """.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        return folder
    }

    private func startBroker(_ ns: String, links: [String], extra: String = "", name: String = "broker") throws -> (daemon: Lab.Daemon, hooks: String, site: String) {
        let hooks = lab.directory.appendingPathComponent("\(name)-hooks.log").path
        let scripts = try brokerHooks("\(name)-hooks", log: hooks)
        let site = try lab.file("\(name).yaml", brokerSite(links: links, scripts: scripts, extra: extra))
        return (try lab.tunneld(ns, site: site, name: name), hooks, site)
    }

    private func brokerSite(links: [String], scripts: String, extra: String = "") -> String {
        """
        profile: l2tp-broker
        links:
        \(links.enumerated().map { "  - { name: l\($0.offset), bind: \"\($0.element)\" }" }.joined(separator: "\n"))
        sessions:
          session.up: \(scripts)/session.up
          session.pre-down: \(scripts)/session.pre-down
          session.down: \(scripts)/session.down
          session.mtu-changed: \(scripts)/session.mtu-changed
        \(extra)
        """
    }

    private func startClient(_ ns: String, brokers: [String], address: String, name: String = "client",
                             interface: String = "l2tp0", extra: String = "") throws -> (daemon: Lab.Daemon, hooks: String) {
        let hooks = lab.directory.appendingPathComponent("\(name)-hooks.log").path
        let script = try hook("\(name)-hook.sh", log: hooks, """
            if [ "$1" = session.up ]; then ip link set "$2" up; ip addr add \(address) dev "$2"; fi
            """)
        let site = try lab.file("\(name).yaml", """
            profile: l2tp-client
            sessions:
              uuid: \(name)-uuid
              brokers: [\(brokers.map { "\"\($0)\"" }.joined(separator: ", "))]
              interface: \(interface)
              hook: \(script)
            \(extra)
            """)
        return (try lab.tunneld(ns, site: site, name: name), hooks)
    }

    private func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Wait up to `seconds` for `condition`.
    @discardableResult
    private func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    private func pings(_ ns: String, _ target: String, count: Int = 3, size: Int? = nil, dontFragment: Bool = false) throws -> Bool {
        var arguments = ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2"]
        if let size { arguments += ["-s", "\(size)"] }
        if dontFragment { arguments += ["-M", "do"] }
        let result = try lab.runArray(["ip", "netns", "exec", ns] + arguments + [target], allowFailure: true, timeout: 30)
        return result.status == 0
    }

    private func mtu(_ ns: String, _ device: String) throws -> Int? {
        let output = try lab.exec(ns, "ip", "-o", "link", "show", "dev", device, allowFailure: true).output
        guard let range = output.range(of: " mtu ") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

    /// Two routers, one over IPv4 and one over IPv6, join the broker's bridge: ping
    /// across both pseudowires, TCP at the rate of a limited uplink, hooks with
    /// tunneldigger's arguments on both sides, and a clean goodbye on SIGTERM.
    func testTwoClientsOverIPv4AndIPv6ShareTheBrokersBridge() throws {
        let b = try brokerHost()
        let c1 = try lab.namespace("c1"), c2 = try lab.namespace("c2")
        try lab.link(b, "10.201.1.1/24", c1, "10.201.1.2/24", name: "\(lab.tag)p")
        try lab.link(b, "fd01:6::1/64", c2, "fd01:6::2/64", name: "\(lab.tag)q")
        try lab.limit(b, "\(lab.tag)pa", rate: "20mbit")
        try lab.limit(c1, "\(lab.tag)pb", rate: "20mbit")
        let broker = try startBroker(b, links: ["10.201.1.1:8942", "[fd01:6::1]:8942"])
        let one = try startClient(c1, brokers: ["10.201.1.1:8942"], address: "10.99.6.2/24", name: "one")
        let two = try startClient(c2, brokers: ["[fd01:6::1]:8942"], address: "10.99.6.3/24", name: "two")

        XCTAssertTrue(eventually(10) { lines(broker.hooks).filter { $0.hasPrefix("session.up ") }.count == 2 }, lines(broker.hooks).joined(separator: "\n"))
        XCTAssertTrue(eventually(5) { lines(one.hooks) == ["session.up l2tp0"] && lines(two.hooks) == ["session.up l2tp0"] },
                      "client hooks: \(lines(one.hooks)) \(lines(two.hooks))")
        let ups = lines(broker.hooks).filter { $0.hasPrefix("session.up ") }.map { $0.split(separator: " ").map(String.init) }
        for fields in ups {
            XCTAssertEqual(fields.count, 10, "event + nine arguments: \(fields)")
            guard fields.count == 10 else { continue }
            // Unique session ids: the broker's session id is its tunnel id.
            XCTAssertEqual(fields[2], fields[1])
            XCTAssertEqual(fields[3], "l2tp\(fields[1])-\(fields[1])")
            XCTAssertEqual(fields[4], "1446")
            XCTAssertEqual(fields[7], "8942")
            XCTAssertEqual(fields[9], "8942")
        }
        XCTAssertEqual(Set(ups.compactMap { $0.count == 10 ? "\($0[5]) \($0[8])" : nil }), ["10.201.1.2 one-uuid", "fd01:6::2 two-uuid"])

        XCTAssertTrue(try pings(c1, "10.99.6.1"), "router one → broker")
        XCTAssertTrue(try pings(c1, "10.99.6.3"), "router one → router two, through the broker's bridge")
        XCTAssertTrue(try pings(c2, "10.99.6.2"), "router two → router one")

        // TCP through the pseudowire over a 20 Mbit/s uplink: about 0.92 of it is
        // payload once L2TP, UDP, IP and the inner Ethernet header are paid for.
        let tcp = BondingLab.self
        _ = try lab.spawn(b, ["iperf3", "-s", "-1", "-p", "5301"], name: "iperf3-server")
        usleep(300_000)
        let output = try lab.exec(c1, "iperf3", "-c", "10.99.6.1", "-p", "5301", "-t", "5", "-O", "1", "-J", "-C", "cubic", timeout: 40).output
        let transfer = try tcp.transfer(output)
        print("l2tp-client TCP over a 20 Mbit/s uplink: \(String(format: "%.1f", transfer.mbps)) Mbit/s, \(transfer.retransmits) retransmits")
        XCTAssertGreaterThan(transfer.mbps, 15, "goodput through the pseudowire")

        XCTAssertEqual(one.daemon.stop(), 0, one.daemon.output)
        XCTAssertEqual(lines(one.hooks), ["session.up l2tp0", "session.down l2tp0"])
        XCTAssertTrue(eventually(5) { lines(broker.hooks).contains { $0.hasPrefix("session.down ") && $0.contains(" one-uuid ") } },
                      "the broker heard the client's ERROR: \(lines(broker.hooks))")
        XCTAssertTrue(try pings(c2, "10.99.6.1"), "router two unaffected")
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
        XCTAssertTrue(eventually(5) { lines(two.hooks).last == "session.down l2tp0" }, "router two saw the broker's shutdown: \(lines(two.hooks))")
        XCTAssertEqual(two.daemon.stop(), 0)
    }

    /// A path whose MTU is 1400 (the broker's uplink): the broker's probes above it
    /// fail, the client's are lost in the network; both interfaces settle at
    /// 1400 − 54 = 1346, the broker runs session.mtu-changed, and a full-size
    /// unfragmentable packet crosses while one byte more does not.
    func testPathMTUDiscoverySettlesOnALoweredPath() throws {
        let b = try brokerHost()
        let r = try lab.namespace("r"), c = try lab.namespace("c")
        try lab.link(c, "10.201.2.2/24", r, "10.201.2.1/24", name: "\(lab.tag)m")
        try lab.link(r, "10.201.3.1/24", b, "10.201.3.2/24", name: "\(lab.tag)n")
        try lab.exec(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        try lab.exec(c, "ip", "route", "add", "10.201.3.0/24", "via", "10.201.2.1")
        try lab.exec(b, "ip", "route", "add", "10.201.2.0/24", "via", "10.201.3.1")
        for (ns, device) in [(r, "\(lab.tag)na"), (b, "\(lab.tag)nb")] {
            try lab.exec(ns, "ip", "link", "set", device, "mtu", "1400")
        }
        let broker = try startBroker(b, links: ["10.201.3.2:8942"])
        let client = try startClient(c, brokers: ["10.201.3.2:8942"], address: "10.99.6.2/24")
        XCTAssertTrue(eventually(10) { lines(client.hooks).first == "session.up l2tp0" })
        XCTAssertEqual(try mtu(c, "l2tp0"), 1446, "before discovery: a 1500-byte path assumed")
        // Broker: four tries per size, one a second, 1500 … 1450 then 1400: about 20 s.
        // Client: its first round ends 21 s after it chose the broker.
        let settled = try eventually(40) { try mtu(c, "l2tp0") == 1346 && mtu(b, "l2tp100-100") == 1346 }
        let (clientMTU, brokerMTU) = (try mtu(c, "l2tp0"), try mtu(b, "l2tp100-100"))
        XCTAssertTrue(settled, "client \(String(describing: clientMTU)), broker \(String(describing: brokerMTU))\n\(broker.daemon.output)")
        XCTAssertTrue(lines(broker.hooks).contains("session.mtu-changed 100 100 l2tp100-100 1446 1346 client-uuid"), "\(lines(broker.hooks))")
        XCTAssertTrue(try pings(c, "10.99.6.1", count: 2, size: 1346 - 28, dontFragment: true), "a 1346-byte packet fits")
        XCTAssertFalse(try pings(c, "10.99.6.1", count: 1, size: 1347 - 28, dontFragment: true), "a 1347-byte one does not")
        XCTAssertEqual(client.daemon.stop(), 0)
        XCTAssertEqual(broker.daemon.stop(), 0)
    }

    /// Either side restarted: the broker's shutdown sends the client round again
    /// until the broker is back; the client's restart gets a fresh tunnel. Traffic
    /// flows after each, and the hooks tell the story in order.
    func testEitherSideRestartsAndTheTunnelComesBack() throws {
        let (b, c) = try brokerAndRouter()
        var broker = try startBroker(b, links: ["10.201.1.1:8942"])
        var client = try startClient(c, brokers: ["10.201.1.1:8942"], address: "10.99.6.2/24")
        XCTAssertTrue(eventually(10) { lines(client.hooks) == ["session.up l2tp0"] })
        XCTAssertTrue(try pings(c, "10.99.6.1"))

        XCTAssertEqual(broker.daemon.stop(), 0)
        XCTAssertTrue(eventually(5) { lines(client.hooks) == ["session.up l2tp0", "session.down l2tp0"] }, "\(lines(client.hooks))")
        let brokerLog = lines(broker.hooks)
        broker = try startBroker(b, links: ["10.201.1.1:8942"], name: "broker2")
        // The client asks again every 3 s (and pauses 5 s after a round nobody answered).
        XCTAssertTrue(eventually(30) { lines(client.hooks).count == 3 }, "client came back: \(lines(client.hooks))\n\(client.daemon.output)")
        XCTAssertEqual(lines(client.hooks).last, "session.up l2tp0")
        XCTAssertTrue(try eventually(5) { try pings(c, "10.99.6.1", count: 1) }, "traffic after the broker's restart")
        XCTAssertEqual(brokerLog.filter { $0.hasPrefix("session.down ") }.count, 1, "the first broker closed its tunnel on the way out")

        XCTAssertEqual(client.daemon.stop(), 0)
        XCTAssertTrue(eventually(5) { lines(broker.hooks).contains { $0.hasPrefix("session.down ") } }, "broker heard the client go")
        client = try startClient(c, brokers: ["10.201.1.1:8942"], address: "10.99.6.2/24", name: "client2")
        XCTAssertTrue(eventually(10) { lines(client.hooks) == ["session.up l2tp0"] })
        XCTAssertTrue(try eventually(5) { try pings(c, "10.99.6.1", count: 1) }, "traffic after the client's restart")
        XCTAssertEqual(lines(broker.hooks).filter { $0.hasPrefix("session.up ") }.count, 2)
        XCTAssertEqual(client.daemon.stop(), 0)
        XCTAssertEqual(broker.daemon.stop(), 0)
    }

    /// One attempt per address a minute: the second router behind the same address
    /// is refused with an ERROR, the broker.connection-rate-limit hook gets (IP, port,
    /// uuid), the refusal is counted by reason, and the first tunnel is untouched.
    func testPerAddressRateLimitRefusesTheSecondRouter() throws {
        let (b, c) = try brokerAndRouter()
        let limitLog = lab.directory.appendingPathComponent("limit.log").path
        let limitHook = try hook("limit.sh", log: limitLog, "")  // logs its arguments only
        let broker = try startBroker(b, links: ["10.201.1.1:8942"], extra: """
              connection-rate-limit-per-ip-count: 1
              connection-rate-limit-per-ip-time: 60s
              broker.connection-rate-limit: \(limitHook)
            """)
        let first = try startClient(c, brokers: ["10.201.1.1:8942"], address: "10.99.6.2/24", name: "first", interface: "td0")
        XCTAssertTrue(eventually(10) { lines(first.hooks) == ["session.up td0"] })
        let second = try startClient(c, brokers: ["10.201.1.1:8942"], address: "10.99.6.3/24", name: "second", interface: "td1")
        XCTAssertTrue(eventually(10) { second.daemon.output.contains("refused the tunnel (ERROR without a reason byte)") }, second.daemon.output)
        XCTAssertTrue(eventually(5) { !lines(limitLog).isEmpty })
        let fields = lines(limitLog).first?.split(separator: " ").map(String.init) ?? []
        XCTAssertEqual(fields.count, 3, "tunneldigger's three arguments: \(fields)")
        if fields.count == 3 {
            XCTAssertEqual(fields[0], "10.201.1.2")
            XCTAssertNotNil(UInt16(fields[1]))
            XCTAssertEqual(fields[2], "second-uuid")
        }
        XCTAssertEqual(lines(second.hooks), [], "no tunnel, no hook")
        XCTAssertTrue(try pings(c, "10.99.6.1"), "the first router's tunnel still carries traffic")
        XCTAssertEqual(second.daemon.stop(), 0)
        XCTAssertEqual(first.daemon.stop(), 0)
        XCTAssertEqual(broker.daemon.stop(), 0)
        let drops = counters(in: broker.daemon.output, for: "tunnel")
        XCTAssertGreaterThanOrEqual(drops["drop.l2tp_refused_rate_limit_per_ip"] ?? 0, 1, broker.daemon.output)
    }

    /// SIGHUP adds a port and swaps a hook script while a tunnel is up: the tunnel
    /// stays (no down hook, traffic flows), a router can use the new port, and the
    /// old tunnel's later session.down runs the new script.
    func testReloadAddsAPortAndSwapsHooksWithoutDroppingTunnels() throws {
        let b = try brokerHost()
        let c1 = try lab.namespace("c1"), c2 = try lab.namespace("c2")
        try lab.link(b, "10.201.1.1/24", c1, "10.201.1.2/24", name: "\(lab.tag)p")
        try lab.link(b, "10.201.2.1/24", c2, "10.201.2.2/24", name: "\(lab.tag)q")
        let broker = try startBroker(b, links: ["10.201.1.1:8942"])
        let one = try startClient(c1, brokers: ["10.201.1.1:8942"], address: "10.99.6.2/24", name: "one")
        XCTAssertTrue(eventually(10) { lines(one.hooks) == ["session.up l2tp0"] })

        let newLog = lab.directory.appendingPathComponent("new-hooks.log").path
        let newScripts = try brokerHooks("new-hooks", log: newLog)
        try brokerSite(links: ["10.201.1.1:8942", "10.201.2.1:8942"], scripts: newScripts)
            .write(toFile: broker.site, atomically: true, encoding: .utf8)
        kill(broker.daemon.process.processIdentifier, SIGHUP)
        XCTAssertTrue(eventually(5) { broker.daemon.output.contains("reloaded") }, broker.daemon.output)

        let two = try startClient(c2, brokers: ["10.201.2.1:8942"], address: "10.99.6.3/24", name: "two")
        XCTAssertTrue(eventually(10) { lines(two.hooks) == ["session.up l2tp0"] }, two.daemon.output)
        XCTAssertTrue(try pings(c1, "10.99.6.3"), "the tunnel from before the reload carries traffic to the new one")
        XCTAssertEqual(lines(one.hooks), ["session.up l2tp0"], "no down hook on the established router")
        XCTAssertFalse(lines(broker.hooks).contains { $0.hasPrefix("session.down ") })
        XCTAssertTrue(lines(newLog).contains { $0.hasPrefix("session.up ") && $0.hasSuffix(" two-uuid 8942") }, "\(lines(newLog))")

        XCTAssertEqual(one.daemon.stop(), 0)
        XCTAssertTrue(eventually(5) { lines(newLog).contains { $0.hasPrefix("session.down ") && $0.contains(" one-uuid ") } },
                      "the reloaded script ran for the old tunnel: \(lines(newLog))")
        XCTAssertEqual(two.daemon.stop(), 0)
        XCTAssertEqual(broker.daemon.stop(), 0)
    }
}
