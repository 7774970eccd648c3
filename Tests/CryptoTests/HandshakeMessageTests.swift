import XCTest
@testable import Crypto
@testable import Framework

/// The handshake's wire format against vectors from generate_handshake_vectors.py
/// (noiseprotocol + hashlib BLAKE2b), and the pieces around it: cookies, the rate
/// limiter, timestamps, key text, settings checks.
final class HandshakeMessageTests: XCTestCase {
    let (initiatorStatic, initiatorEphemeral) = (NoiseFixture.initiatorStatic, NoiseFixture.initiatorEphemeral)
    let (responderStatic, responderEphemeral) = (NoiseFixture.responderStatic, NoiseFixture.responderEphemeral)
    let psk = NoiseFixture.psk
    let timestamp = hexBytes("400000006553f100075bcd15")
    let cookie = Array(200...215) as [UInt8]
    let initiation = hexBytes("01000000443322115869aff450549732cbaaed5e5df9b30a6da31cb0e5742bad5ad4a1a768f1a67b76ff1a4fb8a9712a5810f9d9de4fa6b8a7d48c58fa2d7237c107033e5b91a042466e61f48551fb8c45a11a10d05459ddfe8c5425c894cc13d24881726ec7cedbfa132bde0534bcff58ad243dcff484865643743a391ceb89307303da3525292e0b1f6e255cdf9c8ae306e6befb")
    let response = hexBytes("020000008877665544332211244fe3b963e899dd295baffce248d3530f3a9a7479ba063002680ebfe7adad49e216e441cee7a2bf90944364c7fe08149eb600c6fdf380bfd6ef8d70eae255f61600000000000000000000000000000000")

    func testMessagesMatchTheIndependentImplementation() throws {
        let initiator = NoiseIKpsk2(initiator: initiatorStatic, responderStatic: responderStatic.publicKey, psk: psk,
                                    prologue: HandshakeLayout.prologue, ephemeral: initiatorEphemeral)
        let m1 = try initiator.writeInitiation(payload: timestamp + [0x03])
        let built = HandshakeLayout.initiation(senderIndex: 0x1122_3344, noiseMessage: m1,
                                               responderPublicKey: responderStatic.publicKey, cookie: cookie)
        XCTAssertEqual(built.message, initiation)
        XCTAssertEqual(built.message.count, HandshakeLayout.initiationBytes)
        XCTAssertEqual(built.mac1, Array(initiation[117..<133]))

        let responder = NoiseIKpsk2(responder: responderStatic, prologue: HandshakeLayout.prologue, ephemeral: responderEphemeral)
        XCTAssertEqual(try responder.readInitiation(Array(initiation[8..<117])), timestamp + [0x03])
        responder.usePreSharedKey(psk)
        let m2 = try responder.writeResponse(payload: [0x02])
        let reply = HandshakeLayout.response(senderIndex: 0x5566_7788, receiverIndex: 0x1122_3344, noiseMessage: m2,
                                             initiatorPublicKey: initiatorStatic.publicKey)
        XCTAssertEqual(reply, response)
        XCTAssertEqual(reply.count, HandshakeLayout.responseBytes)
        XCTAssertEqual(HandshakeLayout.index(reply, at: 4), 0x5566_7788)
        XCTAssertEqual(HandshakeLayout.index(reply, at: 8), 0x1122_3344)
    }

    func testCookieReplyOpensOnlyForTheInitiatorItAnswers() throws {
        let jar = CookieJar(localPublicKey: responderStatic.publicKey)
        let source = SocketAddress.parse("192.0.2.7:5080")!
        let reply = jar.reply(to: initiation, source: source, now: 10)
        XCTAssertEqual(reply.count, HandshakeLayout.cookieBytes)
        XCTAssertEqual(HandshakeLayout.index(reply, at: 4), 0x1122_3344, "addressed to the initiator's index")
        let mac1 = Array(initiation[117..<133])
        let opened = try XCTUnwrap(CookieJar.open(reply, responderPublicKey: responderStatic.publicKey, sentMac1: mac1))
        XCTAssertEqual(opened, jar.cookie(for: source, now: 10))
        XCTAssertNil(CookieJar.open(reply, responderPublicKey: initiatorStatic.publicKey, sentMac1: mac1), "wrong responder")
        XCTAssertNil(CookieJar.open(reply, responderPublicKey: responderStatic.publicKey, sentMac1: [UInt8](repeating: 0, count: 16)))

        // An initiation carrying mac2 under that cookie passes; from another port it does not.
        let m1 = Array(initiation[8..<117])
        let withCookie = HandshakeLayout.initiation(senderIndex: 1, noiseMessage: m1, responderPublicKey: responderStatic.publicKey,
                                                    cookie: opened).message
        XCTAssertTrue(jar.hasValidMac2(withCookie, source: source, now: 11))
        XCTAssertFalse(jar.hasValidMac2(withCookie, source: SocketAddress.parse("192.0.2.7:5081")!, now: 11))
        XCTAssertFalse(jar.hasValidMac2(withCookie, source: source, now: 10 + CookieJar.secretLifetime), "the secret rotated")
    }

    func testRateLimiterBurstRefillAndLoad() {
        let limiter = HandshakeRateLimiter(perSecond: 20, loadThreshold: 3)
        let a = SocketAddress.parse("192.0.2.1:1")!
        let aOtherPort = SocketAddress.parse("192.0.2.1:2")!
        let b = SocketAddress.parse("[2001:db8::1]:1")!
        XCTAssertEqual((0..<5).map { _ in limiter.allow(a, now: 100) }, [true, true, true, true, true])
        XCTAssertFalse(limiter.allow(aOtherPort, now: 100), "the bucket is per address, not per port")
        XCTAssertTrue(limiter.allow(b, now: 100))
        XCTAssertFalse(limiter.allow(a, now: 100.01), "0.2 tokens after 10 ms")
        XCTAssertTrue(limiter.allow(a, now: 100.06), "one token after 50 ms")

        XCTAssertEqual((0..<4).map { _ in limiter.noteInitiation(now: 200) }, [false, false, false, true])
        XCTAssertTrue(limiter.noteInitiation(now: 201.5), "still under load in the second after")
        XCTAssertFalse(limiter.noteInitiation(now: 204), "quiet again")
    }

    func testTimestampsOrder() {
        let older = hexBytes("400000006553f100075bcd15")
        let newer = hexBytes("400000006553f100075bcd16")
        XCTAssertTrue(HandshakeLayout.isNewer(newer, than: older))
        XCTAssertFalse(HandshakeLayout.isNewer(older, than: newer))
        XCTAssertFalse(HandshakeLayout.isNewer(older, than: older), "equal is a replay")
        XCTAssertTrue(HandshakeLayout.isNewer(older, than: nil))
        let now = HandshakeLayout.timestamp()
        XCTAssertEqual(now.count, 12)
        XCTAssertTrue(HandshakeLayout.isNewer(now, than: older))
    }

    func testKeyText() {
        let key = Array(0..<32) as [UInt8]
        let text = KeyText.encode(key)
        XCTAssertEqual(text, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        XCTAssertEqual(KeyText.decode(text), key)
        XCTAssertNil(KeyText.decode(String(text.dropLast())))
        XCTAssertNil(KeyText.decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"))
        XCTAssertNil(KeyText.decode("!!ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
    }

    func testPassphraseDerivationIsDeterministicAndSalted() throws {
        let (a, pskA) = try CryptoIdentity.fromPassphrase("correct horse battery staple", context: "tunneld")
        let (b, pskB) = try CryptoIdentity.fromPassphrase("correct horse battery staple", context: "tunneld")
        let (c, _) = try CryptoIdentity.fromPassphrase("correct horse battery staple", context: "other")
        XCTAssertEqual(a.publicKey, b.publicKey)
        XCTAssertEqual(pskA, pskB)
        XCTAssertNotEqual(a.publicKey, c.publicKey)
        XCTAssertNotEqual(pskA, a.publicKey)
    }

    func testCipherChoiceFromTheResponse() {
        XCTAssertEqual(CryptoPeer.cipher(bit: HandshakeLayout.aesBit, accepted: 3), .aes256gcm)
        XCTAssertEqual(CryptoPeer.cipher(bit: HandshakeLayout.chachaBit, accepted: 3), .chacha20poly1305)
        XCTAssertNil(CryptoPeer.cipher(bit: HandshakeLayout.aesBit, accepted: HandshakeLayout.chachaBit), "not offered")
        XCTAssertNil(CryptoPeer.cipher(bit: 3, accepted: 3), "exactly one cipher")
    }
}

/// `crypto.aead` settings: what is refused, and how the message reads.
final class CryptoSettingsTests: XCTestCase {
    var harness: CryptoHarness!
    override func setUp() { harness = CryptoHarness() }
    override func tearDown() { harness.cleanUp() }

    func load(_ crypto: String) throws -> TunnelSpec {
        let site = "profile: memory\nlinks:\n  - { name: lo, bind: 127.0.0.1:0 }\nsettings:\n  crypto.aead: { \(crypto) }\n"
        return try CryptoHarness.loader().load(siteText: site, file: harness.directory + "/site.yaml")
    }

    func testSecretFileReadableByOthersIsRefusedWithTheFix() {
        let path = harness.write("open.key", KeyText.encode(Array(repeating: 1, count: 32)), mode: 0o644)
        assertProfileError("\(harness.directory)/site.yaml:5:36: secret file '\(path)' is readable by group or others (mode 644); make it private with 'chmod 600 \(path)'") {
            try self.load("private-key-file: open.key, peer-public-key: \"\(KeyText.encode(Array(repeating: 2, count: 32)))\"")
        }
    }

    func testMisconfigurationsNameTheSetting() {
        let key = KeyText.encode(Array(repeating: 2, count: 32))
        harness.write("a.key", KeyText.encode(Array(repeating: 1, count: 32)))
        harness.write("bad.key", "not a key")
        harness.write("short", "hunter2")
        let dir = harness.directory
        assertProfileError("\(dir)/site.yaml:5:16: stage 'crypto.aead': needs 'private-key-file' (key pairs) or 'passphrase-file' (shared passphrase)") {
            try self.load("cipher: auto")
        }
        assertProfileError("\(dir)/site.yaml:5:36: with 'private-key-file', name the peer: 'peer-public-key: KEY' or 'peers: [NAME=KEY, …]'") {
            try self.load("private-key-file: a.key")
        }
        assertProfileError("\(dir)/site.yaml:5:36: '\(dir)/bad.key' does not hold a private key (44 characters of base64, as 'tunneld genkey' prints)") {
            try self.load("private-key-file: bad.key, peer-public-key: \"\(key)\"")
        }
        assertProfileError("\(dir)/site.yaml:5:60: 'abc' is not a public key (44 characters of base64, as 'tunneld pubkey' prints)") {
            try self.load("private-key-file: a.key, peer-public-key: abc")
        }
        assertProfileError("\(dir)/site.yaml:5:50: peer 'site-a:xyz' must be 'NAME=PUBLICKEY' with a 44-character base64 public key") {
            try self.load("private-key-file: a.key, peers: [site-a:xyz]")
        }
        assertProfileError("\(dir)/site.yaml:5:35: the passphrase in '\(dir)/short' has 7 characters; use at least 12 (or key pairs: 'tunneld genkey')") {
            try self.load("passphrase-file: short")
        }
        assertProfileError("\(dir)/site.yaml:5:35: cannot read secret file '\(dir)/missing': no such file") {
            try self.load("passphrase-file: missing")
        }
        assertProfileError("\(dir)/site.yaml:5:59: 'peer-public-key' belongs to the key-pair mode; with 'passphrase-file' both ends derive their keys from the passphrase") {
            try self.load("passphrase-file: short, peer-public-key: \"\(key)\"")
        }
    }
}

/// Asserts that `body` throws a `ProfileError` whose description is exactly `expected`.
func assertProfileError(_ expected: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
    do {
        let value = try body()
        XCTFail("expected error '\(expected)', got a value: \(value)", file: file, line: line)
    } catch {
        XCTAssertEqual("\(error)", expected, file: file, line: line)
    }
}
