import CSodium
import Framework

/// The responder's side of cookies (as WireGuard's §5.4.7): when under load, an
/// initiation must carry mac2, a MAC keyed with a cookie only the holder of the
/// source address can have received. The cookie is a MAC of the source IP and port
/// under a secret that changes every two minutes, so the responder stores nothing
/// per initiator and a spoofed source learns nothing.
///
/// The cookie travels to the initiator sealed (XChaCha20-Poly1305) under a key
/// derived from the responder's public key, bound to the mac1 of the initiation it
/// answers, so only the real initiator can use it.
final class CookieJar {
    static let secretLifetime = 120.0
    static let cookieBytes = 16
    private var secret = [UInt8](repeating: 0, count: 32)
    private var secretMade = -Double.infinity
    private let sealKey: [UInt8]

    init(localPublicKey: [UInt8]) {
        sealKey = HandshakeLayout.cookieKey(localPublicKey)
    }

    deinit { sodium_memzero(&secret, secret.count) }

    func cookie(for source: SocketAddress, now: Double) -> [UInt8] {
        if now - secretMade >= CookieJar.secretLifetime {
            randombytes_buf(&secret, secret.count)
            secretMade = now
        }
        let port = source.port
        return HandshakeLayout.blake2b(source.addressBytes + [UInt8(port >> 8), UInt8(port & 0xff)], key: secret,
                                       count: CookieJar.cookieBytes)
    }

    /// Whether the initiation's mac2 was made with the current cookie for `source`.
    func hasValidMac2(_ message: [UInt8], source: SocketAddress, now: Double) -> Bool {
        let offset = HandshakeLayout.initiationMac1 + HandshakeLayout.macBytes
        let expected = HandshakeLayout.mac(message, upTo: offset, key: cookie(for: source, now: now))
        return HandshakeLayout.matches(message, at: offset, expected)
    }

    /// The cookie reply to an initiation from `source` (64 bytes).
    func reply(to initiation: [UInt8], source: SocketAddress, now: Double) -> [UInt8] {
        let senderIndex = HandshakeLayout.index(initiation, at: 4)
        let mac1 = Array(initiation[HandshakeLayout.initiationMac1..<(HandshakeLayout.initiationMac1 + HandshakeLayout.macBytes)])
        var nonce = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        randombytes_buf(&nonce, nonce.count)
        let cookie = cookie(for: source, now: now)
        var sealed = [UInt8](repeating: 0, count: CookieJar.cookieBytes + 16)
        var length: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(&sealed, &length, cookie, UInt64(cookie.count), mac1, UInt64(mac1.count),
                                                   nil, nonce, sealKey)
        return HandshakeLayout.header(type: HandshakeLayout.cookieType, index: senderIndex) + nonce + sealed
    }

    /// The initiator's side: the cookie inside a reply, if it opens under the
    /// responder's public key and the mac1 we sent.
    static func open(_ reply: [UInt8], responderPublicKey: [UInt8], sentMac1: [UInt8]) -> [UInt8]? {
        guard reply.count == HandshakeLayout.cookieBytes else { return nil }
        var cookie = [UInt8](repeating: 0, count: cookieBytes)
        var length: UInt64 = 0
        let sealed = Array(reply[32..<64])
        guard crypto_aead_xchacha20poly1305_ietf_decrypt(&cookie, &length, nil, sealed, UInt64(sealed.count),
                                                         sentMac1, UInt64(sentMac1.count), Array(reply[8..<32]),
                                                         HandshakeLayout.cookieKey(responderPublicKey)) == 0 else { return nil }
        return cookie
    }
}
