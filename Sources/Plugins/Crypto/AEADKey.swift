import CSodium
import Framework

/// The AEAD ciphers a record can use, both from libsodium.
public enum AEADCipher: String, CaseIterable, Sendable {
    case chacha20poly1305
    case aes256gcm

    static let keyBytes = 32
    static let tagBytes = 16

    /// AES-256-GCM needs AES-NI and CLMUL; libsodium says whether this CPU has them.
    public static var aesAvailable: Bool {
        _ = sodium_init()
        return crypto_aead_aes256gcm_is_available() == 1
    }

    /// What `auto` means on this CPU: AES-256-GCM where the hardware makes it fast
    /// and constant-time, ChaCha20-Poly1305 everywhere else.
    static var preferred: AEADCipher { aesAvailable ? .aes256gcm : .chacha20poly1305 }
}

/// One direction's key, sealing and opening in place. The nonce is the message
/// counter (4 zero bytes, then the counter little-endian), so a key must never see
/// the same counter twice: the caller owns that rule (counters only go up, and a key
/// is retired long before 2^64).
///
/// Key material lives in libsodium's guarded, locked memory and is wiped on release.
final class AEADKey {
    let cipher: AEADCipher
    private let key: UnsafeMutableRawPointer
    /// Expanded AES key schedule (libsodium's precomputation), for AES-256-GCM only.
    private let aesState: UnsafeMutableRawPointer?

    /// `bytes` must be 32 bytes; they are copied and the caller should wipe its copy.
    init(cipher: AEADCipher, bytes: UnsafeRawBufferPointer) throws {
        precondition(bytes.count == AEADCipher.keyBytes, "an AEAD key is 32 bytes")
        guard sodium_init() >= 0 else { throw ConfigurationError("libsodium failed to initialise") }
        if cipher == .aes256gcm && !AEADCipher.aesAvailable {
            throw ConfigurationError("cipher aes256gcm needs AES-NI, which this CPU lacks; use 'cipher: auto' or chacha20poly1305")
        }
        self.cipher = cipher
        guard let key = sodium_malloc(AEADCipher.keyBytes) else { throw ConfigurationError("out of secure memory for keys") }
        self.key = key
        key.copyMemory(from: bytes.baseAddress!, byteCount: AEADCipher.keyBytes)
        if cipher == .aes256gcm {
            let size = crypto_aead_aes256gcm_statebytes()
            guard let state = sodium_malloc(size) else {
                sodium_free(key)
                throw ConfigurationError("out of secure memory for keys")
            }
            crypto_aead_aes256gcm_beforenm(state.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self),
                                           key.assumingMemoryBound(to: UInt8.self))
            aesState = state
        } else {
            aesState = nil
        }
    }

    deinit {
        sodium_free(key)  // wipes before freeing
        if let aesState { sodium_free(aesState) }
    }

    /// The 12-byte nonce: 4 zero bytes, then the counter little-endian (as WireGuard).
    /// Three UInt32s, so the tuple has no padding inside the 12 bytes libsodium reads.
    @inline(__always)
    static func nonce(_ counter: UInt64) -> (UInt32, UInt32, UInt32) {
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }

    /// Encrypt `count` bytes at `data` in place and write the 16-byte tag at `tag`.
    /// `ad` is authenticated but not encrypted.
    @inline(__always)
    func seal(_ data: UnsafeMutableRawPointer, count: Int, tag: UnsafeMutableRawPointer,
                     ad: UnsafeRawPointer, adCount: Int, counter: UInt64) {
        var nonce = AEADKey.nonce(counter)
        withUnsafeBytes(of: &nonce) { n in
            let np = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let m = data.assumingMemoryBound(to: UInt8.self)
            let mac = tag.assumingMemoryBound(to: UInt8.self)
            let a = ad.assumingMemoryBound(to: UInt8.self)
            switch cipher {
            case .chacha20poly1305:
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, mac, nil, m, UInt64(count), a, UInt64(adCount),
                                                                       nil, np, key.assumingMemoryBound(to: UInt8.self))
            case .aes256gcm:
                _ = crypto_aead_aes256gcm_encrypt_detached_afternm(m, mac, nil, m, UInt64(count), a, UInt64(adCount), nil, np,
                                                                   aesState!.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self))
            }
        }
    }

    /// Check the tag and decrypt `count` bytes at `data` in place. False (and the
    /// data untouched in meaning) if the tag does not match.
    @inline(__always)
    func open(_ data: UnsafeMutableRawPointer, count: Int, tag: UnsafeRawPointer,
                     ad: UnsafeRawPointer, adCount: Int, counter: UInt64) -> Bool {
        var nonce = AEADKey.nonce(counter)
        return withUnsafeBytes(of: &nonce) { n -> Bool in
            let np = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let c = data.assumingMemoryBound(to: UInt8.self)
            let mac = tag.assumingMemoryBound(to: UInt8.self)
            let a = ad.assumingMemoryBound(to: UInt8.self)
            switch cipher {
            case .chacha20poly1305:
                return crypto_aead_chacha20poly1305_ietf_decrypt_detached(c, nil, c, UInt64(count), mac, a, UInt64(adCount),
                                                                          np, key.assumingMemoryBound(to: UInt8.self)) == 0
            case .aes256gcm:
                return crypto_aead_aes256gcm_decrypt_detached_afternm(c, nil, c, UInt64(count), mac, a, UInt64(adCount), np,
                                                                      aesState!.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self)) == 0
            }
        }
    }
}
