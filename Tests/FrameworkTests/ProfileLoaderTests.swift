import XCTest
@testable import Framework
import ExampleStages

/// A site file with a fixed layout, so error marks are known:
///   line 1  profile
///   line 2  device
///   line 3  links:
///   line 4    - { name: wan1, bind: 127.0.0.1:5080, remote: 127.0.0.2:5080 }
///   line 5+ extra
func siteText(profile: String = "plain", device: String = "device: { name: tun7, address: 10.99.0.1/30 }",
              link: String = "{ name: wan1, bind: 127.0.0.1:5080, remote: 127.0.0.2:5080 }", extra: String = "") -> String {
    "profile: \(profile)\n\(device)\nlinks:\n  - \(link)\n" + extra
}

final class ProfileLoaderTests: XCTestCase {
    /// Line (1-based) of the first line of plugins.yaml containing `text`.
    /// The line of `text` within the stock `plain` profile.
    private func stockLine(_ text: String) -> Int {
        let lines = stockProfilesText().split(separator: "\n", omittingEmptySubsequences: false)
        let start = lines.firstIndex { $0 == "  plain:" } ?? 0
        return (lines[start...].firstIndex { $0.contains(text) } ?? -1) + 1
    }

    func testValidPlainSite() throws {
        let text = """
            profile: plain
            device:
              name: tun7
              address: [10.99.0.1/30, fd00::1/64]
            links:
              - name: wan1
                bind: 127.0.0.1:5080
                remote: 127.0.0.2:5081
            stages:
              - use: example.dscp-filter
                before: transport
                settings: { drop: 0 }
              - use: example.dscp-filter
                after: ingress
                settings: { drop: [46, 8], direction: send }
            batch: 32
            log: debug

            """
        let spec = try loadSite(text)
        XCTAssertEqual(spec.file, "site.yaml")
        XCTAssertEqual(spec.profile, "plain")
        XCTAssertEqual(spec.summary, "one UDP link, no encryption, no reordering: for measurements and trusted networks only")
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tun", "example.dscp-filter", "example.dscp-filter", "udp"])
        XCTAssertEqual(spec.stages.map(\.placement), ["ingress", "after: ingress", "before: transport", "transport"])
        XCTAssertEqual(spec.egress.descriptor.name, "tun")
        XCTAssertEqual(spec.egress.placement, "egress")
        XCTAssertEqual(spec.deviceKind, .tun)
        XCTAssertEqual(spec.sessionManager.name, "static")
        XCTAssertEqual(spec.batchSize, 32)
        XCTAssertEqual(spec.logLevel, "debug")

        // Marks: slot stages point into plugins.yaml, custom stages at their 'use:'.
        XCTAssertEqual(spec.stages[0].mark, SourceMark(file: "plugins.yaml", line: stockLine("ingress: tun"), column: 16))
        XCTAssertEqual(spec.stages[1].mark, SourceMark(file: "site.yaml", line: 13, column: 10))
        XCTAssertEqual(spec.stages[2].mark, SourceMark(file: "site.yaml", line: 10, column: 10))
        XCTAssertEqual(spec.stages[3].mark, SourceMark(file: "plugins.yaml", line: stockLine("transport: udp"), column: 18))

        // Stage settings: the site's, over the declared defaults; one value is a list of one.
        XCTAssertEqual(spec.stages[1].settings["drop"], .list([.integer(46), .integer(8)]))
        XCTAssertEqual(spec.stages[1].settings["direction"], .string("send"))
        XCTAssertEqual(spec.stages[1].settings.mark("direction"), SourceMark(file: "site.yaml", line: 15, column: 43))
        XCTAssertEqual(spec.stages[2].settings["drop"], .list([.integer(0)]))
        XCTAssertEqual(spec.stages[2].settings["direction"], .string("both"))
        XCTAssertNil(spec.stages[2].settings.mark("direction"), "defaults have no mark")
        XCTAssertTrue(spec.stages[0].settings.values.isEmpty)

        let device = try XCTUnwrap(spec.device)
        XCTAssertEqual(device.name, "tun7")
        XCTAssertEqual(device.mtu, 1400, "from the stock profile")
        XCTAssertEqual(device.addresses.map(\.text), ["10.99.0.1/30", "fd00::1/64"])
        XCTAssertEqual(device.addresses.map(\.prefix), [30, 64])
        XCTAssertTrue(device.offload)
        XCTAssertEqual(device.mark, SourceMark(file: "site.yaml", line: 3, column: 3))

        XCTAssertEqual(spec.links.count, 1)
        let link = spec.links[0]
        XCTAssertEqual(link.name, "wan1")
        XCTAssertEqual(link.bind, SocketAddress.parse("127.0.0.1:5080"))
        XCTAssertEqual(link.remote, SocketAddress.parse("127.0.0.2:5081"))
        XCTAssertNil(link.device)
        XCTAssertEqual(link.settings.boolean("follow-peer"), false)
        XCTAssertEqual(link.mark, SourceMark(file: "site.yaml", line: 6, column: 11))
    }

    func testDefaultsOfAMinimalSite() throws {
        let spec = try loadSite(siteText())
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tun", "udp"])
        XCTAssertEqual(spec.stages.map(\.placement), ["ingress", "transport"])
        XCTAssertEqual(spec.batchSize, 64)
        XCTAssertEqual(spec.logLevel, "info")
        XCTAssertEqual(spec.device?.name, "tun7")
        XCTAssertEqual(spec.device?.mtu, 1400)
        XCTAssertEqual(spec.device?.offload, true)
        XCTAssertTrue(spec.sessionSettings.values.isEmpty)
    }

    func testSiteOverridesDeviceAndLinkSettings() throws {
        let spec = try loadSite(siteText(
            device: "device: { mtu: 9000, offload: off }",
            link: "{ name: wan1, bind: '[::1]:5080', remote: '[::1]:6000', device: lo, follow-peer: yes }"))
        XCTAssertEqual(spec.device?.name, "tun%d", "the kernel picks the number")
        XCTAssertEqual(spec.device?.mtu, 9000)
        XCTAssertEqual(spec.device?.offload, false)
        XCTAssertEqual(spec.device?.addresses.count, 0)
        XCTAssertEqual(spec.links[0].bind.description, "[::1]:5080")
        XCTAssertEqual(spec.links[0].remote?.description, "[::1]:6000")
        XCTAssertEqual(spec.links[0].device, "lo")
        XCTAssertEqual(spec.links[0].settings.boolean("follow-peer"), true)
        XCTAssertEqual(spec.links[0].settings.mark("follow-peer"), SourceMark(file: "site.yaml", line: 4, column: 86))
    }

    func testPlainTapProfile() throws {
        let spec = try loadSite(siteText(profile: "plain-tap", device: "device: { name: tap3 }"))
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tap", "udp"])
        XCTAssertEqual(spec.egress.descriptor.name, "tap")
        XCTAssertEqual(spec.deviceKind, .tap)
        XCTAssertEqual(spec.device?.offload, false, "TAP devices have no offloads")
        assertProfileError("site.yaml:2:32: 'offload' applies to TUN devices only; remove it for a TAP device") {
            try loadSite(siteText(profile: "plain-tap", device: "device: { name: tap3, offload: true }"))
        }
    }

    func testMultipleLinksKeepTheirOrder() throws {
        let text = siteText(extra: "  - { name: wan2, bind: '127.0.0.1:0' }\n")
        let spec = try loadSite(text)
        XCTAssertEqual(spec.links.map(\.name), ["wan1", "wan2"])
        XCTAssertNil(spec.links[1].remote)
        XCTAssertEqual(spec.links[1].bind.port, 0)
    }

    // MARK: errors at the top level

    func testNotAMapping() {
        assertProfileError("site.yaml:1:1: the site file must be a mapping (key: value), found a list") { try loadSite("- a\n- b\n") }
        assertProfileError("site.yaml:1:1: the site file must be a mapping (key: value), found a scalar") { try loadSite("plain\n") }
    }

    func testUnknownTopLevelKey() {
        assertProfileError("site.yaml:5:1: unknown key 'linkz' in the site file (did you mean 'links'?); known: profile, device, links, sessions, pipeline, settings, stages, batch, log, user") {
            try loadSite(siteText(extra: "linkz: []\n"))
        }
        assertProfileError("site.yaml:5:1: unknown key 'keys' in the site file; known: profile, device, links, sessions, pipeline, settings, stages, batch, log, user") {
            try loadSite(siteText(extra: "keys: secret\n"))
        }
    }

    func testProfileMissingOrUnknown() {
        assertProfileError("site.yaml:1:1: the site file needs 'profile': the stock profile to use; one of p2p, p2p-tap, plain, plain-tap, bonding-client, bonding-server, l2tp-broker, l2tp-client") {
            try loadSite("links: []\n")
        }
        assertProfileError("site.yaml:1:10: unknown profile 'plian' (did you mean 'plain'?); stock profiles in plugins.yaml: p2p, p2p-tap, plain, plain-tap, bonding-client, bonding-server, l2tp-broker, l2tp-client") {
            try loadSite(siteText(profile: "plian"))
        }
        assertProfileError("site.yaml:1:10: unknown profile 'bonding'; stock profiles in plugins.yaml: p2p, p2p-tap, plain, plain-tap, bonding-client, bonding-server, l2tp-broker, l2tp-client") {
            try loadSite(siteText(profile: "bonding"))
        }
        assertProfileError("site.yaml:1:10: 'profile' in the site file must be a single value, found a list") {
            try loadSite(siteText(profile: "[plain]"))
        }
    }

    func testBatchAndLog() {
        assertProfileError("site.yaml:5:8: 'batch' must be an integer in 1...1024, found 0") { try loadSite(siteText(extra: "batch: 0\n")) }
        assertProfileError("site.yaml:5:8: 'batch' must be an integer in 1...1024, found 'many'") { try loadSite(siteText(extra: "batch: many\n")) }
        assertProfileError("site.yaml:5:6: 'log' must be one of trace, debug, info, notice, warning, error, critical, found 'verbose'") {
            try loadSite(siteText(extra: "log: verbose\n"))
        }
    }

    func testSessionSettings() {
        assertProfileError("site.yaml:5:13: unknown setting 'keepalive' for session manager 'static'; it takes no settings") {
            try loadSite(siteText(extra: "sessions: { keepalive: 5s }\n"))
        }
        assertProfileError("site.yaml:5:11: settings of session manager 'static' must be a mapping, found a scalar") {
            try loadSite(siteText(extra: "sessions: static\n"))
        }
    }
}
