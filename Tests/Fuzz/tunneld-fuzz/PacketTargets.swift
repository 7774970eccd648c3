#if FUZZING
@testable import Bonding
@testable import Framework
import Glibc

/// What the device hands us (IP packets, TCP super-packets with a virtio header) and what
/// bonding peers send (probes and echoes).
enum PacketTargets {
    static let all = [
        FuzzTarget(name: "ip-header", summary: "IPv4/IPv6 header checks on any bytes from the device", run: ipHeader),
        FuzzTarget(name: "tcp-segmenter", summary: "the TSO splitter: a 10-byte virtio header, then the packet", run: segment),
        FuzzTarget(name: "tcp-coalescer", summary: "the GRO coalescer over packets [u16 length, bytes]… (mode byte 1: fix checksums first)", run: coalesce),
        FuzzTarget(name: "bonding-wire", summary: "bonding probes, echoes and data headers (mode byte: 0 probe, 1 echo, 2 data)", run: bondingWire),
    ]

    /// One slot per batch, so a write past a slot is a write past the allocation, which the
    /// address sanitizer sees.
    static let singleSlot = PacketBatch(capacity: 1, slotSize: 2048, headroom: 64, tailroom: 32)
    static let coalescerBatch = PacketBatch(capacity: 64, slotSize: 2048, headroom: 64, tailroom: 32)
    static let flowTable = TCPFlowTable(capacity: 64)
    static let superPacket = UnsafeMutableRawPointer.allocate(byteCount: VirtioNetHeader.size + TCPCoalescer.maxLength, alignment: 16)
    static let superHead = UnsafeMutableRawPointer.allocate(byteCount: TCPCoalescer.headRoom, alignment: 16)
    static let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: 64 + 1)
    static let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 17, alignment: 16)

    /// The input as one live packet of `singleSlot`, or nil when it does not fit.
    static func packet(_ bytes: UnsafeRawBufferPointer) -> Packet? {
        singleSlot.reset()
        guard bytes.count <= 2048 - 64 - 32, let slot = singleSlot.nextFree else { return nil }
        if !bytes.isEmpty { (slot.pointee.base + slot.pointee.offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        singleSlot.commit(length: bytes.count)
        return singleSlot[0]
    }

    static func ipHeader(_ input: UnsafeRawBufferPointer) {
        guard let packet = packet(input) else { return }
        if case .ok(let length) = IPHeader.check(packet) {
            precondition(length <= packet.length, "a header declared more than there is, and passed")
            _ = IPHeader.dscp(packet)
        }
        if let (_, offset) = IPHeader.transport(packet) { precondition(offset <= packet.length) }
        _ = IPHeader.isTCPSyn(packet)
    }

    static func segment(_ input: UnsafeRawBufferPointer) {
        guard input.count >= VirtioNetHeader.size, input.count <= (1 << 17) else { return }
        let header = VirtioNetHeader(from: input.baseAddress!)
        let length = input.count - VirtioNetHeader.size
        if length > 0 { scratch.copyMemory(from: input.baseAddress! + VirtioNetHeader.size, byteCount: length) }
        singleSlot.reset()
        var produced = 0
        let flush: (PacketBatch) -> Void = { batch in
            for index in 0..<batch.count {
                precondition(batch[index].length <= 2048 - 64 - 32, "a segment longer than its slot")
            }
            produced += batch.count
            batch.reset()
        }
        let result = TCPSegmenter.split(scratch, length: length, header: header, into: singleSlot, flush: flush)
        produced += singleSlot.count
        if case .success(let counts) = result { precondition(counts.packets == produced, "segments counted \(counts.packets), produced \(produced)") }
    }

    static func coalesce(_ input: UnsafeRawBufferPointer) {
        let (mode, rest) = input.modeAndRest
        coalescerBatch.reset()
        var offset = 0
        while offset + 2 <= rest.count, let slot = coalescerBatch.nextFree {
            let length = min(Int(rest[offset]) << 8 | Int(rest[offset + 1]), rest.count - offset - 2, 2048 - 64 - 32)
            let bytes = slot.pointee.base + slot.pointee.offset
            if length > 0 { bytes.copyMemory(from: rest.baseAddress! + offset + 2, byteCount: length) }
            if mode & 1 != 0 { fixChecksums(bytes, length: length) }
            coalescerBatch.commit(length: length)
            offset += 2 + length
        }
        flowTable.plan(coalescerBatch)
        var written = 0
        for start in 0..<coalescerBatch.count {
            let count = flowTable.groupSize(at: start)
            precondition(count >= 0 && start + count <= coalescerBatch.count, "a group larger than what is left of the batch")
            written += count
            guard count > 1 else { continue }
            var last = start
            flowTable.forEachMember(of: start) { member in
                precondition(member == start || member > last, "a group's members out of batch order")
                last = member
            }
            let (used, bytes) = TCPCoalescer.gather(coalescerBatch, group: start, of: flowTable, head: superHead, vectors: vectors)
            precondition(used == count + 1 && bytes <= VirtioNetHeader.size + TCPCoalescer.maxLength, "a super-packet past its bounds")
            var joined = 0  // what writev would write
            for index in 0..<used {
                (superPacket + joined).copyMemory(from: vectors[index].iov_base!, byteCount: vectors[index].iov_len)
                joined += vectors[index].iov_len
            }
            precondition(joined == bytes, "gathered \(joined) bytes, reported \(bytes)")
            resplit(written: bytes, expected: count)
        }
        precondition(written == coalescerBatch.count, "\(written) packets written of \(coalescerBatch.count)")
    }

    /// A coalesced super-packet must split back into as many segments as went in.
    static func resplit(written: Int, expected: Int) {
        let header = VirtioNetHeader(from: superPacket)
        let length = written - VirtioNetHeader.size
        scratch.copyMemory(from: superPacket + VirtioNetHeader.size, byteCount: length)
        var produced = 0
        let result = TCPSegmenter.split(scratch, length: length, header: header, into: singleSlot.resetting(), flush: { batch in
            produced += batch.count
            batch.reset()
        })
        guard case .success(let counts) = result else { fatalError("a coalesced super-packet was refused by the segmenter: \(result)") }
        precondition(counts.packets == expected, "\(expected) segments coalesced, \(counts.packets) split back")
    }

    /// Valid IPv4 header and TCP checksums, when the bytes look like TCP over IPv4/IPv6
    /// (as the kernel hands them over), so the coalescer's other rules get exercised.
    static func fixChecksums(_ ip: UnsafeMutableRawPointer, length: Int) {
        guard length >= 40 else { return }
        let version = ip.load(as: UInt8.self) >> 4
        if version == 4 {
            let ipLength = Int(ip.load(as: UInt8.self) & 0x0f) * 4
            guard ipLength >= 20, ip.load(fromByteOffset: 9, as: UInt8.self) == 6, length >= ipLength + 20 else { return }
            TCPSegmenter.recomputeIPv4Checksum(ip, ipLength: ipLength)
            TCPSegmenter.finishTCPChecksum(ip, ipLength: ipLength, segmentLength: length, isIPv6: false)
        } else if version == 6 {
            guard ip.load(fromByteOffset: 6, as: UInt8.self) == 6, length >= 60 else { return }
            TCPSegmenter.finishTCPChecksum(ip, ipLength: 40, segmentLength: length, isIPv6: true)
        }
    }

    /// Parsed probes and echoes written back must parse to the same values.
    static func bondingWire(_ input: UnsafeRawBufferPointer) {
        let (mode, rest) = input.modeAndRest
        guard var packet = packet(rest) else { return }
        switch mode % 3 {
        case 0:
            guard case .success(let probe) = BondingWire.parseProbe(packet) else { return }
            packet.length = 0
            precondition(BondingWire.write(probe, into: &packet), "a parsed probe does not fit back")
            guard case .success(let again) = BondingWire.parseProbe(packet), again == probe else { fatalError("probe round trip: \(probe)") }
        case 1:
            guard case .success(let echo) = BondingWire.parseEcho(packet) else { return }
            packet.length = 0
            precondition(BondingWire.write(echo, into: &packet), "a parsed echo does not fit back")
            guard case .success(let again) = BondingWire.parseEcho(packet), again == echo else { fatalError("echo round trip: \(echo)") }
        default:
            if packet.length >= 4 { _ = BondingWire.sequence(of: packet) }
        }
    }
}

extension PacketBatch {
    /// This batch, emptied.
    func resetting() -> PacketBatch {
        reset()
        return self
    }
}
#endif
