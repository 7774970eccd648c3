import CSodium

/// The Noise IKpsk2 handshake (Noise spec rev. 34, §7.5 and §9), as WireGuard uses
/// it, with X25519, ChaChaPoly and SHA256:
///
///     IKpsk2:
///       <- s
///       ...
///       -> e, es, s, ss
///       <- e, ee, se, psk
///
/// Why this pattern: one round trip; the initiator already knows the responder's
/// static key (from the site file), so its own identity travels encrypted and
/// forward-secret; both sides are authenticated by their static keys; ephemeral
/// keys give forward secrecy; the pre-shared key (a passphrase or a random secret)
/// is mixed in last, adding a symmetric secret an attacker must also hold.
///
/// Message 1 is 32 + 48 + (payload + 16) bytes, message 2 is 32 + (payload + 16).
final class NoiseIKpsk2 {
    static let protocolName = "Noise_IKpsk2_25519_ChaChaPoly_SHA256"
    enum Role { case initiator, responder }

    let role: Role
    private let localStatic: X25519KeyPair
    private var remoteStatic: [UInt8]?
    private var psk: [UInt8]
    private let ephemeral: X25519KeyPair
    private var remoteEphemeral: [UInt8]?
    private var state: NoiseSymmetricState
    private var step = 0

    /// The initiator knows the responder's static public key.
    init(initiator localStatic: X25519KeyPair, responderStatic: [UInt8], psk: [UInt8], prologue: [UInt8] = [],
                ephemeral: X25519KeyPair = X25519KeyPair()) {
        precondition(psk.count == 32, "the pre-shared key is 32 bytes")
        role = .initiator
        self.localStatic = localStatic
        remoteStatic = responderStatic
        self.psk = psk
        self.ephemeral = ephemeral
        state = NoiseSymmetricState(protocolName: NoiseIKpsk2.protocolName)
        state.mixHash(prologue)
        state.mixHash(responderStatic)  // pre-message: <- s
    }

    /// The responder learns the initiator's static key from message 1. The pre-shared
    /// key is first used in message 2 (psk2), so a responder that keeps one per peer
    /// passes zeros here and the peer's key to `usePreSharedKey` after message 1.
    init(responder localStatic: X25519KeyPair, psk: [UInt8] = [UInt8](repeating: 0, count: 32), prologue: [UInt8] = [],
                ephemeral: X25519KeyPair = X25519KeyPair()) {
        precondition(psk.count == 32, "the pre-shared key is 32 bytes")
        role = .responder
        self.localStatic = localStatic
        self.psk = psk
        self.ephemeral = ephemeral
        state = NoiseSymmetricState(protocolName: NoiseIKpsk2.protocolName)
        state.mixHash(prologue)
        state.mixHash(localStatic.publicKey)
    }

    deinit {
        state.wipe()
        sodium_memzero(&psk, psk.count)
    }

    /// The initiator's static public key (the responder knows it after message 1).
    var peerStatic: [UInt8]? { remoteStatic }
    /// The transcript hash, equal on both sides after message 2 (channel binding).
    var handshakeHash: [UInt8] { state.handshakeHash }

    /// Initiator: -> e, es, s, ss, payload
    func writeInitiation(payload: [UInt8]) throws -> [UInt8] {
        guard role == .initiator, step == 0, let remoteStatic else { throw NoiseError.outOfOrder }
        var message = ephemeral.publicKey
        state.mixHash(ephemeral.publicKey)
        state.mixKey(ephemeral.publicKey)  // psk handshakes mix e into the key too (§9.2)
        state.mixKey(try ephemeral.agree(with: remoteStatic))
        message += state.encryptAndHash(localStatic.publicKey)
        state.mixKey(try localStatic.agree(with: remoteStatic))
        message += state.encryptAndHash(payload)
        step = 1
        return message
    }

    /// Responder: reads message 1 and returns its payload; `peerStatic` is then known.
    func readInitiation(_ message: [UInt8]) throws -> [UInt8] {
        guard role == .responder, step == 0 else { throw NoiseError.outOfOrder }
        guard message.count >= 32 + 48 + 16 else { throw NoiseError.truncated }
        let re = Array(message[0..<32])
        remoteEphemeral = re
        state.mixHash(re)
        state.mixKey(re)
        state.mixKey(try localStatic.agree(with: re))
        let rs = try state.decryptAndHash(Array(message[32..<80]))
        remoteStatic = rs
        state.mixKey(try localStatic.agree(with: rs))
        let payload = try state.decryptAndHash(Array(message[80...]))
        step = 1
        return payload
    }

    /// Responder, between reading message 1 and writing message 2: the pre-shared key
    /// of the peer message 1 identified.
    func usePreSharedKey(_ key: [UInt8]) {
        precondition(role == .responder && step == 1 && key.count == 32)
        sodium_memzero(&psk, psk.count)
        psk = key
    }

    /// Responder: <- e, ee, se, psk, payload
    func writeResponse(payload: [UInt8]) throws -> [UInt8] {
        guard role == .responder, step == 1, let re = remoteEphemeral, let rs = remoteStatic else { throw NoiseError.outOfOrder }
        var message = ephemeral.publicKey
        state.mixHash(ephemeral.publicKey)
        state.mixKey(ephemeral.publicKey)
        state.mixKey(try ephemeral.agree(with: re))
        state.mixKey(try ephemeral.agree(with: rs))
        state.mixKeyAndHash(psk)
        message += state.encryptAndHash(payload)
        step = 2
        return message
    }

    /// Initiator: reads message 2 and returns its payload.
    func readResponse(_ message: [UInt8]) throws -> [UInt8] {
        guard role == .initiator, step == 1 else { throw NoiseError.outOfOrder }
        guard message.count >= 32 + 16 else { throw NoiseError.truncated }
        let re = Array(message[0..<32])
        remoteEphemeral = re
        state.mixHash(re)
        state.mixKey(re)
        state.mixKey(try ephemeral.agree(with: re))
        state.mixKey(try localStatic.agree(with: re))
        state.mixKeyAndHash(psk)
        let payload = try state.decryptAndHash(Array(message[32...]))
        step = 2
        return payload
    }

    /// After both messages: (this side's sending key, this side's receiving key).
    func transportKeys() throws -> (send: [UInt8], receive: [UInt8]) {
        guard step == 2 else { throw NoiseError.outOfOrder }
        let (initiatorToResponder, responderToInitiator) = state.split()
        return role == .initiator ? (initiatorToResponder, responderToInitiator) : (responderToInitiator, initiatorToResponder)
    }
}
