import Glibc

/// Turns what a TUN with offloads hands us into ordinary packets: a TCP super-packet
/// (TSO, up to 64 KB) becomes MSS-sized segments with their own IP and TCP headers
/// and checksums; a packet with a partial checksum gets it completed. Segments are
/// written straight into batch slots; when the batch fills, `flush` runs it through
/// the pipeline and segmentation continues in the emptied batch.
public enum TCPSegmenter {
    static let tcpFIN: UInt8 = 0x01, tcpPSH: UInt8 = 0x08, tcpCWR: UInt8 = 0x80

    public struct Dropped: Error { public let reason: DropReason }

    /// Split or finish the packet at `data` (after its virtio header) into `batch`.
    /// Returns the packets and bytes produced, or why the packet was dropped.
    public static func split(_ data: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader,
                             into batch: PacketBatch, flush: (PacketBatch) -> Void) -> Result<(packets: Int, bytes: Int), Dropped> {
        var packets = 0, bytes = 0
        let gso = header.gsoType & ~VirtioNetHeader.gsoECN
        let failure: DropReason?
        if gso == VirtioNetHeader.gsoNone {
            failure = finishChecksum(data, length: length, header: header)
                ?? copy(data, length: length, into: batch, flush: flush)
            if failure == nil { (packets, bytes) = (1, length) }
        } else if gso == VirtioNetHeader.gsoTCPv4 || gso == VirtioNetHeader.gsoTCPv6 {
            failure = segmentTCP(data, length: length, mss: Int(header.gsoSize), isIPv6: gso == VirtioNetHeader.gsoTCPv6,
                                 into: batch, packets: &packets, bytes: &bytes, flush: flush)
        } else {
            failure = .malformed
        }
        if let failure { return .failure(Dropped(reason: failure)) }
        return .success((packets, bytes))
    }

    /// Complete a partial checksum (NEEDS_CSUM): the field holds the pseudo-header
    /// sum, so summing from csum_start to the end finishes it.
    static func finishChecksum(_ data: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader) -> DropReason? {
        guard header.flags & VirtioNetHeader.needsChecksum != 0 else { return nil }
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        guard field + 2 <= length, start < length else { return .malformed }
        var value = Checksum.finish(Checksum.add(data + start, length - start, to: 0))
        if value == 0 && field - start == 6 { value = 0xffff }  // UDP sends 0 as 0xffff
        Checksum.store(value, at: data + field)
        return nil
    }

    @inline(__always)
    static func nextRecord(_ batch: PacketBatch, flush: (PacketBatch) -> Void) -> UnsafeMutablePointer<Packet> {
        if let record = batch.nextFree { return record }
        flush(batch)
        batch.reset()
        return batch.nextFree!
    }

    static func copy(_ data: UnsafeRawPointer, length: Int, into batch: PacketBatch, flush: (PacketBatch) -> Void) -> DropReason? {
        let record = nextRecord(batch, flush: flush)
        guard length <= record.pointee.capacity - record.pointee.offset - batch.tailroom else { return .oversize }
        memcpy(record.pointee.base + record.pointee.offset, data, length)
        batch.commit(length: length)
        return nil
    }

    static func segmentTCP(_ data: UnsafeMutableRawPointer, length: Int, mss: Int, isIPv6: Bool, into batch: PacketBatch,
                           packets: inout Int, bytes: inout Int, flush: (PacketBatch) -> Void) -> DropReason? {
        let ipLength: Int
        if isIPv6 {
            guard length >= 60 else { return .truncated }
            guard data.load(fromByteOffset: 6, as: UInt8.self) == 6 else { return .malformed }
            ipLength = 40
        } else {
            guard length >= 40 else { return .truncated }
            ipLength = Int(data.load(as: UInt8.self) & 0x0f) * 4
            guard ipLength >= 20, data.load(fromByteOffset: 9, as: UInt8.self) == 6 else { return .malformed }
        }
        guard length >= ipLength + 20 else { return .truncated }
        let tcpLength = Int(data.load(fromByteOffset: ipLength + 12, as: UInt8.self) >> 4) * 4
        let headerLength = ipLength + tcpLength
        guard tcpLength >= 20, headerLength <= length, mss > 0 else { return .malformed }
        let payload = length - headerLength
        var offset = 0
        var index = 0
        repeat {  // at least once: a super-packet with nothing to split still gets its checksums
            let chunk = min(mss, payload - offset)
            let record = nextRecord(batch, flush: flush)
            guard headerLength + chunk <= record.pointee.capacity - record.pointee.offset - batch.tailroom else { return .oversize }
            fill(record.pointee.base + record.pointee.offset, from: data, headerLength: headerLength, ipLength: ipLength,
                 offset: offset, payloadLength: chunk, index: index, isLast: offset + chunk == payload, isIPv6: isIPv6)
            batch.commit(length: headerLength + chunk)
            packets += 1
            bytes += headerLength + chunk
            offset += chunk
            index += 1
        } while offset < payload
        return nil
    }

    /// Write segment `index`: the super-packet's headers with length, IPv4 ID, sequence
    /// number and flags adjusted, the payload from `offset`, and both checksums.
    @inline(__always)
    static func fill(_ out: UnsafeMutableRawPointer, from data: UnsafeRawPointer, headerLength: Int, ipLength: Int,
                     offset: Int, payloadLength: Int, index: Int, isLast: Bool, isIPv6: Bool) {
        memcpy(out, data, headerLength)
        let payloadSum = Checksum.copyAdd(from: data + headerLength + offset, to: out + headerLength, payloadLength, to: 0)
        let total = headerLength + payloadLength
        if isIPv6 {
            out.storeBytes(of: UInt16(total - 40).bigEndian, toByteOffset: 4, as: UInt16.self)
        } else {
            out.storeBytes(of: UInt16(total).bigEndian, toByteOffset: 2, as: UInt16.self)
            let id = UInt16(bigEndian: data.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
            out.storeBytes(of: (id &+ UInt16(truncatingIfNeeded: index)).bigEndian, toByteOffset: 4, as: UInt16.self)
        }
        let sequence = UInt32(bigEndian: data.loadUnaligned(fromByteOffset: ipLength + 4, as: UInt32.self))
        (out + ipLength).storeBytes(of: (sequence &+ UInt32(truncatingIfNeeded: offset)).bigEndian, toByteOffset: 4, as: UInt32.self)
        var flags = out.load(fromByteOffset: ipLength + 13, as: UInt8.self)
        if !isLast { flags &= ~(tcpFIN | tcpPSH) }
        if index > 0 { flags &= ~tcpCWR }
        out.storeBytes(of: flags, toByteOffset: ipLength + 13, as: UInt8.self)
        if !isIPv6 { recomputeIPv4Checksum(out, ipLength: ipLength) }
        finishTCPChecksum(out, ipLength: ipLength, segmentLength: total, isIPv6: isIPv6, summed: (headerLength, payloadSum))
    }

    @inline(__always)
    static func recomputeIPv4Checksum(_ ip: UnsafeMutableRawPointer, ipLength: Int) {
        ip.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        Checksum.store(Checksum.finish(Checksum.add(ip, ipLength, to: 0)), at: ip + 10)
    }

    /// Write the TCP checksum of the segment at `ip`. `summed`: the bytes from `from` on
    /// were summed already (as they were copied) to `sum`, so only those before are read.
    @inline(__always)
    static func finishTCPChecksum(_ ip: UnsafeMutableRawPointer, ipLength: Int, segmentLength: Int, isIPv6: Bool,
                                  summed: (from: Int, sum: UInt64)? = nil) {
        let tcp = ip + ipLength
        let tcpLength = segmentLength - ipLength
        let end = summed?.from ?? segmentLength
        tcp.storeBytes(of: 0, toByteOffset: 16, as: UInt16.self)
        var sum = Checksum.add(tcp, end - ipLength, to: Checksum.pseudoHeader(ip: ip, isIPv6: isIPv6, protocol: 6, length: tcpLength))
        if let summed {
            let (total, carry) = sum.addingReportingOverflow(summed.sum)
            sum = total &+ (carry ? 1 : 0)
        }
        Checksum.store(Checksum.finish(sum), at: tcp + 16)
    }
}
