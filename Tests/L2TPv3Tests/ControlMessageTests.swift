import XCTest
@testable import L2TPv3

/// "80 73 a7 01" → bytes. Test vectors are written as in the protocol reference §6.
func hex(_ text: String) -> [UInt8] {
    text.split(separator: " ").map { UInt8($0, radix: 16)! }
}

/// A deterministic RNG (SplitMix64), so a failing random case can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class ControlMessageTests: XCTestCase {
    struct Vector {
        let name: String
        let bytes: [UInt8]
        let sender: ControlSender
        let message: ControlMessage
    }

    static let v6Cookie = Cookie(bytes: hex("00 00 95 b9 11 20 12 21"))
    static let v8Cookie = Cookie(bytes: hex("00 05 2e 26 c9 6f 30 38"))

    /// §6.1–6.2 vectors whose bytes are fully specified and whose padding is zero:
    /// these must decode to `message` and encode back to exactly `bytes`.
    static let exactVectors: [Vector] = [
        Vector(name: "V1", bytes: hex("80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01"), sender: .client,
               message: .usageRequest(features: .uniqueSessionID)),
        Vector(name: "V2", bytes: hex("80 73 a7 01 0a 08 55 55 55 55 55 55 55 55"), sender: .client,
               message: .usageRequest(features: [])),
        Vector(name: "V3", bytes: hex("80 73 a7 01 0a 02 00 00 00 00 00 00"), sender: .broker,
               message: .usageReply(load: 0)),
        Vector(name: "V4", bytes: hex("80 73 a7 01 0a 02 00 ff 00 00 00 00"), sender: .broker,
               message: .usageReply(load: 255)),
        Vector(name: "V5", bytes: hex("80 73 a7 01 01 08 58 58 58 58 58 58 58 58"), sender: .client,
               message: .cookieRequest),
        Vector(name: "V6", bytes: hex("80 73 a7 01 01 08 00 00 95 b9 11 20 12 21"), sender: .broker,
               message: .cookieReply(cookie: v6Cookie)),
        Vector(name: "V7",
               bytes: hex("80 73 a7 01 02 14 00 00 95 b9 11 20 12 21 03 61 62 63 00 00 00 01 00 00 00 01"),
               sender: .client,
               message: .prepare(cookie: v6Cookie, uuid: Array("abc".utf8), tunnelID: 1, features: .uniqueSessionID)),
        Vector(name: "V8", bytes: hex("80 73 a7 01 02 0c 00 05 2e 26 c9 6f 30 38 03 61 62 63"), sender: .client,
               message: .prepare(cookie: v8Cookie, uuid: Array("abc".utf8), tunnelID: nil, features: nil)),
        Vector(name: "V9", bytes: hex("80 73 a7 01 04 08 00 00 00 64 00 00 00 01"), sender: .broker,
               message: .tunnel(id: 100, features: .uniqueSessionID)),
        Vector(name: "V10", bytes: hex("80 73 a7 01 04 04 00 00 00 64 00 00"), sender: .broker,
               message: .tunnel(id: 100, features: nil)),
        // V11 leaves the cookie open; the V6 cookie fills it in.
        Vector(name: "V11",
               bytes: hex("80 73 a7 01 02 14 00 00 95 b9 11 20 12 21 03 61 62 63 00 00 00 07 00 00 00 01"),
               sender: .client,
               message: .prepare(cookie: v6Cookie, uuid: Array("abc".utf8), tunnelID: 7, features: .uniqueSessionID)),
        Vector(name: "V12", bytes: hex("80 73 a7 01 05 02 00 01 00 00 00 00"), sender: .broker,
               message: .keepalive(counter: 1, wide: false)),
        Vector(name: "V13", bytes: hex("80 73 a7 01 05 04 00 00 00 02 00 00"), sender: .client,
               message: .keepalive(counter: 2, wide: true)),
        Vector(name: "V15", bytes: hex("80 73 a7 01 07 02 05 c0 00 00 00 00"), sender: .client,
               message: .pmtuAck(size: 1472)),
        Vector(name: "V16", bytes: hex("80 73 a7 01 07 02 05 1a 00 00 00 00"), sender: .broker,
               message: .pmtuAck(size: 1306)),
        Vector(name: "V17", bytes: hex("80 73 a7 01 09 02 05 a6 00 00 00 00"), sender: .broker,
               message: .pmtuNotify(mtu: 1446)),
        Vector(name: "V19", bytes: hex("80 73 a7 01 80 08 00 00 01 04 00 00 07 d0"), sender: .client,
               message: .limit(sequence: 0, bandwidthKbps: 2000)),
        Vector(name: "V20", bytes: hex("80 73 a7 01 08 02 00 00 00 00 00 00"), sender: .broker,
               message: .reliableAck(sequence: 0)),
        Vector(name: "V21", bytes: hex("80 73 a7 01 03 01 11 00 00 00 00 00"), sender: .client,
               message: .error(reason: ErrorReason.clientShutdown)),
        Vector(name: "V22", bytes: hex("80 73 a7 01 03 01 01 00 00 00 00 00"), sender: .broker,
               message: .error(reason: ErrorReason.brokerOtherRequested)),
        Vector(name: "V23", bytes: hex("80 73 a7 01 03 00 00 00 00 00 00 00"), sender: .broker,
               message: .error(reason: nil)),
        Vector(name: "V24", bytes: hex("80 73 a7 01 03 01 03 00 00 00 00 00"), sender: .broker,
               message: .error(reason: ErrorReason.brokerTimeout)),
    ]

    /// Captures with non-zero padding from the C client (V18 as captured; V13 and
    /// V21 with the garbage the doc warns about). They decode like the clean ones;
    /// re-encoding pads with zeros.
    static let garbagePaddedVectors: [(name: String, bytes: [UInt8], message: ControlMessage, clean: [UInt8])] = [
        ("V18", hex("80 73 a7 01 09 02 05 a6 e0 03 00 00"), .pmtuNotify(mtu: 1446),
         hex("80 73 a7 01 09 02 05 a6 00 00 00 00")),
        ("V13'", hex("80 73 a7 01 05 04 00 00 00 02 e0 03"), .keepalive(counter: 2, wide: true),
         hex("80 73 a7 01 05 04 00 00 00 02 00 00")),
        ("V21'", hex("80 73 a7 01 03 01 11 05 a6 e0 03 7f"), .error(reason: ErrorReason.clientShutdown),
         hex("80 73 a7 01 03 01 11 00 00 00 00 00")),
    ]

    /// V14: a 1500-byte-class probe, 1472 bytes of UDP payload.
    static let v14: [UInt8] = hex("80 73 a7 01 06 00") + [UInt8](repeating: 0, count: 1466)

    static var allVectorBytes: [[UInt8]] {
        exactVectors.map(\.bytes) + garbagePaddedVectors.map(\.bytes) + [v14]
    }

    func decode(_ bytes: [UInt8], _ sender: ControlSender) -> Result<ControlMessage, ControlDecodeError> {
        ControlMessage.decode(bytes, from: sender)
    }

    // MARK: vectors

    func testVectorsDecode() {
        for vector in Self.exactVectors {
            XCTAssertEqual(decode(vector.bytes, vector.sender), .success(vector.message), vector.name)
        }
    }

    func testVectorsEncodeByteExactly() throws {
        for vector in Self.exactVectors {
            XCTAssertEqual(try vector.message.encode(), vector.bytes, vector.name)
        }
    }

    func testGarbagePaddingIsIgnoredAndEncodedAsZeros() throws {
        for vector in Self.garbagePaddedVectors {
            XCTAssertEqual(decode(vector.bytes, .client), .success(vector.message), vector.name)
            XCTAssertEqual(decode(vector.bytes, .broker), .success(vector.message), vector.name)
            XCTAssertEqual(try vector.message.encode(), vector.clean, vector.name)
        }
    }

    func testV14ProbeOf1472Bytes() throws {
        XCTAssertEqual(Self.v14.count, 1472)
        XCTAssertEqual(decode(Self.v14, .broker), .success(.pmtuProbe(size: 1472)))
        XCTAssertEqual(decode(Self.v14, .client), .success(.pmtuProbe(size: 1472)))
        let encoded = try ControlMessage.pmtuProbe(size: 1472).encode()
        XCTAssertEqual(encoded, Self.v14)
    }

    func testProbeIsNeverPaddedAndItsSizeIsWhatArrived() throws {
        XCTAssertEqual(try ControlMessage.pmtuProbe(size: 6).encode(), hex("80 73 a7 01 06 00"))
        XCTAssertEqual(try ControlMessage.pmtuProbe(size: 9).encode(), hex("80 73 a7 01 06 00 00 00 00"))
        XCTAssertEqual(decode(hex("80 73 a7 01 06 00"), .client), .success(.pmtuProbe(size: 6)))
        // Whatever the probe carries after the header counts toward its size.
        XCTAssertEqual(decode(hex("80 73 a7 01 06 00 ff ff ff ff ff ff ff"), .client), .success(.pmtuProbe(size: 13)))
        XCTAssertEqual(decode(hex("80 73 a7 01 06 02 aa bb"), .client), .success(.pmtuProbe(size: 8)))
        XCTAssertEqual(try ControlMessage.pmtuProbe(size: 65507).encode().count, 65507)
        XCTAssertThrowsError(try ControlMessage.pmtuProbe(size: 5).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .badProbeSize(5))
        }
        XCTAssertThrowsError(try ControlMessage.pmtuProbe(size: 65508).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .badProbeSize(65508))
        }
        XCTAssertThrowsError(try ControlMessage.pmtuProbe(size: -1).encode())
    }

    // MARK: sender decides COOKIE and USAGE

    func testCookieTypeIsReadAccordingToTheSender() {
        // The C client's request has L = 8, as long as a reply: only the sender tells them apart.
        let request = hex("80 73 a7 01 01 08 58 58 58 58 58 58 58 58")
        XCTAssertEqual(decode(request, .client), .success(.cookieRequest))
        XCTAssertEqual(decode(request, .broker), .success(.cookieReply(cookie: Cookie(value: 0x5858_5858_5858_5858))))
        // Longer requests are fine (filler is only a minimum); replies must be exactly 8.
        let long = hex("80 73 a7 01 01 0a 58 58 58 58 58 58 58 58 58 58")
        XCTAssertEqual(decode(long, .client), .success(.cookieRequest))
        XCTAssertEqual(decode(long, .broker), .failure(.badLength(type: 0x01)))
        let short = hex("80 73 a7 01 01 07 58 58 58 58 58 58 58")
        XCTAssertEqual(decode(short, .client), .failure(.badLength(type: 0x01)))
        XCTAssertEqual(decode(short, .broker), .failure(.badLength(type: 0x01)))
    }

    func testUsageTypeIsReadAccordingToTheSender() {
        XCTAssertEqual(decode(hex("80 73 a7 01 0a 02 00 ff 00 00 00 00"), .client), .failure(.badLength(type: 0x0a)))
        XCTAssertEqual(decode(hex("80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01"), .broker),
                       .failure(.badLength(type: 0x0a)))
        XCTAssertEqual(decode(hex("80 73 a7 01 0a 03 00 ff 00 00 00 00"), .broker), .failure(.badLength(type: 0x0a)))
    }

    func testUsageRequestFeaturesOnlyWithAllFourBytes() {
        let base = hex("80 73 a7 01 0a 0b 55 55 55 55 55 55 55 55 00 00 00")
        XCTAssertEqual(decode(base, .client), .success(.usageRequest(features: [])))
        XCTAssertEqual(decode(hex("80 73 a7 01 0a 0d 55 55 55 55 55 55 55 55 80 00 00 03 09"), .client),
                       .success(.usageRequest(features: FeatureFlags(rawValue: 0x8000_0003))))
    }

    // MARK: §6.4 decoder edge cases

    func testEdgeCasesFromTheReference() {
        for sender in [ControlSender.client, .broker] {
            XCTAssertEqual(decode(hex("80 73 a7 01 05"), sender), .failure(.tooShort))
            XCTAssertEqual(decode(hex("81 73 a7 01 05 00 00 00 00 00 00 00"), sender), .failure(.badMagic))
            XCTAssertEqual(decode(hex("80 73 a7 02 05 00 00 00 00 00 00 00"), sender), .failure(.badVersion))
            XCTAssertEqual(decode(hex("80 73 a7 01 05 08 00 01"), sender), .failure(.truncatedPayload))
            // TUNNEL with L < 4 is ignored by the client.
            for length in 0..<4 {
                let bytes = hex("80 73 a7 01 04") + [UInt8(length)] + [UInt8](repeating: 0, count: 6)
                XCTAssertEqual(decode(bytes, sender), .failure(.badLength(type: 0x04)), "TUNNEL L=\(length)")
            }
            // PMTUD_ACK, PMTU_NTFY and REL_ACK must be exactly 2.
            for type: UInt8 in [0x07, 0x08, 0x09] {
                for length in [0, 1, 3, 4] {
                    let bytes = hex("80 73 a7 01") + [type, UInt8(length)] + [UInt8](repeating: 5, count: 6)
                    XCTAssertEqual(decode(bytes, sender), .failure(.badLength(type: type)), "type \(type) L=\(length)")
                }
            }
            // ERROR with L = 0: a reason-less ERROR (the client tears down on it).
            XCTAssertEqual(decode(hex("80 73 a7 01 03 00 00 00 00 00 00 00"), sender), .success(.error(reason: nil)))
        }
        XCTAssertEqual(decode(hex("80 73 a7 01 0a 07 55 55 55 55 55 55 55"), .client), .failure(.badLength(type: 0x0a)))
        for length in [0, 1, 7, 9, 12] {
            let bytes = hex("80 73 a7 01 01") + [UInt8(length)] + [UInt8](repeating: 0x41, count: 12)
            XCTAssertEqual(decode(bytes, .broker), .failure(.badLength(type: 0x01)), "COOKIE reply L=\(length)")
        }
    }

    func testHeaderChecksEachMagicByte() {
        XCTAssertEqual(decode(hex("80 74 a7 01 05 00 00 00 00 00 00 00"), .client), .failure(.badMagic))
        XCTAssertEqual(decode(hex("80 73 a8 01 05 00 00 00 00 00 00 00"), .client), .failure(.badMagic))
        XCTAssertEqual(decode(hex("00 03 00 00 00 00 00 07 00 00 00 00"), .client), .failure(.badMagic))
        XCTAssertEqual(decode(hex("80 73 a7 00 05 00 00 00 00 00 00 00"), .client), .failure(.badVersion))
        XCTAssertEqual(decode([], .client), .failure(.tooShort))
        // A bare 6-byte header with L = 0 is complete (padding is optional to a receiver).
        XCTAssertEqual(decode(hex("80 73 a7 01 03 00"), .broker), .success(.error(reason: nil)))
        // L = 255 with 254 bytes present is truncated; with 255 it is whole.
        let prepare = hex("80 73 a7 01 02 ff") + [UInt8](repeating: 0, count: 8) + [246] + [UInt8](repeating: 0x61, count: 246)
        XCTAssertEqual(prepare.count, 6 + 255)
        XCTAssertEqual(decode(Array(prepare.dropLast()), .client), .failure(.truncatedPayload))
        XCTAssertEqual(decode(prepare, .client),
                       .success(.prepare(cookie: Cookie(value: 0), uuid: [UInt8](repeating: 0x61, count: 246),
                                         tunnelID: nil, features: nil)))
    }

    func testUnknownTypes() {
        for type: UInt8 in [0x00, 0x0b, 0x10, 0x7f] {
            let bytes = hex("80 73 a7 01") + [type, 2, 0, 1] + [UInt8](repeating: 0, count: 4)
            XCTAssertEqual(decode(bytes, .client), .failure(.unknownType(type)))
            XCTAssertEqual(decode(bytes, .broker), .failure(.unknownType(type)))
        }
    }

    func testErrorLengths() {
        XCTAssertEqual(decode(hex("80 73 a7 01 03 01 13 00 00 00 00 00"), .client), .success(.error(reason: 0x13)))
        // Longer than 1: the first byte is the reason (the upstream broker would not close on it).
        XCTAssertEqual(decode(hex("80 73 a7 01 03 02 12 99 00 00 00 00"), .client), .success(.error(reason: 0x12)))
        XCTAssertTrue(ErrorReason.isFromClient(ErrorReason.clientTimeout))
        XCTAssertFalse(ErrorReason.isFromClient(ErrorReason.brokerTimeout))
    }

    func testKeepaliveAcceptsAnyLength() {
        XCTAssertEqual(decode(hex("80 73 a7 01 05 02 ff fe 00 00 00 00"), .broker), .success(.keepalive(counter: 0xFFFE, wide: false)))
        XCTAssertEqual(decode(hex("80 73 a7 01 05 04 de ad be ef 00 00"), .client),
                       .success(.keepalive(counter: 0xDEAD_BEEF, wide: true)))
        for length in [0, 1, 3, 5, 8] {
            let bytes = hex("80 73 a7 01 05") + [UInt8(length)] + [UInt8](repeating: 0x77, count: 8)
            XCTAssertEqual(decode(bytes, .client), .success(.keepalive(counter: 0, wide: false)), "L=\(length)")
        }
    }

    func testKeepaliveEncodesEachWidth() throws {
        XCTAssertEqual(try ControlMessage.keepalive(counter: 0x0001_2345, wide: false).encode(),
                       hex("80 73 a7 01 05 02 23 45 00 00 00 00"))  // u16 counter wraps
        XCTAssertEqual(try ControlMessage.keepalive(counter: 0x0001_2345, wide: true).encode(),
                       hex("80 73 a7 01 05 04 00 01 23 45 00 00"))
    }

    func testTunnelFeaturesOnlyFromLength8() {
        for length in 5...7 {
            let bytes = hex("80 73 a7 01 04") + [UInt8(length)] + hex("00 00 01 00 00 00 00 01")
            XCTAssertEqual(decode(bytes, .broker), .success(.tunnel(id: 256, features: nil)), "L=\(length)")
        }
        XCTAssertEqual(decode(hex("80 73 a7 01 04 09 00 00 01 00 00 00 00 03 ff"), .broker),
                       .success(.tunnel(id: 256, features: FeatureFlags(rawValue: 3))))
        // A zero features word is still "present": re-encoding keeps the 8-byte form.
        XCTAssertEqual(decode(hex("80 73 a7 01 04 08 00 00 00 64 00 00 00 00"), .broker),
                       .success(.tunnel(id: 100, features: FeatureFlags())))
    }

    // MARK: PREPARE layout

    func testPrepareOptionalWords() {
        let cookie = hex("01 02 03 04 05 06 07 08")
        let value = Cookie(value: 0x0102_0304_0506_0708)
        /// L covers the whole body unless `length` says otherwise.
        func prepare(_ tail: String, length: Int? = nil) -> [UInt8] {
            let body = cookie + hex(tail)
            return hex("80 73 a7 01 02") + [UInt8(length ?? body.count)] + body
        }
        // Too short for cookie + N.
        XCTAssertEqual(decode(hex("80 73 a7 01 02 08") + cookie, .client), .failure(.badLength(type: 0x02)))
        // Empty UUID, nothing else.
        XCTAssertEqual(decode(prepare("00"), .client),
                       .success(.prepare(cookie: value, uuid: [], tunnelID: nil, features: nil)))
        // N runs past L.
        XCTAssertEqual(decode(prepare("04 61 62 63", length: 12), .client), .failure(.badLength(type: 0x02)))
        // N fits only if we read past L into padding: still refused.
        XCTAssertEqual(decode(prepare("04 61 62 63 64", length: 12), .client), .failure(.badLength(type: 0x02)))
        // 3 spare bytes: no tunnel id.
        XCTAssertEqual(decode(prepare("01 61 00 00 07"), .client),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: nil, features: nil)))
        // Tunnel id alone.
        XCTAssertEqual(decode(prepare("01 61 00 00 00 07"), .client),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: 7, features: nil)))
        // Tunnel id plus 3 bytes: no features.
        XCTAssertEqual(decode(prepare("01 61 00 00 00 07 00 00 01"), .client),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: 7, features: nil)))
        // Both, then trailing bytes ignored.
        XCTAssertEqual(decode(prepare("01 61 00 00 00 07 00 00 00 01 ee"), .client),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: 7, features: .uniqueSessionID)))
        // Bytes past L are padding, never the optional words.
        XCTAssertEqual(decode(prepare("01 61 00 00 00 07 00 00 00 01", length: 10), .client),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: nil, features: nil)))
        // The same from either sender (only COOKIE, USAGE depend on it).
        XCTAssertEqual(decode(prepare("01 61 00 00 00 07"), .broker),
                       .success(.prepare(cookie: value, uuid: [0x61], tunnelID: 7, features: nil)))
    }

    func testPrepareEncodingLimits() throws {
        let cookie = Cookie(value: 0xAABB_CCDD_EEFF_0011)
        // N = 238 with both words: L = 8 + 1 + 238 + 8 = 255, the most the length byte holds.
        let longest = try ControlMessage.prepare(cookie: cookie, uuid: [UInt8](repeating: 0x30, count: 238),
                                                 tunnelID: 9, features: .uniqueSessionID).encode()
        XCTAssertEqual(longest.count, 6 + 255)
        XCTAssertEqual(longest[5], 255)
        XCTAssertEqual(Array(longest[6..<15]), hex("aa bb cc dd ee ff 00 11 ee"))
        XCTAssertEqual(Array(longest.suffix(8)), hex("00 00 00 09 00 00 00 01"))
        XCTAssertEqual(decode(longest, .client),
                       .success(.prepare(cookie: cookie, uuid: [UInt8](repeating: 0x30, count: 238), tunnelID: 9,
                                         features: .uniqueSessionID)))

        XCTAssertThrowsError(try ControlMessage.prepare(cookie: cookie, uuid: [UInt8](repeating: 0x30, count: 239),
                                                        tunnelID: 9, features: .uniqueSessionID).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .tooLong(payload: 256))
        }
        // Without the optional words, a 246-byte UUID fits, a 255-byte one does not.
        XCTAssertEqual(try ControlMessage.prepare(cookie: cookie, uuid: [UInt8](repeating: 1, count: 246),
                                                  tunnelID: nil, features: nil).encode().count, 261)
        XCTAssertThrowsError(try ControlMessage.prepare(cookie: cookie, uuid: [UInt8](repeating: 1, count: 255),
                                                        tunnelID: nil, features: nil).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .tooLong(payload: 264))
        }
        XCTAssertThrowsError(try ControlMessage.prepare(cookie: cookie, uuid: [UInt8](repeating: 1, count: 300),
                                                        tunnelID: nil, features: nil).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .tooLong(payload: 309))
        }
        XCTAssertThrowsError(try ControlMessage.prepare(cookie: cookie, uuid: [1], tunnelID: nil,
                                                        features: .uniqueSessionID).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .featuresWithoutTunnelID)
        }
    }

    // MARK: reliable messages

    func testReliableTypes() {
        // Unknown reliable type: still decodes, so it can be acknowledged.
        XCTAssertEqual(decode(hex("80 73 a7 01 81 02 12 34 00 00 00 00"), .client), .success(.reliable(type: 0x81, sequence: 0x1234)))
        XCTAssertEqual(decode(hex("80 73 a7 01 ff 03 00 09 ff 00 00 00"), .client), .success(.reliable(type: 0xff, sequence: 9)))
        // A sequence number needs 2 bytes.
        XCTAssertEqual(decode(hex("80 73 a7 01 80 01 00 00 00 00 00 00"), .client), .failure(.badLength(type: 0x80)))
        XCTAssertEqual(decode(hex("80 73 a7 01 9a 00 00 00 00 00 00 00"), .client), .failure(.badLength(type: 0x9a)))
        // LIMIT with a malformed or unknown TLV: acknowledge, don't apply.
        XCTAssertEqual(decode(hex("80 73 a7 01 80 02 00 05 00 00 00 00"), .client), .success(.reliable(type: 0x80, sequence: 5)))
        XCTAssertEqual(decode(hex("80 73 a7 01 80 08 00 05 02 04 00 00 07 d0"), .client), .success(.reliable(type: 0x80, sequence: 5)))
        XCTAssertEqual(decode(hex("80 73 a7 01 80 08 00 05 01 03 00 00 07 d0"), .client), .success(.reliable(type: 0x80, sequence: 5)))
        XCTAssertEqual(decode(hex("80 73 a7 01 80 07 00 05 01 04 00 00 07 d0"), .client), .success(.reliable(type: 0x80, sequence: 5)))
        // Bytes after the 4-byte value are ignored, as upstream does.
        XCTAssertEqual(decode(hex("80 73 a7 01 80 09 00 05 01 04 00 00 07 d0 ee"), .client),
                       .success(.limit(sequence: 5, bandwidthKbps: 2000)))
    }

    func testReliableAccessors() throws {
        let limit = ControlMessage.limit(sequence: 3, bandwidthKbps: 1)
        XCTAssertTrue(limit.isReliable)
        XCTAssertEqual(limit.reliableSequence, 3)
        XCTAssertEqual(limit.type, .limit)
        let other = ControlMessage.reliable(type: 0x90, sequence: 0xBEEF)
        XCTAssertTrue(other.isReliable)
        XCTAssertEqual(other.reliableSequence, 0xBEEF)
        XCTAssertNil(other.type)
        XCTAssertEqual(other.typeByte, 0x90)
        XCTAssertEqual(try other.encode(), hex("80 73 a7 01 90 02 be ef 00 00 00 00"))
        XCTAssertFalse(ControlMessage.keepalive(counter: 1, wide: true).isReliable)
        XCTAssertNil(ControlMessage.reliableAck(sequence: 1).reliableSequence)
        XCTAssertThrowsError(try ControlMessage.reliable(type: 0x05, sequence: 1).encode()) {
            XCTAssertEqual($0 as? ControlEncodeError, .notReliable(0x05))
        }
    }

    func testTypeBytes() {
        let expected: [(ControlMessage, ControlType)] = [
            (.cookieRequest, .cookie), (.cookieReply(cookie: Cookie(value: 1)), .cookie),
            (.usageRequest(features: []), .usage), (.usageReply(load: 1), .usage),
            (.prepare(cookie: Cookie(value: 1), uuid: [], tunnelID: nil, features: nil), .prepare),
            (.tunnel(id: 1, features: nil), .tunnel), (.error(reason: nil), .error),
            (.keepalive(counter: 1, wide: false), .keepalive), (.pmtuProbe(size: 100), .pmtuProbe),
            (.pmtuAck(size: 1), .pmtuAck), (.reliableAck(sequence: 1), .reliableAck),
            (.pmtuNotify(mtu: 1), .pmtuNotify), (.limit(sequence: 1, bandwidthKbps: 1), .limit),
        ]
        for (message, type) in expected {
            XCTAssertEqual(message.type, type, "\(message)")
            XCTAssertEqual(message.typeByte, type.rawValue, "\(message)")
        }
        XCTAssertEqual(ControlType.usage.rawValue, 0x0A)
        XCTAssertEqual(ControlType.limit.rawValue, 0x80)
    }

    // MARK: encoding

    func testShortMessagesArePaddedToTwelveWithZeros() throws {
        XCTAssertEqual(try ControlMessage.error(reason: nil).encode(), hex("80 73 a7 01 03 00 00 00 00 00 00 00"))
        XCTAssertEqual(try ControlMessage.tunnel(id: 0xDEAD_BEEF, features: nil).encode(),
                       hex("80 73 a7 01 04 04 de ad be ef 00 00"))
        // 14 bytes already: no padding.
        XCTAssertEqual(try ControlMessage.tunnel(id: 1, features: FeatureFlags(rawValue: 0)).encode(),
                       hex("80 73 a7 01 04 08 00 00 00 01 00 00 00 00"))
    }

    func testCookieBytes() {
        let cookie = Cookie(bytes: hex("00 05 2e 26 c9 6f 30 38"))
        XCTAssertEqual(cookie.value, 0x0005_2E26_C96F_3038)
        XCTAssertEqual(cookie.bytes, hex("00 05 2e 26 c9 6f 30 38"))
        XCTAssertEqual(cookie.timestamp, 5)
        XCTAssertEqual(cookie.mac, 0x2E26_C96F_3038)
        XCTAssertEqual(cookie.description, "00052e26c96f3038")
        XCTAssertEqual(Cookie(bytes: hex("00 05 2e 26 c9 6f 30 38")[...]), cookie)
    }

    func testEveryMessageRoundTrips() throws {
        let messages: [(ControlMessage, ControlSender)] = [
            (.cookieRequest, .client),
            (.cookieReply(cookie: Cookie(value: .max)), .broker),
            (.usageRequest(features: FeatureFlags(rawValue: 0xFFFF_FFFF)), .client),
            (.usageReply(load: 0xFFFF), .broker),
            (.prepare(cookie: Cookie(value: 0), uuid: Array("02:00:00:00:00:01".utf8), tunnelID: 0xFFFF_FFFF, features: []), .client),
            (.prepare(cookie: Cookie(value: 42), uuid: [], tunnelID: 0, features: nil), .client),
            (.tunnel(id: 0, features: FeatureFlags(rawValue: 0x8000_0000)), .broker),
            (.error(reason: 0xFF), .client),
            (.keepalive(counter: 0xFFFF, wide: false), .broker),
            (.keepalive(counter: 0, wide: true), .client),
            (.pmtuProbe(size: 1306), .client),
            (.pmtuAck(size: 0xFFFF), .client),
            (.reliableAck(sequence: 0xFFFF), .broker),
            (.pmtuNotify(mtu: 1280), .client),
            (.limit(sequence: 0xFFFF, bandwidthKbps: 0xFFFF_FFFF), .client),
            (.reliable(type: 0xC3, sequence: 7), .client),
        ]
        for (message, sender) in messages {
            let bytes = try message.encode()
            XCTAssertGreaterThanOrEqual(bytes.count, 12, "\(message)")
            XCTAssertEqual(decode(bytes, sender), .success(message), "\(message)")
        }
    }

    // MARK: control/data split

    // MARK: robustness

    func testEveryPrefixOfEveryVector() {
        for bytes in Self.allVectorBytes {
            let fullLength = ControlMessage.headerSize + Int(bytes[5])
            for count in 0...bytes.count {
                let prefix = Array(bytes.prefix(count))
                for sender in [ControlSender.client, .broker] {
                    let result = decode(prefix, sender)
                    if count < 6 {
                        XCTAssertEqual(result, .failure(.tooShort))
                    } else if count < fullLength {
                        XCTAssertEqual(result, .failure(.truncatedPayload))
                    } else if bytes[4] != 0x06 {
                        // Once the payload is whole, padding changes nothing.
                        XCTAssertEqual(result, decode(bytes, sender), "prefix \(count) of \(bytes.prefix(6))")
                    }
                }
            }
        }
    }

    func testRandomDatagramsNeverCrashAndNormalise() throws {
        var random = SeededRandom(state: 0x7475_6E6E_656C_64)
        var decoded = 0
        for _ in 0..<10_000 {
            let count = Int.random(in: 0...80, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Most get a valid header, so the per-type decoders see the traffic.
            if count >= 6, Int.random(in: 0..<4, using: &random) != 0 {
                bytes[0] = 0x80; bytes[1] = 0x73; bytes[2] = 0xA7; bytes[3] = 0x01
                bytes[4] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x80, 0x81, 0x00, 0x0B]
                    .randomElement(using: &random)!
                if Bool.random(using: &random) { bytes[5] = UInt8.random(in: 0...UInt8(count - 6), using: &random) }
            }
            for sender in [ControlSender.client, .broker] {
                let result = decode(bytes, sender)
                guard case .success(let message) = result else { continue }
                decoded += 1
                // Whatever decodes re-encodes to something that decodes the same.
                let again = try message.encode()
                XCTAssertEqual(decode(again, sender), .success(message), "\(bytes)")
            }
        }
        XCTAssertGreaterThan(decoded, 2_000)  // the generator really reaches the decoders
    }

    func testDecodeFromABufferSlice() {
        // A datagram inside a larger receive buffer, not at offset 0.
        let buffer = hex("ff ff ff 80 73 a7 01 09 02 05 a6 00 00 00 00 ee")
        let result = buffer.withUnsafeBytes { raw in
            ControlMessage.decode(UnsafeRawBufferPointer(rebasing: raw[3..<15]), from: .client)
        }
        XCTAssertEqual(result, .success(.pmtuNotify(mtu: 1446)))
    }
}
