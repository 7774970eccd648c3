import Foundation
import XCTest

/// The bonding test topology: a client site with uplinks through a middle box to a
/// hub. Each uplink is a veth pair client↔middle, rate-limited with tbf both ways,
/// and a userspace delay relay in the middle (there is no netem here) that forwards
/// the uplink's datagrams to the hub like a NAT would. The hub sees each uplink as a
/// different source address and port, as it would on the Internet.
///
///     client 10.201.N.1 ──veth N, tbf── 10.201.N.2 middle [relay :6001 → hub] 10.201.9.1 ── 10.201.9.2 hub
///
/// Tunnel addresses: client 10.99.0.1/30, hub 10.99.0.2/30 (a second site: 10.98.0.1/30).
final class BondingLab {
    struct Uplink {
        var name: String
        var rate: String
        var delayMs: Int
        var extra = ""
    }

    let lab: Lab
    let middle: String
    let hub: String
    private(set) var relays: [String: Lab.Daemon] = [:]
    let hubPublicKey: String
    let hubKey: String

    static var relayBinary: String {
        URL(fileURLWithPath: Lab.binary).deletingLastPathComponent().appendingPathComponent("udp-delay-relay").path
    }

    init(_ lab: Lab) throws {
        guard FileManager.default.isExecutableFile(atPath: BondingLab.relayBinary) else {
            throw LabError("\(BondingLab.relayBinary) not found: build it with 'swift build -c release' (scripts/test does)")
        }
        self.lab = lab
        middle = try lab.namespace("m")
        hub = try lab.namespace("h")
        try lab.link(middle, "10.201.9.1/24", hub, "10.201.9.2/24", name: "\(lab.tag)h")
        hubKey = lab.directory.appendingPathComponent("hub.key").path
        hubPublicKey = try BondingLab.keyPair(lab, hubKey)
    }

    static func keyPair(_ lab: Lab, _ path: String) throws -> String {
        try lab.run(Lab.binary, "genkey", "--out", path)
        return try lab.run(Lab.binary, "pubkey", path).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A client namespace with its uplinks (numbered from `firstNetwork`), relays started.
    func site(_ short: String, uplinks: [Uplink], firstNetwork: Int = 1) throws -> (ns: String, key: String, publicKey: String) {
        let ns = try lab.namespace(short)
        for (offset, uplink) in uplinks.enumerated() {
            let network = firstNetwork + offset
            let veth = "\(lab.tag)\(short)\(offset)"
            try lab.link(ns, "10.201.\(network).1/24", middle, "10.201.\(network).2/24", name: veth)
            try lab.limit(ns, "\(veth)a", rate: uplink.rate)
            try lab.limit(middle, "\(veth)b", rate: uplink.rate)
            let relay = try lab.spawn(middle, [BondingLab.relayBinary, "--listen", "10.201.\(network).2:6001",
                                               "--forward", "10.201.9.2:5080", "--delay-ms", "\(uplink.delayMs)"],
                                      name: "relay-\(short)-\(uplink.name)")
            relays["\(short)/\(uplink.name)"] = relay
            let deadline = Date().addingTimeInterval(5)
            while !relay.output.contains("relay ready") && Date() < deadline { usleep(20_000) }
        }
        let key = lab.directory.appendingPathComponent("\(short).key").path
        return (ns, key, try BondingLab.keyPair(lab, key))
    }

    /// `stages`: more lines under `settings:` (two spaces in), e.g. `  bonding.scheduler: { mode: redundant }`.
    func clientFile(_ name: String, key: String, address: String, uplinks: [Uplink], firstNetwork: Int = 1, extra: String = "",
                    stages: String = "") throws -> String {
        var links = ""
        for (offset, uplink) in uplinks.enumerated() {
            let network = firstNetwork + offset
            links += "  - { name: \(uplink.name), bind: \"10.201.\(network).1:5081\", remote: \"10.201.\(network).2:6001\"\(uplink.extra) }\n"
        }
        return try lab.file(name, """
        profile: bonding-client
        device: { name: tun0, address: \(address) }
        links:
        \(links)
        settings:
          crypto.aead: { private-key-file: \(key), peer-public-key: "\(hubPublicKey)" }
        \(stages)
        status: { socket: \(lab.directory.appendingPathComponent(name + ".sock").path) }
        \(extra)
        """)
    }

    func hubFile(peers: [String], extra: String = "", stages: String = "") throws -> String {
        try lab.file("hub.yaml", """
        profile: bonding-server
        device: { name: tun0, address: 10.99.0.2/30 }
        links:
          - { name: hub, bind: "10.201.9.2:5080" }
        settings:
          crypto.aead: { private-key-file: \(hubKey), peers: [\(peers.map { "\"\($0)\"" }.joined(separator: ", "))] }
        \(stages)
        status: { socket: \(lab.directory.appendingPathComponent("hub.sock").path) }
        \(extra)
        """)
    }

    /// Wait until the client's log says every named link is up.
    func waitUp(_ daemon: Lab.Daemon, links: [String], timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let log = daemon.output
            if links.allSatisfy({ log.contains("link \($0) (") && log.contains("→ up") }) { return }
            usleep(50_000)
        }
        throw LabError("links \(links) did not come up: \(daemon.output)")
    }

    /// A daemon's status (`tunneld status --json` on its socket).
    func status(socket: String) throws -> [String: Any] {
        let json = try lab.run(Lab.binary, "status", socket, "--json").output
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { throw LabError("no status in \(json)") }
        return object
    }

    /// The first session of a daemon's status.
    func session(socket: String) throws -> [String: Any] { try BondingLab.session(in: status(socket: socket)) }

    static func session(in status: [String: Any]) throws -> [String: Any] {
        guard let session = (status["sessions"] as? [[String: Any]])?.first else { throw LabError("no session in \(status)") }
        return session
    }

    /// How often a daemon's event loop woke up late (`daemon.stalls`): a run on a
    /// machine that stalled says so next to its figures.
    static func stalls(in status: [String: Any]) throws -> Int {
        guard let stalls = (status["daemon"] as? [String: Any])?["stalls"] as? Int else { throw LabError("no daemon.stalls in \(status)") }
        return stalls
    }

    /// The status of both daemons of a client named "client": client, then hub.
    func daemonStatuses() throws -> [(name: String, status: [String: Any])] {
        try [("client", "client.yaml.sock"), ("hub", "hub.sock")].map { name, socket in
            (name, try status(socket: lab.directory.appendingPathComponent(socket).path))
        }
    }

    /// Whether the machine stalled and whether a link went quiet, per daemon: printed
    /// next to throughput figures, so a run that missed a bar says whether the VM
    /// stalled or a link was taken for cut.
    static func loopsAndLinks(_ statuses: [(name: String, status: [String: Any])]) throws -> String {
        try statuses.map { name, status in
            let paths = (try session(in: status)["details"] as? [String: Any])?["paths"] as? [[String: Any]] ?? []
            let quiet = paths.map { "\($0["quiet_spells"] as? Int ?? -1)" }.joined(separator: "/")
            return "\(name) loop stalls \(try stalls(in: status)), quiet spells \(quiet)"
        }.joined(separator: ", ")
    }

    func loopsAndLinks() throws -> String { try BondingLab.loopsAndLinks(daemonStatuses()) }

    /// Both daemons' loop stalls so far (`daemon.stalls`: woke up over 10 ms late).
    func loopStalls() throws -> Int { try daemonStatuses().reduce(0) { $0 + (try BondingLab.stalls(in: $1.status)) } }

    /// `measure`, and once more if it carried less than `bar` of `rawSum` while a daemon's
    /// loop stalled: such a run measured a machine that did not run the tunnel, not the
    /// tunnel (CI saw 0.938 against 0.95 with the loops stalled). Both runs are printed;
    /// the second one counts, against the same bar in the caller's assertion.
    func measuredAgainIfStalled(bar: Double, of rawSum: Double, _ measure: () throws -> Transfer) throws -> Transfer {
        let before = try loopStalls()
        let first = try measure()
        let stalled = try loopStalls() - before
        guard stalled > 0, first.mbps < bar * rawSum else { return first }
        print(String(format: "bonding: %.1f Mbit/s missed the bar while the daemons' loops stalled %d times: measured again", first.mbps, stalled))
        return try measure()
    }

    /// What the scheduler has put on each path: data, and the probes and echoes that
    /// measure the path (those are small: under 100 bytes each).
    func pathTx(socket: String) throws -> [String: (packets: Int, bytes: Int)] {
        let paths = (try session(socket: socket)["details"] as? [String: Any])?["paths"] as? [[String: Any]] ?? []
        var result: [String: (packets: Int, bytes: Int)] = [:]
        for path in paths {
            guard let name = path["name"] as? String else { continue }
            result[name] = (path["tx_packets"] as? Int ?? 0, path["tx_bytes"] as? Int ?? 0)
        }
        return result
    }

    func signalRelay(_ key: String, _ signal: Int32) {
        if let relay = relays[key] { kill(relay.process.processIdentifier, signal) }
    }

    /// One iperf3 run: goodput in Mbit/s as the receiver counted it (after the omitted
    /// start, if any), per interval (sender side), and the sender's retransmissions.
    struct Transfer {
        var mbps: Double
        var retransmits: Int
        var intervals: [Double]
    }

    /// TCP from `ns` to `server` for `seconds` (iperf3, JSON). With `omit`, the first
    /// seconds (slow start, the token buckets' initial burst) are left out of the
    /// figures: TCP's steady state, as the receiver saw it.
    func tcp(from ns: String, to server: String, serverNamespace: String, seconds: Int, omit: Int = 0, congestion: String = "bbr",
             port: Int = 5201, interval: Double = 1) throws -> Transfer {
        _ = try lab.spawn(serverNamespace, ["iperf3", "-s", "-1", "-p", "\(port)"], name: "iperf3-server-\(port)")
        usleep(300_000)
        let output = try lab.exec(ns, "iperf3", "-c", server, "-p", "\(port)", "-t", "\(seconds)", "-O", "\(omit)", "-J", "-C", congestion,
                                  "-i", "\(interval)", timeout: TimeInterval(seconds + omit + 30)).output
        return try BondingLab.transfer(output)
    }

    /// What the raw uplinks carry for TCP without the tunnel, all at once (one iperf3
    /// per uplink to the middle box), each over `seconds` after `omit` like the tunnel's run.
    func rawLinks(from ns: String, networks: [Int], seconds: Int, omit: Int, congestion: String = "bbr") throws -> [Transfer] {
        var clients: [Lab.Daemon] = []
        for network in networks {
            let port = 5300 + network
            _ = try lab.spawn(middle, ["iperf3", "-s", "-1", "-p", "\(port)"], name: "iperf3-raw-server-\(port)")
        }
        usleep(300_000)
        for network in networks {
            clients.append(try lab.spawn(ns, ["iperf3", "-c", "10.201.\(network).2", "-p", "\(5300 + network)", "-t", "\(seconds)",
                                              "-O", "\(omit)", "-J", "-C", congestion, "-i", "1"], name: "iperf3-raw-\(network)"))
        }
        return try clients.map { client in
            guard client.stop(signal: 0, timeout: TimeInterval(seconds + omit + 30)) == 0 else {
                throw LabError("raw iperf3 failed: \(client.output.prefix(500))")
            }
            return try BondingLab.transfer(client.output)
        }
    }

    /// Parse iperf3's JSON; throws when it reports an error (a broken connection) or no result.
    /// Lines of "epoch-seconds bytes" (a counter sampled in a loop) as goodput per
    /// sample interval, in Mbit/s, each labelled by its end in seconds from `start`.
    static func timeline(_ samples: String, from start: Date) -> String {
        let points = samples.split(separator: "\n").compactMap { line -> (Double, Double)? in
            let fields = line.split(separator: " ").compactMap { Double($0) }
            return fields.count == 2 ? (fields[0], fields[1]) : nil
        }
        let origin = start.timeIntervalSince1970
        return zip(points, points.dropFirst()).map { a, b in
            String(format: "%+.2f:%.0f", b.0 - origin, (b.1 - a.1) * 8 / max(b.0 - a.0, 1e-3) / 1e6)
        }.joined(separator: " ")
    }

    static func transfer(_ output: String) throws -> Transfer {
        guard let data = output.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LabError("iperf3 gave no JSON: \(output.prefix(500))")
        }
        if let error = json["error"] { throw LabError("iperf3 failed (the TCP connection broke?): \(error)") }
        guard let end = json["end"] as? [String: Any],
              let received = end["sum_received"] as? [String: Any], let bits = received["bits_per_second"] as? Double else {
            throw LabError("iperf3 gave no result: \(output.prefix(500))")
        }
        let sent = end["sum_sent"] as? [String: Any]
        let intervals = (json["intervals"] as? [[String: Any]] ?? []).compactMap {
            (($0["sum"] as? [String: Any])?["bits_per_second"] as? Double).map { $0 / 1e6 }
        }
        return Transfer(mbps: bits / 1e6, retransmits: sent?["retransmits"] as? Int ?? 0, intervals: intervals)
    }
}
