import Framework

/// Tells bulk packets from interactive ones on the send side, per flow.
///
/// A packet is bulk — sent by capacity and aligned to the longest link at the far
/// end — when it is large (over `bulkSize` bytes), a TCP SYN, or of a flow (addresses,
/// protocol, ports) that sent either within the last `memory`. The flow part matters:
/// a bulk TCP flow also sends small segments (iperf3 opens with a 37-byte cookie, an
/// HTTP client with its request, a write may end in a short segment), and if those
/// skipped the alignment their RTT would be the short link's. BBR keeps the least RTT
/// it saw for 10 s, so one such sample sets its window for the whole transfer, to
/// anything from 0.75 to 1.1 of the aligned path's (measured: the cookie's RTT was
/// 22-27 ms instead of 50, and BBR's goodput 0.74-0.98 of the links from run to run).
/// Small packets of other flows (ACKs of the other direction, DNS, VoIP, keystrokes)
/// keep the shortest link's delay.
///
/// The table is direct-mapped and fixed (`slots` entries); two flows sharing a slot
/// at worst make one look bulk for `memory`. No allocation per packet.
struct BulkFlows {
    static let bulkSize = 256
    static let slots = 4096
    static let memory = 1.0

    private var keys = [UInt32](repeating: 0, count: BulkFlows.slots)
    private var lastBulk = [Double](repeating: -.infinity, count: BulkFlows.slots)

    /// Whether `packet` (an IP packet) is bulk, remembering its flow if it is large.
    @inline(__always)
    mutating func isBulk(_ packet: Packet, now: Double) -> Bool { classify(packet, now: now).bulk }

    /// `isBulk`, and the flow's key (nil when it is not IP), hashed once for both: the
    /// send queue files a packet under it.
    @inline(__always)
    mutating func classify(_ packet: Packet, now: Double) -> (bulk: Bool, key: UInt32?) {
        let large = packet.length > BulkFlows.bulkSize
        guard let key = BulkFlows.flowKey(packet) else { return (large, nil) }
        let slot = Int(key % UInt32(BulkFlows.slots))
        if large || IPHeader.isTCPSyn(packet) {
            keys[slot] = key
            lastBulk[slot] = now
            return (true, key)
        }
        return (keys[slot] == key && now - lastBulk[slot] < BulkFlows.memory, key)
    }

    /// A hash of the packet's addresses, protocol and (TCP, UDP) ports; nil when it is
    /// not IP. FNV-1a over the bytes in place.
    @inline(__always)
    static func flowKey(_ packet: Packet) -> UInt32? {
        guard let (proto, transport) = IPHeader.transport(packet) else { return nil }
        let bytes = UnsafeRawPointer(packet.base + packet.offset)
        var hash: UInt32 = 2_166_136_261
        @inline(__always) func mix(_ from: Int, _ count: Int) {
            for index in from..<(from + count) {
                hash = (hash ^ UInt32(bytes.load(fromByteOffset: index, as: UInt8.self))) &* 16_777_619
            }
        }
        if packet.byte(at: 0) >> 4 == 4 { mix(12, 8) } else { mix(8, 32) }
        hash = (hash ^ UInt32(proto)) &* 16_777_619
        if (proto == 6 || proto == 17) && packet.length >= transport + 4 { mix(transport, 4) }
        return hash
    }
}
