import CSodium
import XCTest
@testable import Crypto

final class NoiseIKpsk2Tests: XCTestCase {
    // Fixed keys and the expected bytes from generate_noise_vectors.py (noiseprotocol).
    let (initiatorStatic, initiatorEphemeral) = (NoiseFixture.initiatorStatic, NoiseFixture.initiatorEphemeral)
    let (responderStatic, responderEphemeral) = (NoiseFixture.responderStatic, NoiseFixture.responderEphemeral)
    let psk = NoiseFixture.psk
    let prologue = Array("tunneld test".utf8)
    let message1 = hexBytes("5869aff450549732cbaaed5e5df9b30a6da31cb0e5742bad5ad4a1a768f1a67b76ff1a4fb8a9712a5810f9d9de4fa6b8a7d48c58fa2d7237c107033e5b91a04268043ab0a8f4fdf1925b0d5c592fb0f2d6e93849c2e74f76a663230909322e9681b6d138e1dcd7f8e731ff0098d963")
    let message2 = hexBytes("244fe3b963e899dd295baffce248d3530f3a9a7479ba063002680ebfe7adad498899502d24ede9b1169dc51ec2b25f2811f8a940f945a05991a98bbccee27a")
    let hash = hexBytes("63cf5a81fb7507988c1b6b3659e940e14125acfb2e6085920ad287880d61267c")
    let initiatorToResponder = hexBytes("ab907e29855b630ba744200c0cc1acbe867aa4da0e866c7ff6b317e31d98")
    let responderToInitiator = hexBytes("c9c914e74ad8efbea7d5198ee116e1dabe5a02e22dd2a99d79a2c33715b7")

    func makePair(psk: [UInt8]? = nil, responderKnownAs: [UInt8]? = nil) -> (NoiseIKpsk2, NoiseIKpsk2) {
        let initiator = NoiseIKpsk2(initiator: initiatorStatic, responderStatic: responderKnownAs ?? responderStatic.publicKey,
                                    psk: psk ?? self.psk, prologue: prologue, ephemeral: initiatorEphemeral)
        let responder = NoiseIKpsk2(responder: responderStatic, psk: self.psk, prologue: prologue, ephemeral: responderEphemeral)
        return (initiator, responder)
    }

    /// Noise's transport encryption: ChaChaPoly, nonce 0, empty associated data.
    func transportSeal(_ key: [UInt8], _ text: String) -> [UInt8] {
        let plain = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: plain.count + 16)
        var length: UInt64 = 0
        crypto_aead_chacha20poly1305_ietf_encrypt(&out, &length, plain, UInt64(plain.count), nil, 0, nil,
                                                  [UInt8](repeating: 0, count: 12), key)
        return out
    }

    func testHandshakeMatchesTheIndependentImplementation() throws {
        let (initiator, responder) = makePair()
        let m1 = try initiator.writeInitiation(payload: Array("hello responder".utf8))
        XCTAssertEqual(m1, message1)
        XCTAssertEqual(try responder.readInitiation(m1), Array("hello responder".utf8))
        XCTAssertEqual(responder.peerStatic, initiatorStatic.publicKey)
        let m2 = try responder.writeResponse(payload: Array("hello initiator".utf8))
        XCTAssertEqual(m2, message2)
        XCTAssertEqual(try initiator.readResponse(m2), Array("hello initiator".utf8))
        XCTAssertEqual(initiator.handshakeHash, hash)
        XCTAssertEqual(responder.handshakeHash, hash)

        let (initiatorSend, initiatorReceive) = try initiator.transportKeys()
        let (responderSend, responderReceive) = try responder.transportKeys()
        XCTAssertEqual(initiatorSend, responderReceive)
        XCTAssertEqual(initiatorReceive, responderSend)
        XCTAssertEqual(transportSeal(initiatorSend, "transport i->r"), initiatorToResponder)
        XCTAssertEqual(transportSeal(responderSend, "transport r->i"), responderToInitiator)
    }

    func testFreshEphemeralsGiveFreshKeys() throws {
        func run() throws -> [UInt8] {
            let initiator = NoiseIKpsk2(initiator: initiatorStatic, responderStatic: responderStatic.publicKey, psk: psk)
            let responder = NoiseIKpsk2(responder: responderStatic, psk: psk)
            _ = try responder.readInitiation(try initiator.writeInitiation(payload: []))
            _ = try initiator.readResponse(try responder.writeResponse(payload: []))
            return try initiator.transportKeys().send
        }
        XCTAssertNotEqual(try run(), try run(), "every session must get fresh keys")
    }

    func testInitiatorWithTheWrongResponderKeyIsRefused() throws {
        let (initiator, responder) = makePair(responderKnownAs: X25519KeyPair(privateKey: Array(repeating: 7, count: 32)).publicKey)
        let m1 = try initiator.writeInitiation(payload: [])
        XCTAssertThrowsError(try responder.readInitiation(m1)) { XCTAssertEqual($0 as? NoiseError, .authentication) }
    }

    func testWrongPreSharedKeyFailsAtTheResponse() throws {
        let (initiator, responder) = makePair(psk: [UInt8](repeating: 0x5A, count: 32))
        _ = try responder.readInitiation(try initiator.writeInitiation(payload: []))
        let m2 = try responder.writeResponse(payload: [])
        XCTAssertThrowsError(try initiator.readResponse(m2)) { XCTAssertEqual($0 as? NoiseError, .authentication) }
    }

    func testTamperedAndTruncatedMessagesAreRefused() throws {
        for index in [0, 40, message1.count - 1] {
            var tampered = message1
            tampered[index] ^= 0x01
            let (_, responder) = makePair()
            XCTAssertThrowsError(try responder.readInitiation(tampered), "byte \(index)")
        }
        let (_, responder) = makePair()
        XCTAssertThrowsError(try responder.readInitiation(Array(message1.prefix(90)))) { XCTAssertEqual($0 as? NoiseError, .truncated) }
    }

    func testMessagesOutOfOrderAreRefused() throws {
        let (initiator, responder) = makePair()
        XCTAssertThrowsError(try initiator.readResponse(message2)) { XCTAssertEqual($0 as? NoiseError, .outOfOrder) }
        XCTAssertThrowsError(try responder.writeResponse(payload: [])) { XCTAssertEqual($0 as? NoiseError, .outOfOrder) }
        XCTAssertThrowsError(try initiator.transportKeys()) { XCTAssertEqual($0 as? NoiseError, .outOfOrder) }
    }

    func testLowOrderEphemeralIsRefused() throws {
        var message = message1
        for index in 0..<32 { message[index] = 0 }  // the all-zero point has low order
        let (_, responder) = makePair()
        XCTAssertThrowsError(try responder.readInitiation(message)) { XCTAssertEqual($0 as? NoiseError, .weakKey) }
    }
}
