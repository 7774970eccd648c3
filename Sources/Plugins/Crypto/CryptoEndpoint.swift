import Framework

/// The tunnel-wide half of the crypto plugin (one per tunnel, shared by the
/// `crypto.aead` stage of every session): the local identity, the table of key-pair
/// indices, the handshake responder with its cookies and rate limits, and the timer
/// that drives retries, rekeys and keepalives.
///
/// Denial-of-service posture: an initiation costs the responder one BLAKE2b (mac1)
/// before anything else, and nothing at all is stored for it until the initiator
/// has proved its static key, its freshness (timestamp) and, under load, its
/// address (cookie). The expensive part, four X25519 operations, is bounded by the
/// per-address token bucket.
final class CryptoEndpoint {
    let tunnel: Tunnel
    let settings: CryptoSettings
    let identity: CryptoIdentity
    let reasons: Reasons

    private var indices: [UInt32: CryptoPeer] = [:]
    /// The index the last data record named and its session: a hub's batch mostly
    /// holds one site's records, and the hash lookup per record was 2-3 % of a bonding
    /// hub. Forgotten when any index is released (0 is never an index).
    private var lastRoute: (index: UInt32, session: Session?) = (0, nil)
    private var peersBySession: [UInt32: CryptoPeer] = [:]
    private var latestTimestamps: [String: [UInt8]] = [:]
    /// The mac1 of each initiation accepted or refused in the last `copyWindow` seconds,
    /// and when: a bonding site sends the same initiation on every path, and its later
    /// copies are duplicates, not replays, and cost no Diffie-Hellman (a hub at
    /// `max-sessions` would otherwise pay one per path of every refused attempt).
    private var handledInitiations: [[UInt8]: Double] = [:]
    static let copyWindow = 1.0
    private let cookies: CookieJar
    private let limiter: HandshakeRateLimiter
    private let mac1Key: [UInt8]
    private var timer: EventLoop.Timer?
    /// One small buffer for keepalives: control sends are synchronous.
    private let scratch: UnsafeMutableRawPointer
    static let scratchBytes = 256
    private weak var cachedManager: (any PeerAuthenticatingManager)?

    /// The session manager, as one that takes authenticated peers (looked up once:
    /// a dynamic cast per packet would cost more than the lookup it saves).
    var manager: (any PeerAuthenticatingManager)? {
        if let cached = cachedManager { return cached }
        cachedManager = tunnel.manager as? PeerAuthenticatingManager
        if cachedManager == nil, let other = tunnel.manager {
            tunnel.logger.error("stage 'crypto.aead' needs a session manager that takes authenticated peers (static, bonding-client, bonding-server), not \(type(of: other))")
        }
        return cachedManager
    }

    struct Reasons {
        let noKey, unknownKey, forged, replayed, tooOld: DropReason
        /// Staged without keys: the oldest gave way to a newer packet, or waited too long.
        let stagedOverflow, stagedTimeout: DropReason
        /// A copy of an accepted record by another path (bonding's redundant mode);
        /// the name is the reorder stage's, so both count copies under one reason.
        let duplicate: DropReason
        /// A byte copy of an initiation accepted or refused within `copyWindow` (the same
        /// initiation by another path of a bonding site); a later copy is `handshake_replayed`.
        let handshakeDuplicate: DropReason
        let handshakeMalformed, handshakeBadMac, handshakeCookieRequired, handshakeRateLimited, handshakeFailed,
            handshakeUnknownPeer, handshakeReplayed, handshakeCipherMismatch, handshakeRefused, handshakeUnexpected: DropReason

        static let names = [
            "no_key", "unknown_key", "forged", "replayed", "too_old",
            "handshake_malformed", "handshake_bad_mac", "handshake_cookie_required", "handshake_rate_limited",
            "handshake_failed", "handshake_unknown_peer", "handshake_replayed", "handshake_cipher_mismatch",
            "handshake_refused", "handshake_unexpected",
            "staged_overflow", "staged_timeout", "duplicate", "handshake_duplicate",
        ]

        init(_ tunnel: Tunnel) {
            let r = Reasons.names.map { tunnel.dropReason(named: $0) }
            (noKey, unknownKey, forged, replayed, tooOld) = (r[0], r[1], r[2], r[3], r[4])
            (handshakeMalformed, handshakeBadMac, handshakeCookieRequired, handshakeRateLimited, handshakeFailed) = (r[5], r[6], r[7], r[8], r[9])
            (handshakeUnknownPeer, handshakeReplayed, handshakeCipherMismatch, handshakeRefused, handshakeUnexpected) = (r[10], r[11], r[12], r[13], r[14])
            (stagedOverflow, stagedTimeout, duplicate, handshakeDuplicate) = (r[15], r[16], r[17], r[18])
        }
    }

    init(tunnel: Tunnel, settings: CryptoSettings) throws {
        self.tunnel = tunnel
        self.settings = settings
        identity = try settings.loadIdentity()
        reasons = Reasons(tunnel)
        cookies = CookieJar(localPublicKey: identity.local.publicKey)
        limiter = HandshakeRateLimiter(perSecond: settings.handshakesPerSource, loadThreshold: settings.handshakeLoad)
        mac1Key = HandshakeLayout.mac1Key(identity.local.publicKey)
        scratch = .allocate(byteCount: CryptoEndpoint.scratchBytes, alignment: 16)
        let owner = "stage 'crypto.aead'"
        try tunnel.demux.claimControl(HandshakeLayout.initiationType, by: owner) { [unowned self] packet, link in
            self.control(packet, link, self.handleInitiation)
        }
        try tunnel.demux.claimControl(HandshakeLayout.responseType, by: owner) { [unowned self] packet, link in
            self.control(packet, link, self.handleResponse)
        }
        try tunnel.demux.claimControl(HandshakeLayout.cookieType, by: owner) { [unowned self] packet, link in
            self.control(packet, link, self.handleCookie)
        }
        // A hub's session manager finds a record's session by the index it names.
        try tunnel.routeData(firstBytes: DataRecord.type...DataRecord.type, owner: owner) { [unowned self] packet in
            guard case .success(let fields) = DataRecord.peek(packet) else { return nil }
            if fields.index == self.lastRoute.index { return self.lastRoute.session }
            let session = self.indices[fields.index]?.session
            if session != nil { self.lastRoute = (fields.index, session) }
            return session
        }
        timer = try tunnel.loop.addTimer(milliseconds: 100, repeating: true) { [unowned self] in
            let now = MonotonicClock.now()
            for peer in self.peersBySession.values { peer.tick(now: now) }
        }
        tunnel.logger.info("crypto: public key \(KeyText.encode(identity.local.publicKey)), \(identity.peers.count) peer\(identity.peers.count == 1 ? "" : "s") known")
    }

    deinit {
        timer?.cancel()
        scratch.deallocate()
    }

    // MARK: peers and indices

    func add(_ peer: CryptoPeer) { peersBySession[peer.session.id] = peer }

    func remove(_ peer: CryptoPeer) {
        peer.clear()
        peersBySession[peer.session.id] = nil
    }

    /// A random index no key pair or handshake of this tunnel uses (0 is never used;
    /// records carry 24 bits of it).
    func allocateIndex(for peer: CryptoPeer) -> UInt32 {
        while true {
            let index = UInt32.random(in: 1...DataRecord.maxIndex)
            if indices[index] == nil {
                indices[index] = peer
                return index
            }
        }
    }

    func release(_ index: UInt32) {
        indices[index] = nil
        if index == lastRoute.index { lastRoute = (0, nil) }
    }

    func peer(of session: Session) -> CryptoPeer? { peersBySession[session.id] }

    func withScratchPacket(_ body: (inout Packet) -> Void) {
        var packet = Packet(base: scratch, capacity: CryptoEndpoint.scratchBytes, offset: 64)
        body(&packet)
    }

    // MARK: handshake messages

    private func control(_ packet: Packet, _ link: UDPLink,
                         _ handler: ([UInt8], SocketAddress, UDPLink, Double) -> DropReason?) {
        let message = Array(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length))
        if let reason = handler(message, packet.peer, link, MonotonicClock.now()) {
            tunnel.counters.countDrop(reason)
            tunnel.logger.debug("crypto: handshake message type \(message[0]) from \(packet.peer) dropped: \(tunnel.dropReasons.names[reason.id])")
        }
    }

    private func handleInitiation(_ message: [UInt8], from source: SocketAddress, link: UDPLink, now: Double) -> DropReason? {
        guard message.count == HandshakeLayout.initiationBytes else { return reasons.handshakeMalformed }
        let mac1 = HandshakeLayout.mac(message, upTo: HandshakeLayout.initiationMac1, key: mac1Key)
        guard HandshakeLayout.matches(message, at: HandshakeLayout.initiationMac1, mac1) else { return reasons.handshakeBadMac }
        if let handled = handledInitiations[mac1], now - handled < CryptoEndpoint.copyWindow { return reasons.handshakeDuplicate }
        if limiter.noteInitiation(now: now) && !cookies.hasValidMac2(message, source: source, now: now) {
            // Under load: prove your address first. The reply costs us no state.
            cookies.reply(to: message, source: source, now: now).withUnsafeBytes { _ = link.sendControl($0, to: source) }
            return reasons.handshakeCookieRequired
        }
        guard limiter.allow(source, now: now) else { return reasons.handshakeRateLimited }
        let initiatorIndex = HandshakeLayout.index(message, at: 4)
        // One of our own indices: our initiation reflected back at us.
        guard initiatorIndex != 0, initiatorIndex <= DataRecord.maxIndex, indices[initiatorIndex] == nil else {
            return reasons.handshakeFailed
        }
        let noise = NoiseIKpsk2(responder: identity.local, prologue: HandshakeLayout.prologue)
        guard let payload = try? noise.readInitiation(Array(message[8..<HandshakeLayout.initiationMac1])),
              payload.count == HandshakeLayout.initiationPayload, let staticKey = noise.peerStatic else {
            return reasons.handshakeFailed
        }
        guard let peerIdentity = identity.peer(withPublicKey: staticKey) else { return reasons.handshakeUnknownPeer }
        let timestamp = Array(payload[0..<12])
        guard HandshakeLayout.isNewer(timestamp, than: latestTimestamps[peerIdentity.name]) else { return reasons.handshakeReplayed }
        guard let cipher = chooseCipher(offered: payload[12]) else { return reasons.handshakeCipherMismatch }
        guard let session = manager?.session(forAuthenticatedPeer: peerIdentity.name, from: source, link: link),
              let peer = peersBySession[session.id] else {
            noteHandled(mac1: mac1, now: now)
            return reasons.handshakeRefused
        }
        latestTimestamps[peerIdentity.name] = timestamp
        noteHandled(mac1: mac1, now: now)
        noise.usePreSharedKey(peerIdentity.psk)
        guard let response = peer.respond(with: noise, initiatorIndex: initiatorIndex, cipher: cipher, now: now) else {
            return reasons.handshakeFailed
        }
        response.withUnsafeBytes { _ = link.sendControl($0, to: source) }
        return nil
    }

    private func noteHandled(mac1: [UInt8], now: Double) {
        handledInitiations = handledInitiations.filter { now - $0.value < CryptoEndpoint.copyWindow }
        handledInitiations[mac1] = now
    }

    private func handleResponse(_ message: [UInt8], from source: SocketAddress, link: UDPLink, now: Double) -> DropReason? {
        guard message.count == HandshakeLayout.responseBytes else { return reasons.handshakeMalformed }
        let mac1 = HandshakeLayout.mac(message, upTo: HandshakeLayout.responseMac1, key: mac1Key)
        guard HandshakeLayout.matches(message, at: HandshakeLayout.responseMac1, mac1) else { return reasons.handshakeBadMac }
        guard let peer = indices[HandshakeLayout.index(message, at: 8)] else { return reasons.handshakeUnexpected }
        return peer.handleResponse(message, from: source, link: link.index, now: now)
    }

    private func handleCookie(_ message: [UInt8], from source: SocketAddress, link: UDPLink, now: Double) -> DropReason? {
        guard message.count == HandshakeLayout.cookieBytes else { return reasons.handshakeMalformed }
        let index = HandshakeLayout.index(message, at: 4)
        guard let peer = indices[index], peer.isPending(index) else { return reasons.handshakeUnexpected }
        return peer.handleCookie(message, now: now)
    }

    /// AES-256-GCM when both ends accept it, else ChaCha20-Poly1305 when both do.
    private func chooseCipher(offered: UInt8) -> AEADCipher? {
        let common = offered & settings.acceptedCiphers
        if common & HandshakeLayout.aesBit != 0 { return .aes256gcm }
        if common & HandshakeLayout.chachaBit != 0 { return .chacha20poly1305 }
        return nil
    }
}
