import Foundation
import XCTest

/// Real `tunneld` processes in namespaces, bonding-client to bonding-server over
/// rate-limited uplinks with emulated delay, TCP through the tunnel.
final class BondingTunnelTests: LabTestCase {
    private func start(_ uplinks: [BondingLab.Uplink], clientExtra: String = "", hubExtra: String = "",
                       clientStages: String = "", hubStages: String = "")
        throws -> (bond: BondingLab, site: String, client: Lab.Daemon, hub: Lab.Daemon) {
        let bond = try BondingLab(lab)
        let site = try bond.site("c", uplinks: uplinks)
        let hubFile = try bond.hubFile(peers: ["site1=\(site.publicKey)"], extra: hubExtra, stages: hubStages)
        let clientFile = try bond.clientFile("client.yaml", key: site.key, address: "10.99.0.1/30", uplinks: uplinks, extra: clientExtra,
                                             stages: clientStages)
        let hub = try lab.tunneld(bond.hub, site: hubFile, name: "hub")
        let client = try lab.tunneld(site.ns, site: clientFile, name: "client")
        try bond.waitUp(client, links: uplinks.filter { !$0.extra.contains("fallback") }.map(\.name))
        return (bond, site.ns, client, hub)
    }

    /// Both uplinks at once without the tunnel, steady state (`omit` seconds left out)
    /// over the same window as the tunnel's run: the sum the tunnel is measured against.
    private func rawSum(_ bond: BondingLab, _ site: String, seconds: Int, omit: Int) throws -> (sum: Double, text: String) {
        let links = try bond.rawLinks(from: site, networks: [1, 2], seconds: seconds, omit: omit)
        let text = links.map { String(format: "%.1f", $0.mbps) }.joined(separator: " + ")
        return (links.reduce(0) { $0 + $1.mbps }, text)
    }

    private func format(_ value: Double) -> String { String(format: "%.1f", value) }

    // a. 40 + 20 Mbit/s, equal delay.
    func testTwoUnequalLinksAddUp() throws {
        let (bond, site, _, _) = try start([.init(name: "fast", rate: "40mbit", delayMs: 0), .init(name: "slow", rate: "20mbit", delayMs: 0)])
        let raw = try rawSum(bond, site, seconds: 8, omit: 2)
        let bar = 0.95
        let tunnel = try bond.measuredAgainIfStalled(bar: bar, of: raw.sum) {
            try bond.tcp(from: site, to: "10.99.0.2", serverNamespace: bond.hub, seconds: 8, omit: 2)
        }
        let ratio = tunnel.mbps / raw.sum
        // Whether the machine stalled and whether a link went quiet: a CI run at 0.938
        // and a local one at 0.941 (0.961 otherwise) came from a VM whose loops stalled.
        print("bonding a: raw links \(raw.text) = \(format(raw.sum)) Mbit/s, tunnel \(format(tunnel.mbps)), ratio \(String(format: "%.3f", ratio)), retransmits \(tunnel.retransmits); \(try bond.loopsAndLinks())")
        // Each 1500-byte datagram carries 1392 bytes of TCP payload through the tunnel
        // and 1448 without it: a tunnel that keeps both links busy carries 0.961 of the
        // raw links (an 8 s window can read a little more: token-bucket bursts).
        XCTAssertGreaterThanOrEqual(ratio, bar, "issue 4 §8a: goodput over both links against their raw sum")
        XCTAssertLessThan(Double(tunnel.retransmits), tunnel.mbps * 1e6 * 8 / 8 / 1392 * 0.01, "more than 1 % retransmitted")
    }

    // b. the same rates with 10 ms and 40 ms one-way delay, with cubic and with bbr.
    func testUnequalDelaysStillAggregate() throws {
        let (bond, site, _, _) = try start([.init(name: "fast", rate: "40mbit", delayMs: 10), .init(name: "slow", rate: "20mbit", delayMs: 40)])
        let raw = try rawSum(bond, site, seconds: 8, omit: 2)
        var worst = Double.infinity
        let bar = 0.85
        for congestion in ["cubic", "bbr"] {
            let tunnel = try bond.measuredAgainIfStalled(bar: bar, of: raw.sum) {
                try bond.tcp(from: site, to: "10.99.0.2", serverNamespace: bond.hub, seconds: 8, omit: 2, congestion: congestion,
                             port: congestion == "bbr" ? 5202 : 5201)
            }
            let segments = tunnel.mbps * 1e6 * 8 / 8 / 1392
            let retransmitRate = Double(tunnel.retransmits) / max(segments, 1)
            let ratio = tunnel.mbps / raw.sum
            print("bonding b: raw links \(raw.text) = \(format(raw.sum)) Mbit/s (no delay), tunnel \(congestion) \(format(tunnel.mbps)), ratio \(String(format: "%.3f", ratio)), retransmits \(tunnel.retransmits) (\(String(format: "%.2f", retransmitRate * 100)) %); \(try bond.loopsAndLinks())")
            // cubic backs off at its first loss: well under 1 %. BBR (v1) fills the uplinks'
            // queues until they drop, as it does over one link of the same RTT through the
            // tunnel (6-8 % measured there): the bound is set from the measured spread.
            XCTAssertLessThan(retransmitRate, congestion == "cubic" ? 0.01 : 0.15, "\(congestion): retransmissions")
            worst = min(worst, ratio)
        }
        let hubSocket = lab.directory.appendingPathComponent("hub.sock").path
        let reorder = try XCTUnwrap((try bond.session(socket: hubSocket)["details"] as? [String: Any])?["reorder"] as? [String: Any])
        print("bonding b: hub reorder \(reorder.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        // Bulk data by the 10 ms link waits at the hub for the 40 ms one: most of the
        // packets are aligned, and hardly any comes too late for its place.
        let aligned = reorder["aligned"] as? Int ?? 0, inOrder = reorder["in_order"] as? Int ?? 0
        XCTAssertGreaterThan(aligned, 20_000, "\(reorder)")
        XCTAssertLessThan(reorder["late"] as? Int ?? 0, (aligned + inOrder) / 1000, "\(reorder)")
        XCTAssertGreaterThanOrEqual(worst, bar, "issue 4 §8b: the worse of cubic and bbr against the raw sum")
    }

    // b'. the same links while the whole machine stalls: every tunneld and relay is
    // frozen for 100 ms once a second (a loaded or descheduled VM; CI saw one). Gaps
    // whose hold ran out in the stall wait for what the paths were bringing.
    func testAStalledMachineStillDeliversInOrder() throws {
        let (bond, site, client, hub) = try start([.init(name: "fast", rate: "40mbit", delayMs: 10), .init(name: "slow", rate: "20mbit", delayMs: 40)])
        let frozen = ([client, hub] + bond.relays.values).map { String($0.process.processIdentifier) }.joined(separator: " ")
        // Resumes them when stopped, so no process is left frozen whatever happens.
        let freezer = try lab.spawn(site, ["sh", "-c", """
            trap 'kill -CONT \(frozen); exit 0' TERM INT
            while :; do sleep 0.9; kill -STOP \(frozen); sleep 0.1; kill -CONT \(frozen); done
            """], name: "freezer")
        let tunnel: BondingLab.Transfer
        do {
            defer {
                _ = freezer.stop()
                for daemon in [client, hub] + bond.relays.values { kill(daemon.process.processIdentifier, SIGCONT) }
            }
            tunnel = try bond.tcp(from: site, to: "10.99.0.2", serverNamespace: bond.hub, seconds: 8, omit: 1, congestion: "cubic")
        }
        let hubStatus = try bond.status(socket: lab.directory.appendingPathComponent("hub.sock").path)
        let stalls = try BondingLab.stalls(in: hubStatus)
        let reorder = try XCTUnwrap((try BondingLab.session(in: hubStatus)["details"] as? [String: Any])?["reorder"] as? [String: Any])
        print("bonding stalls: cubic \(format(tunnel.mbps)) Mbit/s, retransmits \(tunnel.retransmits), hub loop stalls \(stalls), "
              + "reorder \(reorder.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        XCTAssertGreaterThanOrEqual(stalls, 4, "the hub must have noticed the stalls")
        // Eight freezes of 100 ms: 0-0.3 % of the packets late in 12 runs (most runs 0),
        // 1.4 % before stalls were noticed. The 0.1 % of the run without freezes is not
        // reached every time: a freeze the hub does not see in time still lets a few
        // dozen gaps go just before their packets arrive.
        let aligned = reorder["aligned"] as? Int ?? 0, inOrder = reorder["in_order"] as? Int ?? 0
        XCTAssertLessThan(reorder["late"] as? Int ?? 0, (aligned + inOrder) / 200, "\(reorder)")
    }

    // c. the faster link is cut mid-transfer, then restored.
    func testFailoverKeepsTCPAndTheLinkRejoins() throws {
        let (bond, site, client, _) = try start([.init(name: "fast", rate: "40mbit", delayMs: 5), .init(name: "slow", rate: "20mbit", delayMs: 5)])
        let slowRaw = try XCTUnwrap(bond.rawLinks(from: site, networks: [2], seconds: 3, omit: 2).first).mbps
        _ = try lab.spawn(bond.hub, ["iperf3", "-s", "-1", "-p", "5401"], name: "iperf3-server-5401")
        usleep(300_000)
        let transfer = try lab.spawn(site, ["iperf3", "-c", "10.99.0.2", "-p", "5401", "-t", "9", "-i", "0.5", "-J"], name: "iperf-failover")
        sleep(3)
        // What the hub receives every 50 ms around the cut, and the sender's timeouts:
        // a failing run says whether TCP waited out a retransmission timeout.
        let sampler = try lab.spawn(bond.hub, ["sh", "-c", "for i in $(seq 90); do echo $(date +%s.%N) $(cat /sys/class/net/tun0/statistics/rx_bytes); sleep 0.05; done"],
                                    name: "hub-rx-sampler")
        usleep(200_000)
        let beforeCut = client.output.count
        bond.signalRelay("c/fast", SIGUSR2)  // blackhole the fast uplink
        let cut = Date()
        var detected: TimeInterval?
        while Date().timeIntervalSince(cut) < 1.5 {
            let since = client.output.dropFirst(beforeCut)
            if since.contains("link fast (10.201.1.2:6001) up → down") || since.contains("link fast (10.201.1.2:6001) lossy → down") {
                detected = Date().timeIntervalSince(cut)
                break
            }
            usleep(20_000)
        }
        XCTAssertLessThan(detected ?? 99, 1.0, "the cut must be detected in under a second: \(client.output)")
        // Goodput the hub receives from 1 s to 3 s after the cut, from its device
        // counter read together with the clock in one command (iperf3's sender
        // intervals move in buffer-sized steps; process start-up would blur the times).
        func hubBytes() throws -> (bytes: Double, seconds: Double) {
            let text = try lab.exec(bond.hub, "sh", "-c", "cat /sys/class/net/tun0/statistics/rx_bytes; date +%s.%N").output
            let fields = text.split(separator: "\n").compactMap { Double($0) }
            guard fields.count == 2 else { throw LabError("cannot read the hub's counter: \(text)") }
            return (fields[0], fields[1])
        }
        // IP bytes to TCP payload: 1392 of every 1444.
        func goodput(_ from: (bytes: Double, seconds: Double), _ to: (bytes: Double, seconds: Double)) -> Double {
            (to.bytes - from.bytes) * 8 / (to.seconds - from.seconds) / 1e6 * 1392 / 1444
        }
        usleep(useconds_t(max(0, 1 - Date().timeIntervalSince(cut)) * 1e6))
        let first = try hubBytes()
        usleep(1_000_000)
        let middle = try hubBytes()
        usleep(1_000_000)
        let second = try hubBytes()
        // The second after "within 1 s" on its own, and the one after it.
        let firstSecond = goodput(first, middle), secondSecond = goodput(middle, second)
        let clientSocket = lab.directory.appendingPathComponent("client.yaml.sock").path
        let beforeRestore = client.output.count
        bond.signalRelay("c/fast", SIGUSR2)  // restore it
        let restored = Date()
        let fastAtRestore = try bond.pathTx(socket: clientSocket)["fast"]?.packets ?? 0
        var rejoined: TimeInterval?
        while Date().timeIntervalSince(restored) < 3 {
            if client.output.dropFirst(beforeRestore).contains("link fast (10.201.1.2:6001) down → up") {
                rejoined = Date().timeIntervalSince(restored)
                break
            }
            usleep(20_000)
        }
        // Within 2 s of the restore the fast link carries data again: thousands of
        // packets, where its probes and echoes alone would be about 80.
        usleep(useconds_t(max(0, 2 - Date().timeIntervalSince(restored)) * 1e6))
        let fastCarried = (try bond.pathTx(socket: clientSocket)["fast"]?.packets ?? 0) - fastAtRestore
        XCTAssertGreaterThan(fastCarried, 300, "data packets on the fast link in the 2 s after the restore")
        XCTAssertEqual(transfer.stop(signal: 0, timeout: 20), 0, transfer.output)  // waits for iperf3 to finish
        let intervals = try BondingLab.transfer(transfer.output).intervals  // throws if the connection broke
        let tcp = try lab.exec(site, "nstat", "-asz", "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPLossProbes", "TcpExtTCPSpuriousRTOs").output
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(2).joined(separator: "=") }
        _ = sampler.stop(signal: 0, timeout: 5)
        print("bonding c: sender \(tcp.joined(separator: " ")); hub goodput every 50 ms from the cut (Mbit/s): \(BondingLab.timeline(sampler.output, from: cut))")
        print("bonding c: cut detected after \(detected.map { String(format: "%.2f s", $0) } ?? "no"); slow link raw \(String(format: "%.1f", slowRaw)) Mbit/s; TCP 1.0–2.0 s after the cut \(String(format: "%.1f", firstSecond)) (\(String(format: "%.2f", firstSecond / slowRaw))), 2.0–3.0 s \(String(format: "%.1f", secondSecond)) (\(String(format: "%.2f", secondSecond / slowRaw))); fast link carried \(fastCarried) packets in the 2 s after the restore; rejoined \(rejoined.map { String(format: "%.2f s", $0) } ?? "no") after restore; intervals \(intervals.map { String(format: "%.0f", $0) })")
        XCTAssertGreaterThan(firstSecond, 0.9 * slowRaw, "the second from 1 s after the cut")
        XCTAssertGreaterThan(secondSecond, 0.9 * slowRaw, "the second from 2 s after the cut")
        XCTAssertLessThan(rejoined ?? 99, 2)
        // Traffic uses the fast link again: the last second carries more than the slow link can.
        XCTAssertGreaterThan(intervals.suffix(2).reduce(0, +) / 2, slowRaw * 1.2)
    }

    // d. a fallback-only link is idle while a normal link is up, and carries traffic when none is.
    func testFallbackLinkOnlyWhenNothingElse() throws {
        let (bond, site, client, _) = try start([.init(name: "main", rate: "20mbit", delayMs: 2),
                                                 .init(name: "backup", rate: "20mbit", delayMs: 2, extra: ", fallback-only: true")])
        let socket = lab.directory.appendingPathComponent("client.yaml.sock").path
        // 300 pings of 1400 bytes: none of them may take the backup while main is up.
        func push() throws -> String {
            try lab.exec(site, "ping", "-c", "300", "-i", "0.005", "-s", "1400", "-W", "1", "-q", "10.99.0.2", allowFailure: true).output
        }
        func backup() throws -> (packets: Int, bytes: Int) { try bond.pathTx(socket: socket)["backup"] ?? (0, 0) }
        let start = try backup()
        _ = try push()
        let up = try backup()
        let (upPackets, upBytes) = (up.packets - start.packets, up.bytes - start.bytes)
        // Probes and echoes only (about 60 bytes each): one ping would add 1464.
        XCTAssertLessThan(upBytes, max(upPackets, 1) * 80, "backup carried data while main was up")
        bond.signalRelay("c/main", SIGUSR2)
        sleep(1)
        // Idle, it is down within the second.
        XCTAssertTrue(client.output.split(separator: "\n").contains { $0.contains("link main (10.201.1.2:6001)") && $0.contains(" → down") },
                      client.output)
        let ping = try push()
        let down = try backup()
        print("bonding d: backup sent \(upPackets) packets, \(upBytes) B while main was up; \(down.packets - up.packets) packets, \(down.bytes - up.bytes) B while it was down")
        XCTAssertGreaterThan(down.bytes - up.bytes, 290 * 1400, "no data over the fallback link: \(ping)")
    }

    // e. two client sites on one hub, traffic kept apart.
    func testTwoSitesOnOneHub() throws {
        let bond = try BondingLab(lab)
        let uplinks: [BondingLab.Uplink] = [.init(name: "wan1", rate: "30mbit", delayMs: 1), .init(name: "wan2", rate: "30mbit", delayMs: 1)]
        let one = try bond.site("c", uplinks: uplinks, firstNetwork: 1)
        let two = try bond.site("d", uplinks: uplinks, firstNetwork: 3)
        let hubFile = try bond.hubFile(peers: ["one=\(one.publicKey)", "two=\(two.publicKey)"], extra: """
        sessions: { routes: ["one=10.99.0.1/32 10.50.1.0/24", "two=10.99.0.5/32 10.50.2.0/24"] }
        """)
        let hub = try lab.tunneld(bond.hub, site: hubFile, name: "hub")
        try lab.exec(bond.hub, "ip", "route", "add", "10.99.0.4/30", "dev", "tun0")
        let fileOne = try bond.clientFile("one.yaml", key: one.key, address: "10.99.0.1/30", uplinks: uplinks, firstNetwork: 1)
        let fileTwo = try bond.clientFile("two.yaml", key: two.key, address: "10.99.0.5/30", uplinks: uplinks, firstNetwork: 3)
        let clientOne = try lab.tunneld(one.ns, site: fileOne, name: "one")
        let clientTwo = try lab.tunneld(two.ns, site: fileTwo, name: "two")
        try bond.waitUp(clientOne, links: ["wan1", "wan2"])
        try bond.waitUp(clientTwo, links: ["wan1", "wan2"])
        try lab.exec(two.ns, "ip", "route", "add", "10.99.0.2/32", "dev", "tun0")
        // Each site reaches the hub; the hub reaches each site by its own address.
        try lab.exec(one.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        try lab.exec(two.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2")
        try lab.exec(bond.hub, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.5")
        // Both at once with TCP.
        _ = try lab.spawn(bond.hub, ["iperf3", "-s", "-1", "-p", "5501"], name: "iperf3-server-5501")
        _ = try lab.spawn(bond.hub, ["iperf3", "-s", "-1", "-p", "5502"], name: "iperf3-server-5502")
        usleep(300_000)
        let a = try lab.spawn(one.ns, ["iperf3", "-c", "10.99.0.2", "-p", "5501", "-t", "4", "-J"], name: "iperf-one")
        let b = try lab.spawn(two.ns, ["iperf3", "-c", "10.99.0.2", "-p", "5502", "-t", "4", "-J"], name: "iperf-two")
        XCTAssertEqual(a.stop(signal: 0, timeout: 20), 0, a.output)
        XCTAssertEqual(b.stop(signal: 0, timeout: 20), 0, b.output)
        // Site two pretending to be site one (a source from one's prefix) is dropped at the hub.
        try lab.exec(two.ns, "ip", "addr", "add", "10.50.1.9/32", "dev", "tun0")
        let spoofed = try lab.exec(two.ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.50.1.9", "10.99.0.2", allowFailure: true)
        XCTAssertTrue(spoofed.output.contains("3 packets transmitted, 0 received"), spoofed.output)
        hub.stop()
        let sessionTwo = counters(in: hub.output, for: "session=two")
        // The three spoofed pings at least (the kernel may send more from that address).
        XCTAssertGreaterThanOrEqual(sessionTwo["drop.wrong_source"] ?? 0, 3, hub.output)
        XCTAssertTrue(hub.output.contains("site one connected") && hub.output.contains("site two connected"))
    }

    // f. the client's source port changes mid-transfer (NAT rebinding).
    func testNATRebindingMidTransfer() throws {
        let (bond, site, _, hub) = try start([.init(name: "wan1", rate: "30mbit", delayMs: 2), .init(name: "wan2", rate: "30mbit", delayMs: 2)])
        _ = try lab.spawn(bond.hub, ["iperf3", "-s", "-1", "-p", "5601"], name: "iperf3-server-5601")
        usleep(300_000)
        let transfer = try lab.spawn(site, ["iperf3", "-c", "10.99.0.2", "-p", "5601", "-t", "6", "-i", "1", "-J"], name: "iperf-nat")
        sleep(2)
        bond.signalRelay("c/wan1", SIGUSR1)
        bond.signalRelay("c/wan2", SIGUSR1)
        XCTAssertEqual(transfer.stop(signal: 0, timeout: 20), 0, transfer.output)
        let intervals = try BondingLab.transfer(transfer.output).intervals
        print("bonding f: intervals around the rebinding at 2 s: \(intervals.map { String(format: "%.0f", $0) })")
        XCTAssertTrue(hub.output.contains("link wan1 moved from"), hub.output)
        XCTAssertTrue(hub.output.contains("link wan2 moved from"), hub.output)
        XCTAssertGreaterThan(intervals.last ?? 0, 30)  // both links carry traffic again after the move
    }

    // Hooks with mlvpn's calling convention; SIGHUP adding, then removing and retuning links under TCP, no new session.
    func testStatusHooksAndReloadAddingAndRemovingLinks() throws {
        let hookLog = lab.directory.appendingPathComponent("hooks.log").path
        // Every variable mlvpn passes; `-unset` tells an unset one from an empty one.
        let script = try lab.file("hook.sh", "#!/bin/sh\necho \"$* MTU=$MTU IP4=$IP4 IP6=$IP6 IP4_GATEWAY=$IP4_GATEWAY IP6_GATEWAY=${IP6_GATEWAY-unset} IP4_ROUTES=$IP4_ROUTES IP6_ROUTES=${IP6_ROUTES-unset} DEVICE=$DEVICE\" >> \(hookLog)\n")
        let env = "MTU=1444 IP4=10.99.0.1/30 IP6=fd00:99::1/64 IP4_GATEWAY=10.99.0.2 IP6_GATEWAY= IP4_ROUTES=10.60.0.0/16 IP6_ROUTES= DEVICE=tun0"
        chmod(script, 0o700)
        let uplinks: [BondingLab.Uplink] = [.init(name: "wan1", rate: "20mbit", delayMs: 1), .init(name: "wan2", rate: "20mbit", delayMs: 1)]
        let bond = try BondingLab(lab)
        let site = try bond.site("c", uplinks: uplinks)
        let hub = try lab.tunneld(bond.hub, site: try bond.hubFile(peers: ["site1=\(site.publicKey)"]), name: "hub")
        let hooks = "sessions: { status-command: \(script), ip4: 10.99.0.1/30, ip6: \"fd00:99::1/64\", ip4-gateway: 10.99.0.2, ip4-routes: 10.60.0.0/16 }"
        let clientFile = try bond.clientFile("client.yaml", key: site.key, address: "10.99.0.1/30", uplinks: [uplinks[0]], extra: hooks)
        let client = try lab.tunneld(site.ns, site: clientFile, name: "client")
        try bond.waitUp(client, links: ["wan1"])
        // Reload with a second link; TCP runs across the reload.
        _ = try lab.spawn(bond.hub, ["iperf3", "-s", "-1", "-p", "5701"], name: "iperf3-server-5701")
        usleep(300_000)
        let transfer = try lab.spawn(site.ns, ["iperf3", "-c", "10.99.0.2", "-p", "5701", "-t", "6", "-J"], name: "iperf-reload")
        sleep(1)
        _ = try bond.clientFile("client.yaml", key: site.key, address: "10.99.0.1/30", uplinks: uplinks, extra: hooks)
        kill(client.process.processIdentifier, SIGHUP)
        try bond.waitUp(client, links: ["wan1", "wan2"])
        // A broken file is refused with its position and changes nothing.
        _ = try lab.file("client.yaml", "profile: bonding-client\nlinks: [ {name: x}\n")
        kill(client.process.processIdentifier, SIGHUP)
        usleep(500_000)
        // Remove wan1 and retune wan2 (a loss tolerance): the TCP transfer carries on over wan2.
        var retuned = uplinks[1]
        retuned.extra = ", loss-tolerance: 50"
        _ = try bond.clientFile("client.yaml", key: site.key, address: "10.99.0.1/30", uplinks: [retuned], firstNetwork: 2, extra: hooks)
        kill(client.process.processIdentifier, SIGHUP)
        let removed = Date().addingTimeInterval(3)
        while !client.output.contains("1 link (wan2)") && Date() < removed { usleep(50_000) }
        XCTAssertTrue(client.output.contains("link wan1 closed"), client.output)
        XCTAssertTrue(client.output.contains("reloaded \(clientFile): 1 link (wan2)"), client.output)
        XCTAssertEqual(transfer.stop(signal: 0, timeout: 20), 0, transfer.output)
        _ = try BondingLab.transfer(transfer.output)  // throws if the connection broke across the reloads
        XCTAssertTrue(client.output.contains("reloaded"), client.output)
        XCTAssertTrue(client.output.contains("reload refused, keeping the running configuration: \(clientFile):3:1: not valid YAML: while parsing a flow sequence: did not find expected ',' or ']'"), client.output)
        XCTAssertEqual(client.output.components(separatedBy: "keys established").count, 2, "the reload must not start a new session")
        client.stop()
        hub.stop()
        let events = (try? String(contentsOfFile: hookLog, encoding: .utf8)) ?? ""
        let lines = events.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "tun0 tuntap_up \(env)", events)
        XCTAssertEqual(Array(lines.prefix(3).dropFirst()), ["tun0 rtun_up wan1 \(env)", "tun0 rtun_up wan2 \(env)"], events)
        XCTAssertEqual(lines.last, "tun0 tuntap_down \(env)", events)
        // wan1 went down when the reload removed it, wan2 at the stop.
        XCTAssertEqual(lines.filter { $0.contains("rtun_down") }, ["tun0 rtun_down wan1 \(env)", "tun0 rtun_down wan2 \(env)"], events)
    }

    // Pin rules: ICMP kept on the long link, whatever its delay (mlvpn's filters).
    func testPinRuleKeepsTrafficOnItsLink() throws {
        let (bond, site, _, _) = try start([.init(name: "fast", rate: "20mbit", delayMs: 5), .init(name: "slow", rate: "20mbit", delayMs: 30)],
                                           clientStages: "  bonding.scheduler: { pin: [\"icmp -> slow\"] }")
        let socket = lab.directory.appendingPathComponent("client.yaml.sock").path
        let before = try bond.pathTx(socket: socket)
        let ping = try lab.exec(site, "ping", "-c", "20", "-i", "0.05", "-s", "1000", "-W", "1", "-q", "10.99.0.2").output
        let after = try bond.pathTx(socket: socket)
        let slow = (after["slow"]!.packets - before["slow"]!.packets, after["slow"]!.bytes - before["slow"]!.bytes)
        let fast = (after["fast"]!.packets - before["fast"]!.packets, after["fast"]!.bytes - before["fast"]!.bytes)
        print("bonding pin: slow carried \(slow.0) packets, \(slow.1) B; fast \(fast.0) packets, \(fast.1) B; \(ping.split(separator: "\n").last ?? "")")
        XCTAssertTrue(ping.contains("20 received"), ping)
        XCTAssertGreaterThanOrEqual(slow.1, 20 * 1028, "every echo request on the pinned link")
        // Probes and echoes are 50-60 bytes; a single 1028-byte echo request would lift the average past 75.
        XCTAssertLessThan(Double(fast.1) / Double(max(fast.0, 1)), 75, "the fast link carried a ping")
        // The requests took the 30 ms link (the replies, not pinned at the hub, the 5 ms one).
        let minimum = try XCTUnwrap(ping.split(separator: "=").last?.split(separator: "/").first.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) })
        XCTAssertGreaterThan(minimum, 35, ping)
    }

    // Redundant mode on both ends: a link cut costs no packet, even before it is
    // declared down (the copy on the other link arrives).
    func testRedundantModeLosesNothingWhenALinkIsCut() throws {
        let redundant = "  bonding.scheduler: { mode: redundant }"
        let (bond, site, client, _) = try start([.init(name: "fast", rate: "20mbit", delayMs: 5), .init(name: "slow", rate: "20mbit", delayMs: 20)],
                                                clientStages: redundant, hubStages: redundant)
        let socket = lab.directory.appendingPathComponent("client.yaml.sock").path
        let before = try bond.pathTx(socket: socket)
        let ends = [("hub", lab.directory.appendingPathComponent("hub.sock").path), ("client", socket)]
        func drops(_ socket: String) throws -> [String: Int] {
            let counters = try bond.session(socket: socket)["counters"] as? [String: Any]
            return (counters?["drops"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
        }
        let dropsBefore = try ends.map { try drops($0.1) }
        let pinger = try lab.spawn(site, ["ping", "-c", "100", "-i", "0.01", "-W", "1", "-q", "10.99.0.2"], name: "ping-redundant")
        usleep(300_000)
        bond.signalRelay("c/fast", SIGUSR2)  // blackhole the fast uplink mid-stream, both ways
        XCTAssertEqual(pinger.stop(signal: 0, timeout: 10), 0, pinger.output)
        let after = try bond.pathTx(socket: socket)
        print("bonding redundant: \(pinger.output.split(separator: "\n").filter { $0.contains("received") }.first ?? "") ; fast +\(after["fast"]!.packets - before["fast"]!.packets) slow +\(after["slow"]!.packets - before["slow"]!.packets) packets")
        XCTAssertTrue(pinger.output.contains("100 packets transmitted, 100 received"), pinger.output)
        XCTAssertTrue(client.output.split(separator: "\n").contains { $0.contains("link fast (10.201.1.2:6001)") && $0.contains(" → down") },
                      "the cut link was declared down during the pings: \(client.output)")
        // Each request went on both links while both were up.
        XCTAssertGreaterThanOrEqual(after["slow"]!.packets - before["slow"]!.packets, 100)
        // Each end kept the first copy of each packet and counted the second as a
        // duplicate (the crypto stage knows it for a copy by the session's other path),
        // not as a replay.
        for ((name, socket), before) in zip(ends, dropsBefore) {
            let after = try drops(socket)
            let grew = { (reason: String) in (after[reason] ?? 0) - (before[reason] ?? 0) }
            XCTAssertGreaterThanOrEqual(grew("duplicate"), 20, "\(name): \(before) → \(after)")
            XCTAssertEqual(grew("replayed"), 0, "\(name): a copy is not a replay: \(before) → \(after)")
        }
    }
}
