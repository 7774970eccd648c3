import CSodium

/// Noise's SymmetricState and CipherState (Noise spec rev. 34, §5.1–5.2) for
/// ChaChaPoly and SHA256. Every primitive is libsodium's: SHA-256, HMAC-SHA-256 (for
/// HKDF, §4.3), and ChaCha20-Poly1305 IETF with the nonce 4 zero bytes || n (LE).
/// Control plane only: arrays are fine here; secrets are wiped in `wipe()`.
struct NoiseSymmetricState {
    static let hashLength = 32
    private(set) var chainingKey: [UInt8]
    private(set) var handshakeHash: [UInt8]
    private var key: [UInt8]?
    private var nonce: UInt64 = 0

    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        if name.count <= Self.hashLength {
            handshakeHash = name + [UInt8](repeating: 0, count: Self.hashLength - name.count)
        } else {
            handshakeHash = NoiseSymmetricState.hash(name)
        }
        chainingKey = handshakeHash
    }

    static func hash(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: hashLength)
        crypto_hash_sha256(&out, data, UInt64(data.count))
        return out
    }

    static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: hashLength)
        crypto_auth_hmacsha256_init(&state, key, key.count)
        crypto_auth_hmacsha256_update(&state, data, UInt64(data.count))
        crypto_auth_hmacsha256_final(&state, &out)
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return out
    }

    /// HKDF as Noise defines it (§4.3), producing two or three outputs.
    static func hkdf(_ chainingKey: [UInt8], _ input: [UInt8], outputs: Int) -> [[UInt8]] {
        var tempKey = hmac(key: chainingKey, input)
        defer { sodium_memzero(&tempKey, tempKey.count) }
        let first = hmac(key: tempKey, [0x01])
        let second = hmac(key: tempKey, first + [0x02])
        if outputs == 2 { return [first, second] }
        return [first, second, hmac(key: tempKey, second + [0x03])]
    }

    mutating func mixHash(_ data: [UInt8]) {
        handshakeHash = NoiseSymmetricState.hash(handshakeHash + data)
    }

    mutating func mixKey(_ input: [UInt8]) {
        let out = NoiseSymmetricState.hkdf(chainingKey, input, outputs: 2)
        chainingKey = out[0]
        key = out[1]
        nonce = 0
    }

    mutating func mixKeyAndHash(_ input: [UInt8]) {
        let out = NoiseSymmetricState.hkdf(chainingKey, input, outputs: 3)
        chainingKey = out[0]
        mixHash(out[1])
        key = out[2]
        nonce = 0
    }

    private func nonceBytes() -> [UInt8] {
        [0, 0, 0, 0] + withUnsafeBytes(of: nonce.littleEndian) { Array($0) }
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) -> [UInt8] {
        guard let key else {
            mixHash(plaintext)
            return plaintext
        }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: UInt64 = 0
        crypto_aead_chacha20poly1305_ietf_encrypt(&ciphertext, &length, plaintext, UInt64(plaintext.count),
                                                  handshakeHash, UInt64(handshakeHash.count), nil, nonceBytes(), key)
        nonce += 1
        mixHash(ciphertext)
        return ciphertext
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard let key else {
            mixHash(ciphertext)
            return ciphertext
        }
        guard ciphertext.count >= 16 else { throw NoiseError.truncated }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count - 16)
        var length: UInt64 = 0
        guard crypto_aead_chacha20poly1305_ietf_decrypt(&plaintext, &length, nil, ciphertext, UInt64(ciphertext.count),
                                                        handshakeHash, UInt64(handshakeHash.count), nonceBytes(), key) == 0 else {
            throw NoiseError.authentication
        }
        nonce += 1
        mixHash(ciphertext)
        return plaintext
    }

    /// The two transport keys: initiator→responder, then responder→initiator.
    func split() -> ([UInt8], [UInt8]) {
        let out = NoiseSymmetricState.hkdf(chainingKey, [], outputs: 2)
        return (out[0], out[1])
    }

    mutating func wipe() {
        sodium_memzero(&chainingKey, chainingKey.count)
        if key != nil { sodium_memzero(&key!, key!.count) }
    }
}

enum NoiseError: Error, Equatable {
    case truncated, authentication, weakKey, outOfOrder
}
