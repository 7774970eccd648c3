import Framework

/// The `crypto.aead` stage of one session: seals every packet sent with the current
/// key pair (header into the headroom, tag into the tailroom, no copy) and opens
/// every record received with the key pair its index names, dropping forgeries,
/// replays and truncations by reason. Handshakes and timers live in `CryptoPeer`
/// and `CryptoEndpoint`; this type is only the data path.
///
/// Without keys (before the first handshake, or after keys expired) packets wait in
/// the session's `StagedQueue` and go, sealed and in order, the moment keys exist.
final class AEADStage: Stage {
    private let peer: CryptoPeer
    private let endpoint: CryptoEndpoint
    private let reasons: CryptoEndpoint.Reasons
    private let rekeyAfterMessages: UInt64
    private let staged: StagedQueue
    private let stagedTimeout: Double
    private let copies = RecordCopies()
    /// Inside `receive`: keys confirmed there are flushed to when it ends, not in the
    /// middle of its loop.
    private var receiving = false
    private var flushDue = false

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
        staged = StagedQueue(capacity: endpoint.settings.stagedPackets, slotSize: tunnel.slotSize,
                             headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        stagedTimeout = endpoint.settings.stagedTimeout
        endpoint.add(peer)
        peer.stage = self
    }

    /// The tunnel's one endpoint (identity, responder, index table), made on first use.
    static func endpoint(_ tunnel: Tunnel, _ settings: Settings) throws -> CryptoEndpoint {
        try tunnel.shared(CryptoEndpoint.self) { try CryptoEndpoint(tunnel: tunnel, settings: try CryptoSettings(settings)) }
    }

    func send(_ batch: PacketBatch) {
        guard let keypair = peer.current, keypair.sendCounter < Keypair.rejectAfterMessages else {
            stage(batch)
            peer.wantsHandshake = true
            return
        }
        if !staged.isEmpty && !staged.owns(batch) { flushStaged() }  // what waited goes first
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
        receiving = true
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
            // Read before `open`, which trims the tag.
            let tag = RecordCopies.tag(of: records[index])
            let path = RecordCopies.path(link: records[index].link, peer: records[index].peer)
            if let error = DataRecord.open(&records[index], counter: fields.counter, key: keypair.receiveKey, window: keypair.window) {
                let copy = error == .replayed && copies.isCopy(counter: fields.counter, tag: tag, path: path)
                batch.drop(index, copy ? reasons.duplicate : reason(for: error))
                continue
            }
            copies.accepted(counter: fields.counter, tag: tag, path: path)
            records[index].authenticated = true
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
        receiving = false
        if flushDue {
            flushDue = false
            flushStaged()
        }
    }

    func stop() {
        staged.release()
        endpoint.remove(peer)
    }

    // MARK: the staged queue

    /// Packets waiting for keys, and whether their memory is held (for tests and status).
    var stagedCount: Int { staged.count }
    var stagedMemory: Bool { staged.holdsMemory }

    /// No keys: keep the batch's packets for when there are (and take them out of the
    /// batch uncounted), the oldest making room when the queue is full.
    private func stage(_ batch: PacketBatch) {
        if staged.owns(batch) {
            // A flush that lost its keys on the way (cannot happen: a flush needs keys).
            for index in 0..<batch.count { batch.drop(index, reasons.noKey) }
            return
        }
        let now = MonotonicClock.now()
        let records = batch.records
        for index in 0..<batch.count where records[index].dropReason == nil {
            switch staged.stage(records[index], now: now) {
            case .staged:
                batch.discard(index)
            case .stagedDroppingOldest:
                batch.discard(index)
                peer.session.countDrop(reasons.stagedOverflow)
            case .refused:
                batch.drop(index, reasons.noKey)
            }
        }
    }

    /// Keys exist now: send what waited (deferred to the end of `receive` when the
    /// keys were confirmed by a record in its loop).
    func keysReady() {
        if receiving {
            flushDue = true
        } else {
            flushStaged()
        }
    }

    /// Every endpoint tick: staged packets too old to be worth sending go.
    func tick(now: Double) {
        if staged.isEmpty { return }
        let expired = staged.expire(before: now - stagedTimeout)
        if expired > 0 { peer.session.countDrop(reasons.stagedTimeout, count: expired) }
        if !staged.isEmpty, peer.current != nil { flushStaged() }  // keys came by a path that did not flush
    }

    /// Seal and send the staged packets in order, through this stage and those below.
    private func flushStaged() {
        guard !staged.isEmpty, let keypair = peer.current, keypair.sendCounter < Keypair.rejectAfterMessages,
              let pipeline = peer.session.pipeline, let first = pipeline.index(of: self),
              let batch = staged.drain() else { return }
        pipeline.send(batch, from: first)
        staged.release()
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
