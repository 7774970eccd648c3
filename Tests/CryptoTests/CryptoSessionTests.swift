import XCTest
@testable import Crypto
@testable import Framework

/// Whole crypto sessions in one process: two tunnels over 127.0.0.1 with real UDP
/// sockets, the real handshake, records and timers, driven by `CryptoHarness.pump`.
final class CryptoSessionTests: XCTestCase {
    var harness: CryptoHarness!
    var hubPublic = "", clientPublic = ""

    override func setUp() {
        harness = CryptoHarness()
        hubPublic = harness.keyPair("hub.key")
        clientPublic = harness.keyPair("client.key")
    }

    override func tearDown() {
        harness.cleanUp()
    }

    func hubSettings(_ extra: String = "") -> String {
        "private-key-file: hub.key, peer-public-key: \"\(clientPublic)\"" + extra
    }

    func clientSettings(_ extra: String = "") -> String {
        "private-key-file: client.key, peer-public-key: \"\(hubPublic)\"" + extra
    }

    /// A hub (no remote) and a client that dials it, both up.
    func connectedPair(hub hubExtra: String = "", client clientExtra: String = "", via relay: Relay? = nil) throws -> (Tunnel, Tunnel) {
        let hub = try harness.tunnel(crypto: hubSettings(hubExtra))
        relay?.hub = hub.links[0].localAddress
        let client = try harness.tunnel(crypto: clientSettings(clientExtra), remote: relay?.socket.address ?? hub.links[0].localAddress)
        XCTAssertTrue(harness.pump(also: { relay?.step() }, until: { hub.isUp && client.isUp }), "keys within 5 s")
        return (hub, client)
    }

    static func payloads(_ count: Int, from start: Int = 0, size: Int = 100) -> [[UInt8]] {
        (start..<(start + count)).map { n in [0x45] + withUnsafeBytes(of: UInt32(n).bigEndian) { Array($0) } + [UInt8](repeating: UInt8(n & 0xff), count: size - 5) }
    }

    func testHandshakeThenRecordsBothWays() throws {
        let (hub, client) = try connectedPair()
        harness.send(client, Self.payloads(20))
        harness.send(hub, Self.payloads(7, from: 100))
        harness.pump(until: { hub.sink.packets.count == 20 && client.sink.packets.count == 7 })
        XCTAssertEqual(hub.sink.packets, Self.payloads(20))
        XCTAssertEqual(client.sink.packets, Self.payloads(7, from: 100))
        XCTAssertEqual(hub.sink.authenticated, Array(repeating: true, count: 20),
                       "an opened record is vouched for: the device writer skips its checksum check")
        XCTAssertEqual(hub.allDrops, [:])
        XCTAssertEqual(client.allDrops, [:])
        XCTAssertEqual(client.cryptoPeer.current?.sendKey.cipher, AEADCipher.preferred)
        // The hub learnt where the client is only from the authenticated handshake.
        XCTAssertEqual(hub.links[0].remote, client.links[0].localAddress)
    }

    func testARecordIsRoutedByItsIndexUntilTheIndexIsReleased() throws {
        let (hub, _) = try connectedPair()
        let index = try XCTUnwrap(hub.cryptoPeer.current?.localIndex)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { memory.deallocate() }
        func record(_ index: UInt32) -> Packet {
            var packet = Packet(base: memory, capacity: 64, offset: 0)
            packet.length = DataRecord.overhead + 1
            memory.storeBytes(of: (UInt32(DataRecord.type) | index << 8).littleEndian, as: UInt32.self)
            return packet
        }
        let router = try XCTUnwrap(hub.dataRouter(for: record(index)))
        XCTAssertTrue(router(record(index)) === hub.session)
        XCTAssertTrue(router(record(index)) === hub.session, "again, from the one-entry cache")
        XCTAssertNil(router(record(index == 1 ? 2 : index - 1)), "an index nobody holds")
        hub.cryptoPeer.clear()  // releases the session's indices, as a removed session does
        XCTAssertNil(router(record(index)), "a released index must not route from the cache")
    }

    func testRekeyByMessageCountLosesNothing() throws {
        let (hub, client) = try connectedPair(client: ", rekey-after-messages: 1000")
        var sent = 0
        for round in 0..<60 {
            harness.send(client, Self.payloads(100, from: round * 100))
            harness.send(hub, Self.payloads(10, from: round * 10))
            sent += 100
            harness.pump(seconds: 0.02)
        }
        harness.pump(until: { hub.sink.packets.count == sent && client.sink.packets.count == 600 })
        XCTAssertEqual(hub.sink.packets.count, sent, "every packet arrives across the rekeys")
        XCTAssertEqual(client.sink.packets.count, 600)
        XCTAssertEqual(hub.allDrops, [:])
        XCTAssertEqual(client.allDrops, [:])
        XCTAssertGreaterThanOrEqual(client.cryptoPeer.handshakesCompleted, 5, "one rekey per 1000 packets")
    }

    func testRekeyByTimeOverlapsKeys() throws {
        let (hub, client) = try connectedPair(client: ", rekey-after: 1s")
        let first = client.cryptoPeer.current!
        var round = 0
        harness.pump(seconds: 2.6, also: {
            self.harness.send(client, Self.payloads(5, from: round * 5))
            round += 1
        })
        harness.pump(seconds: 1, until: { hub.sink.packets.count == round * 5 })
        XCTAssertEqual(hub.sink.packets.count, round * 5)
        XCTAssertGreaterThanOrEqual(client.cryptoPeer.handshakesCompleted, 3)
        XCTAssertFalse(client.cryptoPeer.current === first)
        XCTAssertNotNil(hub.cryptoPeer.previous, "the old keys stay to open packets in flight")
        XCTAssertEqual(hub.allDrops, [:])
    }

    func testUnknownInitiatorIsCountedAndGetsNoKeys() throws {
        harness.keyPair("stranger.key")
        let hub = try harness.tunnel(crypto: hubSettings())
        let client = try harness.tunnel(crypto: "private-key-file: stranger.key, peer-public-key: \"\(hubPublic)\", handshake-retry: 200ms",
                                        remote: hub.links[0].localAddress)
        harness.pump(seconds: 1)
        XCTAssertGreaterThanOrEqual(hub.drops("handshake_unknown_peer"), 3)
        XCTAssertEqual(hub.session.state, .handshaking)
        XCTAssertEqual(client.session.state, .handshaking)
        XCTAssertNil(hub.links[0].remote, "an unauthenticated peer moves nothing")
        harness.send(client, Self.payloads(3))
        XCTAssertEqual(client.drops("no_key"), 0, "kept for when keys exist")
        XCTAssertEqual(client.allDrops, [:])
    }

    // MARK: the staged queue

    func testPacketsSentBeforeTheHandshakeArriveAfterItInOrder() throws {
        let hub = try harness.tunnel(crypto: hubSettings())
        let client = try harness.tunnel(crypto: clientSettings(), remote: hub.links[0].localAddress)
        XCTAssertFalse(client.isUp)
        // Both ends have packets before any handshake: the client (which dials) and
        // the hub (which learns where the client is only from the handshake).
        harness.send(client, Self.payloads(20))
        harness.send(hub, Self.payloads(7, from: 100))
        harness.send(client, Self.payloads(10, from: 20))
        XCTAssertEqual(client.cryptoPeer.stage?.stagedCount, 30)
        XCTAssertTrue(harness.pump(until: { hub.sink.packets.count == 30 && client.sink.packets.count == 7 }))
        XCTAssertEqual(hub.sink.packets, Self.payloads(30), "every packet, in the order sent")
        XCTAssertEqual(client.sink.packets, Self.payloads(7, from: 100))
        // Sent after the keys: behind the staged ones.
        harness.send(client, Self.payloads(5, from: 30))
        harness.pump(until: { hub.sink.packets.count == 35 })
        XCTAssertEqual(hub.sink.packets, Self.payloads(35))
        XCTAssertEqual(hub.allDrops, [:])
        XCTAssertEqual(client.allDrops, [:])
        XCTAssertEqual(client.cryptoPeer.stage?.stagedMemory, false, "the queue gave its memory back")
    }

    func testAFullStagedQueueDropsTheOldestAndCountsThem() throws {
        let hub = try harness.tunnel(crypto: hubSettings())
        let client = try harness.tunnel(crypto: clientSettings(), remote: hub.links[0].localAddress)
        harness.send(client, Self.payloads(100))
        harness.send(client, Self.payloads(100, from: 100))
        XCTAssertEqual(client.cryptoPeer.stage?.stagedCount, 128, "128 packets by default")
        XCTAssertEqual(client.drops("staged_overflow"), 72)
        XCTAssertTrue(harness.pump(until: { hub.sink.packets.count == 128 }))
        harness.pump(seconds: 0.2)
        XCTAssertEqual(hub.sink.packets, Self.payloads(128, from: 72), "the newest 128, in order")
        XCTAssertEqual(client.allDrops, ["staged_overflow": 72])
        XCTAssertEqual(hub.allDrops, [:])
    }

    func testStagedPacketsExpireWhenNoHandshakeCompletes() throws {
        let silent = TestSocket()  // nobody answers the initiations
        let client = try harness.tunnel(crypto: clientSettings(", staged-packets: 8, staged-timeout: 300ms"), remote: silent.address)
        harness.send(client, Self.payloads(10))
        XCTAssertEqual(client.drops("staged_overflow"), 2)
        XCTAssertEqual(client.cryptoPeer.stage?.stagedCount, 8)
        harness.pump(seconds: 0.6)
        XCTAssertEqual(client.drops("staged_timeout"), 8, "waited too long")
        harness.send(client, Self.payloads(3, from: 10))
        harness.pump(seconds: 0.1)
        XCTAssertEqual(client.drops("staged_timeout"), 8, "the new ones still wait")
        XCTAssertEqual(client.cryptoPeer.stage?.stagedCount, 3)
        harness.pump(seconds: 0.6)
        XCTAssertEqual(client.allDrops, ["staged_overflow": 2, "staged_timeout": 11])
        XCTAssertEqual(client.cryptoPeer.stage?.stagedMemory, false, "an empty queue holds no memory")
    }

    func testWithoutAStagedQueuePacketsBeforeKeysAreNoKeyDrops() throws {
        let silent = TestSocket()
        let client = try harness.tunnel(crypto: clientSettings(", staged-packets: 0"), remote: silent.address)
        harness.send(client, Self.payloads(3))
        XCTAssertEqual(client.allDrops, ["no_key": 3])
    }

    // MARK: copies by another path

    /// What bonding's redundant mode does below the crypto stage: the same sealed
    /// record sent by two paths. The hub takes the first and counts the second as a
    /// duplicate; what is not a single copy by a known path stays a replay.
    func testACopyByAnotherPathIsADuplicateNotAReplay() throws {
        let relay = Relay()
        let (hub, client) = try connectedPair(via: relay)
        let otherPath = TestSocket(), stranger = TestSocket()
        let hubAddress = try XCTUnwrap(relay.hub)
        var record = 0
        relay.tamper = { datagram, toHub in
            guard toHub, datagram[0] == DataRecord.type, datagram.count > 40 else { return [datagram] }
            defer { record += 1 }
            otherPath.send(datagram, to: hubAddress)
            switch record {
            case 0: return []  // the other path's first record: now it is one of the session's paths
            case 5:
                stranger.send(datagram, to: hubAddress)  // a copy from a path that never authenticated
                return [datagram]
            case 7: return [datagram, datagram]  // a third arrival
            default: return [datagram]
            }
        }
        harness.send(client, Self.payloads(10))
        harness.pump(also: { relay.step() }, until: { hub.sink.packets.count == 10 })
        harness.pump(seconds: 0.2, also: { relay.step() })
        XCTAssertEqual(hub.sink.packets, Self.payloads(10), "each packet once")
        XCTAssertEqual(hub.allDrops, ["duplicate": 9, "replayed": 2])
    }

    func testWrongResponderKeyFailsTheCheapMacCheck() throws {
        let hub = try harness.tunnel(crypto: hubSettings())
        let wrongHub = KeyText.encode(X25519KeyPair().publicKey)
        _ = try harness.tunnel(crypto: "private-key-file: client.key, peer-public-key: \"\(wrongHub)\", handshake-retry: 200ms",
                               remote: hub.links[0].localAddress)
        harness.pump(seconds: 1)
        XCTAssertGreaterThanOrEqual(hub.drops("handshake_bad_mac"), 3)
        XCTAssertEqual(hub.allDrops.keys.sorted(), ["handshake_bad_mac"])
        XCTAssertEqual(hub.session.state, .handshaking)
    }

    func testForgedReplayedTruncatedAndMisaddressedRecordsAreCounted() throws {
        let relay = Relay()
        let (hub, client) = try connectedPair(via: relay)
        // Tamper with the next data records toward the hub: one each way of going wrong.
        var plan = ["replay", "bitflip", "truncate", "index", "pass"]
        relay.tamper = { datagram, toHub in
            guard toHub, datagram[0] == DataRecord.type, datagram.count > 40, !plan.isEmpty else { return [datagram] }
            var copy = datagram
            switch plan.removeFirst() {
            case "replay": return [datagram, datagram, datagram]
            case "bitflip": copy[copy.count - 20] ^= 0x01; return [copy, datagram]
            case "truncate": return [Array(datagram[0..<(DataRecord.overhead - 1)]), datagram]
            case "index": copy[2] ^= 0x80; return [copy, datagram]  // the 24-bit receiver index
            default: return [datagram]
            }
        }
        harness.send(client, Self.payloads(5))
        harness.pump(also: { relay.step() }, until: { hub.sink.packets.count == 5 })
        harness.pump(seconds: 0.2, also: { relay.step() })
        XCTAssertEqual(hub.sink.packets, Self.payloads(5), "the genuine packets all arrive, once each")
        XCTAssertEqual(hub.allDrops, ["replayed": 2, "forged": 1, "truncated": 1, "unknown_key": 1])
        XCTAssertEqual(client.allDrops, [:])
    }

    func testReplayedInitiationIsRefused() throws {
        let relay = Relay()
        var initiation: [UInt8]?
        relay.tamper = { datagram, toHub in
            if toHub && datagram[0] == HandshakeLayout.initiationType && initiation == nil { initiation = datagram }
            return [datagram]
        }
        let (hub, _) = try connectedPair(via: relay)
        // Past the window in which a copy counts as another path's (`handshake_duplicate`).
        harness.pump(seconds: CryptoEndpoint.copyWindow)
        let attacker = TestSocket()
        attacker.send(try XCTUnwrap(initiation), to: relay.hub!)
        harness.pump(seconds: 0.3)
        XCTAssertEqual(hub.drops("handshake_replayed"), 1)
        XCTAssertEqual(hub.drops("handshake_duplicate"), 0)
        XCTAssertNil(hub.cryptoPeer.next, "no state for a replay")
    }

    /// A bonding site sends its initiation on every path: the copies after the first
    /// are duplicates (no second session, no Diffie-Hellman), not replays.
    func testCopiesOfTheInitiationByOtherPathsAreDuplicates() throws {
        let relay = Relay()
        relay.tamper = { datagram, toHub in
            toHub && datagram[0] == HandshakeLayout.initiationType ? [datagram, datagram, datagram] : [datagram]
        }
        let (hub, _) = try connectedPair(via: relay)
        harness.pump(seconds: 0.3)
        XCTAssertEqual(hub.drops("handshake_duplicate"), 2)
        XCTAssertEqual(hub.drops("handshake_replayed"), 0)
    }

    /// Handshake messages of the wrong size, with a valid mac1 but garbage inside, or
    /// answering nothing this end asked: each counted under its reason, no state made.
    func testMalformedAndUnexpectedHandshakeMessagesAreCounted() throws {
        let hub = try harness.tunnel(crypto: hubSettings())
        let hubKey = try XCTUnwrap(KeyText.decode(hubPublic))
        let target = hub.links[0].localAddress
        let sender = TestSocket()
        // The right type bytes, the wrong lengths.
        for type in [HandshakeLayout.initiationType, HandshakeLayout.responseType, HandshakeLayout.cookieType] {
            sender.send([type, 0, 0, 0, 1, 0, 0, 0], to: target)
        }
        // An initiation with a valid mac1 around bytes that are no Noise message.
        var initiation = HandshakeLayout.header(type: HandshakeLayout.initiationType, index: 7)
            + [UInt8](repeating: 0x5A, count: HandshakeLayout.initiationNoise)
        initiation += HandshakeLayout.mac(initiation, upTo: initiation.count, key: HandshakeLayout.mac1Key(hubKey))
        sender.send(initiation + [UInt8](repeating: 0, count: HandshakeLayout.macBytes), to: target)
        // A response (valid mac1) and a cookie reply to initiations the hub never sent.
        var response = HandshakeLayout.header(type: HandshakeLayout.responseType, index: 9) + [0x21, 0x43, 0x65, 0]
            + [UInt8](repeating: 0, count: HandshakeLayout.responseNoise)
        response += HandshakeLayout.mac(response, upTo: response.count, key: HandshakeLayout.mac1Key(hubKey))
        sender.send(response + [UInt8](repeating: 0, count: HandshakeLayout.macBytes), to: target)
        sender.send(HandshakeLayout.header(type: HandshakeLayout.cookieType, index: 0x654321)
                    + [UInt8](repeating: 0, count: HandshakeLayout.cookieBytes - 8), to: target)
        harness.pump(seconds: 0.3)
        XCTAssertEqual(hub.allDrops, ["handshake_malformed": 3, "handshake_failed": 1, "handshake_unexpected": 2])
        XCTAssertNil(hub.cryptoPeer.next)
        XCTAssertNil(hub.links[0].remote, "nothing unauthenticated moves the peer")
    }

    /// Initiations with a valid mac1 from a key nobody knows, as a flood would send.
    func strangerInitiation(to hubPublicKey: [UInt8]) throws -> [UInt8] {
        let noise = NoiseIKpsk2(initiator: X25519KeyPair(), responderStatic: hubPublicKey, psk: [UInt8](repeating: 0, count: 32),
                                prologue: HandshakeLayout.prologue)
        let message = try noise.writeInitiation(payload: HandshakeLayout.timestamp() + [3])
        return HandshakeLayout.initiation(senderIndex: 7, noiseMessage: message, responderPublicKey: hubPublicKey, cookie: nil).message
    }

    func testInitiationsArePerSourceRateLimited() throws {
        let hub = try harness.tunnel(crypto: hubSettings(", handshake-load: 1000"))
        let hubKey = try XCTUnwrap(KeyText.decode(hubPublic))
        let flood = TestSocket()
        for _ in 0..<10 { flood.send(try strangerInitiation(to: hubKey), to: hub.links[0].localAddress) }
        harness.pump(seconds: 0.3)
        XCTAssertEqual(hub.drops("handshake_unknown_peer"), 5, "a burst of 5 gets the expensive treatment")
        XCTAssertEqual(hub.drops("handshake_rate_limited"), 5)
    }

    func testUnderLoadTheResponderDemandsCookiesAndRealClientsGetThrough() throws {
        let hub = try harness.tunnel(crypto: hubSettings(", handshake-load: 2"))
        let hubKey = try XCTUnwrap(KeyText.decode(hubPublic))
        let flood = TestSocket()
        for _ in 0..<4 { flood.send(try strangerInitiation(to: hubKey), to: hub.links[0].localAddress) }
        harness.pump(seconds: 0.1)
        XCTAssertEqual(hub.drops("handshake_unknown_peer"), 2)
        XCTAssertEqual(hub.drops("handshake_cookie_required"), 2)
        var replies = 0
        while let (reply, _) = flood.receive() {
            XCTAssertEqual(reply.count, HandshakeLayout.cookieBytes)
            replies += 1
        }
        XCTAssertEqual(replies, 2, "a cookie reply per initiation turned away")
        // Still under load: a real client must first fetch a cookie, then it gets in.
        let client = try harness.tunnel(crypto: clientSettings(", handshake-retry: 100ms"), remote: hub.links[0].localAddress)
        XCTAssertTrue(harness.pump(until: { hub.isUp && client.isUp }))
        XCTAssertGreaterThanOrEqual(hub.drops("handshake_cookie_required"), 3)
    }

    func testPassphraseMode() throws {
        harness.write("pass", "correct horse battery staple\n")
        let hub = try harness.tunnel(crypto: "passphrase-file: pass, passphrase-context: test-site")
        let client = try harness.tunnel(crypto: "passphrase-file: pass, passphrase-context: test-site", remote: hub.links[0].localAddress)
        XCTAssertTrue(harness.pump(until: { hub.isUp && client.isUp }))
        harness.send(client, Self.payloads(3))
        XCTAssertTrue(harness.pump(until: { hub.sink.packets.count == 3 }))
    }

    func testDifferentPassphraseContextsDoNotConnect() throws {
        harness.write("pass", "correct horse battery staple")
        let hub = try harness.tunnel(crypto: "passphrase-file: pass, passphrase-context: site-a")
        _ = try harness.tunnel(crypto: "passphrase-file: pass, passphrase-context: site-b, handshake-retry: 200ms",
                               remote: hub.links[0].localAddress)
        harness.pump(seconds: 0.8)
        XCTAssertGreaterThanOrEqual(hub.drops("handshake_bad_mac"), 2)
        XCTAssertEqual(hub.session.state, .handshaking)
    }

    func testCipherIsAgreedInTheHandshake() throws {
        let (_, client) = try connectedPair(client: ", cipher: chacha20poly1305")
        XCTAssertEqual(client.cryptoPeer.current?.sendKey.cipher, .chacha20poly1305)
        guard AEADCipher.aesAvailable else { return }
        harness.cleanUp()
        harness = CryptoHarness()
        hubPublic = harness.keyPair("hub.key")
        clientPublic = harness.keyPair("client.key")
        let hub = try harness.tunnel(crypto: hubSettings(", cipher: aes256gcm"))
        _ = try harness.tunnel(crypto: clientSettings(", cipher: chacha20poly1305, handshake-retry: 200ms"), remote: hub.links[0].localAddress)
        harness.pump(seconds: 0.5)
        XCTAssertGreaterThanOrEqual(hub.drops("handshake_cipher_mismatch"), 2)
    }
}

/// A UDP relay the test drives: the client dials the relay, the relay forwards to the
/// hub and back, and `tamper` may rewrite, duplicate or drop each datagram.
final class Relay {
    let socket = TestSocket()
    var hub: SocketAddress?
    private var client: SocketAddress?
    var tamper: ([UInt8], Bool) -> [[UInt8]] = { datagram, _ in [datagram] }

    func step() {
        while let (datagram, source) = socket.receive() {
            let toHub = source != hub
            if toHub { client = source }
            guard let destination = toHub ? hub : client else { continue }
            for out in tamper(datagram, toHub) { socket.send(out, to: destination) }
        }
    }
}
