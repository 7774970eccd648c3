import XCTest
@testable import Framework

/// `links:` and `device:` of a site file.
final class ProfileLoaderLinkDeviceTests: XCTestCase {
    private func link(_ text: String) throws -> TunnelSpec { try loadSite(siteText(link: text)) }
    private func device(_ text: String) throws -> TunnelSpec { try loadSite(siteText(device: "device: \(text)")) }

    // MARK: links

    func testLinksMissingOrEmpty() {
        assertProfileError("site.yaml:1:1: add 'links:', a list of links like '- { name: wan1, bind: 192.0.2.1:5080, remote: 198.51.100.1:5080 }'") {
            try loadSite("profile: plain\ndevice: { name: tun7 }\n")
        }
        let notAList = "'links' must be a non-empty list of links, each like '{ name: wan1, bind: 192.0.2.1:5080, remote: 198.51.100.1:5080 }'"
        assertProfileError("site.yaml:3:8: " + notAList) { try loadSite("profile: plain\ndevice: { name: tun7 }\nlinks: []\n") }
        assertProfileError("site.yaml:3:8: " + notAList) { try loadSite("profile: plain\ndevice: { name: tun7 }\nlinks: wan1\n") }
        assertProfileError("site.yaml:3:8: " + notAList) { try loadSite("profile: plain\ndevice: { name: tun7 }\nlinks: { name: wan1 }\n") }
    }

    func testDuplicateLinkNames() {
        assertProfileError("site.yaml:5:13: two links are named 'wan1'; link names must be unique") {
            try loadSite(siteText(extra: "  - { name: wan1, bind: '127.0.0.1:5081' }\n"))
        }
    }

    func testLinkNeedsNameAndBind() {
        assertProfileError("site.yaml:4:5: link 'wan1' needs 'bind: ADDRESS:PORT' (0.0.0.0:5080 to listen on every address)") {
            try self.link("{ name: wan1, remote: 127.0.0.2:5080 }")
        }
        assertProfileError("site.yaml:4:5: a link needs 'name': a name for the link, e.g. wan1") {
            try self.link("{ bind: 127.0.0.1:5080 }")
        }
        assertProfileError("site.yaml:4:5: a link must be a mapping (key: value), found a scalar") {
            try self.link("wan1")
        }
    }

    func testBadEndpoints() {
        let endpoint = "an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080"
        assertProfileError("site.yaml:4:25: 'bind' of link 'wan1' must be \(endpoint), found 'localhost:5080'") {
            try self.link("{ name: wan1, bind: localhost:5080 }")
        }
        assertProfileError("site.yaml:4:25: 'bind' of link 'wan1' must be \(endpoint), found '127.0.0.1'") {
            try self.link("{ name: wan1, bind: 127.0.0.1 }")
        }
        assertProfileError("site.yaml:4:25: 'bind' of link 'wan1' must be \(endpoint), found '127.0.0.1:65536'") {
            try self.link("{ name: wan1, bind: 127.0.0.1:65536 }")
        }
        assertProfileError("site.yaml:4:49: 'remote' of link 'wan1' must be \(endpoint), found '::1:5080'") {
            try self.link("{ name: wan1, bind: 127.0.0.1:5080, remote: '::1:5080' }")
        }
        assertProfileError("site.yaml:4:25: 'bind' of link 'wan1' must be \(endpoint), found a list") {
            try self.link("{ name: wan1, bind: [127.0.0.1, 5080] }")
        }
    }

    func testRemoteOfAnotherFamily() {
        assertProfileError("site.yaml:4:49: link 'wan1' binds an IPv4 address but its remote is IPv6; use one family per link") {
            try self.link("{ name: wan1, bind: 127.0.0.1:5080, remote: '[::1]:5080' }")
        }
        assertProfileError("site.yaml:4:46: link 'wan1' binds an IPv6 address but its remote is IPv4; use one family per link") {
            try self.link("{ name: wan1, bind: '[::]:5080', remote: 127.0.0.1:5080 }")
        }
    }

    func testLinkKeysAndLinkSettings() {
        assertProfileError("site.yaml:4:41: unknown key 'remtoe' in a link (did you mean 'remote'?); known: name, bind, remote, device, follow-peer") {
            try self.link("{ name: wan1, bind: 127.0.0.1:5080, remtoe: 127.0.0.2:5080 }")
        }
        assertProfileError("site.yaml:4:54: 'follow-peer' of link 'wan1' must be true or false, found 'maybe'") {
            try self.link("{ name: wan1, bind: 127.0.0.1:5080, follow-peer: maybe }")
        }
        assertProfileError("site.yaml:4:49: 'device' in a link must be a single value, found a list") {
            try self.link("{ name: wan1, bind: 127.0.0.1:5080, device: [eth0] }")
        }
    }

    // MARK: device

    func testDeviceMissing() {
        assertProfileError("site.yaml:1:1: this profile reads a tun device: add 'device: { name: tun0, mtu: 1400, address: 10.99.0.1/30 }'") {
            try loadSite("profile: plain\nlinks:\n  - { name: wan1, bind: 127.0.0.1:5080 }\n")
        }
        assertProfileError("site.yaml:2:9: 'device' must be a mapping (key: value), found a scalar") { try self.device("tun0") }
        assertProfileError("site.yaml:2:11: unknown key 'nmae' in 'device' (did you mean 'name'?); known: name, mtu, address, offload") {
            try self.device("{ nmae: tun0 }")
        }
    }

    func testMTU() throws {
        let expected = "'mtu' of 'device' must be an integer in 576...9000"
        assertProfileError("site.yaml:2:16: \(expected), found 'abc'") { try self.device("{ mtu: abc }") }
        assertProfileError("site.yaml:2:16: \(expected), found 10000") { try self.device("{ mtu: 10000 }") }
        assertProfileError("site.yaml:2:16: \(expected), found 575") { try self.device("{ mtu: 575 }") }
        assertProfileError("site.yaml:2:16: \(expected), found '1400'") { try self.device("{ mtu: '1400' }") }
        assertProfileError("site.yaml:2:16: \(expected), found '1400.5'") { try self.device("{ mtu: 1400.5 }") }
        assertProfileError("site.yaml:2:16: \(expected), found a list") { try self.device("{ mtu: [1400] }") }
        XCTAssertEqual(try device("{ mtu: 576 }").device?.mtu, 576)
        XCTAssertEqual(try device("{ mtu: 9000 }").device?.mtu, 9000)
    }

    func testInterfaceAddresses() throws {
        let notAnAddress = "is not an address with prefix length, such as 10.99.0.1/30 or fd00::1/64"
        assertProfileError("site.yaml:2:20: '10.99.0.1' \(notAnAddress)") { try self.device("{ address: 10.99.0.1 }") }
        assertProfileError("site.yaml:2:20: '10.99.0.1/33' \(notAnAddress)") { try self.device("{ address: 10.99.0.1/33 }") }
        assertProfileError("site.yaml:2:35: '10.99.0.300/30' \(notAnAddress)") { try self.device("{ address: [10.99.0.1/30, 10.99.0.300/30] }") }
        assertProfileError("site.yaml:2:20: 'fd00::1/129' \(notAnAddress)") { try self.device("{ address: fd00::1/129 }") }
        assertProfileError("site.yaml:2:20: at most one IPv4 address per device (any number of IPv6 addresses)") {
            try self.device("{ address: [10.99.0.1/30, 10.98.0.1/30] }")
        }
        let spec = try device("{ address: [fd00::1/64, 10.99.0.1/30, 'fd01::1/64'] }")
        XCTAssertEqual(spec.device?.addresses.map(\.text), ["fd00::1/64", "10.99.0.1/30", "fd01::1/64"])
        XCTAssertEqual(spec.device?.addresses.map(\.isIPv4), [false, true, false])
    }

    func testDeviceName() throws {
        let invalid = "is not a valid interface name (1 to 15 characters, no '/' or spaces)"
        assertProfileError("site.yaml:2:17: device name 'tun-with-a-long-name' \(invalid)") { try self.device("{ name: tun-with-a-long-name }") }
        assertProfileError("site.yaml:2:17: device name 'a/b' \(invalid)") { try self.device("{ name: a/b }") }
        assertProfileError("site.yaml:2:17: device name 'a b' \(invalid)") { try self.device("{ name: 'a b' }") }
        assertProfileError("site.yaml:2:17: device name '' \(invalid)") { try self.device("{ name: '' }") }
        XCTAssertEqual(try device("{ name: abcdefghijklmno }").device?.name, "abcdefghijklmno")
    }

    func testOffloadValue() {
        assertProfileError("site.yaml:2:20: 'offload' of 'device' must be true or false, found 'fast'") { try self.device("{ offload: fast }") }
    }
}
