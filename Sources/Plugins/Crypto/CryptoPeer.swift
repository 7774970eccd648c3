import CSodium
import Framework

/// The crypto state of one session: up to three key pairs and, while this end is
/// initiating, the handshake in flight.
///
/// * `current` seals everything sent, and opens.
/// * `previous` still opens what the peer sealed before it switched: packets in
///   flight during a rekey are not lost.
/// * `next` is a key pair this end answered a handshake for; it becomes `current`
///   the moment the peer's first record under it arrives (the peer has it, so both
///   ends now agree).
///
/// Time-driven work (retries, rekeys, keepalives, expiry) runs in `tick`, called by
/// the endpoint's timer; the data path only sets flags.
final class CryptoPeer {
    unowned let endpoint: CryptoEndpoint
    let session: Session
    let identity: CryptoIdentity.Peer
    private let settings: CryptoSettings

    var current: Keypair?
    var previous: Keypair?
    var next: Keypair?

    private struct Pending {
        let noise: NoiseIKpsk2
        let index: UInt32
        let sentAt: Double
        let mac1: [UInt8]
    }
    private var pending: Pending?
    private var cookie: (bytes: [UInt8], received: Double)?

    /// The session's stage: told when keys exist (it sends what it staged without
    /// them) and on every tick (staged packets expire).
    weak var stage: AEADStage?

    /// Set by the data path, read by `tick`.
    var wantsHandshake = false
    var sentSinceTick = false
    var receivedSinceTick = false
    private var lastSent = -Double.infinity
    private var lastReceived = -Double.infinity
    private var lastHandshakeCompleted = -Double.infinity
    /// When data first came in after our last send: a keepalive is due `keepalive` later.
    private var unansweredSince: Double?
    private(set) var handshakesCompleted = 0
    /// The source of the latest authenticated record per link: a change is reported
    /// to the session manager (the peer moved).
    var lastSources: [SocketAddress]

    /// Whether this end knows where the peer is from its configuration (a client):
    /// then it keeps dialling while it has no keys. An end that only learnt the peer's
    /// address initiates only when it has packets to send.
    private let dialsOut: Bool

    /// After this long a key pair is refused both ways, rekey or not.
    var rejectAfter: Double { settings.rekeyAfter + 60 }

    init(endpoint: CryptoEndpoint, session: Session, identity: CryptoIdentity.Peer, settings: CryptoSettings, links: Int) {
        self.endpoint = endpoint
        self.session = session
        self.identity = identity
        self.settings = settings
        lastSources = [SocketAddress](repeating: SocketAddress(), count: links)
        dialsOut = session.peer != nil
        session.state = .handshaking
    }

    /// The key pair a received record names, if we have it.
    @inline(__always)
    func keypair(forIndex index: UInt32) -> Keypair? {
        if let current, current.localIndex == index { return current }
        if let previous, previous.localIndex == index { return previous }
        if let next, next.localIndex == index { return next }
        return nil
    }

    /// The peer used `next`: it has the keys, so switch to them.
    func confirmNext() {
        guard let confirmed = next else { return }
        retire(previous)
        previous = current
        current = confirmed
        next = nil
        completed(confirmed, role: "responder")
        stage?.keysReady()
    }

    // MARK: initiator

    /// Send a fresh initiation (also a retry: a new ephemeral key each time).
    func initiate(now: Double) {
        if let old = pending { endpoint.release(old.index) }
        pending = nil
        let index = endpoint.allocateIndex(for: self)
        let noise = NoiseIKpsk2(initiator: endpoint.identity.local, responderStatic: identity.publicKey, psk: identity.psk,
                                prologue: HandshakeLayout.prologue)
        let payload = HandshakeLayout.timestamp() + [settings.acceptedCiphers]
        guard let noiseMessage = try? noise.writeInitiation(payload: payload) else {
            endpoint.release(index)
            return
        }
        let validCookie = cookie.flatMap { now - $0.received < CookieJar.secretLifetime - 10 ? $0.bytes : nil }
        let (message, mac1) = HandshakeLayout.initiation(senderIndex: index, noiseMessage: noiseMessage,
                                                         responderPublicKey: identity.publicKey, cookie: validCookie)
        pending = Pending(noise: noise, index: index, sentAt: now, mac1: mac1)
        wantsHandshake = false
        let sent = message.withUnsafeBytes { endpoint.manager?.sendControl($0, to: session) ?? false }
        endpoint.tunnel.logger.debug("session \(session.name): handshake initiation \(sent ? "sent" : "has no route yet")")
    }

    /// Whether `index` is the handshake this end has in flight.
    func isPending(_ index: UInt32) -> Bool { pending?.index == index }

    /// The responder's answer to our initiation. Returns the drop reason, or nil.
    func handleResponse(_ message: [UInt8], from source: SocketAddress, link: Int, now: Double) -> DropReason? {
        guard let handshake = pending, handshake.index == HandshakeLayout.index(message, at: 8) else {
            return endpoint.reasons.handshakeUnexpected
        }
        let responderIndex = HandshakeLayout.index(message, at: 4)
        guard responderIndex != 0, responderIndex <= DataRecord.maxIndex else { return endpoint.reasons.handshakeFailed }
        let noiseMessage = Array(message[12..<HandshakeLayout.responseMac1])
        guard let payload = try? handshake.noise.readResponse(noiseMessage), payload.count == HandshakeLayout.responsePayload,
              let cipher = CryptoPeer.cipher(bit: payload[0], accepted: settings.acceptedCiphers),
              let keys = try? handshake.noise.transportKeys(),
              let keypair = try? Keypair(cipher: cipher, send: keys.send, receive: keys.receive, localIndex: handshake.index,
                                         remoteIndex: responderIndex, created: now, initiatedLocally: true)
        else {
            // A forged or corrupted response: keep waiting for the real one until the retry.
            return endpoint.reasons.handshakeFailed
        }
        pending = nil
        retire(previous)
        previous = current
        current = keypair
        completed(keypair, role: "initiator")
        endpoint.manager?.authenticated(session, from: source, link: link)
        sendKeepalive()  // confirms the keys to the responder at once
        stage?.keysReady()
        return nil
    }

    /// A cookie reply to our initiation: remember the cookie for the next attempt.
    func handleCookie(_ reply: [UInt8], now: Double) -> DropReason? {
        guard let handshake = pending,
              let bytes = CookieJar.open(reply, responderPublicKey: identity.publicKey, sentMac1: handshake.mac1) else {
            return endpoint.reasons.handshakeUnexpected
        }
        cookie = (bytes, now)
        endpoint.tunnel.logger.debug("session \(session.name): responder under load, got a cookie")
        return nil
    }

    // MARK: responder

    /// Answer an authenticated initiation: the response message, and a new `next`.
    func respond(with noise: NoiseIKpsk2, initiatorIndex: UInt32, cipher: AEADCipher, now: Double) -> [UInt8]? {
        let index = endpoint.allocateIndex(for: self)
        guard let noiseMessage = try? noise.writeResponse(payload: [CryptoPeer.bit(of: cipher)]),
              let keys = try? noise.transportKeys(),
              let keypair = try? Keypair(cipher: cipher, send: keys.send, receive: keys.receive, localIndex: index,
                                         remoteIndex: initiatorIndex, created: now, initiatedLocally: false) else {
            endpoint.release(index)
            return nil
        }
        let message = HandshakeLayout.response(senderIndex: index, receiverIndex: initiatorIndex, noiseMessage: noiseMessage,
                                               initiatorPublicKey: identity.publicKey)
        retire(next)
        next = keypair
        return message
    }

    // MARK: timers

    func tick(now: Double) {
        if sentSinceTick {
            lastSent = now
            unansweredSince = nil
        } else if receivedSinceTick && unansweredSince == nil {
            unansweredSince = now
        }
        if receivedSinceTick { lastReceived = now }
        sentSinceTick = false
        receivedSinceTick = false
        stage?.tick(now: now)
        _ = expire(&previous, now: now)
        _ = expire(&next, now: now)
        if expire(&current, now: now) {
            endpoint.tunnel.logger.info("session \(session.name): keys expired (no rekey for \(Int(rejectAfter)) s)")
            session.state = .handshaking
        }
        if let pending, now - pending.sentAt < settings.handshakeRetry { return }  // wait for the answer
        guard let keypair = current else {
            if dialsOut || (wantsHandshake && session.peer != nil) { initiate(now: now) }
            return
        }
        let age = now - keypair.created
        // The initiator rekeys by time; the responder steps in only if it did not.
        let due = wantsHandshake
            || (keypair.initiatedLocally && age >= settings.rekeyAfter)
            || (!keypair.initiatedLocally && age >= settings.rekeyAfter + 30)
            || (pending != nil)  // a rekey in flight that went unanswered: retry
            // Sending but hearing nothing back: the peer may have lost our keys.
            || (lastSent > lastReceived && lastSent - max(lastReceived, lastHandshakeCompleted) > settings.keepalive + 5)
        if due {
            initiate(now: now)
        } else if let since = unansweredSince, now - since >= settings.keepalive {
            sendKeepalive()
        }
    }

    /// An empty record: proves liveness and confirms fresh keys to the responder.
    func sendKeepalive() {
        guard let keypair = current, keypair.sendCounter < Keypair.rejectAfterMessages else { return }
        endpoint.withScratchPacket { packet in
            guard DataRecord.seal(&packet, key: keypair.sendKey, receiverIndex: keypair.remoteIndex,
                                  counter: keypair.sendCounter) else { return }
            keypair.sendCounter += 1
            sentSinceTick = true
            _ = endpoint.manager?.sendControl(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length),
                                                     to: session)
        }
    }

    /// Drop everything (the session ends).
    func clear() {
        if let pending { endpoint.release(pending.index) }
        pending = nil
        for keypair in [current, previous, next] { retire(keypair) }
        current = nil; previous = nil; next = nil
    }

    /// Empty `slot` if its key pair is past `rejectAfter`; true if it did.
    private func expire(_ slot: inout Keypair?, now: Double) -> Bool {
        guard let keypair = slot, now - keypair.created > rejectAfter else { return false }
        retire(keypair)
        slot = nil
        return true
    }

    private func retire(_ keypair: Keypair?) {
        if let keypair { endpoint.release(keypair.localIndex) }
    }

    private func completed(_ keypair: Keypair, role: String) {
        handshakesCompleted += 1
        lastHandshakeCompleted = keypair.created
        wantsHandshake = false
        let first = session.state != .up
        session.state = .up
        let line = "session \(session.name): keys \(first ? "established" : "renewed") as \(role), \(keypair.sendKey.cipher.rawValue), handshake \(handshakesCompleted)"
        if first { endpoint.tunnel.logger.info("\(line)") } else { endpoint.tunnel.logger.debug("\(line)") }
    }

    static func bit(of cipher: AEADCipher) -> UInt8 {
        cipher == .aes256gcm ? HandshakeLayout.aesBit : HandshakeLayout.chachaBit
    }

    /// The cipher a response names, if it is one bit this end accepts.
    static func cipher(bit: UInt8, accepted: UInt8) -> AEADCipher? {
        guard bit & accepted != 0 else { return nil }
        if bit == HandshakeLayout.aesBit { return .aes256gcm }
        if bit == HandshakeLayout.chachaBit { return .chacha20poly1305 }
        return nil
    }
}
