import XCTest
@testable import Bonding
import Framework

final class PinRuleTests: XCTestCase {
    private func assertPinError(_ text: String, _ problem: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let rule = try PinRule.parse(text)
            XCTFail("expected an error for '\(text)', got \(rule)", file: file, line: line)
        } catch let error as PinError {
            XCTAssertEqual(error.description, "pin rule '\(text)': \(problem)", file: file, line: line)
        } catch {
            XCTFail("expected a PinError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    private func rule(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> PinRule? {
        do {
            return try PinRule.parse(text)
        } catch {
            XCTFail("'\(text)' did not parse: \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: parsing

    func testParsesProtocolAndPort() throws {
        XCTAssertEqual(try PinRule.parse("udp port 5060 -> wan2"), PinRule(protocolNumber: 17, port: 5060, link: "wan2"))
    }

    func testParsesDSCPAlone() throws {
        XCTAssertEqual(try PinRule.parse("dscp 46 -> wan1"), PinRule(dscp: 46, link: "wan1"))
    }

    func testParsesProtocolNames() throws {
        XCTAssertEqual(try PinRule.parse("icmp -> wan1"), PinRule(protocolNumber: 1, link: "wan1"))
        XCTAssertEqual(try PinRule.parse("tcp -> wan1"), PinRule(protocolNumber: 6, link: "wan1"))
        XCTAssertEqual(try PinRule.parse("icmpv6 -> wan1"), PinRule(protocolNumber: 58, link: "wan1"))
        XCTAssertEqual(try PinRule.parse("gre -> wan1"), PinRule(protocolNumber: 47, link: "wan1"))
        XCTAssertEqual(try PinRule.parse("esp -> wan1"), PinRule(protocolNumber: 50, link: "wan1"))
    }

    func testParsesProtocolNumber() throws {
        XCTAssertEqual(try PinRule.parse("proto 47 -> x"), PinRule(protocolNumber: 47, link: "x"))
        XCTAssertEqual(try PinRule.parse("proto 0 -> x"), PinRule(protocolNumber: 0, link: "x"))
        XCTAssertEqual(try PinRule.parse("proto 255 -> x"), PinRule(protocolNumber: 255, link: "x"))
    }

    func testParsesAllCriteriaTogether() throws {
        XCTAssertEqual(try PinRule.parse("tcp port 22 dscp 16 -> wan1"),
                       PinRule(protocolNumber: 6, port: 22, dscp: 16, link: "wan1"))
    }

    func testParsesPortAloneAndRangeEnds() throws {
        XCTAssertEqual(try PinRule.parse("port 1 -> a"), PinRule(port: 1, link: "a"))
        XCTAssertEqual(try PinRule.parse("port 65535 -> a"), PinRule(port: 65535, link: "a"))
        XCTAssertEqual(try PinRule.parse("dscp 0 -> a"), PinRule(dscp: 0, link: "a"))
        XCTAssertEqual(try PinRule.parse("dscp 63 -> a"), PinRule(dscp: 63, link: "a"))
    }

    func testSpacingAroundArrowIsFree() throws {
        XCTAssertEqual(try PinRule.parse("udp->wan2"), PinRule(protocolNumber: 17, link: "wan2"))
        XCTAssertEqual(try PinRule.parse("  udp   port  53   ->   wan2  "), PinRule(protocolNumber: 17, port: 53, link: "wan2"))
    }

    func testMissingArrowIsRejected() {
        assertPinError("udp port 5060", "write it as 'CRITERIA -> LINK', e.g. 'udp port 5060 -> wan2'")
    }

    func testTwoArrowsAreRejected() {
        assertPinError("udp -> wan1 -> wan2", "write it as 'CRITERIA -> LINK', e.g. 'udp port 5060 -> wan2'")
    }

    func testMissingLinkIsRejected() {
        assertPinError("udp ->", "name the link after '->'")
        assertPinError("udp ->   ", "name the link after '->'")
    }

    func testKeywordWithoutNumberIsRejected() {
        assertPinError("udp port -> wan1", "'port' needs a number")
        assertPinError("port http -> wan1", "'port' needs a number")
        assertPinError("dscp ef -> wan1", "'dscp' needs a number")
        assertPinError("proto -> wan1", "'proto' needs a number")
    }

    func testNumbersOutOfRangeAreRejected() {
        assertPinError("port 0 -> wan1", "port 0 is not in 1...65535")
        assertPinError("port 65536 -> wan1", "port 65536 is not in 1...65535")
        assertPinError("dscp 64 -> wan1", "dscp 64 is not in 0...63")
        assertPinError("dscp -1 -> wan1", "dscp -1 is not in 0...63")
        assertPinError("proto 256 -> x", "protocol 256 is not in 0...255")
    }

    func testUnknownWordIsRejected() {
        assertPinError("sctp -> wan1",
                       "unknown word 'sctp'; use tcp, udp, icmp, icmpv6, gre, esp, 'proto N', 'port N', 'dscp N'")
    }

    func testRuleWithoutCriteriaIsRejected() {
        assertPinError("-> wan1", "give at least one of a protocol, 'port N' or 'dscp N'")
        assertPinError("   -> wan1", "give at least one of a protocol, 'port N' or 'dscp N'")
    }

    // MARK: matching IPv4

    func testUDPPortRuleMatchesSourceOrDestinationPort() throws {
        let packets = TestPackets()
        let sip = try XCTUnwrap(rule("udp port 5060 -> wan2"))
        XCTAssertTrue(sip.matches(packets.make(testIPv4(protocol: 17, sourcePort: 40000, destinationPort: 5060))))
        XCTAssertTrue(sip.matches(packets.make(testIPv4(protocol: 17, sourcePort: 5060, destinationPort: 40000))))
        XCTAssertFalse(sip.matches(packets.make(testIPv4(protocol: 17, sourcePort: 40000, destinationPort: 5061))))
        XCTAssertFalse(sip.matches(packets.make(testIPv4(protocol: 6, sourcePort: 40000, destinationPort: 5060))),
                       "TCP on the port is not UDP")
    }

    func testPortOnlyRuleMatchesTCPAndUDPButNotOtherProtocols() throws {
        let packets = TestPackets()
        let ssh = try XCTUnwrap(rule("port 22 -> wan1"))
        XCTAssertTrue(ssh.matches(packets.make(testIPv4(protocol: 6, destinationPort: 22))))
        XCTAssertTrue(ssh.matches(packets.make(testIPv4(protocol: 17, destinationPort: 22))))
        XCTAssertFalse(ssh.matches(packets.make(testIPv4(protocol: 132, destinationPort: 22))), "SCTP has no port here")
    }

    func testPortRuleHonoursIPv4HeaderLength() throws {
        let packets = TestPackets()
        let dns = try XCTUnwrap(rule("udp port 53 -> wan1"))
        XCTAssertTrue(dns.matches(packets.make(testIPv4(protocol: 17, destinationPort: 53, optionWords: 1))))
        // Options whose bytes look like port 53 at offset 20; the real ports come after them.
        var decoy = testIPv4(protocol: 17, sourcePort: 40000, destinationPort: 8080, optionWords: 1)
        decoy[20] = 0; decoy[21] = 53; decoy[22] = 0; decoy[23] = 53
        XCTAssertFalse(dns.matches(packets.make(decoy)))
    }

    func testPortRuleNeedsTheTransportPorts() throws {
        let packets = TestPackets()
        let dns = try XCTUnwrap(rule("udp port 53 -> wan1"))
        XCTAssertFalse(dns.matches(packets.make(testIPv4(protocol: 17, destinationPort: 53, transportBytes: 3))))
        XCTAssertTrue(dns.matches(packets.make(testIPv4(protocol: 17, destinationPort: 53, transportBytes: 4))))
        let udp = try XCTUnwrap(rule("udp -> wan1"))
        XCTAssertTrue(udp.matches(packets.make(testIPv4(protocol: 17, transportBytes: 0))), "no port asked, none needed")
    }

    func testDSCPRuleReadsTOSByteIgnoringECN() throws {
        let packets = TestPackets()
        let voice = try XCTUnwrap(rule("dscp 46 -> wan1"))
        XCTAssertTrue(voice.matches(packets.make(testIPv4(protocol: 17, tos: 0xB8))))
        XCTAssertTrue(voice.matches(packets.make(testIPv4(protocol: 6, tos: 0xBB))), "ECN bits do not matter")
        XCTAssertFalse(voice.matches(packets.make(testIPv4(protocol: 17, tos: 0xB4))), "DSCP 45")
        XCTAssertFalse(voice.matches(packets.make(testIPv4(protocol: 17, tos: 0))))
    }

    func testAllCriteriaMustMatch() throws {
        let packets = TestPackets()
        let pin = try XCTUnwrap(rule("tcp port 22 dscp 16 -> wan1"))
        XCTAssertTrue(pin.matches(packets.make(testIPv4(protocol: 6, tos: 16 << 2, destinationPort: 22))))
        XCTAssertFalse(pin.matches(packets.make(testIPv4(protocol: 6, tos: 0, destinationPort: 22))), "wrong DSCP")
        XCTAssertFalse(pin.matches(packets.make(testIPv4(protocol: 17, tos: 16 << 2, destinationPort: 22))), "wrong protocol")
        XCTAssertFalse(pin.matches(packets.make(testIPv4(protocol: 6, tos: 16 << 2, destinationPort: 23))), "wrong port")
    }

    func testProtocolRulesMatchOnlyTheirProtocol() throws {
        let packets = TestPackets()
        let icmp = try XCTUnwrap(rule("icmp -> wan1"))
        let gre = try XCTUnwrap(rule("proto 47 -> x"))
        XCTAssertTrue(icmp.matches(packets.make(testIPv4(protocol: 1))))
        XCTAssertFalse(icmp.matches(packets.make(testIPv4(protocol: 17))))
        XCTAssertTrue(gre.matches(packets.make(testIPv4(protocol: 47))))
        XCTAssertFalse(gre.matches(packets.make(testIPv4(protocol: 1))))
    }

    func testShortOrNonIPPacketsNeverMatch() throws {
        let packets = TestPackets()
        let udp = try XCTUnwrap(rule("udp -> wan1"))
        let ipv4 = testIPv4(protocol: 17)
        XCTAssertFalse(udp.matches(packets.make(Array(ipv4[0..<19]))))
        var version5 = ipv4
        version5[0] = 0x55
        XCTAssertFalse(udp.matches(packets.make(version5)))
    }

    // MARK: matching IPv6

    func testIPv6ProtocolAndPortMatch() throws {
        let packets = TestPackets()
        let sip = try XCTUnwrap(rule("udp port 5060 -> wan2"))
        XCTAssertTrue(sip.matches(packets.make(testIPv6(nextHeader: 17, destinationPort: 5060))))
        XCTAssertTrue(sip.matches(packets.make(testIPv6(nextHeader: 17, sourcePort: 5060, destinationPort: 9))))
        XCTAssertFalse(sip.matches(packets.make(testIPv6(nextHeader: 6, destinationPort: 5060))))
        XCTAssertFalse(sip.matches(packets.make(testIPv6(nextHeader: 17, destinationPort: 5061))))
    }

    func testIPv6DSCPIsReadFromTrafficClass() throws {
        let packets = TestPackets()
        let voice = try XCTUnwrap(rule("dscp 46 -> wan1"))
        XCTAssertTrue(voice.matches(packets.make(testIPv6(nextHeader: 17, trafficClass: 0xB8))))
        XCTAssertTrue(voice.matches(packets.make(testIPv6(nextHeader: 17, trafficClass: 0xB9))), "ECN bit set")
        XCTAssertFalse(voice.matches(packets.make(testIPv6(nextHeader: 17, trafficClass: 0xB4))))
        XCTAssertFalse(voice.matches(packets.make(testIPv6(nextHeader: 17, trafficClass: 0))))
    }

    func testICMPv6IsNotICMP() throws {
        let packets = TestPackets()
        let icmp = try XCTUnwrap(rule("icmp -> wan1"))
        let icmpv6 = try XCTUnwrap(rule("icmpv6 -> wan1"))
        let ping6 = packets.make(testIPv6(nextHeader: 58))
        XCTAssertFalse(icmp.matches(ping6))
        XCTAssertTrue(icmpv6.matches(ping6))
    }

    func testIPv6ShorterThanFixedHeaderNeverMatches() throws {
        let packets = TestPackets()
        let udp = try XCTUnwrap(rule("udp -> wan1"))
        XCTAssertFalse(udp.matches(packets.make(testIPv6(nextHeader: 17, transportBytes: 0).dropLast(1).map { $0 })))
        XCTAssertTrue(udp.matches(packets.make(testIPv6(nextHeader: 17, transportBytes: 0))))
    }
}
