import Framework

/// The `crypto.aead` stage of one session: seals every packet sent with the current
/// key pair (header into the headroom, tag into the tailroom, no copy) and opens
/// every record received with the key pair its index names, dropping forgeries,
/// replays and truncations by reason. Handshakes and timers live in `CryptoPeer`
/// and `CryptoEndpoint`; this type is only the data path.
final class AEADStage: Stage {
    private let peer: CryptoPeer
    private let endpoint: CryptoEndpoint
    private let reasons: CryptoEndpoint.Reasons
    private let rekeyAfterMessages: UInt64

    init(context: StageContext) throws {
        let tunnel = context.tunnel
        endpoint = try AEADStage.endpoint(tunnel, context.settings)
        guard let identity = endpoint.identity.peer(named: context.session.name) else {
            throw ConfigurationError("stage 'crypto.aead': no key for session '\(context.session.name)'")
        }
        peer = CryptoPeer(endpoint: endpoint, session: context.session, identity: identity, settings: endpoint.settings,
                          links: tunnel.links.count)
        reasons = endpoint.reasons
        rekeyAfterMessages = endpoint.settings.rekeyAfterMessages
        endpoint.add(peer)
    }

    /// The tunnel's one endpoint (identity, responder, index table), made on first use.
    static func endpoint(_ tunnel: Tunnel, _ settings: Settings) throws -> CryptoEndpoint {
        try tunnel.shared(CryptoEndpoint.self) { try CryptoEndpoint(tunnel: tunnel, settings: try CryptoSettings(settings)) }
    }

    func send(_ batch: PacketBatch) {
        guard let keypair = peer.current, keypair.sendCounter < Keypair.rejectAfterMessages else {
            for index in 0..<batch.count { batch.drop(index, reasons.noKey) }
            peer.wantsHandshake = true
            return
        }
        let records = batch.records
        var counter = keypair.sendCounter
        for index in 0..<batch.count where records[index].dropReason == nil {
            if DataRecord.seal(&records[index], key: keypair.sendKey, receiverIndex: keypair.remoteIndex, counter: counter) {
                counter += 1
            } else {
                batch.drop(index, .noRoom)
            }
        }
        keypair.sendCounter = counter
        if counter >= rekeyAfterMessages { peer.wantsHandshake = true }
        peer.sentSinceTick = true
    }

    func receive(_ batch: PacketBatch) {
        let records = batch.records
        var opened = false
        for index in 0..<batch.count where records[index].dropReason == nil {
            let fields: (index: UInt32, counter: UInt32)
            switch DataRecord.peek(records[index]) {
            case .failure(let error):
                batch.drop(index, reason(for: error))
                continue
            case .success(let peeked):
                fields = peeked
            }
            guard let keypair = peer.keypair(forIndex: fields.index) else {
                batch.drop(index, reasons.unknownKey)
                continue
            }
            if let error = DataRecord.open(&records[index], counter: fields.counter, key: keypair.receiveKey, window: keypair.window) {
                batch.drop(index, reason(for: error))
                continue
            }
            opened = true
            if keypair === peer.next { peer.confirmNext() }
            let link = Int(records[index].link)
            if link >= peer.lastSources.count {  // a link added by a reload
                peer.lastSources += [SocketAddress](repeating: SocketAddress(), count: link + 1 - peer.lastSources.count)
            }
            if records[index].peer != peer.lastSources[link] {
                peer.lastSources[link] = records[index].peer
                endpoint.manager?.authenticated(peer.session, from: records[index].peer, link: link)
            }
            if records[index].length == 0 { batch.discard(index) }  // a keepalive: done
        }
        if opened { peer.receivedSinceTick = true }
    }

    func stop() {
        endpoint.remove(peer)
    }

    private func reason(for error: DataRecord.OpenError) -> DropReason {
        switch error {
        case .truncated: return .truncated
        case .malformed: return .malformed
        case .authentication: return reasons.forged
        case .replayed: return reasons.replayed
        case .tooOld: return reasons.tooOld
        }
    }

    static let descriptor = StageDescriptor(
        name: "crypto.aead",
        summary: "authenticated encryption (ChaCha20-Poly1305 / AES-256-GCM) with a Noise IKpsk2 handshake, rekeying and replay protection",
        slots: [.encrypt],
        settings: CryptoSettings.specs,
        dropReasons: CryptoEndpoint.Reasons.names,
        dataFirstBytes: [DataRecord.type...DataRecord.type],
        authenticates: true,
        check: { settings in _ = try CryptoSettings(settings) },
        // A hub answers handshakes before any session exists.
        prepare: { tunnel, settings in _ = try AEADStage.endpoint(tunnel, settings) },
        make: { context in try AEADStage(context: context) })
}

/// The crypto plugin: registered by the `tunneld` executable.
public enum CryptoPlugin {
    public static let plugin = Plugin(
        name: "crypto",
        summary: "libsodium AEAD records and the Noise IKpsk2 handshake",
        stages: [AEADStage.descriptor])
}
