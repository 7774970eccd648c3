@testable import Framework
import XCTest
@testable import L2TPv3

/// The l2tp-client's decisions that are pure rules: broker selection (§2.3), the
/// PMTU probe schedule (§2.6), the tunnel MTU (§2.7), broker addresses and the
/// checks of its site settings.
final class ClientRulesTests: XCTestCase {
    typealias C = ClientSelection.Candidate

    // MARK: selection (§2.3 step 3)

    func testFirstTakesTheEarliestConfiguredBrokerThatAnswered() {
        // Given out of order, as answers arrive: the list order decides, not arrival.
        let candidates = [C(order: 2, usage: 10), C(order: 1, usage: 900), C(order: 3, usage: 0)]
        XCTAssertEqual(ClientSelection.pick(candidates, rule: .first), 1)
        XCTAssertEqual(ClientSelection.pick([C(order: 4, usage: 0xFFFF)], rule: .first), 4)
    }

    func testUsageTakesTheLowestUsage() {
        let candidates = [C(order: 0, usage: 300), C(order: 2, usage: 40), C(order: 1, usage: 41)]
        XCTAssertEqual(ClientSelection.pick(candidates, rule: .usage), 2)
    }

    func testUsageTiesGoToTheEarlierBroker() {
        let candidates = [C(order: 3, usage: 40), C(order: 1, usage: 40), C(order: 2, usage: 40), C(order: 0, usage: 41)]
        XCTAssertEqual(ClientSelection.pick(candidates, rule: .usage), 1, "equal usage: the earlier broker in the list")
    }

    func testUsageCountsCookieOnlyBrokersAsFFFF() {
        // A broker that only answered COOKIE is handed in with usage 0xFFFF: any real usage beats it …
        XCTAssertEqual(ClientSelection.pick([C(order: 0, usage: 0xFFFF), C(order: 1, usage: 0xFFFE)], rule: .usage), 1)
        // … and among brokers that all answered only COOKIE, the earliest wins.
        XCTAssertEqual(ClientSelection.pick([C(order: 5, usage: 0xFFFF), C(order: 2, usage: 0xFFFF)], rule: .usage), 2)
    }

    func testRandomIndexesTheCandidatesInListOrder() {
        let candidates = [C(order: 7, usage: 1), C(order: 3, usage: 2), C(order: 5, usage: 3)]
        var asked: [Int] = []
        let picks = (0..<3).map { index in
            ClientSelection.pick(candidates, rule: .random, random: { n in asked.append(n); return index })
        }
        XCTAssertEqual(picks, [3, 5, 7], "index 0, 1, 2 of the candidates sorted by list order")
        XCTAssertEqual(asked, [3, 3, 3], "random(n) is asked for an index below the number of candidates")
    }

    func testNobodyAnsweredPicksNothing() {
        for rule in [ClientSettings.Selection.first, .usage, .random] {
            XCTAssertNil(ClientSelection.pick([], rule: rule, random: { _ in XCTFail("random asked with no candidates"); return 0 }),
                         "\(rule)")
        }
    }

    // MARK: path MTU probes (§2.6)

    func testProbePayloadsOverIPv4() {
        let prober = ClientPMTUProber(ipv6: false)
        XCTAssertEqual(prober.headers, 28)
        XCTAssertEqual(prober.payloads, [1306, 1372, 1422, 1448, 1464, 1472])
    }

    func testProbePayloadsOverIPv6() {
        let prober = ClientPMTUProber(ipv6: true)
        XCTAssertEqual(prober.headers, 48, "40 bytes of IPv6 header and 8 of UDP")
        XCTAssertEqual(prober.payloads, [1286, 1352, 1402, 1428, 1444, 1452])
    }

    func testARoundFindsTheLargestAcknowledgedSizePlusHeaders() {
        var prober = ClientPMTUProber(ipv6: false)
        prober.startRound()
        prober.acknowledged(payload: 1372)
        prober.acknowledged(payload: 1422)
        prober.acknowledged(payload: 1306)   // a smaller ACK arriving late does not lower the best
        XCTAssertEqual(prober.finishRound(), 1450)

        prober.startRound()
        prober.acknowledged(payload: 1306)
        XCTAssertEqual(prober.finishRound(), 1334, "each round starts afresh; the last round's 1450 is forgotten")

        var v6 = ClientPMTUProber(ipv6: true)
        v6.startRound()
        v6.acknowledged(payload: 1452)
        XCTAssertEqual(v6.finishRound(), 1500)
    }

    func testARoundWithoutAcknowledgementsFindsNothing() {
        var prober = ClientPMTUProber(ipv6: false)
        prober.startRound()
        prober.acknowledged(payload: 1472)
        XCTAssertEqual(prober.finishRound(), 1500)
        prober.startRound()
        XCTAssertNil(prober.finishRound(), "no ACK: nil, so the manager keeps the previous path MTU")
    }

    func testRoundIntervalsDoubleUpTo600Seconds() {
        var prober = ClientPMTUProber(ipv6: false)
        var intervals = [prober.interval]
        for _ in 0..<7 {
            prober.startRound()
            _ = prober.finishRound()
            intervals.append(prober.interval)
        }
        XCTAssertEqual(intervals, [15, 30, 60, 120, 240, 480, 600, 600])
    }

    // MARK: tunnel MTU (§2.7)

    func testClientMTURule() {
        XCTAssertNil(TunnelMTU.client(pathMTU: nil, peer: nil), "nothing known: leave the interface alone")
        XCTAssertEqual(TunnelMTU.client(pathMTU: 1500, peer: nil), 1446)
        XCTAssertEqual(TunnelMTU.client(pathMTU: 1400, peer: 1446), 1346, "path − 54 is below the broker's value")
        XCTAssertEqual(TunnelMTU.client(pathMTU: 1500, peer: 1400), 1400, "lowered to the broker's value")
        XCTAssertEqual(TunnelMTU.client(pathMTU: nil, peer: 1400), 1400, "a broker in fixed-MTU mode: its value")
        XCTAssertEqual(TunnelMTU.client(pathMTU: 1300, peer: nil), 1280, "floored at 1280")
        XCTAssertEqual(TunnelMTU.client(pathMTU: nil, peer: 1200), 1280, "floored at 1280")
    }

    // MARK: broker addresses

    func testBrokerAddressParses() throws {
        let name = try XCTUnwrap(BrokerAddress.parse("broker.example.net:8942"))
        XCTAssertEqual(name, BrokerAddress(host: "broker.example.net", port: 8942))
        XCTAssertEqual(name.description, "broker.example.net:8942")

        let v4 = try XCTUnwrap(BrokerAddress.parse("192.0.2.1:53"))
        XCTAssertEqual(v4, BrokerAddress(host: "192.0.2.1", port: 53))
        XCTAssertEqual(v4.description, "192.0.2.1:53")

        let v6 = try XCTUnwrap(BrokerAddress.parse("[2001:db8::1]:8942"))
        XCTAssertEqual(v6.host, "2001:db8::1", "the host is kept without brackets")
        XCTAssertEqual(v6.port, 8942)
        XCTAssertEqual(v6.description, "[2001:db8::1]:8942", "and written with them")
    }

    func testBrokerAddressRefuses() {
        for text in ["no-port", "host:", "host:0", "host:70000", "2001:db8::1:8942", "[2001:db8::1]8942",
                     ":8942", "[]:8942", "[2001:db8::1]:", "host:89x2"] {
            XCTAssertNil(BrokerAddress.parse(text), "'\(text)' should be refused")
        }
    }

    // MARK: site settings, through the profile loader and the stock l2tp-client profile

    static let repositoryRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/L2TPv3Tests/ClientRulesTests.swift
        return parts.joined(separator: "/")
    }()

    /// The `l2tp-client` profile exactly as `plugins.yaml` states it. Only that
    /// profile: the others name stages of plugins this test target does not link.
    static func stockClientProfile() throws -> String {
        let text = try String(contentsOfFile: repositoryRoot + "/plugins.yaml", encoding: .utf8)
        var block: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "  l2tp-client:" {
                block.append(line)
            } else if !block.isEmpty {
                if line.hasPrefix("  ") && !line.hasPrefix("   ") && line.trimmingCharacters(in: .whitespaces).hasSuffix(":") { break }
                if !line.isEmpty && !line.hasPrefix(" ") { break }
                block.append(line)
            }
        }
        XCTAssertFalse(block.isEmpty, "plugins.yaml has no l2tp-client profile")
        return "profiles:\n" + block.joined(separator: "\n") + "\n"
    }

    func loadSite(_ text: String) throws -> TunnelSpec {
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(L2TPv3Plugin.plugin)
        let stock = try StockProfiles.parse(try Self.stockClientProfile(), file: "plugins.yaml", registry: registry)
        return try ProfileLoader(registry: registry, stock: stock).load(siteText: text, file: "site.yaml")
    }

    func assertRefused(_ expected: String, _ site: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let spec = try loadSite(site)
            XCTFail("expected '\(expected)', but the site loaded: \(spec)", file: file, line: line)
        } catch let error as ProfileError {
            XCTAssertEqual(error.description, expected, file: file, line: line)
        } catch {
            XCTFail("expected a ProfileError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    func testAMinimalClientSiteLoadsWithoutLinks() throws {
        let spec = try loadSite("""
            profile: l2tp-client
            sessions:
              uuid: "de:ad:be:ef:00:01"
              brokers: [broker.example.net:8942, "[2001:db8::1]:53"]
            """)
        XCTAssertEqual(spec.profile, "l2tp-client")
        XCTAssertEqual(spec.links.count, 0, "the client opens one socket per broker itself")
        XCTAssertNil(spec.device)
        XCTAssertTrue(spec.devicesPerSession)
        XCTAssertEqual(spec.sessionManager.name, "l2tp-client")
        let settings = ClientSettings(spec.sessionSettings)
        XCTAssertEqual(settings.uuid, "de:ad:be:ef:00:01")
        XCTAssertEqual(settings.brokers, [BrokerAddress(host: "broker.example.net", port: 8942),
                                          BrokerAddress(host: "2001:db8::1", port: 53)])
        XCTAssertEqual(settings.interface, "l2tp0")
        XCTAssertEqual(settings.tunnelID, 1)
        XCTAssertEqual(settings.selection, .first)
        XCTAssertEqual(settings.limitKbps, 0)
        XCTAssertNil(settings.bind)
        XCTAssertEqual(settings.hookTimeout, 60)
    }

    func testLinksAreRefused() {
        assertRefused(
            "site.yaml:5:1: profile 'l2tp-client' opens its own sockets; remove 'links:' (list the brokers under 'sessions: brokers: [host:port, …]'; the client opens a socket per broker and attempt)",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942]
            links:
              - { name: wan, bind: "0.0.0.0:0" }
            """)
    }

    func testUUIDIsRequired() {
        assertRefused(
            "site.yaml:3:3: session manager 'l2tp-client' requires the setting 'uuid' (a string): this router's identifier, sent in PREPARE and shown in the broker's hooks (-u); at most 238 bytes",
            """
            profile: l2tp-client
            sessions:
              brokers: [broker.example.net:8942]
            """)
    }

    func testUUIDOf239BytesIsRefused() throws {
        let uuid238 = String(repeating: "u", count: 238)
        XCTAssertEqual(try loadSite("""
            profile: l2tp-client
            sessions:
              uuid: \(uuid238)
              brokers: [broker.example.net:8942]
            """).sessionSettings.string("uuid"), uuid238, "238 bytes fit")
        assertRefused(
            "site.yaml:3:9: uuid must be 1 to 238 bytes (it is 239): the PREPARE message has no room for more",
            """
            profile: l2tp-client
            sessions:
              uuid: \(uuid238)u
              brokers: [broker.example.net:8942]
            """)
    }

    func testElevenBrokersAreRefused() throws {
        let ten = (1...10).map { "b\($0).example.net:8942" }
        XCTAssertEqual(try loadSite("""
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [\(ten.joined(separator: ", "))]
            """).sessionSettings.list("brokers").count, 10, "ten brokers fit")
        assertRefused(
            "site.yaml:4:12: 11 brokers listed; at most 10, as tunneldigger's client",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [\((ten + ["b11.example.net:8942"]).joined(separator: ", "))]
            """)
    }

    func testAnEmptyUUIDAndAnEmptyBrokerListAreRefused() {
        assertRefused(
            "site.yaml:3:9: uuid must be 1 to 238 bytes (it is 0): the PREPARE message has no room for more",
            """
            profile: l2tp-client
            sessions:
              uuid: ""
              brokers: [broker.example.net:8942]
            """)
        assertRefused(
            "site.yaml:4:12: list at least one broker, e.g. 'brokers: [broker.example.net:8942]'",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: []
            """)
    }

    func testABrokerWithoutAPortIsRefused() {
        assertRefused(
            "site.yaml:4:12: 'broker2.example.net' is not host:port; write broker.example.net:8942, 192.0.2.1:8942 or [2001:db8::1]:8942",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942, broker2.example.net]
            """)
    }

    func testAnInterfaceNameOf16CharactersIsRefused() throws {
        XCTAssertEqual(try loadSite("""
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942]
              interface: abcdefghijklmno
            """).sessionSettings.string("interface"), "abcdefghijklmno", "15 characters fit")
        assertRefused(
            "site.yaml:5:14: interface 'abcdefghijklmnop' is not a valid interface name (1 to 15 characters, no '/' or spaces)",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942]
              interface: abcdefghijklmnop
            """)
    }

    func testABadBindIsRefused() throws {
        XCTAssertEqual(ClientSettings(try loadSite("""
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942]
              bind: 192.0.2.7
            """).sessionSettings).bind, SocketAddress.parse("192.0.2.7", defaultPort: 0))
        assertRefused(
            "site.yaml:5:9: bind 'not-an-address' is not an IP address; write 192.0.2.7 or 2001:db8::7",
            """
            profile: l2tp-client
            sessions:
              uuid: router-1
              brokers: [broker.example.net:8942]
              bind: not-an-address
            """)
    }
}
