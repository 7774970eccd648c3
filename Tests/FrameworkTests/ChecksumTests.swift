import XCTest
@testable import Framework

final class ChecksumTests: XCTestCase {
    private func fast(_ bytes: [UInt8], initial: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { raw in
            Checksum.add(raw.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, raw.count, to: initial)
        }
    }

    /// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    func testRFC1071Vector() {
        let bytes: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        XCTAssertEqual(Checksum.fold(fast(bytes)), 0xddf2)
        XCTAssertEqual(Checksum.finish(fast(bytes)), 0x220d)
        XCTAssertEqual(Ref.onesSum(bytes), 0xddf2)
    }

    /// A real IPv4 header whose checksum is b861.
    func testIPv4HeaderKnownChecksum() {
        var header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                               0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
        XCTAssertEqual(Checksum.finish(fast(header)), 0xb861)
        // With the checksum in place the header sums to ffff (checks to 0).
        header[10] = 0xb8
        header[11] = 0x61
        XCTAssertEqual(Checksum.fold(fast(header)), 0xffff)
        XCTAssertEqual(Checksum.finish(fast(header)), 0)

        // recomputeIPv4Checksum writes the same value over a wrong one.
        header[10] = 0x12
        header[11] = 0x34
        header.withUnsafeMutableBytes { TCPSegmenter.recomputeIPv4Checksum($0.baseAddress!, ipLength: 20) }
        XCTAssertEqual(header[10], 0xb8)
        XCTAssertEqual(header[11], 0x61)
    }

    func testOddLengthsPadTheLastByteOnTheRight() {
        XCTAssertEqual(Checksum.fold(fast([0xab])), 0xab00)
        XCTAssertEqual(Checksum.fold(fast([0x01, 0x02, 0x03])), 0x0402)
        // 7 bytes: a 4-byte, a 2-byte and a 1-byte tail.
        XCTAssertEqual(Checksum.fold(fast([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])), 0x0102 + 0x0304 + 0x0506 + 0x0700)
        // 9 bytes: one 8-byte word and a 1-byte tail.
        XCTAssertEqual(Checksum.fold(fast([1, 2, 3, 4, 5, 6, 7, 8, 9])), 0x0102 + 0x0304 + 0x0506 + 0x0708 + 0x0900)
    }

    func testEmptyAndAllZeroAndAllOnes() {
        XCTAssertEqual(Checksum.fold(fast([])), 0)
        XCTAssertEqual(Checksum.finish(fast([])), 0xffff)
        XCTAssertEqual(Checksum.finish(fast([UInt8](repeating: 0, count: 64))), 0xffff)
        XCTAssertEqual(Checksum.fold(fast([UInt8](repeating: 0xff, count: 64))), 0xffff)
        XCTAssertEqual(Checksum.fold(fast([UInt8](repeating: 0xff, count: 63))), Ref.onesSum([UInt8](repeating: 0xff, count: 63)))
    }

    /// Carries out of the 64-bit accumulator go back in (end-around carry).
    func testCarriesFromTheAccumulatorAreKept() {
        let bytes = [UInt8](repeating: 0xff, count: 8 * 1000) + [0x00, 0x01]
        XCTAssertEqual(Checksum.fold(fast(bytes)), Ref.onesSum(bytes))
        // UInt64.max is a one's complement zero; adding 1 overflows and the carry comes back.
        XCTAssertEqual(Checksum.fold(fast([0x00, 0x01], initial: UInt64.max)), 0x0001)
    }

    func testFoldOfLargeSums() {
        XCTAssertEqual(Checksum.fold(0x1_0000), 0x0001)
        XCTAssertEqual(Checksum.fold(0xffff_ffff), 0xffff)
        XCTAssertEqual(Checksum.fold(0x0001_0000_0000), 0x0001)
        XCTAssertEqual(Checksum.fold(0x1234_5678_9abc_def0), Ref.onesSum([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]))
    }

    func testMatchesReferenceOnRandomDataOfEveryLength() {
        var random = TestRandom(seed: 42)
        for length in 0...300 {
            for _ in 0..<4 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                XCTAssertEqual(Checksum.finish(fast(bytes)), Ref.checksum(bytes), "length \(length)")
            }
        }
        for length in [1399, 1400, 1500, 4093, 9000, 65535] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            XCTAssertEqual(Checksum.finish(fast(bytes)), Ref.checksum(bytes), "length \(length)")
        }
    }

    /// Copying while summing writes the same bytes and gives the same sum as `add`, at
    /// every length around the 32-byte loop, from misaligned sources, and on carries.
    func testCopyAddCopiesAndSumsAsAddDoes() {
        var random = TestRandom(seed: 11)
        let lengths = Array(0...97) + [1360, 1399, 1400, 1448, 9000, 65535]
        for length in lengths {
            for misalign in [0, 1, 3] {
                let bytes = (0..<(length + misalign)).map { _ in UInt8.random(in: 0...255, using: &random) }
                var copy = [UInt8](repeating: 0xAA, count: length + 2)
                let initial: UInt64 = length % 2 == 0 ? 0x1234 : UInt64.max - 3
                let sum = bytes.withUnsafeBytes { source in
                    copy.withUnsafeMutableBytes { destination in
                        Checksum.copyAdd(from: source.baseAddress! + misalign, to: destination.baseAddress! + 1, length, to: initial)
                    }
                }
                let source = Array(bytes[misalign...])
                XCTAssertEqual(Array(copy[1..<(length + 1)]), source, "bytes, length \(length)")
                XCTAssertEqual(copy[0], 0xAA, "nothing written before, length \(length)")
                XCTAssertEqual(copy[length + 1], 0xAA, "nothing written after, length \(length)")
                XCTAssertEqual(Checksum.fold(sum), Checksum.fold(fast(source, initial: initial)), "sum, length \(length)")
            }
        }
        let ones = [UInt8](repeating: 0xff, count: 8 * 1000)
        var copy = ones
        let sum = ones.withUnsafeBytes { s in copy.withUnsafeMutableBytes { Checksum.copyAdd(from: s.baseAddress!, to: $0.baseAddress!, s.count, to: 0) } }
        XCTAssertEqual(Checksum.fold(sum), Ref.onesSum(ones))
    }

    /// Summing in pieces (each starting at an even offset) equals summing at once.
    func testIncrementalSums() {
        var random = TestRandom(seed: 7)
        let bytes = (0..<1001).map { _ in UInt8.random(in: 0...255, using: &random) }
        let whole = fast(bytes)
        let pieces = fast(Array(bytes[600...]), initial: fast(Array(bytes[14..<600]), initial: fast(Array(bytes[0..<14]))))
        XCTAssertEqual(Checksum.fold(pieces), Checksum.fold(whole))
        XCTAssertEqual(Checksum.fold(whole), Ref.onesSum(bytes))
    }

    func testPseudoHeaderSums() {
        let v4 = tcpPacket(TCPSpec(payload: pattern(100)))
        let v4Sum = v4.withUnsafeBytes { Checksum.pseudoHeader(ip: $0.baseAddress!, isIPv6: false, protocol: 6, length: 120) }
        XCTAssertEqual(Checksum.fold(v4Sum), Ref.onesSum(Ref.pseudoHeader(v4, tcpLength: 120)))
        let v6 = tcpPacket(TCPSpec(ipv6: true, payload: pattern(100)))
        let v6Sum = v6.withUnsafeBytes { Checksum.pseudoHeader(ip: $0.baseAddress!, isIPv6: true, protocol: 6, length: 120) }
        XCTAssertEqual(Checksum.fold(v6Sum), Ref.onesSum(Ref.pseudoHeader(v6, tcpLength: 120)))
        // The builder's TCP checksums verify with the reference.
        XCTAssertTrue(Ref.tcpChecksumValid(v4))
        XCTAssertTrue(Ref.tcpChecksumValid(v6))
        XCTAssertTrue(Ref.ipv4HeaderValid(v4))
    }

    /// Found by the tcp-coalescer and tcp-segmenter fuzz targets: addresses whose words sum
    /// to near 2^64 (all ones) made `pseudoHeader` trap on a plain +, so one TCP packet to
    /// or from 255.255.255.255 through the tunnel stopped the daemon.
    func testPseudoHeaderOfAllOnesAddressesCarries() {
        for ipv6 in [false, true] {
            var packet = tcpPacket(TCPSpec(ipv6: ipv6, payload: pattern(10)))
            let addresses = ipv6 ? 8..<40 : 12..<20
            packet.replaceSubrange(addresses, with: [UInt8](repeating: 0xff, count: addresses.count))
            let sum = packet.withUnsafeBytes { Checksum.pseudoHeader(ip: $0.baseAddress!, isIPv6: ipv6, protocol: 6, length: 65_535) }
            XCTAssertEqual(Checksum.fold(sum), Ref.onesSum(Ref.pseudoHeader(packet, tcpLength: 65_535)), ipv6 ? "IPv6" : "IPv4")
            let batch = makeBatch(capacity: 1)
            batch.appendPacket(packet)
            let table = TCPFlowTable()
            table.plan(batch)
            XCTAssertEqual(table.groupSize(at: 0), 1)
        }
    }

    func testStoreIsBigEndian() {
        var bytes: [UInt8] = [0, 0]
        bytes.withUnsafeMutableBytes { Checksum.store(0xb861, at: $0.baseAddress!) }
        XCTAssertEqual(bytes, [0xb8, 0x61])
    }
}
