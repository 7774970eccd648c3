import XCTest
@testable import Bonding
import Framework

final class BondingWireTests: XCTestCase {
    func testSequenceDistanceWrapsAt24Bits() {
        XCTAssertEqual(BondingWire.distance(5, from: 3), 2)
        XCTAssertEqual(BondingWire.distance(3, from: 5), -2)
        XCTAssertEqual(BondingWire.distance(1, from: 0xFF_FFFF), 2)
        XCTAssertEqual(BondingWire.distance(0xFF_FFFF, from: 1), -2)
        XCTAssertEqual(BondingWire.next(0xFF_FFFF), 0)
    }

    func testSequenceDistanceHalfRangeBoundary() {
        XCTAssertEqual(BondingWire.distance(0x7F_FFFF, from: 0), 0x7F_FFFF)
        XCTAssertEqual(BondingWire.distance(0x80_0000, from: 0), -0x80_0000)
        XCTAssertEqual(BondingWire.distance(0, from: 0), 0)
        XCTAssertEqual(BondingWire.next(41), 42)
    }

    // MARK: data header

    func testDataHeaderPrependsFourBytesWithSequenceBigEndian() {
        let packets = TestPackets(headroom: 16)
        var packet = packets.make([0x45, 0x00, 0x00, 0x14])
        XCTAssertTrue(BondingWire.writeData(&packet, sequence: 0xAB_CDEF))
        XCTAssertEqual(packet.offset, 12)
        XCTAssertEqual(packet.length, 8)
        XCTAssertEqual(testBytes(of: packet), [0x00, 0xAB, 0xCD, 0xEF, 0x45, 0x00, 0x00, 0x14])
        XCTAssertEqual(BondingWire.sequence(of: packet), 0xAB_CDEF)
    }

    func testDataHeaderMasksSequenceTo24BitsSoTypeByteStaysData() {
        let packets = TestPackets(headroom: 16)
        var packet = packets.make([0x60])
        XCTAssertTrue(BondingWire.writeData(&packet, sequence: 0xFFAB_CDEF))
        XCTAssertEqual(testBytes(of: packet), [BondingWire.data, 0xAB, 0xCD, 0xEF, 0x60])
        XCTAssertEqual(BondingWire.sequence(of: packet), 0xAB_CDEF)

        var top = packets.make([0x60])
        XCTAssertTrue(BondingWire.writeData(&top, sequence: 0xFFFF_FFFF))
        XCTAssertEqual(testBytes(of: top), [0x00, 0xFF, 0xFF, 0xFF, 0x60])
        XCTAssertEqual(BondingWire.sequence(of: top), 0xFF_FFFF)
    }

    func testSequenceReadIgnoresTheTypeByte() {
        let packets = TestPackets()
        let packet = packets.make([0x02, 0x12, 0x34, 0x56, 0x99])
        XCTAssertEqual(BondingWire.sequence(of: packet), 0x12_3456)
    }

    func testDataHeaderNeedsFourBytesOfHeadroom() {
        let short = TestPackets(headroom: 3)
        var packet = short.make([1, 2, 3])
        XCTAssertFalse(BondingWire.writeData(&packet, sequence: 7))
        XCTAssertEqual(packet.offset, 3)
        XCTAssertEqual(packet.length, 3)

        let exact = TestPackets(headroom: 4)
        var fits = exact.make([1, 2, 3])
        XCTAssertTrue(BondingWire.writeData(&fits, sequence: 7))
        XCTAssertEqual(fits.offset, 0)
        XCTAssertEqual(testBytes(of: fits), [0, 0, 0, 7, 1, 2, 3])
    }

    func testBulkDataHeaderHasItsOwnTypeAndTheSameSequence() {
        let packets = TestPackets(headroom: 16)
        var packet = packets.make([0x45])
        XCTAssertTrue(BondingWire.writeData(&packet, sequence: 0x01_0203, bulk: true))
        XCTAssertEqual(testBytes(of: packet), [BondingWire.bulk, 0x01, 0x02, 0x03, 0x45])
        XCTAssertEqual(BondingWire.sequence(of: packet), 0x01_0203)
    }

    // MARK: probe

    func testProbeRoundTripWithExactLayout() {
        let packets = TestPackets()
        var packet = packets.make([])
        let probe = BondingWire.Probe(id: 0xDEAD_BEEF, sentAt: 0x0102_0304_0506_0708, name: "wan1", fallback: true,
                                      nextSequence: 0xAB_CDEF)
        XCTAssertTrue(BondingWire.write(probe, into: &packet))
        XCTAssertEqual(packet.length, BondingWire.probeHeader + 4)
        XCTAssertEqual(testBytes(of: packet), [0x01, 0x01, 4, 0,
                                               0xDE, 0xAD, 0xBE, 0xEF,
                                               0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                               0x00, 0xAB, 0xCD, 0xEF,
                                               0x77, 0x61, 0x6E, 0x31])
        XCTAssertEqual(BondingWire.parseProbe(packet), .success(probe))
    }

    func testProbeWithoutFallbackHasZeroFlags() {
        let packets = TestPackets()
        var packet = packets.make([])
        let probe = BondingWire.Probe(id: 1, sentAt: 0, name: "lte", fallback: false)
        XCTAssertTrue(BondingWire.write(probe, into: &packet))
        XCTAssertEqual(packet.byte(at: 1), 0)
        XCTAssertEqual(BondingWire.parseProbe(packet), .success(probe))
    }

    func testProbeWithEmptyNameRoundTrips() {
        let packets = TestPackets()
        var packet = packets.make([])
        let probe = BondingWire.Probe(id: 9, sentAt: 123_456, name: "", fallback: false)
        XCTAssertTrue(BondingWire.write(probe, into: &packet))
        XCTAssertEqual(packet.length, BondingWire.probeHeader)
        XCTAssertEqual(BondingWire.parseProbe(packet), .success(probe))
    }

    func testProbeNameLongerThan32BytesIsTruncatedOnWrite() {
        let packets = TestPackets()
        var packet = packets.make([])
        let long = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"  // 40 bytes
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 5, sentAt: 77, name: long, fallback: false), into: &packet))
        XCTAssertEqual(packet.length, BondingWire.probeHeader + 32)
        XCTAssertEqual(packet.byte(at: 2), 32)
        XCTAssertEqual(BondingWire.parseProbe(packet),
                       .success(BondingWire.Probe(id: 5, sentAt: 77, name: "abcdefghijklmnopqrstuvwxyz012345", fallback: false)))
    }

    func testProbeNameOfExactly32BytesIsKept() {
        let packets = TestPackets()
        var packet = packets.make([])
        let name = String(repeating: "x", count: 32)
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 5, sentAt: 77, name: name, fallback: false), into: &packet))
        XCTAssertEqual(packet.length, 52)
        XCTAssertEqual(BondingWire.parseProbe(packet),
                       .success(BondingWire.Probe(id: 5, sentAt: 77, name: name, fallback: false)))
    }

    func testProbeWriteFailsWithoutTailroomAndLeavesPacketEmpty() {
        // slot 52, headroom 16: an empty packet has 36 bytes of tailroom.
        let packets = TestPackets(slotSize: 52, headroom: 16)
        var tooLong = packets.make([])
        XCTAssertFalse(BondingWire.write(BondingWire.Probe(id: 1, sentAt: 0, name: String(repeating: "n", count: 17),
                                                           fallback: false), into: &tooLong))
        XCTAssertEqual(tooLong.length, 0)
        var fits = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 1, sentAt: 0, name: String(repeating: "n", count: 16),
                                                          fallback: false), into: &fits))
        XCTAssertEqual(fits.length, 36)
    }

    func testProbeShorterThanHeaderIsTruncated() {
        let packets = TestPackets()
        XCTAssertEqual(BondingWire.parseProbe(packets.make([])), .failure(.truncated))
        XCTAssertEqual(BondingWire.parseProbe(packets.make([UInt8](repeating: 0, count: 15))), .failure(.truncated))
    }

    func testProbeShorterThanItsNameIsTruncated() {
        let packets = TestPackets()
        var packet = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 2, sentAt: 3, name: "wan1", fallback: false), into: &packet))
        packet.length -= 1
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.truncated))
    }

    func testProbeLongerThanItsNameIsMalformed() {
        let packets = TestPackets()
        var packet = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 2, sentAt: 3, name: "wan1", fallback: false), into: &packet))
        packet.length += 1
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.malformed))
    }

    func testProbeWithNameLengthAbove32IsMalformed() {
        let packets = TestPackets()
        var header = [UInt8](repeating: 0, count: BondingWire.probeHeader + 33)
        header[0] = BondingWire.probe
        header[2] = 33
        for i in BondingWire.probeHeader..<header.count { header[i] = 0x61 }
        XCTAssertEqual(BondingWire.parseProbe(packets.make(header)), .failure(.malformed))
    }

    func testProbeWithUnknownFlagIsMalformed() {
        let packets = TestPackets()
        var packet = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 2, sentAt: 3, name: "wan1", fallback: true), into: &packet))
        testPoke(packet, 1, 0x05)
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.malformed))
        testPoke(packet, 1, 0x80)
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.malformed))
    }

    func testProbeWithInvalidUTF8NameIsMalformed() {
        let packets = TestPackets()
        var bytes = [UInt8](repeating: 0, count: BondingWire.probeHeader + 2)
        bytes[0] = BondingWire.probe
        bytes[2] = 2
        bytes[BondingWire.probeHeader] = 0xFF
        bytes[BondingWire.probeHeader + 1] = 0xFE
        XCTAssertEqual(BondingWire.parseProbe(packets.make(bytes)), .failure(.malformed))
    }

    func testProbeDegradedFlagRoundTrips() {
        let packets = TestPackets()
        var packet = packets.make([])
        let probe = BondingWire.Probe(id: 3, sentAt: 4, name: "lte", fallback: true, nextSequence: 5, degraded: true)
        XCTAssertTrue(BondingWire.write(probe, into: &packet))
        XCTAssertEqual(packet.byte(at: 1), 0x03)
        XCTAssertEqual(BondingWire.parseProbe(packet), .success(probe))
        testPoke(packet, 1, 0x04)  // an unknown flag
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.malformed))
    }

    func testProbeSequenceMarkOutside24BitsIsMalformed() {
        let packets = TestPackets()
        var packet = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Probe(id: 2, sentAt: 3, name: "", fallback: false, nextSequence: 0xFF_FFFF),
                                        into: &packet))
        XCTAssertEqual(BondingWire.parseProbe(packet),
                       .success(BondingWire.Probe(id: 2, sentAt: 3, name: "", fallback: false, nextSequence: 0xFF_FFFF)))
        testPoke(packet, 16, 0x01)  // a 25th bit
        XCTAssertEqual(BondingWire.parseProbe(packet), .failure(.malformed))
    }

    // MARK: echo

    func testEchoRoundTripWithExactLayout() {
        let packets = TestPackets()
        var packet = packets.make([])
        let echo = BondingWire.Echo(id: 0x0A0B_0C0D, sentAt: 0x1122_3344_5566_7788,
                                    receivedBytes: 0x0102_0304_0506_0708, echoedAt: 0xF0E0_D0C0_B0A0_9080,
                                    nextSequence: 0x12_3456)
        XCTAssertTrue(BondingWire.write(echo, into: &packet))
        XCTAssertEqual(packet.length, BondingWire.echoBytes)
        XCTAssertEqual(testBytes(of: packet), [0x02, 0x12, 0x34, 0x56,
                                               0x0A, 0x0B, 0x0C, 0x0D,
                                               0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                               0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                               0xF0, 0xE0, 0xD0, 0xC0, 0xB0, 0xA0, 0x90, 0x80])
        XCTAssertEqual(BondingWire.parseEcho(packet), .success(echo))
    }

    func testEchoWriteNeeds32BytesOfTailroom() {
        let exact = TestPackets(slotSize: 48, headroom: 16)
        var fits = exact.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Echo(id: 1, sentAt: 2, receivedBytes: 3, echoedAt: 4), into: &fits))
        XCTAssertEqual(fits.length, 32)

        let short = TestPackets(slotSize: 47, headroom: 16)
        var tooSmall = short.make([])
        XCTAssertFalse(BondingWire.write(BondingWire.Echo(id: 1, sentAt: 2, receivedBytes: 3, echoedAt: 4), into: &tooSmall))
        XCTAssertEqual(tooSmall.length, 0)
    }

    func testEchoOfWrongLengthIsTruncatedOrMalformed() {
        let packets = TestPackets()
        var packet = packets.make([])
        XCTAssertTrue(BondingWire.write(BondingWire.Echo(id: 1, sentAt: 2, receivedBytes: 3, echoedAt: 4), into: &packet))
        packet.length = 31
        XCTAssertEqual(BondingWire.parseEcho(packet), .failure(.truncated))
        packet.length = 0
        XCTAssertEqual(BondingWire.parseEcho(packet), .failure(.truncated))
        packet.length = 33
        XCTAssertEqual(BondingWire.parseEcho(packet), .failure(.malformed))
        packet.length = 32
        XCTAssertEqual(BondingWire.parseEcho(packet),
                       .success(BondingWire.Echo(id: 1, sentAt: 2, receivedBytes: 3, echoedAt: 4)))
    }

    // MARK: clock conversion

    func testMicrosecondConversion() {
        XCTAssertEqual(BondingWire.microseconds(1.5), 1_500_000)
        XCTAssertEqual(BondingWire.microseconds(0), 0)
        XCTAssertEqual(BondingWire.microseconds(-3), 0)
        XCTAssertEqual(BondingWire.seconds(2_500_000), 2.5)
        XCTAssertEqual(BondingWire.seconds(BondingWire.microseconds(0.25)), 0.25)
    }
}
