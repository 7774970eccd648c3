import CLinux
import Glibc

/// Small datagrams (keepalives, acks) gathered during one turn of the event loop
/// and sent with one `sendmmsg`. A broker sends a keepalive to each of thousands of
/// clients every few seconds; on this kind of machine the system call's entry and
/// exit cost as much as the send itself, so batching them is most of the idle cost.
/// Buffers are allocated once; queueing copies and allocates nothing.
final class ControlSendQueue {
    static let slots = 64
    static let slotSize = 128

    private let buffers: UnsafeMutableRawPointer
    private let addresses: UnsafeMutablePointer<sockaddr_in6>
    private let iovecs: UnsafeMutablePointer<iovec>
    private let headers: UnsafeMutablePointer<tl_mmsghdr>
    private(set) var count = 0

    init() {
        buffers = .allocate(byteCount: Self.slots * Self.slotSize, alignment: 16)
        addresses = .allocate(capacity: Self.slots)
        iovecs = .allocate(capacity: Self.slots)
        headers = .allocate(capacity: Self.slots)
        for slot in 0..<Self.slots {
            iovecs[slot] = iovec(iov_base: buffers + slot * Self.slotSize, iov_len: 0)
            headers[slot] = tl_mmsghdr()
            headers[slot].msg_hdr.msg_iov = iovecs + slot
            headers[slot].msg_hdr.msg_iovlen = 1
            headers[slot].msg_hdr.msg_name = UnsafeMutableRawPointer(addresses + slot)
        }
    }

    deinit {
        buffers.deallocate()
        addresses.deallocate()
        iovecs.deallocate()
        headers.deallocate()
    }

    var isFull: Bool { count == Self.slots }

    /// Copy `bytes` in for `destination`; false when they do not fit a slot or the
    /// queue is full (flush first).
    func append(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        guard count < Self.slots, bytes.count <= Self.slotSize, let source = bytes.baseAddress else { return false }
        (buffers + count * Self.slotSize).copyMemory(from: source, byteCount: bytes.count)
        iovecs[count].iov_len = bytes.count
        addresses[count] = destination.storage
        headers[count].msg_hdr.msg_namelen = destination.length
        count += 1
        return true
    }

    /// Send everything queued on `fd`. A datagram the kernel refuses is skipped (and
    /// counted), the rest still go. Returns (sent, bytes sent, refused).
    func flush(fd: Int32) -> (sent: Int, bytes: Int, refused: Int) {
        var start = 0, sent = 0, bytes = 0, refused = 0
        while start < count {
            let n = Int(tl_sendmmsg(fd, headers + start, UInt32(count - start), Int32(MSG_DONTWAIT)))
            if n <= 0 {
                refused += 1
                start += 1
                continue
            }
            for slot in start..<(start + n) { bytes += iovecs[slot].iov_len }
            sent += n
            start += n
        }
        count = 0
        return (sent, bytes, refused)
    }
}
