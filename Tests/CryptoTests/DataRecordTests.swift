import Framework
import XCTest
@testable import Crypto

final class DataRecordTests: XCTestCase {
    static let plaintext = hexBytes("4500001c000040004001f8cf0a6300010a63000208004d5a00010001")
    /// From generate_record_vectors.py (pyca/cryptography, not libsodium).
    static let vectors: [(String, UInt32, UInt64, String)] = [
        ("chacha20poly1305", 0x010203, 0, "04030201000000005db8422dade6e6d15360a4aea5204e26f2d2f3f7e9ad1606ecf9fc1359493333725b747c6dad2caf46879be6"),
        ("chacha20poly1305", 0x010203, 1, "0403020101000000da57f343b52aef1869b7569358f69986cf1eeb0c4f6b2df7c365b55a237348fe128650ed92f10c4accb0b8de"),
        ("chacha20poly1305", 0xadbeef, 4294967301, "04efbead050000004f60ea119a72389e95ac2f1e3bc3470e879decaaed759b2b1b598c4a627bc37f60c81e8795cfd064a30392a7"),
        ("aes256gcm", 0x010203, 0, "04030201000000004bbcb5c2b52cc3bd48a951fa124f9198d820565120812d75809fb382488f25d993922b992c95ba9788f09f7a"),
        ("aes256gcm", 0x010203, 1, "0403020101000000a097752c7ec15e081e9cb7b9e730b2f7631e3d8d9e0c773b561ff01af86a30a8420c6d69be72e6f24d5afc12"),
        ("aes256gcm", 0xadbeef, 4294967301, "04efbead050000006c7fb30c71b6345fa382e618708c1cc7d46cf940a2fadd78a9f4217b59a86844fa99b25bd4c8317ce821e6a2"),
    ]

    /// A window whose newest counter is a little below `counter`, as a receiver's is
    /// when that record comes (the record carries only the low 32 bits).
    private func window(near counter: UInt64) -> ReplayWindow {
        let window = ReplayWindow()
        if counter > 0 { _ = window.accept(counter - 1) }
        return window
    }

    func testSealMatchesKnownAnswers() throws {
        for (name, index, counter, expected) in Self.vectors {
            let cipher = AEADCipher(rawValue: name)!
            if cipher == .aes256gcm && !AEADCipher.aesAvailable { continue }
            let key = try makeKey(cipher)
            let b = batch(holding: Self.plaintext)
            XCTAssertTrue(DataRecord.seal(&b[0], key: key, receiverIndex: index, counter: counter))
            XCTAssertEqual(bytes(of: b[0]), hexBytes(expected), "\(name) counter \(counter)")
        }
    }

    func testOpenKnownAnswersGivesThePlaintext() throws {
        for (name, _, counter, record) in Self.vectors {
            let cipher = AEADCipher(rawValue: name)!
            if cipher == .aes256gcm && !AEADCipher.aesAvailable { continue }
            let b = batch(holding: hexBytes(record))
            XCTAssertNil(openRecord(&b[0], key: try makeKey(cipher), window: window(near: counter)), "\(name) \(counter)")
            XCTAssertEqual(bytes(of: b[0]), Self.plaintext)
        }
    }

    func testEveryFlippedBitIsRejected() throws {
        let record = hexBytes(Self.vectors[1].3)
        let key = try makeKey(.chacha20poly1305)
        var rejected = 0
        for bit in 0..<(record.count * 8) where bit / 8 >= 1 {  // byte 0 is the type, checked separately
            var tampered = record
            tampered[bit / 8] ^= 1 << (bit % 8)
            let b = batch(holding: tampered)
            let error = openRecord(&b[0], key: key, window: ReplayWindow())
            XCTAssertNotNil(error, "bit \(bit) flipped and still accepted")
            if error == .authentication || error == .malformed { rejected += 1 }
        }
        XCTAssertEqual(rejected, (record.count - 1) * 8)
    }

    func testReplayTruncationAndWrongKeyAreRefused() throws {
        let key = try makeKey(.chacha20poly1305)
        let window = ReplayWindow()
        let record = hexBytes(Self.vectors[1].3)
        var b = batch(holding: record)
        XCTAssertNil(openRecord(&b[0], key: key, window: window))
        b = batch(holding: record)
        XCTAssertEqual(openRecord(&b[0], key: key, window: window), .replayed)
        b = batch(holding: Array(record.prefix(DataRecord.overhead - 1)))
        XCTAssertEqual(openRecord(&b[0], key: key, window: window), .truncated)
        var wrongType = record
        wrongType[0] = 1
        b = batch(holding: wrongType)
        XCTAssertEqual(openRecord(&b[0], key: key, window: window), .malformed)
        b = batch(holding: hexBytes(Self.vectors[0].3))
        XCTAssertEqual(openRecord(&b[0], key: try makeKey(.chacha20poly1305, Array(repeating: 9, count: 32)), window: ReplayWindow()),
                       .authentication)
    }

    func testAForgedRecordDoesNotMoveTheWindow() throws {
        let key = try makeKey(.chacha20poly1305)
        let window = ReplayWindow()
        _ = window.accept((1 << 32) - 100)
        var forged = hexBytes(Self.vectors[2].3)  // counter 2^32 + 5
        forged[forged.count - 1] ^= 0xff
        let b = batch(holding: forged)
        XCTAssertEqual(openRecord(&b[0], key: key, window: window), .authentication)
        XCTAssertEqual(window.check((1 << 32) - 50), .fresh, "a forged high counter must not push old counters out")
    }

    func testSealNeedsHeadroomAndTailroom() throws {
        let key = try makeKey(.chacha20poly1305)
        let tight = PacketBatch(capacity: 1, slotSize: 64, headroom: 7, tailroom: 0)
        tight.commit(length: 20)
        XCTAssertFalse(DataRecord.seal(&tight[0], key: key, receiverIndex: 1, counter: 0))
    }

    func testHeaderIsTypeIndexAndLowCounterInEightBytes() throws {
        let key = try makeKey(.chacha20poly1305)
        let b = batch(holding: Self.plaintext)
        XCTAssertTrue(DataRecord.seal(&b[0], key: key, receiverIndex: 0xAB_CDEF, counter: 0x1_2345_6789))
        XCTAssertEqual(Array(bytes(of: b[0]).prefix(8)), [4, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23])
        XCTAssertEqual(b[0].length, Self.plaintext.count + DataRecord.overhead)
        XCTAssertEqual(DataRecord.overhead, 24)
        guard case .success(let fields) = DataRecord.peek(b[0]) else { return XCTFail("peek refused its own record") }
        XCTAssertEqual(fields.index, 0xAB_CDEF)
        XCTAssertEqual(fields.counter, 0x2345_6789)
        // The receiver's window supplies the upper half: near 2^32 it opens, from 0 it
        // cannot (and libsodium wipes what failed, so each try gets its own copy).
        let copy = batch(holding: bytes(of: b[0]))
        XCTAssertEqual(DataRecord.open(&copy[0], counter: fields.counter, key: key, window: ReplayWindow()), .authentication)
        XCTAssertNil(DataRecord.open(&b[0], counter: fields.counter, key: key, window: window(near: 0x1_2345_0000)))
        XCTAssertEqual(bytes(of: b[0]), Self.plaintext)
    }
}
