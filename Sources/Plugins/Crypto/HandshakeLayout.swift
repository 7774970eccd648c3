import CSodium
import Glibc

/// Byte layout of the three handshake messages and the MACs that guard them. The
/// Noise messages sit inside; everything is little-endian like the data record.
///
///     initiation (149 bytes)           response (93 bytes)             cookie reply (64 bytes)
///     0      type 1, 3 zero bytes      0      type 2, 3 zero bytes     0      type 3, 3 zero bytes
///     4      sender index              4      sender index             4      receiver index
///     8      Noise message 1 (109):    8      receiver index           8      nonce (24)
///              e, s (48), payload (29) 12     Noise message 2 (49):    32     cookie, sealed (32)
///     117    mac1                               e, payload (17)
///     133    mac2                      61     mac1
///                                      77     mac2
///
/// Payloads: the initiation carries a TAI64N timestamp (12) and the ciphers the
/// initiator accepts (1 byte of bits); the response carries the chosen cipher (1).
///
/// mac1 = BLAKE2b-128 keyed with BLAKE2b-256("mac1----" ‖ receiver's public key) over
/// the message before it: anyone who does not know the receiver's public key is
/// turned away for the cost of one hash. mac2 = BLAKE2b-128 keyed with a cookie over
/// the message before it, required only when the responder is under load.
enum HandshakeLayout {
    static let initiationType: UInt8 = 1
    static let responseType: UInt8 = 2
    static let cookieType: UInt8 = 3

    static let initiationPayload = 13
    static let initiationNoise = 32 + 48 + initiationPayload + 16
    static let initiationMac1 = 8 + initiationNoise
    static let initiationBytes = initiationMac1 + 32

    static let responsePayload = 1
    static let responseNoise = 32 + responsePayload + 16
    static let responseMac1 = 12 + responseNoise
    static let responseBytes = responseMac1 + 32

    static let cookieBytes = 64
    static let macBytes = 16

    static let chachaBit: UInt8 = 1
    static let aesBit: UInt8 = 2

    /// Bound into every handshake hash, so a tunneld handshake can never be taken for
    /// another Noise protocol's (or another version's).
    static let prologue = Array("tunneld handshake v1".utf8)

    static func header(type: UInt8, index: UInt32) -> [UInt8] {
        [type, 0, 0, 0] + withUnsafeBytes(of: index.littleEndian) { Array($0) }
    }

    /// A complete initiation around Noise message 1; also returns its mac1 (a cookie
    /// reply is bound to it). Without a cookie mac2 is zero.
    static func initiation(senderIndex: UInt32, noiseMessage: [UInt8], responderPublicKey: [UInt8],
                           cookie: [UInt8]?) -> (message: [UInt8], mac1: [UInt8]) {
        var message = header(type: initiationType, index: senderIndex) + noiseMessage
        let mac1 = mac(message, upTo: message.count, key: mac1Key(responderPublicKey))
        message += mac1
        message += cookie.map { mac(message, upTo: message.count, key: $0) } ?? [UInt8](repeating: 0, count: macBytes)
        return (message, mac1)
    }

    /// A complete response around Noise message 2 (mac2 is always zero: initiators
    /// do not hand out cookies).
    static func response(senderIndex: UInt32, receiverIndex: UInt32, noiseMessage: [UInt8],
                         initiatorPublicKey: [UInt8]) -> [UInt8] {
        var message = header(type: responseType, index: senderIndex)
            + withUnsafeBytes(of: receiverIndex.littleEndian) { Array($0) } + noiseMessage
        message += mac(message, upTo: message.count, key: mac1Key(initiatorPublicKey))
        return message + [UInt8](repeating: 0, count: macBytes)
    }

    static func index(_ message: [UInt8], at offset: Int) -> UInt32 {
        UInt32(message[offset]) | UInt32(message[offset + 1]) << 8 | UInt32(message[offset + 2]) << 16 | UInt32(message[offset + 3]) << 24
    }

    /// BLAKE2b with `count` bytes of output, keyed (libsodium's generichash).
    static func blake2b(_ data: [UInt8], key: [UInt8]?, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        crypto_generichash(&out, count, data, UInt64(data.count), key, key?.count ?? 0)
        return out
    }

    static func mac1Key(_ publicKey: [UInt8]) -> [UInt8] { blake2b(Array("mac1----".utf8) + publicKey, key: nil, count: 32) }
    static func cookieKey(_ publicKey: [UInt8]) -> [UInt8] { blake2b(Array("cookie--".utf8) + publicKey, key: nil, count: 32) }

    static func mac(_ message: [UInt8], upTo end: Int, key: [UInt8]) -> [UInt8] {
        blake2b(Array(message[0..<end]), key: key, count: macBytes)
    }

    /// Constant-time comparison of `count` bytes of `message` at `offset` with `mac`.
    static func matches(_ message: [UInt8], at offset: Int, _ mac: [UInt8]) -> Bool {
        message.withUnsafeBufferPointer { sodium_memcmp($0.baseAddress! + offset, mac, mac.count) == 0 }
    }

    /// TAI64N: seconds since 1970 plus 2^62, then nanoseconds, big-endian (12 bytes).
    /// A responder accepts an initiation only if its timestamp is newer than the last
    /// one from that peer, so a recorded initiation cannot be replayed.
    static func timestamp() -> [UInt8] {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = (UInt64(1) << 62) &+ UInt64(now.tv_sec)
        return withUnsafeBytes(of: seconds.bigEndian) { Array($0) } + withUnsafeBytes(of: UInt32(now.tv_nsec).bigEndian) { Array($0) }
    }

    /// Lexicographic order of two timestamps (big-endian, so bytes compare as numbers).
    static func isNewer(_ a: [UInt8], than b: [UInt8]?) -> Bool {
        guard let b else { return true }
        for (x, y) in zip(a, b) where x != y { return x > y }
        return false
    }
}
