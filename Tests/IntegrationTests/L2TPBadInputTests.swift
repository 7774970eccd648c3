import Foundation
import XCTest

/// The L2TP rows of the README's "Bad input" table, through running daemons: control
/// messages from an address without a tunnel or of a type the receiver never expects,
/// data datagrams no session owns, and a hostile tunneldigger UUID handed to a hook.
/// Each is counted exactly, and the tunnel that was up keeps carrying frames.
///
/// The broker tests talk to a broker on 127.0.0.1:8942 in its own namespace through
/// a scripted client (`peer.py` below) that runs a plan of steps one per line, so
/// each test lists its datagrams itself. The broker runs the userspace data plane
/// (`l2tpv3.pseudowire`): its session.up hook brings the TAP up as 10.99.5.1/24, and
/// the script checks that an ARP request for it, sent as an L2TPv3 data packet, is
/// answered through the pseudowire.
final class L2TPBadInputTests: LabTestCase {
    // MARK: broker, client script, status

    private struct Broker {
        let daemon: Lab.Daemon
        let status: String
        /// Written by the session.up hook once the interface is configured.
        let upDone: String
        /// The session.up hook's argument count, then each argument on its own line.
        let upArguments: String
        /// Touched by the session.down hook.
        let downDone: String
    }

    private func broker(_ ns: String) throws -> Broker {
        let folder = lab.directory.path
        let upDone = "\(folder)/session.up.done", upArguments = "\(folder)/session.up.args"
        let downDone = "\(folder)/session.down.done"
        // The count first, then one line each: a newline that got into an argument shows
        // as a count that does not match the lines.
        let up = try lab.file("session.up", """
            #!/bin/sh
            { echo "$#"; for argument in "$@"; do printf '%s\\n' "$argument"; done; } > \(upArguments)
            ip link set "$3" up && ip addr add 10.99.5.1/24 dev "$3"
            touch \(upDone)
            """)
        let down = try lab.file("session.down", """
            #!/bin/sh
            touch \(downDone)
            """)
        chmod(up, 0o755)
        chmod(down, 0o755)
        let status = "\(folder)/broker.sock"
        let site = try lab.file("broker.yaml", """
            profile: l2tp-broker
            status: { socket: \(status) }
            links:
              - { name: td, bind: "127.0.0.1:8942" }
            sessions:
              tunnel-id-base: 100
              pmtu: 1446
              data-plane: userspace
              session.up: \(up)
              session.down: \(down)
            """)
        return Broker(daemon: try lab.tunneld(ns, site: site, name: "broker"), status: status, upDone: upDone,
                      upArguments: upArguments, downDone: downDone)
    }

    /// Run `plan` with the client script against the broker in `ns`, in the background.
    private func peer(_ ns: String, _ plan: [String]) throws -> Lab.Daemon {
        let script = try lab.file("peer.py", Self.peerScript)
        let planFile = try lab.file("plan", plan.joined(separator: "\n") + "\n")
        return try lab.spawn(ns, ["/usr/bin/python3", "-u", script, "127.0.0.1", "8942", planFile], name: "peer")
    }

    /// Wait for the script to finish; its key=value lines, the last of each key winning.
    private func finish(_ peer: Lab.Daemon) throws -> [String: String] {
        XCTAssertEqual(peer.stop(signal: 0, timeout: 60), 0, "client script: \(peer.output)")
        var result: [String: String] = [:]
        for line in peer.output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    /// What `tunneld status --json` says: drops before a session was known, and each
    /// session's counters and details by name.
    private struct Snapshot {
        var tunnelDrops: [String: Int]
        var sessions: [String: [String: Any]]
        var tunnels: Int?

        func counters(_ session: String) -> [String: Any] { sessions[session]?["counters"] as? [String: Any] ?? [:] }
        func drops(_ session: String) -> [String: Int] { Snapshot.drops(counters(session)) }

        static func drops(_ counters: [String: Any]) -> [String: Int] {
            ((counters["drops"] as? [String: Any]) ?? [:]).compactMapValues { $0 as? Int }
        }
    }

    private func status(_ socket: String) throws -> Snapshot {
        let json = try lab.run(Lab.binary, "status", socket, "--json").output
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
        var sessions: [String: [String: Any]] = [:]
        for session in object["sessions"] as? [[String: Any]] ?? [] {
            if let name = session["name"] as? String { sessions[name] = session }
        }
        let manager = object["manager"] as? [String: Any]
        return Snapshot(tunnelDrops: Snapshot.drops(object["tunnel"] as? [String: Any] ?? [:]), sessions: sessions,
                        tunnels: manager?["tunnels"] as? Int)
    }

    // MARK: datagrams, as hex for the plan

    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    private static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }

    /// A tunneldigger control message: header, payload, zero padding to 12 bytes (§1.2).
    private static func control(_ type: UInt8, _ payload: [UInt8] = [], size: Int = 12) -> [UInt8] {
        let message: [UInt8] = [0x80, 0x73, 0xA7, 0x01, type, UInt8(payload.count)] + payload
        return message + [UInt8](repeating: 0, count: max(0, size - message.count))
    }

    /// An L2TPv3 data packet as the kernel sends it (§4.1): `00 03 00 00`, the
    /// receiver's session id, a zero sublayer, the frame.
    private static func data(session: UInt32, _ frame: [UInt8], version: UInt8 = 3) -> [UInt8] {
        [0x00, version, 0x00, 0x00] + be32(session) + [0, 0, 0, 0] + frame
    }

    /// The script's ARP request for 10.99.5.1 from 02:00:00:00:00:02 (10.99.5.2): were
    /// a misaddressed copy delivered, the broker host would answer it.
    private static let arpRequest: [UInt8] =
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06,
         0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0, 0, 0, 0, 0x02, 10, 99, 5, 2,
         0, 0, 0, 0, 0, 0, 10, 99, 5, 1]

    // MARK: l2tp_no_tunnel

    /// Every message that needs a tunnel, sent from an address and port that have none
    /// (the tunnel's own address with another port, and another address), is counted
    /// `l2tp_no_tunnel` and answered with nothing: no REL_ACK, no PMTU ACK; the ERROR
    /// with a reason and the LIMIT do not touch the tunnel that is up next to them,
    /// which still carries a frame afterwards.
    func testControlMessagesFromAnAddressWithoutATunnelAreCountedAsNoTunnel() throws {
        let ns = try lab.namespace("n")
        let broker = try broker(ns)
        let needTunnel: [[UInt8]] = [
            Self.control(0x05, Self.be16(1)),                                  // KEEPALIVE, the broker's u16 form
            Self.control(0x05, Self.be32(2)),                                  // KEEPALIVE, the C client's u32 form
            Self.control(0x03, [0x11]),                                        // ERROR with a reason: would end a tunnel
            Self.control(0x04, Self.be32(7) + Self.be32(1)),                   // TUNNEL
            Self.control(0x06, size: 500),                                     // PMTU probe: would be acknowledged
            Self.control(0x07, Self.be16(1000)),                               // PMTU ACK
            Self.control(0x08, Self.be16(1)),                                  // REL_ACK
            Self.control(0x09, Self.be16(1400)),                               // PMTU_NTFY
            Self.control(0x80, Self.be16(1) + [0x01, 0x04] + Self.be32(1000)), // LIMIT: would be acknowledged and run tc
            Self.control(0x81, Self.be16(2)),                                  // a reliable type nobody defines
        ]
        let keepalives = 5  // a keepalive flood from an address that never had a tunnel
        let plan = ["establish \(Self.hex(Array("victim".utf8))) 7", "wait-file \(broker.upDone)", "arp victim"]
            + needTunnel.map { "send stranger \(Self.hex($0))" }
            + (0..<keepalives).map { _ in "send far \(Self.hex(Self.control(0x05, Self.be32(9))))" }
            + ["arp victim", "heard stranger 0.3", "heard far 0.3"]
        let report = try finish(try peer(ns, plan))
        XCTAssertEqual(report["broker_tunnel"], "100")
        XCTAssertEqual(report["arp"], "yes", "a frame crosses the pseudowire after the flood")
        XCTAssertEqual(report["heard_stranger"], "", "answers to an address without a tunnel")
        XCTAssertEqual(report["heard_far"], "", "answers to an address without a tunnel")

        let snapshot = try status(broker.status)
        XCTAssertEqual(snapshot.tunnelDrops, ["l2tp_no_tunnel": needTunnel.count + keepalives], broker.daemon.output)
        XCTAssertEqual(snapshot.tunnels, 1, "the tunnel next to them is still up")
        XCTAssertEqual(snapshot.drops("l2tp100-100"), [:])
        XCTAssertEqual(snapshot.counters("l2tp100-100")["rx_packets"] as? Int, Int(report["arp_sent"] ?? ""),
                       "only the script's good frames reached the session")
        XCTAssertFalse(FileManager.default.fileExists(atPath: broker.downDone), "session.down ran: \(broker.daemon.output)")
        XCTAssertTrue(broker.daemon.process.isRunning)
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
    }

    // MARK: l2tp_unexpected

    /// From an established tunnel's own address, the two types a broker never expects
    /// (TUNNEL, in both lengths, and REL_ACK: it sends no reliable messages) are counted
    /// `l2tp_unexpected`; a KEEPALIVE and a reasonless ERROR beside them are taken as
    /// usual, uncounted. Nothing is answered with an ERROR, the tunnel stays and carries
    /// a frame afterwards.
    func testTypesABrokerNeverExpectsAreCountedAsUnexpected() throws {
        let ns = try lab.namespace("u")
        let broker = try broker(ns)
        let unexpected: [[UInt8]] = [
            Self.control(0x04, Self.be32(7) + Self.be32(1)),  // TUNNEL with features
            Self.control(0x04, Self.be32(7)),                 // TUNNEL, legacy form
            Self.control(0x08, Self.be16(1)),                 // REL_ACK
        ]
        let expected: [[UInt8]] = [
            Self.control(0x05, Self.be32(1)),  // KEEPALIVE
            Self.control(0x03),                // ERROR without a reason: ignored, as upstream (§1.6)
        ]
        let plan = ["establish \(Self.hex(Array("victim".utf8))) 7", "wait-file \(broker.upDone)", "arp victim"]
            + (unexpected + expected).map { "send victim \(Self.hex($0))" }
            + ["arp victim", "heard victim 0.3"]
        let report = try finish(try peer(ns, plan))
        XCTAssertEqual(report["arp"], "yes", "a frame crosses the pseudowire afterwards")
        let heard = (report["heard_victim"] ?? "").split(separator: ",")
        XCTAssertFalse(heard.contains("03"), "the broker sent an ERROR: \(heard)")
        XCTAssertFalse(heard.contains("08"), "the broker acknowledged something: \(heard)")

        let snapshot = try status(broker.status)
        XCTAssertEqual(snapshot.tunnelDrops, ["l2tp_unexpected": unexpected.count], broker.daemon.output)
        XCTAssertEqual(snapshot.tunnels, 1)
        XCTAssertEqual(snapshot.drops("l2tp100-100"), [:])
        XCTAssertFalse(FileManager.default.fileExists(atPath: broker.downDone), "session.down ran: \(broker.daemon.output)")
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
    }

    /// tunneld's l2tp-client, established with a tunneld broker, gets datagrams from the
    /// broker's own address and port (sent by a raw socket on the broker's host, as an
    /// on-path attacker could): the three types a client never expects (PREPARE, LIMIT,
    /// another reliable type) are counted `l2tp_unexpected`; a TUNNEL, COOKIE and USAGE
    /// reply, valid but not in this state, are ignored uncounted, as the reference
    /// client does. The tunnel stays up and carries pings; no hook runs.
    func testTypesAClientNeverExpectsAreCountedAsUnexpected() throws {
        let b = try lab.namespace("b"), c = try lab.namespace("c")
        try lab.link(b, "10.201.1.1/24", c, "10.201.1.2/24", name: "\(lab.tag)p")
        let folder = lab.directory.path
        let brokerUp = try lab.file("broker-up", """
            #!/bin/sh
            ip link set "$3" up && ip addr add 10.99.7.1/24 dev "$3"
            echo "$6" > \(folder)/client-port
            """)
        let clientHook = try lab.file("client-hook", """
            #!/bin/sh
            echo "$@" >> \(folder)/client-hooks.log
            if [ "$1" = session.up ]; then ip link set "$2" up && ip addr add 10.99.7.2/24 dev "$2"; fi
            """)
        chmod(brokerUp, 0o755)
        chmod(clientHook, 0o755)
        let brokerSite = try lab.file("broker.yaml", """
            profile: l2tp-broker
            links:
              - { name: td, bind: "10.201.1.1:8942" }
            sessions:
              data-plane: userspace
              session.up: \(brokerUp)
            """)
        let clientStatus = "\(folder)/client.sock"
        let clientSite = try lab.file("client.yaml", """
            profile: l2tp-client
            status: { socket: \(clientStatus) }
            sessions:
              uuid: router
              brokers: ["10.201.1.1:8942"]
              interface: l2tp0
              data-plane: userspace
              hook: \(clientHook)
            """)
        let broker = try lab.tunneld(b, site: brokerSite, name: "broker")
        let client = try lab.tunneld(c, site: clientSite, name: "client")
        let hooks = { ((try? String(contentsOfFile: "\(folder)/client-hooks.log", encoding: .utf8)) ?? "").split(separator: "\n") }
        let port = {
            (try? String(contentsOfFile: "\(folder)/client-port", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var pinged = false
        for _ in 0..<100 where !pinged {
            if hooks() == ["session.up l2tp0"], port() != nil {
                pinged = try lab.exec(c, "ping", "-c", "1", "-W", "1", "10.99.7.1", allowFailure: true).status == 0
            }
            if !pinged { usleep(100_000) }
        }
        XCTAssertTrue(pinged, "the tunnel carries pings before: \(client.output)\n\(broker.output)")
        let clientPort = try XCTUnwrap(port(), "the broker's session.up hook got the client's port")
        let before = try status(clientStatus).tunnelDrops

        let unexpected: [[UInt8]] = [
            Self.control(0x02, [UInt8](repeating: 0xAA, count: 8) + [4] + Array("evil".utf8) + Self.be32(7)),  // PREPARE
            Self.control(0x80, Self.be16(1) + [0x01, 0x04] + Self.be32(10)),                                   // LIMIT
            Self.control(0x81, Self.be16(2)),                                                                   // another reliable type
        ]
        let outOfState: [[UInt8]] = [
            Self.control(0x04, Self.be32(100) + Self.be32(1)),                 // TUNNEL again
            Self.control(0x01, [UInt8](repeating: 0xBB, count: 8)),            // COOKIE reply
            Self.control(0x0A, Self.be16(0xFFFF)),                             // USAGE reply
        ]
        // A raw socket on the broker's host: UDP from 10.201.1.1:8942 (the broker's own
        // address and port, which its socket holds) to the client's connected socket.
        let inject = """
            import socket, struct, sys
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
            raw.bind(("10.201.1.1", 0))
            for datagram in sys.argv[2:]:
                payload = bytes.fromhex(datagram)
                # checksum 0: none, which IPv4 allows
                raw.sendto(struct.pack(">HHHH", 8942, int(sys.argv[1]), 8 + len(payload), 0) + payload, ("10.201.1.2", 0))
            """
        try lab.runArray(["ip", "netns", "exec", b, "/usr/bin/python3", "-c", inject, String(clientPort)]
                         + (unexpected + outOfState).map(Self.hex))
        // The echo replies come back over the same socket after the injected datagrams,
        // so once they are in, all of those have been handled.
        XCTAssertEqual(try lab.exec(c, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.7.1", allowFailure: true).status, 0,
                       "the tunnel carries pings after: \(client.output)")
        let after = try status(clientStatus).tunnelDrops
        XCTAssertNil(before["l2tp_unexpected"])
        var wanted = before
        wanted["l2tp_unexpected"] = unexpected.count
        XCTAssertEqual(after, wanted, client.output)
        XCTAssertEqual(hooks(), ["session.up l2tp0"], "no hook ran: the tunnel was not torn down")
        XCTAssertEqual(client.stop(), 0, client.output)
        XCTAssertEqual(broker.stop(), 0, broker.output)
    }

    // MARK: bad data datagrams

    /// Data packets no session owns, through the userspace data plane: a session id the
    /// tunnel does not have, from the tunnel's own address; the right session id from
    /// the tunnel's address with another port, and from another address. Each is
    /// `unknown_peer` on the tunnel and never reaches the session (its rx count is
    /// exactly the script's good frames); a good frame crosses afterwards.
    func testDataFromAnUnknownSessionOrAddressIsCountedAsUnknownPeer() throws {
        let ns = try lab.namespace("d")
        let broker = try broker(ns)
        let session: UInt32 = 100  // unique session ids: the broker's session id is its tunnel id
        let frame = Self.arpRequest
        let misaddressed: [(from: String, datagram: [UInt8])] = [
            ("victim", Self.data(session: session + 1, frame)),  // another session id
            ("victim", Self.data(session: 1, frame)),            // the legacy id, which this tunnel did not agree to
            ("victim", Self.data(session: 0, frame)),
            ("stranger", Self.data(session: session, frame)),    // right id, the tunnel's address, another port
            ("far", Self.data(session: session, frame)),         // right id, another address
        ]
        let plan = ["establish \(Self.hex(Array("victim".utf8))) 7", "wait-file \(broker.upDone)", "arp victim"]
            + misaddressed.map { "send \($0.from) \(Self.hex($0.datagram))" }
            + ["arp victim", "heard stranger 0.3", "heard far 0.3"]
        let report = try finish(try peer(ns, plan))
        XCTAssertEqual(report["broker_tunnel"], "100")
        XCTAssertEqual(report["features"], "1", "unique session ids agreed")
        XCTAssertEqual(report["arp"], "yes", "a frame crosses the pseudowire afterwards")
        XCTAssertEqual(report["heard_stranger"], "")
        XCTAssertEqual(report["heard_far"], "")

        let snapshot = try status(broker.status)
        XCTAssertEqual(snapshot.tunnelDrops, ["unknown_peer": misaddressed.count], broker.daemon.output)
        XCTAssertEqual(snapshot.drops("l2tp100-100"), [:])
        let arpSent = try XCTUnwrap(Int(report["arp_sent"] ?? ""))
        XCTAssertEqual(snapshot.counters("l2tp100-100")["rx_packets"] as? Int, arpSent, "only the good frames reached the session")
        XCTAssertEqual(snapshot.counters("l2tp100-100")["rx_bytes"] as? Int, arpSent * frame.count)
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
    }

    /// Data datagrams from the tunnel's own address that are too short to be a frame:
    /// below the 12-byte header (1, 4 and 11 bytes), the header alone, the header and
    /// 13 bytes (one short of an Ethernet header, `PseudowireHeader.minimumDatagram`
    /// is 26). They go to the tunnel's session, whose pseudowire stage counts each
    /// `truncated`; none is written to the TAP. A full packet whose version is not 3 is
    /// no data packet of this session: `unknown_peer` on the tunnel. An empty datagram
    /// has no first byte to call it data by and is the framework's `truncated`, on the
    /// tunnel. A good frame crosses afterwards.
    func testShortDataDatagramsAreTruncatedOnTheSession() throws {
        let ns = try lab.namespace("t")
        let broker = try broker(ns)
        let full = Self.data(session: 100, Self.arpRequest)
        let short: [[UInt8]] = [
            Array(full.prefix(1)),
            Array(full.prefix(4)),
            Array(full.prefix(11)),
            Array(full.prefix(12)),
            Array(full.prefix(25)),
            Self.data(session: 100, Self.arpRequest, version: 2),
        ]
        let plan = ["establish \(Self.hex(Array("victim".utf8))) 7", "wait-file \(broker.upDone)", "arp victim"]
            + short.map { "send victim \(Self.hex($0))" }
            + ["send victim -", "arp victim"]
        let report = try finish(try peer(ns, plan))
        XCTAssertEqual(report["arp"], "yes", "a frame crosses the pseudowire afterwards")

        let snapshot = try status(broker.status)
        XCTAssertEqual(snapshot.tunnelDrops, ["unknown_peer": 1, "truncated": 1], broker.daemon.output)
        XCTAssertEqual(snapshot.drops("l2tp100-100"), ["truncated": short.count - 1], "the short ones, on the session")
        XCTAssertEqual(snapshot.counters("l2tp100-100")["rx_packets"] as? Int, Int(report["arp_sent"] ?? ""))
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
    }

    // MARK: a hostile UUID

    /// A PREPARE whose UUID is as long as the wire allows (246 bytes: L is one byte and
    /// holds the 8-byte cookie and the length byte too, with no tunnel id after it) and
    /// full of shell: `$(…)`, backticks, `;`, quotes, a newline, control bytes and bytes
    /// of 0x80 and above. session.up gets it as its eighth argument with every byte
    /// outside printable ASCII turned into `_`, whole and literal: no command in it ran.
    /// The status and the hook's log line show the same text.
    func testAHostileUUIDReachesTheHookSanitisedAndLiteral() throws {
        let ns = try lab.namespace("h")
        let broker = try broker(ns)
        let pwned = lab.directory.appendingPathComponent("pwned").path
        var uuid = Array("$(touch \(pwned))`touch \(pwned)`;touch \(pwned);'single' \"double\"".utf8)
            + [0x0A, 0x0D, 0x09, 0x00, 0x1B, 0x7F, 0x80, 0xC3, 0xA9, 0xFF] + Array("end\n".utf8)
        XCTAssertLessThan(uuid.count, 246, "the lab folder's path leaves room for padding")
        uuid += [UInt8](repeating: UInt8(ascii: "x"), count: 246 - uuid.count)
        let sanitised = String(decoding: uuid.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)

        // No tunnel id: the longest UUID; the broker then takes the legacy ids (1, 1).
        let report = try finish(try peer(ns, ["establish \(Self.hex(uuid))", "wait-file \(broker.upDone)", "arp victim"]))
        XCTAssertEqual(report["broker_tunnel"], "100")
        XCTAssertEqual(report["arp"], "yes")

        let lines = try String(contentsOfFile: broker.upArguments, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.first, "9", "tunneldigger's nine arguments, the UUID one of them: \(lines)")
        XCTAssertEqual(lines.count, 11, "count, nine lines, the final newline: a newline got through otherwise: \(lines)")
        if lines.count == 11 {
            XCTAssertEqual(Array(lines[1...4]), ["100", "1", "l2tp100-1", "1446"])
            XCTAssertEqual(String(lines[8]), sanitised)
            XCTAssertEqual(lines[8].utf8.count, 246, "not cut: 246 bytes fit the 255-byte limit")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "a command in the UUID ran")
        let snapshot = try status(broker.status)
        let details = snapshot.sessions["l2tp100-1"]?["details"] as? [String: Any]
        XCTAssertEqual(details?["uuid"] as? String, sanitised)
        let hookLine = broker.daemon.output.split(separator: "\n").first { $0.contains("hook: ") && $0.contains("session.up ") }
        XCTAssertTrue(hookLine?.hasSuffix(" \(sanitised) 8942") ?? false, "the hook's log line: \(String(describing: hookLine))")
        XCTAssertEqual(broker.daemon.stop(), 0, broker.daemon.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "a command in the UUID ran")
    }

    // MARK: the client script

    /// A tunneldigger client by hand (byte layouts from tunneldigger-protocol.md),
    /// running a plan one step a line and printing key=value lines:
    ///
    ///     establish UUID_HEX [TID]  COOKIE, then PREPARE from 'victim' (with TID and
    ///                               unique session ids, else the legacy form)
    ///     send ENDPOINT HEX|-       one datagram ('-': empty) from 'victim', 'stranger'
    ///                               (victim's address, another port) or 'far' (127.0.0.2)
    ///     arp ENDPOINT              ARP requests for 10.99.5.1 through the pseudowire until
    ///                               one is answered (20 tries): arp=yes|no, arp_sent=N
    ///     wait-file PATH            until PATH exists
    ///     heard ENDPOINT SECONDS    listens, then heard_ENDPOINT= the control types the
    ///                               endpoint received all along, hex, comma-separated
    ///
    /// An ARP answer comes back only after the broker has read the tunnel's TAP, a later
    /// turn of its loop than any datagram sent before: a barrier before reading counters.
    private static let peerScript = #"""
        import os, socket, struct, sys, time

        broker = (sys.argv[1], int(sys.argv[2]))
        plan = open(sys.argv[3]).read().splitlines()
        MAGIC = b"\x80\x73\xa7\x01"
        MAC = bytes.fromhex("020000000002")
        sockets, heard = {}, {}
        session, arp_sent = None, 0

        def endpoint(name):
            if name not in sockets:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.2" if name == "far" else "127.0.0.1", 0))
                s.connect(broker)
                s.settimeout(0.05)
                sockets[name], heard[name] = s, []
            return sockets[name]

        def receive(name, wanted, seconds):
            s = endpoint(name)
            deadline = time.time() + seconds
            while time.time() < deadline:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                if data[:4] == MAGIC and len(data) >= 6:
                    heard[name].append(data[4])
                if wanted(data):
                    return data
            return None

        def control(kind):
            return lambda d: d[:4] == MAGIC and len(d) >= 6 and d[4] == kind

        def message(kind, payload):
            data = MAGIC + bytes([kind, len(payload)]) + payload
            return data + b"\x00" * max(0, 12 - len(data))

        def arp_request():
            arp = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + MAC + socket.inet_aton("10.99.5.2") \
                + b"\x00" * 6 + socket.inet_aton("10.99.5.1")
            return b"\xff" * 6 + MAC + b"\x08\x06" + arp

        def is_arp_reply(d):
            return d[0] & 0x80 == 0 and len(d) >= 12 + 14 + 28 and d[24:26] == b"\x08\x06" and d[32:34] == b"\x00\x02"

        def wait_for(path, seconds):
            deadline = time.time() + seconds
            while not os.path.exists(path):
                if time.time() > deadline:
                    sys.exit("%s did not appear" % path)
                time.sleep(0.05)

        for line in plan:
            step = line.split()
            if not step:
                continue
            if step[0] == "establish":
                uuid = bytes.fromhex(step[1])
                tail = struct.pack(">II", int(step[2]), 1) if len(step) > 2 else b""
                endpoint("victim").send(message(1, b"X" * 8))
                cookie = receive("victim", control(1), 5)
                if cookie is None:
                    sys.exit("no COOKIE")
                endpoint("victim").send(message(2, cookie[6:14] + bytes([len(uuid)]) + uuid + tail))
                tunnel = receive("victim", control(4), 5)
                if tunnel is None:
                    sys.exit("no TUNNEL")
                tid = struct.unpack(">I", tunnel[6:10])[0]
                features = struct.unpack(">I", tunnel[10:14])[0] if tunnel[5] >= 8 else 0
                session = tid if features & 1 else 1
                print("broker_tunnel=%d" % tid)
                print("features=%d" % features)
            elif step[0] == "send":
                endpoint(step[1]).send(b"" if step[2] == "-" else bytes.fromhex(step[2]))
            elif step[0] == "arp":
                answered = False
                header = struct.pack(">HHI", 0x0003, 0, session) + b"\x00" * 4
                for attempt in range(20):
                    endpoint(step[1]).send(header + arp_request())
                    arp_sent += 1
                    if receive(step[1], is_arp_reply, 0.5) is not None:
                        answered = True
                        break
                print("arp=%s" % ("yes" if answered else "no"))
                print("arp_sent=%d" % arp_sent)
            elif step[0] == "wait-file":
                wait_for(step[1], 20)
            elif step[0] == "heard":
                receive(step[1], lambda d: False, float(step[2]))
                print("heard_%s=%s" % (step[1], ",".join("%02x" % t for t in heard[step[1]])))
            else:
                sys.exit("unknown step: %s" % line)
        """#
}
