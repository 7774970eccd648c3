import CSodium
import Crypto
import Framework
import Glibc
import Logging

/// The `crypto.aead` stage, sealing on one session and opening on the other, against
/// bare libsodium calls on the same batches, in the same run.
///
/// Two real tunnels (memory ends, UDP on 127.0.0.1) complete the real handshake;
/// then the bench calls the two sessions' stages directly, so only the record work is
/// timed, as it happens in the daemon.
enum CryptoBench {
    static let packetSize = 1400

    final class MemoryEnd: Stage {
        func send(_ batch: PacketBatch) {}
        func receive(_ batch: PacketBatch) { batch.consumeAll() }
    }

    static let plugin = Plugin(name: "bench", summary: "bench ends", stages: [
        StageDescriptor(name: "memory", summary: "memory ends", slots: [.ingress, .egress], make: { _ in MemoryEnd() }),
    ])

    /// Two tunnels with `cipher`, keys in a temporary folder, handshake done: the
    /// client's and the hub's crypto stages.
    static func stages(cipher: String) throws -> (seal: Stage, open: Stage, tunnels: [Tunnel]) {
        var template = Array("/tmp/tunneld-bench-XXXXXX".utf8CString)
        let directory = String(cString: mkdtemp(&template)!)
        defer { _ = system("rm -rf '\(directory)'") }
        func key(_ name: String) -> String {
            let secret = X25519KeyPair.generatePrivateKey()
            let fd = open(directory + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            _ = KeyText.encode(secret).withCString { write(fd, $0, strlen($0)) }
            close(fd)
            return KeyText.encode(X25519KeyPair(privateKey: secret).publicKey)
        }
        let hubPublic = key("hub.key"), clientPublic = key("client.key")
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(CryptoPlugin.plugin)
        registry.register(plugin)
        let stock = try StockProfiles.parse("""
            profiles:
              bench:
                summary: "bench"
                sessions: static
                pipeline: { ingress: memory, reorder: none, encrypt: crypto.aead, schedule: none, transport: udp, egress: memory }
            """, file: "bench.yaml", registry: registry)
        let loader = ProfileLoader(registry: registry, stock: stock)
        let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        func tunnel(_ keyFile: String, _ peer: String, remote: SocketAddress?) throws -> Tunnel {
            let site = """
                profile: bench
                links: [ { name: lo, bind: 127.0.0.1:0\(remote.map { ", remote: \($0)" } ?? "") } ]
                settings: { crypto.aead: { private-key-file: \(keyFile), peer-public-key: "\(peer)", cipher: \(cipher) } }
                """
            let made = try Tunnel(spec: try loader.load(siteText: site, file: directory + "/site.yaml"), logger: quiet)
            try made.start()
            return made
        }
        let hub = try tunnel("hub.key", clientPublic, remote: nil)
        let client = try tunnel("client.key", hubPublic, remote: hub.links[0].localAddress)
        let deadline = MonotonicClock.now() + 5
        while MonotonicClock.now() < deadline && !(hub.manager!.sessions[0].state == .up && client.manager!.sessions[0].state == .up) {
            hub.loop.poll(timeoutMilliseconds: 1)
            client.loop.poll(timeoutMilliseconds: 1)
        }
        guard hub.manager!.sessions[0].state == .up else { throw ConfigurationError("bench tunnels did not complete the handshake") }
        return (client.manager!.sessions[0].pipeline!.stages[1], hub.manager!.sessions[0].pipeline!.stages[1], [hub, client])
    }

    static func refill(_ batch: PacketBatch) {
        batch.reset()
        for _ in 0..<batch.capacity { batch.commit(length: packetSize) }
    }

    /// The same work with libsodium alone: seal then open every packet in place.
    final class Bare {
        let cipher: AEADCipher
        var key = [UInt8](repeating: 7, count: 32)
        let state = UnsafeMutableRawPointer.allocate(byteCount: crypto_aead_aes256gcm_statebytes(), alignment: 16)
        var nonce = [UInt8](repeating: 0, count: 12)
        var tag = [UInt8](repeating: 0, count: 16)
        var ok = true

        init(_ cipher: AEADCipher) {
            self.cipher = cipher
            if cipher == .aes256gcm {
                crypto_aead_aes256gcm_beforenm(state.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self), key)
            }
        }

        func run(_ batch: PacketBatch) {
            let aes = state.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self)
            for index in 0..<batch.count {
                let data = (batch[index].base + batch[index].offset).assumingMemoryBound(to: UInt8.self)
                let length = UInt64(batch[index].length)
                if cipher == .aes256gcm {
                    crypto_aead_aes256gcm_encrypt_detached_afternm(data, &tag, nil, data, length, nil, 0, nil, nonce, aes)
                    ok = ok && crypto_aead_aes256gcm_decrypt_detached_afternm(data, nil, data, length, tag, nil, 0, nonce, aes) == 0
                } else {
                    crypto_aead_chacha20poly1305_ietf_encrypt_detached(data, &tag, nil, data, length, nil, 0, nil, nonce, key)
                    ok = ok && crypto_aead_chacha20poly1305_ietf_decrypt_detached(data, nil, data, length, tag, nil, 0, nonce, key) == 0
                }
            }
        }
    }

    /// Stage and bare, interleaved in rounds (the machine is noisy); the best round of each.
    static func measureCipher(_ cipher: AEADCipher) throws -> (stage: Measurement, bare: Measurement) {
        let (seal, open, tunnels) = try stages(cipher: cipher.rawValue)
        defer { for tunnel in tunnels { tunnel.shutdown() } }
        let batch = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
        let bare = Bare(cipher)
        var opened = 0
        var best: (stage: Measurement?, bare: Measurement?) = (nil, nil)
        for _ in 0..<5 {
            let stage = measure("crypto.aead seal+open \(cipher.rawValue)", packetsPerRun: batchSize, iterations: 2000) {
                refill(batch)
                seal.send(batch)
                open.receive(batch)
                opened += batch.count
            }
            let plain = measure("bare libsodium seal+open \(cipher.rawValue)", packetsPerRun: batchSize, iterations: 2000) {
                refill(batch)
                bare.run(batch)
            }
            if best.stage == nil || stage.nanoseconds < best.stage!.nanoseconds { best.stage = stage }
            if best.bare == nil || plain.nanoseconds < best.bare!.nanoseconds { best.bare = plain }
        }
        guard opened == 5 * 2200 * batchSize, bare.ok else {
            throw ConfigurationError("crypto bench: \(opened) packets opened, expected \(5 * 2200 * batchSize); bare ok \(bare.ok)")
        }
        return (best.stage!, best.bare!)
    }
}
