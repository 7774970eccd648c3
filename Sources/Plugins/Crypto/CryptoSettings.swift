import Framework

/// The settings of `crypto.aead`, and the checked configuration they describe.
struct CryptoSettings {
    static let cipher = SettingSpec("cipher", .choice(["auto"] + AEADCipher.allCases.map(\.rawValue)), default: .string("auto"),
                                    help: "record cipher; auto = AES-256-GCM where the CPU has AES-NI on both ends, else ChaCha20-Poly1305 (agreed in the handshake)")
    static let passphraseContext = SettingSpec("passphrase-context", .string, default: .string("tunneld"),
                                               help: "salt for the passphrase; give both ends the same site-unique value")
    static let rekeyAfter = SettingSpec("rekey-after", .milliseconds(1000...86_400_000), default: .integer(120_000),
                                        help: "new keys after this long (old keys overlap, nothing in flight is lost)")
    static let rekeyAfterMessages = SettingSpec("rekey-after-messages", .integer(1000...(1 << 60)), default: .integer(1 << 32),
                                                help: "new keys after this many packets sent with one key")
    static let keepalive = SettingSpec("keepalive", .milliseconds(1000...3_600_000), default: .integer(10_000),
                                       help: "send an empty record when data came in but nothing went out for this long")
    static let handshakeRetry = SettingSpec("handshake-retry", .milliseconds(100...60_000), default: .integer(1000),
                                            help: "resend an unanswered handshake after this long")
    static let handshakeLoad = SettingSpec("handshake-load", .integer(1...100_000), default: .integer(64),
                                           help: "handshake initiations per second above which a responder demands cookies (proof of address)")
    static let handshakesPerSource = SettingSpec("handshakes-per-source", .integer(1...10_000), default: .integer(20),
                                                 help: "initiations per second a responder takes from one IP address (burst 5)")
    static let stagedPackets = SettingSpec("staged-packets", .integer(0...4096), default: .integer(128),
                                           help: "packets kept while the session has no keys (first handshake), sent the moment it has; when full the oldest go (staged_overflow); 0: drop them (no_key)")
    static let stagedTimeout = SettingSpec("staged-timeout", .milliseconds(100...120_000), default: .integer(5000),
                                           help: "staged packets still waiting for keys after this long are dropped (staged_timeout): a sender has retransmitted them by then")

    static let specs: [SettingSpec] = [
        cipher,
        SettingSpec("private-key-file", .string,
                    help: "this end's private key (from 'tunneld genkey'), mode 0600; relative to the site file"),
        SettingSpec("peer-public-key", .string, help: "the peer's public key (from 'tunneld pubkey'), for a single peer"),
        SettingSpec("peers", .list(.string),
                    help: "peers a server accepts, each 'NAME=PUBLICKEY'; the name names the session"),
        SettingSpec("preshared-key-file", .string,
                    help: "optional extra shared secret (base64 of 32 bytes, 'tunneld genkey' makes one), mode 0600"),
        SettingSpec("passphrase-file", .string,
                    help: "instead of key pairs: a shared passphrase (at least 12 characters), mode 0600; stretched with Argon2id"),
        passphraseContext,
        rekeyAfter,
        rekeyAfterMessages,
        keepalive,
        handshakeRetry,
        handshakeLoad,
        handshakesPerSource,
        stagedPackets,
        stagedTimeout,
    ]

    /// Where the identity comes from, with the secrets already read (once, here).
    enum Mode {
        case keyPair(privateKey: [UInt8], peers: [(name: String, publicKey: [UInt8])], psk: [UInt8])
        case passphrase(String, context: String)
    }

    let mode: Mode
    let cipher: String
    let rekeyAfter: Double
    let rekeyAfterMessages: UInt64
    let keepalive: Double
    let handshakeRetry: Double
    let handshakeLoad: Int
    let handshakesPerSource: Int
    let stagedPackets: Int
    let stagedTimeout: Double

    /// Checks everything that can be checked without the network, reading (and
    /// permission-checking) the secret files; errors point at the setting.
    init(_ settings: Settings) throws {
        func fail(_ name: String, _ message: String) -> Error {
            if let mark = settings.mark(name) { return ProfileError(mark, message) }
            return ConfigurationError(message)
        }
        cipher = settings.string(Self.cipher)
        rekeyAfter = Double(settings.integer(Self.rekeyAfter)) / 1000
        rekeyAfterMessages = UInt64(settings.integer(Self.rekeyAfterMessages))
        keepalive = Double(settings.integer(Self.keepalive)) / 1000
        handshakeRetry = Double(settings.integer(Self.handshakeRetry)) / 1000
        handshakeLoad = settings.integer(Self.handshakeLoad)
        handshakesPerSource = settings.integer(Self.handshakesPerSource)
        stagedPackets = settings.integer(Self.stagedPackets)
        stagedTimeout = Double(settings.integer(Self.stagedTimeout)) / 1000

        let keyFile = settings.path("private-key-file")
        let passphraseFile = settings.path("passphrase-file")
        if cipher == AEADCipher.aes256gcm.rawValue && !AEADCipher.aesAvailable {
            throw fail("cipher", "cipher aes256gcm needs AES-NI, which this CPU lacks; use 'auto' or 'chacha20poly1305'")
        }
        switch (keyFile, passphraseFile) {
        case (nil, nil):
            throw ConfigurationError("needs 'private-key-file' (key pairs) or 'passphrase-file' (shared passphrase)")
        case (.some, .some):
            throw fail("passphrase-file", "give either 'private-key-file' or 'passphrase-file', not both")
        case (nil, let file?):
            for name in ["peer-public-key", "peers", "preshared-key-file"] where settings.mark(name) != nil {
                throw fail(name, "'\(name)' belongs to the key-pair mode; with 'passphrase-file' both ends derive their keys from the passphrase")
            }
            let passphrase: String
            do { passphrase = try SecretFile.read(file) } catch { throw fail("passphrase-file", "\(error)") }
            guard passphrase.count >= CryptoIdentity.minimumPassphraseLength else {
                throw fail("passphrase-file", "the passphrase in '\(file)' has \(passphrase.count) characters; use at least \(CryptoIdentity.minimumPassphraseLength) (or key pairs: 'tunneld genkey')")
            }
            mode = .passphrase(passphrase, context: settings.string(Self.passphraseContext))
        case (let file?, nil):
            /// A base64 key from a secret file, errors pointing at the setting.
            func readKey(_ name: String, _ path: String, what: String) throws -> [UInt8] {
                do {
                    guard let key = KeyText.decode(try SecretFile.read(path)) else {
                        throw ConfigurationError("'\(path)' does not hold \(what) (44 characters of base64, as 'tunneld genkey' prints)")
                    }
                    return key
                } catch { throw fail(name, "\(error)") }
            }
            let privateKey = try readKey("private-key-file", file, what: "a private key")
            var peers: [(String, [UInt8])] = []
            if let text = settings.string("peer-public-key") {
                guard let key = KeyText.decode(text) else {
                    throw fail("peer-public-key", "'\(text)' is not a public key (44 characters of base64, as 'tunneld pubkey' prints)")
                }
                peers.append(("peer", key))
            }
            for item in settings.list("peers") {
                let text = item.description
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex,
                      let key = KeyText.decode(String(text[text.index(after: equals)...])) else {
                    throw fail("peers", "peer '\(text)' must be 'NAME=PUBLICKEY' with a 44-character base64 public key")
                }
                let name = String(text[..<equals])
                guard !peers.contains(where: { $0.0 == name }) else { throw fail("peers", "peer name '\(name)' appears twice") }
                peers.append((name, key))
            }
            guard !peers.isEmpty else {
                throw fail("private-key-file", "with 'private-key-file', name the peer: 'peer-public-key: KEY' or 'peers: [NAME=KEY, …]'")
            }
            let psk = try settings.path("preshared-key-file").map { try readKey("preshared-key-file", $0, what: "a pre-shared key") }
            mode = .keyPair(privateKey: privateKey, peers: peers, psk: psk ?? [UInt8](repeating: 0, count: 32))
        }
    }

    /// The identity (stretching the passphrase: about a tenth of a second, once per tunnel).
    func loadIdentity() throws -> CryptoIdentity {
        switch mode {
        case .passphrase(let passphrase, let context):
            let (keyPair, psk) = try CryptoIdentity.fromPassphrase(passphrase, context: context)
            return CryptoIdentity(local: keyPair, peers: [.init(name: "peer", publicKey: keyPair.publicKey, psk: psk)])
        case .keyPair(let privateKey, let peers, let psk):
            return CryptoIdentity(local: X25519KeyPair(privateKey: privateKey),
                                  peers: peers.map { .init(name: $0.name, publicKey: $0.publicKey, psk: psk) })
        }
    }

    /// The ciphers this end accepts, as the handshake's bit set.
    var acceptedCiphers: UInt8 {
        switch cipher {
        case AEADCipher.chacha20poly1305.rawValue: return HandshakeLayout.chachaBit
        case AEADCipher.aes256gcm.rawValue: return HandshakeLayout.aesBit
        default: return HandshakeLayout.chachaBit | (AEADCipher.aesAvailable ? HandshakeLayout.aesBit : 0)
        }
    }
}
