import Bonding
import Crypto
import ExampleStages
import Foundation
import Framework
import Glibc
import MallocInterposerSwift

// tunneld-bench: allocations and time per packet on the data path, in steady state.
//
//   LD_PRELOAD=.build/release/libMallocInterposerSwift.so .build/release/tunneld-bench
//
// Exits 1 if any measured loop allocates, or if the malloc interposer is not active
// (then the allocation figures would be meaningless).

let batchSize = 64
let iterations = 20_000

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct Measurement {
    let name: String
    let packets: Int
    let nanoseconds: UInt64
    let mallocs: Int

    var line: String {
        name.padding(toLength: 38, withPad: " ", startingAt: 0) + String(format: "%8.1f ns/packet %12.0f packets/s   mallocs/packet %.4f (%d in %d packets)",
               Double(nanoseconds) / Double(packets), Double(packets) * 1e9 / Double(nanoseconds),
               Double(mallocs) / Double(packets), mallocs, packets)
    }
}

/// Warm `body` up, then time it over `iterations` runs with malloc counting on.
func measure(_ name: String, packetsPerRun: Int, iterations: Int = iterations, _ body: () -> Void) -> Measurement {
    for _ in 0..<200 { body() }
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    let start = now()
    for _ in 0..<iterations { body() }
    let elapsed = now() - start
    MallocInterposerSwift.unhook()
    return Measurement(name: name, packets: packetsPerRun * iterations, nanoseconds: elapsed,
                       mallocs: MallocInterposerSwift.getStatistics().mallocCount)
}

MallocInterposerSwift.initialize()

// The interposer must be live, or a zero would prove nothing.
MallocInterposerSwift.reset()
MallocInterposerSwift.hook()
let probe = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
probe.deallocate()
MallocInterposerSwift.unhook()
guard MallocInterposerSwift.getStatistics().mallocCount > 0 else {
    print("tunneld-bench: the malloc interposer is not active; run with LD_PRELOAD=.build/release/libMallocInterposerSwift.so")
    exit(1)
}

if CommandLine.arguments.dropFirst().first == "fleet" {
    let counts = CommandLine.arguments.dropFirst(2).compactMap { Int($0) }
    do { try FleetBench.run(counts: counts.isEmpty ? [10, 1000, 10_000] : counts) } catch { print("fleet: \(error)"); exit(1) }
    exit(0)
}

var results: [Measurement] = []
let counters = TrafficCounters()

// 1. A pipeline of five stages (IP check, DSCP filter, header push, …, sink), both ways.
do {
    let sink = SinkStage()
    let egress = SinkStage()
    let filter = DSCPFilterStage(drop: [46], direction: "both", reason: DropReason(id: 20))
    let second = DSCPFilterStage(drop: [8, 10], direction: "send", reason: DropReason(id: 21))
    let pipeline = Pipeline(stages: [IPCheckStage(), filter, second, HeaderStage(), sink],
                            egress: egress, counters: counters)
    let batch = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
    fillIPv4TCP(batch, count: batchSize, payload: true)
    results.append(measure("pipeline send (5 stages)", packetsPerRun: batchSize) {
        fillIPv4TCP(batch, count: batchSize)
        pipeline.send(batch)
    })
    let receiving = Pipeline(stages: [IPCheckStage(), filter, HeaderStage()], egress: egress, counters: counters)
    results.append(measure("pipeline receive (3 stages + egress)", packetsPerRun: batchSize) {
        fillIPv4TCP(batch, count: batchSize)
        // Packets arrive with an encapsulation header in front of the IP packet.
        for index in 0..<batch.count { _ = batch[index].prepend(HeaderStage.size) }
        receiving.receive(batch)
    })
    if sink.bytes == 0 || egress.bytes == 0 { print("nothing reached the sinks"); exit(1) }
}

// 2. The TUN offload path: a 64 KB TSO super-packet split into segments, then joined
//    back into one GSO super-packet.
do {
    let mss = 1360
    let payload = mss * 46
    let superPacket = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 64)
    superPacket.initializeMemory(as: UInt8.self, repeating: 0x5a, count: 65536)
    superPacket.storeBytes(of: 0x45, as: UInt8.self)
    superPacket.storeBytes(of: UInt16(40 + payload).bigEndian, toByteOffset: 2, as: UInt16.self)
    superPacket.storeBytes(of: UInt16(0x4000).bigEndian, toByteOffset: 6, as: UInt16.self)  // DF, not a fragment
    superPacket.storeBytes(of: 64, toByteOffset: 8, as: UInt8.self)
    superPacket.storeBytes(of: 6, toByteOffset: 9, as: UInt8.self)
    superPacket.storeBytes(of: 0x50, toByteOffset: 32, as: UInt8.self)  // TCP data offset 5
    superPacket.storeBytes(of: 0x10, toByteOffset: 33, as: UInt8.self)  // ACK
    let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                 headerLength: 40, gsoSize: UInt16(mss), checksumStart: 20, checksumOffset: 16)
    let batch = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
    let head = UnsafeMutableRawPointer.allocate(byteCount: TCPCoalescer.headRoom, alignment: 64)
    let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: batchSize + 1)
    var segments = 0
    results.append(measure("TSO split 64 KB into 46 segments", packetsPerRun: 46, iterations: 5000) {
        batch.reset()
        if case .success(let n) = TCPSegmenter.split(superPacket, length: 40 + payload, header: header, into: batch, flush: { _ in }) {
            segments = n.packets
        }
    })
    var joined = 0
    let flows = TCPFlowTable(capacity: batchSize)
    results.append(measure("GRO join 46 segments into one (gather for writev)", packetsPerRun: 46, iterations: 5000) {
        flows.plan(batch)
        if flows.groupSize(at: 0) > 1 { joined = TCPCoalescer.gather(batch, group: 0, of: flows, head: head, vectors: vectors).bytes }
    })
    if segments != 46 || joined != VirtioNetHeader.size + 40 + payload {
        print("offload path produced \(segments) segments, \(joined) bytes; expected 46 and \(VirtioNetHeader.size + 40 + payload)")
        exit(1)
    }
}

// 3. Real system calls: a batch sent with sendmmsg/GSO over loopback and received with recvmmsg.
do {
    let loopback = SocketAddress.parse("127.0.0.1:0")!
    let sender = try UDPLink(name: "tx", index: 0, bind: loopback, remote: nil, device: nil, settings: Settings(), batchSize: batchSize)
    let receiver = try UDPLink(name: "rx", index: 0, bind: loopback, remote: nil, device: nil, settings: Settings(), batchSize: batchSize)
    let destination = receiver.localAddress
    let out = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
    let into = PacketBatch(capacity: batchSize, slotSize: 2048, headroom: 128, tailroom: 64)
    // The receive side demultiplexes as a tunnel does: IP first bytes are data, 0x01 control.
    let demux = Demux()
    try demux.claimData([0x40...0x4F, 0x60...0x6F], by: "bench")
    try demux.claimControl(0x01, by: "bench") { _, _ in }
    fillIPv4TCP(out, count: 32, payload: true)
    var lost = 0
    var delivered = 0
    results.append(measure("UDP loopback send+receive+demux", packetsPerRun: 32, iterations: 5000) {
        fillIPv4TCP(out, count: 32)
        for index in 0..<out.count { out[index].peer = destination }
        sender.send(out)
        var got = 0
        var spins = 0
        while got < 32 && spins < 1000 {
            into.reset()
            got += receiver.receive(into: into)
            demux.filter(into, link: receiver)
            delivered += into.count
            spins += 1
        }
        lost += 32 - got
    })
    if lost > 0 { print("note: \(lost) loopback datagrams not received (socket buffer full)") }
    if delivered == 0 { print("the demultiplexer kept no data datagram"); exit(1) }
}

// 4. The bonding stages' per-packet pieces: bulk classification, the scheduler's
//    choice, the reorder buffer with delay alignment (two paths 30 ms apart).
do {
    let bonding = try BondingBench(batch: batchSize)
    results.append(measure("bonding: bulk classification", packetsPerRun: batchSize) { bonding.runClassify() })
    results.append(measure("bonding: scheduler choice", packetsPerRun: batchSize) { bonding.runSchedule() })
    results.append(measure("bonding: reorder + alignment", packetsPerRun: batchSize, iterations: 5000) { bonding.runReorder() })
    if bonding.bulk == 0 || bonding.delivered == 0 { print("bonding bench: nothing classified bulk or delivered"); exit(1) }
}

// 5. The crypto stage against bare libsodium on the same batches (1400-byte packets).
var cryptoRatios: [String] = []
for cipher in AEADCipher.aesAvailable ? [AEADCipher.aes256gcm, .chacha20poly1305] : [.chacha20poly1305] {
    let (stage, bare) = try CryptoBench.measureCipher(cipher)
    results += [stage, bare]
    cryptoRatios.append(String(format: "crypto.aead %@: %.3f of bare libsodium speed", cipher.rawValue,
                               Double(bare.nanoseconds) / Double(stage.nanoseconds)))
}

print("tunneld-bench: batch \(batchSize), steady state after warm-up (release build expected)")
for result in results { print(result.line) }
for line in cryptoRatios { print(line) }
let allocating = results.filter { $0.mallocs > 0 }
if allocating.isEmpty {
    print("OK: zero heap allocations per packet on every measured path")
} else {
    print("FAIL: allocations on the data path: " + allocating.map(\.name).joined(separator: ", "))
    exit(1)
}
