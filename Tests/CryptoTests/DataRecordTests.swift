import Framework
import XCTest
@testable import Crypto

final class DataRecordTests: XCTestCase {
    static let plaintext = hexBytes("4500001c000040004001f8cf0a6300010a63000208004d5a00010001")
    /// From generate_record_vectors.py (pyca/cryptography, not libsodium).
    static let vectors: [(String, UInt32, UInt64, String)] = [
        ("chacha20poly1305", 0x01020304, 0, "040000000403020100000000000000005db8422dade6e6d15360a4aea5204e26f2d2f3f7e9ad1606ecf9fc1327ed831398380b4555c3ae310f2078ea"),
        ("chacha20poly1305", 0x01020304, 1, "04000000040302010100000000000000da57f343b52aef1869b7569358f69986cf1eeb0c4f6b2df7c365b55a4a48a55f9510327d46af5369f7eab800"),
        ("chacha20poly1305", 0xdeadbeef, 4294967301, "04000000efbeadde05000000010000004f60ea119a72389e95ac2f1e3bc3470e879decaaed759b2b1b598c4a9e848fbe2e3edc9df3def8bbe8e01005"),
        ("aes256gcm", 0x01020304, 0, "040000000403020100000000000000004bbcb5c2b52cc3bd48a951fa124f9198d820565120812d75809fb382994a5cbed1abbbeeb5ce08175a65b8cf"),
        ("aes256gcm", 0x01020304, 1, "04000000040302010100000000000000a097752c7ec15e081e9cb7b9e730b2f7631e3d8d9e0c773b561ff01ae77a1f425a89e6ba6138e3d719f62f3a"),
        ("aes256gcm", 0xdeadbeef, 4294967301, "04000000efbeadde05000000010000006c7fb30c71b6345fa382e618708c1cc7d46cf940a2fadd78a9f4217b8c516366d8651b1aad20be0fc19022ff"),
    ]

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
            XCTAssertNil(openRecord(&b[0], key: try makeKey(cipher), window: ReplayWindow()), "\(name) \(counter)")
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
        var forged = hexBytes(Self.vectors[2].3)  // counter 2^32 + 5
        forged[forged.count - 1] ^= 0xff
        let b = batch(holding: forged)
        XCTAssertEqual(openRecord(&b[0], key: key, window: window), .authentication)
        XCTAssertEqual(window.check(0), .fresh, "a forged high counter must not push old counters out")
    }

    func testSealNeedsHeadroomAndTailroom() throws {
        let key = try makeKey(.chacha20poly1305)
        let tight = PacketBatch(capacity: 1, slotSize: 64, headroom: 8, tailroom: 0)
        tight.commit(length: 20)
        XCTAssertFalse(DataRecord.seal(&tight[0], key: key, receiverIndex: 1, counter: 0))
    }
}
