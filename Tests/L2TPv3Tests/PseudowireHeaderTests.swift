import XCTest
@testable import L2TPv3

final class PseudowireHeaderTests: XCTestCase {
    /// §4.6: broker → client, unique-id mode, session 7, an ARP request.
    static let arp = hex("""
        00 03 00 00 00 00 00 07 00 00 00 00 \
        ff ff ff ff ff ff 02 00 00 00 00 01 08 06 \
        00 01 08 00 06 04 00 01 02 00 00 00 00 01 0a 00 00 01 \
        00 00 00 00 00 00 0a 00 00 02
        """)

    func header(_ sessionID: UInt32, offset: Int = 0) -> [UInt8] {
        var buffer = [UInt8](repeating: 0xEE, count: offset + PseudowireHeader.size)
        buffer.withUnsafeMutableBytes { PseudowireHeader.write(sessionID: sessionID, to: $0.baseAddress! + offset) }
        return Array(buffer[offset...])
    }

    func sessionID(_ bytes: [UInt8]) -> UInt32? {
        bytes.withUnsafeBytes { PseudowireHeader.sessionID(of: $0) }
    }

    func testARPExampleBothWays() {
        XCTAssertEqual(Self.arp.count, 54)
        XCTAssertEqual(header(7) + Array(Self.arp[12...]), Self.arp)
        XCTAssertEqual(sessionID(Self.arp), 7)
    }

    func testHeaderBytes() {
        XCTAssertEqual(header(1), hex("00 03 00 00 00 00 00 01 00 00 00 00"))  // legacy mode, §6.5
        XCTAssertEqual(header(0xDEAD_BEEF), hex("00 03 00 00 de ad be ef 00 00 00 00"))
        // Unaligned destination; bytes around it untouched.
        var buffer = [UInt8](repeating: 0xEE, count: 14)
        buffer.withUnsafeMutableBytes { PseudowireHeader.write(sessionID: 0x0102_0304, to: $0.baseAddress! + 1) }
        XCTAssertEqual(buffer, hex("ee 00 03 00 00 01 02 03 04 00 00 00 00 ee"))
    }

    func testNotData() {
        var control = Self.arp
        control[0] = 0x80  // T bit: a control message
        XCTAssertNil(sessionID(control))
        XCTAssertNil(sessionID(hex("80 73 a7 01 05 02 00 01 00 00 00 00") + [UInt8](repeating: 0, count: 14)))
        var version2 = Self.arp
        version2[1] = 0x02
        XCTAssertNil(sessionID(version2))
        // Shorter than header + Ethernet header.
        XCTAssertNil(sessionID(Array(Self.arp.prefix(25))))
        XCTAssertEqual(sessionID(Array(Self.arp.prefix(26))), 7)
        XCTAssertNil(sessionID([]))
        XCTAssertNil(sessionID(hex("00 03")))
    }

    func testReservedBitsAndSublayerAreIgnored() {
        var odd = Self.arp
        odd[0] = 0x7F; odd[1] = 0xF3  // every reserved bit set, T clear, version 3
        odd[2] = 0xFF; odd[3] = 0xFF
        odd[8] = 0x40; odd[11] = 0x05  // sublayer with S bit and a sequence number
        XCTAssertEqual(sessionID(odd), 7)
    }

    func testEveryPrefixIsSafe() {
        for count in 0...Self.arp.count {
            XCTAssertEqual(sessionID(Array(Self.arp.prefix(count))), count >= 26 ? 7 : nil)
        }
    }

    /// A data datagram too short for an id and a frame is "short data" (its session
    /// counts it `truncated`); a control message (T bit) or an empty one is not.
    func testShortData() {
        func isShort(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { PseudowireHeader.isShortData($0) } }
        for count in 1..<26 { XCTAssertTrue(isShort(Array(Self.arp.prefix(count))), "\(count) bytes") }
        XCTAssertFalse(isShort(Array(Self.arp.prefix(26))))
        XCTAssertFalse(isShort([]))
        XCTAssertFalse(isShort([0x80, 0x03, 0, 0]), "control")
    }

    /// What a session's own address sends goes to it when it carries its id or is too
    /// short to carry one; another id, or another version, does not.
    func testBelongsToSession() {
        func belongs(_ bytes: [UInt8], _ id: UInt32) -> Bool {
            bytes.withUnsafeBytes { PseudowireHeader.belongs($0, toSession: id) }
        }
        XCTAssertTrue(belongs(Self.arp, 7))
        XCTAssertFalse(belongs(Self.arp, 8))
        XCTAssertTrue(belongs(Array(Self.arp.prefix(20)), 8), "short: its session counts it truncated")
        var version2 = Self.arp
        version2[1] = 0x02
        XCTAssertFalse(belongs(version2, 7))
        XCTAssertFalse(belongs([], 7))
    }

    func testOverhead() {
        XCTAssertEqual(PseudowireHeader.size, 12)
        XCTAssertEqual(PseudowireHeader.overhead, 20 + 8 + 12 + 14)
        XCTAssertEqual(1500 - PseudowireHeader.overhead, 1446)
    }
}
