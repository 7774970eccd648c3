import CLinux
import Glibc

/// The receive side of UDP GRO for one link: with `UDP_GRO` set, the kernel hands over a
/// run of equal-size datagrams from one source (a sender's GSO message, or datagrams
/// its GRO joined) as one read with the segment size in a control message, instead of
/// one socket-buffer walk per datagram. This splits each such read into one packet per
/// datagram, copied into the batch's slots, so every stage still sees one record per
/// packet (each datagram is still its own encrypted record).
///
/// Memory: `buffers` reads of up to 64 KB each, made once per link. A read may hold more
/// datagrams than the batch has room for: the rest waits here for the next call, so
/// nothing read is lost and the order is kept.
final class UDPCoalescedReceiver {
    static let bufferBytes = 65_536
    /// CMSG_SPACE(sizeof(int)): where the kernel puts the segment size.
    static let controlSpace = 24

    let buffers: Int
    private let memory: UnsafeMutableRawPointer
    private let headers: UnsafeMutablePointer<tl_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    private let controls: UnsafeMutableRawPointer
    /// Reads not yet split: messages `next..<received`, the first of them from `offset`.
    private var received = 0
    private var next = 0
    private var offset = 0
    /// Reads that carried more than one datagram (tests and benchmarks look at it).
    private(set) var coalescedReads = 0

    init(buffers: Int) {
        self.buffers = buffers
        memory = .allocate(byteCount: buffers * Self.bufferBytes, alignment: 64)
        headers = .allocate(capacity: buffers)
        headers.initialize(repeating: tl_mmsghdr(), count: buffers)
        vectors = .allocate(capacity: buffers)
        names = .allocate(capacity: buffers)
        names.initialize(repeating: sockaddr_in6(), count: buffers)
        controls = .allocate(byteCount: buffers * Self.controlSpace, alignment: 8)
        for i in 0..<buffers {
            vectors[i] = iovec(iov_base: memory + i * Self.bufferBytes, iov_len: Self.bufferBytes)
        }
    }

    deinit {
        memory.deallocate()
        headers.deallocate()
        vectors.deallocate()
        names.deallocate()
        controls.deallocate()
    }

    /// Datagrams read from the socket and not yet handed out (the batch was full).
    var hasPending: Bool { next < received }

    /// Ask the kernel for coalesced reads on `fd`; false when it does not offer them.
    static func enable(on fd: Int32) -> Bool {
        var one: Int32 = 1
        return setsockopt(fd, tl_SOL_UDP, tl_UDP_GRO, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// Fill `batch` (from its current count) with the datagrams waiting here and on `fd`,
    /// each at the headroom with its source in `peer` and `link` set. A datagram larger
    /// than a slot is kept cut and marked `oversize`, as a direct read would be.
    /// Returns the packets added and their bytes; stops when the batch is full or the
    /// socket has nothing more.
    func receive(from fd: Int32, link: Int32, into batch: PacketBatch) -> (packets: Int, bytes: Int) {
        var packets = 0, bytes = 0
        while batch.count < batch.capacity {
            if next == received {
                // The last read filled every buffer: there may be more. Otherwise the
                // socket was drained then, and a new read now would mostly find nothing.
                if received > 0 && received < buffers && packets > 0 { break }
                guard read(fd) else { break }
            }
            let header = headers[next].msg_hdr
            let length = Int(headers[next].msg_len)
            let segment = segmentSize(next) ?? length
            if segment < length && offset == 0 { coalescedReads += 1 }
            let data = memory + next * Self.bufferBytes
            repeat {  // at least once: an empty datagram is a packet too (demux counts it)
                guard let record = batch.nextFree else { break }
                let size = min(segment, length - offset)
                let room = record.pointee.capacity - batch.headroom - batch.tailroom
                record.pointee.offset = batch.headroom
                memcpy(record.pointee.base + batch.headroom, data + offset, min(size, room))
                record.pointee.peer.storage = names[next]
                record.pointee.link = link
                batch.commit(length: min(size, room))
                if size > room || header.msg_flags & Int32(MSG_TRUNC) != 0 { batch.drop(batch.count - 1, .oversize) }
                offset += max(size, 1)
                packets += 1
                bytes += size
            } while offset < length
            if offset >= length {
                next += 1
                offset = 0
            }
        }
        return (packets, bytes)
    }

    /// One `recvmmsg` into every buffer; false when nothing was waiting.
    private func read(_ fd: Int32) -> Bool {
        for i in 0..<buffers {
            headers[i].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
            headers[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            headers[i].msg_hdr.msg_iov = vectors + i
            headers[i].msg_hdr.msg_iovlen = 1
            headers[i].msg_hdr.msg_control = controls + i * Self.controlSpace
            headers[i].msg_hdr.msg_controllen = Self.controlSpace
            headers[i].msg_hdr.msg_flags = 0
        }
        let n = tl_recvmmsg(fd, headers, UInt32(buffers), Int32(MSG_DONTWAIT))
        (received, next, offset) = (max(Int(n), 0), 0, 0)
        return n > 0
    }

    /// The segment size the kernel reported for message `i`, if it was coalesced.
    private func segmentSize(_ i: Int) -> Int? {
        let header = headers[i].msg_hdr
        guard header.msg_controllen >= 20, let control = header.msg_control else { return nil }
        // struct cmsghdr { size_t len; int level; int type; } then the int.
        guard control.load(fromByteOffset: 8, as: Int32.self) == tl_SOL_UDP,
              control.load(fromByteOffset: 12, as: Int32.self) == tl_UDP_GRO else { return nil }
        let size = Int(control.load(fromByteOffset: 16, as: Int32.self))
        return size > 0 ? size : nil
    }
}
