import Glibc
import Logging
import TestSupport
import XCTest
@testable import Crypto
@testable import Framework

/// Whatever the memory egress delivered, per tunnel.
final class MemorySink {
    var packets: [[UInt8]] = []
    /// Per packet: whether a stage vouched for its bytes (`Packet.authenticated`).
    var authenticated: [Bool] = []
}

/// Ingress/egress over memory, so whole tunnels (handshake, records, timers, real UDP
/// sockets on 127.0.0.1) run inside the test process without a TUN device.
final class MemoryEndStage: Stage {
    let sink: MemorySink
    init(sink: MemorySink) { self.sink = sink }
    func send(_ batch: PacketBatch) {}
    func receive(_ batch: PacketBatch) {
        for index in 0..<batch.count {
            sink.packets.append(bytes(of: batch[index]))
            sink.authenticated.append(batch[index].authenticated)
        }
        batch.consumeAll()
    }

    static let plugin = Plugin(name: "memory", summary: "test ends", stages: [
        StageDescriptor(name: "memory", summary: "memory ends", slots: [.ingress, .egress], make: { context in
            MemoryEndStage(sink: context.tunnel.shared(MemorySink.self) { MemorySink() })
        }),
    ])
}

/// Builds and drives tunnels of a `memory → crypto.aead → udp` profile from one thread.
final class CryptoHarness {
    let directory: String
    private(set) var tunnels: [Tunnel] = []
    static let stock = """
        profiles:
          memory:
            summary: "memory ends around crypto.aead"
            sessions: static
            pipeline: { ingress: memory, reorder: none, encrypt: crypto.aead, schedule: none, transport: udp, egress: memory }
        """

    init() {
        var template = Array("/tmp/tunneld-crypto-XXXXXX".utf8CString)
        directory = String(cString: mkdtemp(&template)!)
    }

    func cleanUp() {
        for tunnel in tunnels { tunnel.shutdown() }
        tunnels = []
        _ = system("rm -rf '\(directory)'")
    }

    /// Write a file in the harness folder with `mode`; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t = 0o600) -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        precondition(fd >= 0)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        fchmod(fd, mode)
        close(fd)
        return path
    }

    /// A fresh key pair: the private key written to `name`, the public key returned.
    @discardableResult
    func keyPair(_ name: String) -> String {
        let privateKey = X25519KeyPair.generatePrivateKey()
        write(name, KeyText.encode(privateKey))
        return KeyText.encode(X25519KeyPair(privateKey: privateKey).publicKey)
    }

    static func loader() throws -> ProfileLoader {
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(CryptoPlugin.plugin)
        registry.register(MemoryEndStage.plugin)
        let stock = try StockProfiles.parse(stock, file: "stock.yaml", registry: registry)
        return ProfileLoader(registry: registry, stock: stock)
    }

    /// Start a tunnel on 127.0.0.1 (a kernel-chosen port) with these crypto settings.
    func tunnel(crypto: String, remote: SocketAddress? = nil) throws -> Tunnel {
        let site = """
            profile: memory
            links:
              - { name: lo, bind: 127.0.0.1:0\(remote.map { ", remote: \($0)" } ?? "") }
            settings:
              crypto.aead: { \(crypto) }
            """
        let spec = try CryptoHarness.loader().load(siteText: site, file: directory + "/site.yaml")
        let tunnel = try Tunnel(spec: spec, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try tunnel.start()
        tunnels.append(tunnel)
        return tunnel
    }

    /// Serve every tunnel's events (and `also`) until `condition` holds or `seconds` pass.
    @discardableResult
    func pump(seconds: Double = 5, also: () -> Void = {}, until condition: () -> Bool = { false }) -> Bool {
        let deadline = MonotonicClock.now() + seconds
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            for tunnel in tunnels { tunnel.loop.poll(timeoutMilliseconds: 0) }
            also()
            usleep(200)
        }
        return condition()
    }

    /// Hand `payloads` to the tunnel as if read from its device.
    func send(_ tunnel: Tunnel, _ payloads: [[UInt8]]) {
        let batch = PacketBatch(capacity: max(payloads.count, 1), slotSize: tunnel.slotSize, headroom: tunnel.headroom,
                                tailroom: tunnel.tailroom)
        for payload in payloads {
            let record = batch.nextFree!
            payload.withUnsafeBytes { record.pointee.base.advanced(by: record.pointee.offset).copyMemory(from: $0.baseAddress!, byteCount: payload.count) }
            batch.commit(length: payload.count)
        }
        tunnel.manager!.outbound(batch)
    }
}

extension Tunnel {
    var sink: MemorySink { shared(MemorySink.self) { MemorySink() } }
    var session: Session { manager!.sessions[0] }
    var cryptoPeer: CryptoPeer { shared(CryptoEndpoint.self) { fatalError("no crypto endpoint") }.peer(of: session)! }
    var isUp: Bool { session.state == .up }
    /// A drop counter by name: the tunnel's (handshakes) plus the session's (records).
    func drops(_ name: String) -> UInt64 {
        let reason = dropReason(named: name)
        return counters.drops(reason) + session.counters.drops(reason)
    }
    /// Every non-zero drop counter, tunnel and session, by name.
    var allDrops: [String: UInt64] {
        var result: [String: UInt64] = [:]
        for (name, value) in counters.dropSummary(names: dropReasons.names) + session.counters.dropSummary(names: dropReasons.names) {
            result[name, default: 0] += value
        }
        return result
    }
}

/// The tests' own UDP socket on 127.0.0.1.
typealias TestSocket = LoopbackUDPSocket
