#if FUZZING
@testable import Crypto
import Foundation
@testable import Framework
import Glibc
import Logging

/// What arrives on a tunnel's UDP port from anyone (handshake initiations, responses,
/// cookie replies, data records), and data records opened with a real key.
enum CryptoTargets {
    static let all = [
        FuzzTarget(name: "handshake", summary: "datagrams to a running crypto.aead tunnel on 127.0.0.1 (mode byte: 1 = fix mac1, 2 = aim at the pending handshake)",
                   prepare: { HandshakeRig.shared = HandshakeRig() },
                   run: { HandshakeRig.shared.deliver($0) }),
        FuzzTarget(name: "data-record", summary: "data records opened with a real key (mode byte: 1 = AES-GCM, 2 = seal the input, open, then tamper)",
                   run: openRecord),
    ]

    /// Fixed keys: the tunnel's and the one peer it accepts (whose side the fuzzer plays).
    static let tunnelKey = X25519KeyPair(privateKey: [UInt8](repeating: 0x11, count: 32))
    static let peerKey = X25519KeyPair(privateKey: [UInt8](repeating: 0x22, count: 32))

    static let recordKeys: [AEADCipher: AEADKey] = {
        var keys: [AEADCipher: AEADKey] = [:]
        let bytes = [UInt8](repeating: 0x33, count: AEADCipher.keyBytes)
        for cipher in AEADCipher.allCases where cipher != .aes256gcm || AEADCipher.aesAvailable {
            keys[cipher] = bytes.withUnsafeBytes { try! AEADKey(cipher: cipher, bytes: $0) }
        }
        return keys
    }()
    static let recordBatch = PacketBatch(capacity: 1, slotSize: 2048, headroom: 64, tailroom: 64)

    /// Mode 0/1: the input is a received record. Mode 2/3: the input is a packet; sealed and
    /// opened it must come back unchanged, and with one byte changed it must not open.
    static func openRecord(_ input: UnsafeRawBufferPointer) {
        let (mode, body) = input.modeAndRest
        let key = recordKeys[mode & 1 == 1 ? .aes256gcm : .chacha20poly1305] ?? recordKeys[.chacha20poly1305]!
        guard body.count <= 1500 else { return }
        recordBatch.reset()
        let slot = recordBatch.nextFree!
        if body.count > 0 { (slot.pointee.base + slot.pointee.offset).copyMemory(from: body.baseAddress!, byteCount: body.count) }
        recordBatch.commit(length: body.count)
        let window = ReplayWindow()
        if mode & 2 == 0 {
            guard case .success(let fields) = DataRecord.peek(recordBatch[0]) else { return }
            if DataRecord.open(&recordBatch[0], counter: fields.counter, key: key, window: window) == nil {
                precondition(recordBatch[0].length == body.count - DataRecord.overhead, "an opened record's length")
            }
            return
        }
        let counter = UInt64(body.count) << 20 | UInt64(body.first ?? 0)
        guard DataRecord.seal(&recordBatch[0], key: key, receiverIndex: 7, counter: counter) else { fatalError("no room to seal") }
        let sealed = Array(UnsafeRawBufferPointer(start: recordBatch[0].base + recordBatch[0].offset, count: recordBatch[0].length))
        guard case .success(let fields) = DataRecord.peek(recordBatch[0]), fields.index == 7 else { fatalError("peek of a sealed record") }
        precondition(DataRecord.open(&recordBatch[0], counter: fields.counter, key: key, window: window) == nil, "a sealed record did not open")
        precondition(recordBatch[0].length == body.count
                     && memcmp(recordBatch[0].base + recordBatch[0].offset, body.baseAddress ?? UnsafeRawPointer(sealed), body.count) == 0,
                     "a record opened to other bytes than were sealed")
        // Tamper with one byte (not the type), chosen by the input; it must be refused.
        var tampered = sealed
        let position = 1 + Int(sealed.reduce(0) { $0 &+ UInt32($1) } % UInt32(sealed.count - 1))
        tampered[position] ^= 0x01
        recordBatch.reset()
        let again = recordBatch.nextFree!
        tampered.withUnsafeBytes { (again.pointee.base + again.pointee.offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        recordBatch.commit(length: tampered.count)
        guard case .success(let changed) = DataRecord.peek(recordBatch[0]) else { return }
        precondition(DataRecord.open(&recordBatch[0], counter: changed.counter, key: key, window: ReplayWindow()) != nil,
                     "a tampered record opened")
    }
}

/// Ingress and egress that keep nothing, so a crypto tunnel runs without a device.
final class DiscardEndStage: Stage {
    func receive(_ batch: PacketBatch) { batch.consumeAll() }

    static let plugin = Plugin(name: "fuzz", summary: "ends for fuzzing", stages: [
        StageDescriptor(name: "discard", summary: "discards what arrives", slots: [.ingress, .egress], make: { _ in DiscardEndStage() }),
    ])
}

/// A crypto.aead tunnel on 127.0.0.1 that initiates toward the fuzzer's socket (so it has
/// a pending handshake whose index responses and cookie replies can name), with rate
/// limits opened wide so initiations reach the Noise code instead of the limiter.
final class HandshakeRig {
    nonisolated(unsafe) static var shared: HandshakeRig!
    let tunnel: Tunnel
    let socket: Int32
    let tunnelAddress: SocketAddress
    /// The sender index of the tunnel's latest initiation to us.
    var pendingIndex: UInt32 = 0
    let mac1Key = HandshakeLayout.mac1Key(CryptoTargets.tunnelKey.publicKey)
    var buffer = [UInt8](repeating: 0, count: 2048)

    init() {
        var template = Array("/tmp/tunneld-fuzz-XXXXXX".utf8CString)
        let directory = String(cString: mkdtemp(&template)!)
        let keyFile = directory + "/tunnel.key"
        FileManager.default.createFile(atPath: keyFile, contents: Data(KeyText.encode([UInt8](repeating: 0x11, count: 32)).utf8),
                                       attributes: [.posixPermissions: 0o600])
        let fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        socket = fd
        var local = SocketAddress.parse("127.0.0.1:0")!
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &local.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                precondition(bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0)
            }
        }
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(CryptoPlugin.plugin)
        registry.register(DiscardEndStage.plugin)
        let stock = try! StockProfiles.parse("""
            profiles:
              fuzz:
                summary: "discarding ends around crypto.aead"
                sessions: static
                pipeline: { ingress: discard, reorder: none, encrypt: crypto.aead, schedule: none, transport: udp, egress: discard }
            """, file: "stock.yaml", registry: registry)
        let site = """
            profile: fuzz
            links:
              - { name: lo, bind: 127.0.0.1:0, remote: \(local) }
            settings:
              crypto.aead: { private-key-file: \(keyFile), peer-public-key: \(KeyText.encode(CryptoTargets.peerKey.publicKey)),
                             handshakes-per-source: 10000, handshake-load: 100000, handshake-retry: 100ms }
            """
        let spec = try! ProfileLoader(registry: registry, stock: stock).load(siteText: site, file: directory + "/site.yaml")
        tunnel = try! Tunnel(spec: spec, logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
        try! tunnel.start()
        tunnelAddress = tunnel.links[0].localAddress
        // Wait for the tunnel's first initiation, so responses have an index to aim at.
        let deadline = MonotonicClock.now() + 5
        while pendingIndex == 0 && MonotonicClock.now() < deadline {
            tunnel.loop.poll(timeoutMilliseconds: 10)
            drain()
        }
        precondition(pendingIndex != 0, "the fuzzing tunnel sent no initiation")
    }

    /// Read what the tunnel sent us; remember the index of its newest initiation.
    func drain() {
        while true {
            let n = recv(socket, &buffer, buffer.count, 0)
            if n < 0 { return }
            if n == HandshakeLayout.initiationBytes && buffer[0] == HandshakeLayout.initiationType {
                pendingIndex = HandshakeLayout.index(buffer, at: 4)
            }
        }
    }

    func deliver(_ input: UnsafeRawBufferPointer) {
        let (mode, rest) = input.modeAndRest
        var message = Array(rest)
        guard message.count <= 1500 else { return }
        drain()
        if mode & 2 != 0, let type = message.first {
            let offset = type == HandshakeLayout.responseType ? 8 : type == HandshakeLayout.cookieType ? 4 : -1
            if offset > 0 && message.count >= offset + 4 {
                withUnsafeBytes(of: pendingIndex.littleEndian) { message.replaceSubrange(offset..<offset + 4, with: $0) }
            }
        }
        if mode & 1 != 0, let type = message.first {
            let (bytes, mac1) = type == HandshakeLayout.initiationType
                ? (HandshakeLayout.initiationBytes, HandshakeLayout.initiationMac1)
                : (HandshakeLayout.responseBytes, HandshakeLayout.responseMac1)
            if type <= HandshakeLayout.responseType && message.count == bytes {
                message.replaceSubrange(mac1..<mac1 + HandshakeLayout.macBytes, with: HandshakeLayout.mac(message, upTo: mac1, key: mac1Key))
            }
        }
        var destination = tunnelAddress.storage
        let sent = withUnsafeMutablePointer(to: &destination) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, message, message.count, 0, $0, tunnelAddress.length) }
        }
        precondition(sent == message.count, "loopback send failed: \(errno)")
        tunnel.loop.poll(timeoutMilliseconds: 0)
    }
}
#endif
