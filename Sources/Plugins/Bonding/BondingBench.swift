import Framework

/// The bonding stages' per-packet pieces on made-up traffic, for `tunneld-bench`
/// (which counts heap allocations and time per packet): classifying bulk packets,
/// choosing a path, and reordering with delay alignment. One `run…` call is one
/// batch of `batch` packets; state carries over between calls as it would in a
/// tunnel, so the steady state is what gets measured.
public final class BondingBench {
    let batch: Int
    private let packets: PacketBatch
    private let paths: [BondPath]
    private let buffer: ReorderBuffer
    private var flows = BulkFlows()
    private var probes: [Double]
    private var sequence: UInt32 = 0
    private var clock = 0.0
    public private(set) var bulk = 0

    /// `count` reorder buffers of the default 4096 slots, as idle hub sessions keep
    /// them, for `tunneld-bench fleet` to weigh; `held` packets first held in each
    /// (spread over its slots) and released, before or after the idle trim.
    public static func reorderBuffers(_ count: Int, slotSize: Int, held: Int, trimmed: Bool) -> [AnyObject] {
        let packets = PacketBatch(capacity: 1, slotSize: slotSize, headroom: 128, tailroom: 64)
        packets.commit(length: 1200)
        return (0..<count).map { _ in
            let buffer = ReorderBuffer(capacity: 4096, slotSize: slotSize, headroom: 128, tailroom: 64) { _ in }
            buffer.accept(packets[0], sequence: 0, path: nil, now: 0)
            for index in 0..<held {
                // Every 64th sequence: one packet held in each 64-slot chunk, then released.
                buffer.accept(packets[0], sequence: UInt32(2 + index * 64), path: nil, now: 0)
            }
            buffer.releaseDue(now: 10, holdTime: 0.1)
            buffer.finish()
            if trimmed { buffer.trimIfIdle(now: 10 + ReorderBuffer.idleTrim) }
            return buffer
        }
    }

    public init(batch: Int = 64) throws {
        self.batch = batch
        packets = PacketBatch(capacity: batch, slotSize: 2048, headroom: 128, tailroom: 64)
        for index in 0..<batch {
            // TCP/IPv4 from 16 flows: full-size data, every eighth a bare ACK.
            guard let record = packets.nextFree else { break }
            let length = index % 8 == 7 ? 52 : 1444
            let bytes = record.pointee.base + record.pointee.offset
            bytes.initializeMemory(as: UInt8.self, repeating: 0, count: length)
            bytes.storeBytes(of: 0x45, as: UInt8.self)
            bytes.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            bytes.storeBytes(of: 6, toByteOffset: 9, as: UInt8.self)
            bytes.storeBytes(of: UInt32(0x0A00_0001 + UInt32(index % 16)).bigEndian, toByteOffset: 12, as: UInt32.self)
            bytes.storeBytes(of: UInt32(0x0A00_0102).bigEndian, toByteOffset: 16, as: UInt32.self)
            bytes.storeBytes(of: UInt16(40000 + index % 16).bigEndian, toByteOffset: 20, as: UInt16.self)
            bytes.storeBytes(of: UInt16(443).bigEndian, toByteOffset: 22, as: UInt16.self)
            bytes.storeBytes(of: 0x10, toByteOffset: 33, as: UInt8.self)
            packets.commit(length: length)
        }
        let bind = SocketAddress.parse("127.0.0.1:0")!, remote = SocketAddress.parse("127.0.0.1:9")!
        var made: [BondPath] = []
        for (index, (mbit, oneWay)) in [(40.0, 0.010), (20.0, 0.040)].enumerated() {
            let link = try UDPLink(name: "bench\(index)", index: index, bind: bind, remote: nil, device: nil,
                                   settings: Settings(), batchSize: 1)
            let path = BondPath(name: "bench\(index)", link: link, remote: remote, fallbackOnly: false,
                                tolerances: PathHealth.Tolerances(timeout: 1e9), bandwidthHint: mbit * 125_000, now: 0)
            let id = path.health.probeSent(now: 0)
            _ = path.health.echoReceived(id: id, sentAt: 0, now: 2 * oneWay)
            path.outbound.sample(sentAt: 0, arrivedAt: oneWay, now: 2 * oneWay)
            path.inbound.sample(sentAt: 0, arrivedAt: oneWay, now: 2 * oneWay)
            made.append(path)
        }
        paths = made
        probes = [Double](repeating: 0, count: made.count)
        BondingSession.align(made, maximum: 0.3)
        let sink = Sink()
        buffer = ReorderBuffer(capacity: 4096, slotSize: 2048, headroom: 128, tailroom: 64) { batch in sink.packets += batch.count }
        self.sink = sink
    }

    /// What the reorder buffer handed on.
    private final class Sink { var packets = 0 }
    private let sink: Sink
    public var delivered: Int { sink.packets }

    /// Classify every packet of the batch as bulk or not (the reorder stage's send side).
    public func runClassify() {
        clock += 0.001
        for index in 0..<packets.count where flows.isBulk(packets[index], now: clock) { bulk += 1 }
    }

    /// Choose a path for every packet and advance its virtual queue (the scheduler).
    public func runSchedule() {
        clock += 0.001
        let baseline = SchedulerStage.baseline(paths)
        for index in 0..<packets.count {
            let chosen = SchedulerStage.earliest(paths, size: packets[index].length, now: clock, probes: probes, baseline: baseline,
                                                 bulk: index % 8 != 7, except: -1)
            let path = paths[chosen]
            path.freeAt = max(path.freeAt, clock) + Double(packets[index].length) / path.rate.estimate
        }
    }

    /// Receive one batch as it arrives over two paths 30 ms apart: the short path's
    /// packets of the next batch and the long path's of this one, the short path's
    /// aligned (held in the batch they came in, as a tunnel's link batches lend their
    /// slots), then release what is due; then the batch is read into again, and what
    /// is still held of it is copied out (`batchWillRefill`, without clearing the made-up
    /// packets).
    public func runReorder() {
        clock += 0.001
        packets.lendsSlots = true
        for index in 0..<packets.count {
            let long = index % 3 == 2
            let wait = long ? 0 : paths[0].alignWait
            buffer.accept(packets[index], sequence: sequence &+ UInt32(index) & 0xFF_FFFF, path: long ? 1 : 0, wait: wait, now: clock,
                          lender: packets)
        }
        sequence = (sequence &+ UInt32(packets.count)) & 0xFF_FFFF
        buffer.releaseDue(now: clock, holdTime: 0.1)
        buffer.finish()
        buffer.batchWillRefill(packets)
    }
}
