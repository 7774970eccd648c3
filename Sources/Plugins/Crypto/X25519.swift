import CSodium

/// An X25519 key pair (libsodium). The private half is wiped on release.
public final class X25519KeyPair {
    static let keyBytes = 32
    public let publicKey: [UInt8]
    private(set) var privateKey: [UInt8]

    /// A fresh random key pair.
    convenience init() {
        var secret = X25519KeyPair.generatePrivateKey()
        self.init(privateKey: secret)
        sodium_memzero(&secret, secret.count)
    }

    /// 32 random bytes from libsodium's CSPRNG (X25519 clamps them when used).
    public static func generatePrivateKey() -> [UInt8] {
        _ = sodium_init()
        var secret = [UInt8](repeating: 0, count: keyBytes)
        randombytes_buf(&secret, secret.count)
        return secret
    }

    /// The key pair of a given private key (from a key file, or fixed in a test).
    public init(privateKey: [UInt8]) {
        precondition(privateKey.count == X25519KeyPair.keyBytes)
        _ = sodium_init()
        self.privateKey = privateKey
        var pub = [UInt8](repeating: 0, count: X25519KeyPair.keyBytes)
        crypto_scalarmult_curve25519_base(&pub, privateKey)
        publicKey = pub
    }

    deinit { sodium_memzero(&privateKey, privateKey.count) }

    /// X25519(self, peer). Throws for a low-order peer key (all-zero shared secret).
    func agree(with peer: [UInt8]) throws -> [UInt8] {
        guard peer.count == X25519KeyPair.keyBytes else { throw NoiseError.truncated }
        var shared = [UInt8](repeating: 0, count: X25519KeyPair.keyBytes)
        guard crypto_scalarmult_curve25519(&shared, privateKey, peer) == 0 else { throw NoiseError.weakKey }
        return shared
    }
}
