import CSodium
import Framework

/// Who this end is and whom it accepts: the local static key pair, and per peer a
/// name, a static public key and a pre-shared key.
///
/// Two ways to get them:
/// * key pairs: `private-key-file` (from `tunneld genkey`) plus the peer's public
///   key(s); an optional `preshared-key-file` adds a symmetric secret;
/// * a passphrase (`passphrase-file`), mlvpn-style: both ends stretch the same
///   passphrase with Argon2id into one shared static key pair and pre-shared key, so
///   each end expects the other to hold the same key pair.
struct CryptoIdentity {
    struct Peer {
        let name: String
        let publicKey: [UInt8]
        let psk: [UInt8]
    }

    let local: X25519KeyPair
    let peers: [Peer]

    func peer(withPublicKey key: [UInt8]) -> Peer? {
        peers.first { sodium_memcmp($0.publicKey, key, 32) == 0 }
    }

    func peer(named name: String) -> Peer? {
        peers.count == 1 ? peers[0] : peers.first { $0.name == name }
    }

    /// Argon2id parameters for the passphrase mode. 3 passes over 64 MiB: about a
    /// tenth of a second here, once at start-up, and a cost per guess that makes
    /// offline dictionary attacks on a captured handshake slow. Fixed: both ends must
    /// derive the same keys, so they are part of the protocol (version 1).
    static let passphraseOpsLimit: UInt64 = 3
    static let passphraseMemLimit = 64 * 1024 * 1024
    static let minimumPassphraseLength = 12

    /// The key pair and pre-shared key of a passphrase. `context` (default
    /// "tunneld") salts the stretching, so equal passphrases on unrelated tunnels give
    /// unrelated keys and no table built for one helps against another.
    static func fromPassphrase(_ passphrase: String, context: String) throws -> (X25519KeyPair, [UInt8]) {
        guard sodium_init() >= 0 else { throw ConfigurationError("libsodium failed to initialise") }
        var salt = [UInt8](repeating: 0, count: Int(crypto_pwhash_SALTBYTES))
        let saltInput = Array("tunneld passphrase v1 \(context)".utf8)
        crypto_generichash(&salt, salt.count, saltInput, UInt64(saltInput.count), nil, 0)
        var seed = [UInt8](repeating: 0, count: 64)
        defer { sodium_memzero(&seed, seed.count) }
        let password = Array(passphrase.utf8).map { CChar(bitPattern: $0) }
        guard crypto_pwhash(&seed, UInt64(seed.count), password, UInt64(password.count), salt,
                            passphraseOpsLimit, passphraseMemLimit, crypto_pwhash_ALG_ARGON2ID13) == 0 else {
            throw ConfigurationError("cannot stretch the passphrase: Argon2id needs \(passphraseMemLimit >> 20) MiB of memory")
        }
        return (X25519KeyPair(privateKey: Array(seed[0..<32])), Array(seed[32..<64]))
    }
}
