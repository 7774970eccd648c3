import Bonding
import Framework
import Glibc
import Logging
import MallocInterposerSwift

/// `tunneld-bench fleet`: what a session costs as a tunnel grows to 10, 1 000 and
/// 10 000 sessions, on a real `Tunnel` (sessions made with `makeSession`, as the
/// bonding hub and the L2TP broker make theirs):
///  * heap per idle session (the session, its pipeline, counters and stages);
///  * inbound demux per packet: the session found by peer address in a hash table
///    (the broker's lookup) and the batch split by `SessionDispatcher`, each packet
///    from a random one of the N sessions — it must stay flat as N grows;
///  * per-session TAP device: creation time with the session, and removal of all
///    of them (batched by the device reaper).
/// Idle CPU with real keepalive timers is the broker's (`Benchmarks/fleet.sh`).
enum FleetBench {
    final class CountingEnd: Stage {
        var packets = 0
        func send(_ batch: PacketBatch) { batch.consumeAll() }
        func receive(_ batch: PacketBatch) {
            packets += batch.count
            batch.consumeAll()
        }
    }

    static let plugin = Plugin(name: "fleet", summary: "fleet bench ends", stages: [
        StageDescriptor(name: "fleet-end", summary: "counts what arrives", slots: [.ingress, .egress], make: { _ in CountingEnd() }),
    ])

    static func tunnel(_ pipeline: String, device: Bool) throws -> Tunnel {
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(plugin)
        let stock = try StockProfiles.parse("""
            profiles:
              fleet:
                summary: "fleet bench"
                sessions: static
                pipeline: { \(pipeline) }
            \(device ? "    device: per-session" : "")
            """, file: "fleet.yaml", registry: registry)
        let site = """
            profile: fleet
            links: [ { name: lo, bind: 127.0.0.1:0, remote: 127.0.0.1:9 } ]
            """
        let spec = try ProfileLoader(registry: registry, stock: stock).load(siteText: site, file: "/tmp/fleet-site.yaml")
        return try Tunnel(spec: spec, logger: Logger(label: "fleet", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A bonding hub's sessions each have a reorder buffer (4096 slots by default).
    static func reorderMemory() {
        let count = 100, slotSize = 1792
        for (label, held, trimmed) in [("idle, never reordered", 0, false), ("after reordering across all slots", 63, false),
                                       ("the same, 5 s idle later", 63, true)] {
            var buffers: [AnyObject] = []
            let heap = heapBytes { buffers = BondingBench.reorderBuffers(count, slotSize: slotSize, held: held, trimmed: trimmed) }
            print("bonding reorder buffer, \(label): \(String(format: "%.0f", Double(heap) / 1024 / Double(count))) KB of heap per session")
            withExtendedLifetime(buffers) {}
        }
        // The earlier design made every slot's record at creation and kept every slot it ever used.
        print("  (before: every buffer made whole at once, \((MemoryLayout<Packet>.stride + slotSize) * 4096 / 1024 + 52) KB of heap, its records touched at once and its slots once used never given back)")
    }

    /// Heap bytes `body` leaves allocated (the malloc interposer's count), whether or
    /// not the pages were resident before.
    static func heapBytes(_ body: () throws -> Void) rethrows -> Int {
        MallocInterposerSwift.reset()
        MallocInterposerSwift.hook()
        defer { MallocInterposerSwift.unhook() }
        try body()
        let statistics = MallocInterposerSwift.getStatistics()
        return statistics.mallocBytesCount - statistics.freeBytesCount
    }

    static func run(counts: [Int]) throws {
        defer { reorderMemory() }
        print("tunneld-bench fleet: sessions on one Tunnel, batch \(batchSize), release build expected")
        print("                         demux ns/packet")
        print("sessions  heap/session    1 per session  8 per session  mallocs/packet   TAP create/session   remove all")
        for count in counts {
            // Memory and demux: sessions without devices.
            let memoryTunnel = try tunnel("ingress: fleet-end, reorder: none, encrypt: none, schedule: none, transport: udp, egress: fleet-end", device: false)
            var byPeer: [SocketAddress: Session] = [:]
            byPeer.reserveCapacity(count)
            var peers: [SocketAddress] = []
            peers.reserveCapacity(count)
            let heap = try heapBytes {
                for index in 0..<count {
                    let address = SocketAddress(ipv4: in_addr(s_addr: UInt32(0x0A00_0000 | index).bigEndian), port: UInt16(truncatingIfNeeded: 1024 + index % 50_000))
                    let session = try memoryTunnel.makeSession(name: "s\(index)", peer: address)
                    byPeer[address] = session
                    peers.append(address)
                }
            }
            let perSession = Double(heap) / Double(count)

            let dispatcher = SessionDispatcher(batchSize: batchSize, headroom: 128, tailroom: 64)
            let batch = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
            // Peers drawn in advance: random sessions, each bringing a run of `burst`
            // packets (1: a different session for almost every packet; 8: eight per batch).
            var generator = SystemRandomNumberGenerator()
            let draws = (0..<4096).map { _ in peers[Int.random(in: 0..<count, using: &generator)] }
            func demux(burst: Int) -> Measurement {
                var cursor = 0
                return measure("demux \(count)", packetsPerRun: batchSize, iterations: 5000) {
                    fillIPv4TCP(batch, count: batchSize, length: 200)
                    for index in 0..<batchSize {
                        batch[index].peer = draws[cursor]
                        if index % burst == burst - 1 { cursor = (cursor + 1) & 4095 }
                    }
                    dispatcher.dispatch(batch, outbound: false, unowned: .unknownPeer) { byPeer[$0.peer] }
                }
            }
            let scattered = demux(burst: 1)
            let bursts = demux(burst: 8)
            for session in memoryTunnel.manager?.sessions ?? [] { memoryTunnel.endSession(session) }

            // Devices: a TAP per session, made and removed as a broker does.
            var create = "-", remove = "-"
            if count <= 10_000 {
                let deviceTunnel = try tunnel("ingress: tap, reorder: none, encrypt: none, schedule: none, transport: udp, egress: tap", device: true)
                var sessions: [Session] = []
                let start = now()
                for index in 0..<count {
                    sessions.append(try deviceTunnel.makeSession(name: "fb\(index)", peer: nil,
                                                                 device: Tunnel.SessionDevice(name: "tdfb\(index)", mtu: 1446, up: false)))
                }
                let made = now()
                for session in sessions { deviceTunnel.endSession(session) }
                deviceTunnel.shutdown()  // the reaper's batch, waited for
                let gone = now()
                create = String(format: "%.0f µs", Double(made - start) / 1000 / Double(count))
                remove = String(format: "%.2f s", Double(gone - made) / 1e9)
            }
            func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
            print(right(String(count), 8) + right(String(format: "%.1f KB", perSession / 1024), 14)
                  + right(String(format: "%.1f", Double(scattered.nanoseconds) / Double(scattered.packets)), 15)
                  + right(String(format: "%.1f", Double(bursts.nanoseconds) / Double(bursts.packets)), 15)
                  + right(String(format: "%.4f", Double(scattered.mallocs + bursts.mallocs) / Double(scattered.packets + bursts.packets)), 16)
                  + right(create, 21) + right(remove, 13))
        }
    }
}
