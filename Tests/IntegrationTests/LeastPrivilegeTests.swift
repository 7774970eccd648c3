import Foundation
import XCTest

/// `user:` on real daemons: started as root, they create what needs root, then run as
/// `nobody` with CAP_NET_ADMIN only (plus CAP_NET_BIND_SERVICE for a port below
/// 1024) on every thread — and still carry traffic, reload, answer `tunneld status`,
/// create a broker's per-session TAPs and run hooks that configure them.
final class LeastPrivilegeTests: LabTestCase {
    private let nobody: uid_t = 65_534
    private static let netAdmin = "0000000000001000"
    private static let netAdminAndBindService = "0000000000001400"

    private var loadgen: String { URL(fileURLWithPath: Lab.binary).deletingLastPathComponent().appendingPathComponent("td-loadgen").path }

    /// /proc/PID/task/*/status of the daemon (the process `ip netns exec` became).
    private func threadStatuses(_ daemon: Lab.Daemon) throws -> [[String: String]] {
        let task = "/proc/\(daemon.process.processIdentifier)/task"
        return try FileManager.default.contentsOfDirectory(atPath: task).map { thread in
            var fields: [String: String] = [:]
            for line in try String(contentsOfFile: "\(task)/\(thread)/status", encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return fields
        }
    }

    /// Every thread runs as nobody with exactly `capabilities`, ambient included, and
    /// could gain no other (bounding set).
    private func assertDropped(_ daemon: Lab.Daemon, to capabilities: String, threads least: Int = 1,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let threads = try threadStatuses(daemon)
        XCTAssertGreaterThanOrEqual(threads.count, least, "threads made before the drop must have dropped too", file: file, line: line)
        for status in threads {
            XCTAssertEqual(status["Uid"], "65534\t65534\t65534\t65534", "\(status["Name"] ?? "?")", file: file, line: line)
            XCTAssertEqual(status["Gid"], "65534\t65534\t65534\t65534", file: file, line: line)
            for set in ["CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"] {
                XCTAssertEqual(status[set], capabilities, "\(set) of thread \(status["Pid"] ?? "?")", file: file, line: line)
            }
        }
    }

    /// A plain tunnel whose end `a` runs as nobody: ping both ways, `tunneld status`,
    /// a SIGHUP reload as nobody, and a clean SIGTERM that removes the device.
    func testPlainTunnelRunsAsNobodyWithOnlyNetAdmin() throws {
        let hosts = try twoHosts()
        // A folder of nobody's for the status socket, as systemd's RuntimeDirectory= is User='s.
        let run = lab.directory.appendingPathComponent("run").path
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: false)
        chown(run, nobody, 65_534)
        let socketA = run + "/a.sock"
        let (a, b) = try plainTunnel(hosts, extraA: "user: nobody\nstatus: { socket: \(socketA) }\nhttp: { listen: \"127.0.0.1:8080\" }",
                                     extraB: "status: off")
        XCTAssertTrue(a.output.contains("running as nobody (uid 65534) with cap_net_admin only, hooks too"), a.output)
        try assertDropped(a, to: Self.netAdmin, threads: 2)  // the HTTP service's thread

        for (from, to) in [(hosts.a, "10.99.0.2"), (hosts.b, "10.99.0.1")] {
            let ping = try lab.exec(from, "ping", "-c", "3", "-i", "0.2", "-W", "2", to)
            XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        }
        let status = try lab.run(Lab.binary, "status", socketA, "--json").output
        XCTAssertTrue(status.contains("\"profile\""), status)
        let socketOwner = try FileManager.default.attributesOfItem(atPath: socketA)[.ownerAccountID] as? NSNumber
        XCTAssertEqual(socketOwner?.uint32Value, nobody, "the status socket is the daemon's user's, so it can remove it at exit")
        let http = try lab.exec(hosts.a, "curl", "-sf", "http://127.0.0.1:8080/status", allowFailure: true)
        XCTAssertEqual(http.status, 0, "the HTTP listener made before the drop still answers: \(http.output)")

        // The site file is root's (mode 0600): nobody could not re-read it, and says so at start.
        let site = lab.directory.appendingPathComponent("a.yaml").path
        XCTAssertTrue(a.output.contains("nobody cannot read \(site): a reload (SIGHUP) will fail"), a.output)
        chmod(site, 0o644)
        kill(a.process.processIdentifier, SIGHUP)
        var reloaded = false
        for _ in 0..<100 where !reloaded {
            reloaded = a.output.contains("reloaded \(site)")
            usleep(50_000)
        }
        XCTAssertTrue(reloaded, "a reload as nobody: \(a.output)")
        let again = try lab.exec(hosts.a, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(again.output.contains("2 received"), again.output)

        for (daemon, ns) in [(a, hosts.a), (b, hosts.b)] {
            XCTAssertEqual(daemon.stop(), 0, daemon.output)
            XCTAssertTrue(daemon.output.contains("device tun0 removed"), daemon.output)
            XCTAssertNotEqual(try lab.exec(ns, "ip", "link", "show", "tun0", allowFailure: true).status, 0)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketA), "nobody removed its status socket at exit")
    }

    /// A broker on port 53 as nobody: a client dials in after the drop, gets a TAP made
    /// then, and the session.up hook — run as nobody with the ambient capabilities —
    /// brings it up and gives it an address; the client's LIMIT runs tc; SIGTERM still
    /// removes every TAP.
    func testBrokerAsNobodyMakesSessionTAPsAndRunsHooks() throws {
        let ns = try lab.namespace("l")
        let hooks = lab.directory.appendingPathComponent("hooks.log").path
        XCTAssertTrue(FileManager.default.createFile(atPath: hooks, contents: nil))
        chown(hooks, nobody, 65_534)  // the hook, run as nobody, appends to it
        let up = try lab.file("session.up", """
            #!/bin/sh
            echo "session.up $3 uid=$(id -u) $(grep CapEff /proc/self/status | tr -d '\\t')" >> \(hooks)
            ip link set "$3" up && ip addr add 10.99.5.1/24 dev "$3" && echo "configured $3" >> \(hooks)
            """)
        chmod(up, 0o755)
        let site = try lab.file("broker.yaml", """
            profile: l2tp-broker
            user: nobody
            links:
              - { name: td, bind: "127.0.0.1:53" }
            sessions:
              data-plane: userspace
              pmtu: 1446
              session.up: \(up)
            status: { socket: \(lab.directory.appendingPathComponent("broker.sock").path) }
            """)
        let daemon = try tunneldWithOpenTun(ns, site: site, name: "broker")
        XCTAssertTrue(daemon.output.contains("running as nobody (uid 65534) with cap_net_bind_service, cap_net_admin only, hooks too"), daemon.output)
        XCTAssertFalse(daemon.output.contains("cannot open /dev/net/tun"), daemon.output)
        try assertDropped(daemon, to: Self.netAdminAndBindService)

        let mark = lab.directory.appendingPathComponent("mark").path
        let client = try lab.spawn(ns, [loadgen, "--broker", "127.0.0.1:53", "--clients", "1", "--rate", "10",
                                        "--hold", "1", "--limit", "1000", "--await-shutdown", "15", "--mark", mark, "--timeout", "30"], name: "loadgen")
        var log = ""
        for _ in 0..<200 where !log.contains("configured ") {
            log = (try? String(contentsOfFile: hooks, encoding: .utf8)) ?? ""
            usleep(50_000)
        }
        XCTAssertTrue(log.contains("session.up l2tp100-100 uid=65534 CapEff:\(Self.netAdminAndBindService)"), "hook: \(log)\n\(daemon.output)")
        XCTAssertTrue(log.contains("configured l2tp100-100"), "the hook's ip commands need CAP_NET_ADMIN: \(log)\n\(daemon.output)")
        let tap = try lab.exec(ns, "ip", "-o", "addr", "show", "dev", "l2tp100-100").output
        XCTAssertTrue(tap.contains("10.99.5.1/24"), tap)
        // The client's LIMIT: the broker runs tc as nobody, with the ambient CAP_NET_ADMIN.
        var shaped = ""
        for _ in 0..<100 where !shaped.contains("rate 1Mbit") {
            shaped = try lab.exec(ns, "tc", "class", "show", "dev", "l2tp100-100").output
            usleep(50_000)
        }
        XCTAssertTrue(shaped.contains("rate 1Mbit"), "\(shaped)\n\(daemon.output)")

        sleep(2)  // past the client's hold, so the broker's goodbye is awaited
        FileManager.default.createFile(atPath: mark, contents: nil)
        XCTAssertEqual(daemon.stop(), 0, daemon.output)
        client.process.waitUntilExit()
        XCTAssertEqual(client.process.terminationStatus, 0, client.output)
        XCTAssertTrue(client.output.contains("established=1"), client.output)
        let left = try lab.exec(ns, "ip", "-o", "link", "show", "type", "tun").output
        XCTAssertEqual(left.trimmingCharacters(in: .whitespacesAndNewlines), "", "TAPs left after shutdown: \(left)")
    }

    /// As systemd starts it (User=, AmbientCapabilities=): never root, the two
    /// capabilities given as ambient ones; `user:` naming that same user trims them to
    /// what the tunnel needs, and the tunnel works.
    func testStartedAsTheUserWithAmbientCapabilitiesItKeepsOnlyWhatItNeeds() throws {
        let hosts = try twoHosts()
        let siteA = try lab.file("a.yaml", plainSite(address: "10.99.0.1/30", bind: "10.201.1.1:5080", remote: "10.201.1.2:5080",
                                                     extra: "user: nobody\nstatus: off"))
        chmod(siteA, 0o644)
        let siteB = try lab.file("b.yaml", plainSite(address: "10.99.0.2/30", bind: "10.201.1.2:5080", remote: "10.201.1.1:5080", extra: "status: off"))
        let systemdLike = "setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all,+net_admin,+net_bind_service "
            + "--ambient-caps=-all,+net_admin,+net_bind_service --bounding-set=-all,+net_admin,+net_bind_service"
        let a = try tunneldWithOpenTun(hosts.a, site: siteA, name: "tunneld-a", wrapper: systemdLike)
        let b = try lab.tunneld(hosts.b, site: siteB, name: "tunneld-b")
        XCTAssertTrue(a.output.contains("running as nobody (uid 65534) with cap_net_admin only, hooks too"), a.output)
        for status in try threadStatuses(a) {
            XCTAssertEqual(status["Uid"], "65534\t65534\t65534\t65534")
            for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] { XCTAssertEqual(status[set], Self.netAdmin, set) }
            XCTAssertEqual(status["CapBnd"], Self.netAdminAndBindService, "the bounding set is systemd's to set")
        }
        let ping = try lab.exec(hosts.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        XCTAssertTrue(ping.output.contains("3 received"), ping.output)
        XCTAssertEqual(a.stop(), 0, a.output)
        XCTAssertEqual(b.stop(), 0, b.output)
    }

    /// `tunneld run SITE`, after `wrapper` (if any), with a mode-0666 /dev/net/tun.
    /// This machine's is 0600 (udev makes it 0666 elsewhere), which would keep an
    /// unprivileged daemon from making devices: it gets a 0666 node in its own mount
    /// namespace (`ip netns exec` makes one), so the host's stays as it is.
    private func tunneldWithOpenTun(_ ns: String, site: String, name: String, wrapper: String = "") throws -> Lab.Daemon {
        let node = lab.directory.appendingPathComponent("tun").path
        if !FileManager.default.fileExists(atPath: node) { try lab.run("mknod", "-m", "0666", node, "c", "10", "200") }
        let command = "mount --bind \(node) /dev/net/tun && exec \(wrapper) \(Lab.binary) run \(site) --stock \(Lab.stockProfiles)"
        let daemon = try lab.spawn(ns, ["sh", "-c", command], name: name)
        for _ in 0..<300 where daemon.process.isRunning {
            if daemon.output.contains("running profile") { return daemon }
            usleep(50_000)
        }
        throw LabError("tunneld '\(name)' did not start: \(daemon.output)")
    }

    /// `validate` refuses a hook another user could change, at its place in the file.
    func testValidateRefusesAnUnsafeHook() throws {
        let up = try lab.file("up.sh", "#!/bin/sh\n")
        chmod(up, 0o777)
        let site = try lab.file("broker.yaml", "profile: l2tp-broker\nuser: nobody\nlinks:\n  - { name: td, bind: \"127.0.0.1:8942\" }\nsessions:\n  session.up: \(up)\n")
        let refused = try lab.run(Lab.binary, "validate", site, "--stock", Lab.stockProfiles, allowFailure: true)
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.output, "\(site):6:15: 'session.up' of session manager 'l2tp-broker': program '\(up)' is writable by group or others (mode 777); make it writable by its owner only with 'chmod go-w \(up)'\n")
        chmod(up, 0o755)
        XCTAssertEqual(try lab.run(Lab.binary, "validate", site, "--stock", Lab.stockProfiles).status, 0)
    }
}
