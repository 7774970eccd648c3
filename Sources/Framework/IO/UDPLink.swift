import CLinux
import Glibc

/// One UDP socket of a tunnel ("a link"): bound to a local address, port and optionally
/// a device, sending to a remote endpoint. Receives and sends in batches with
/// `recvmmsg`/`sendmmsg`; the message headers are allocated once, here.
public final class UDPLink {
    public let name: String
    public let index: Int
    public let bind: SocketAddress
    public let device: String?
    /// Where datagrams go by default. Session managers may update it (a peer that moved).
    public var remote: SocketAddress?
    /// Settings a session manager declared for links (e.g. fallback_only), validated.
    public let settings: Settings
    public let counters = TrafficCounters()
    public private(set) var fd: Int32 = -1

    private let capacity: Int
    private let headers: UnsafeMutablePointer<tl_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private static let peerOffset = MemoryLayout<Packet>.offset(of: \Packet.peer)!

    public init(name: String, index: Int, bind: SocketAddress, remote: SocketAddress?, device: String?,
                settings: Settings, batchSize: Int, socketBuffer: Int = 4 << 20) throws {
        self.name = name
        self.index = index
        self.bind = bind
        self.remote = remote
        self.device = device
        self.settings = settings
        capacity = batchSize
        headers = .allocate(capacity: batchSize)
        headers.initialize(repeating: tl_mmsghdr(), count: batchSize)
        vectors = .allocate(capacity: batchSize)
        vectors.initialize(repeating: iovec(), count: batchSize)
        do {
            try open(socketBuffer: socketBuffer)
        } catch {
            headers.deallocate()
            vectors.deallocate()
            throw error
        }
    }

    deinit {
        close()
        headers.deallocate()
        vectors.deallocate()
    }

    private func open(socketBuffer: Int) throws {
        let family = bind.family
        fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw SystemError("link \(name): socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 {
            // An IPv6 link talks IPv6 only; a site that wants both lists two links.
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var size = Int32(socketBuffer)
        // The *FORCE variants pass the sysctl limits when we have CAP_NET_ADMIN; fall back quietly.
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) < 0 { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, 4) < 0 { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4) }
        if let device {
            try check(tl_bind_to_device(fd, device), "link \(name): cannot bind to device '\(device)'")
        }
        var address = bind.storage
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, bind.length) }
        }
        if rc < 0 {
            let code = errno
            Glibc.close(fd)
            fd = -1
            throw SystemError("link \(name): cannot bind \(bind)", code: code)
        }
    }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// The address the socket is bound to (with the port the kernel picked for port 0).
    public var localAddress: SocketAddress {
        var address = SocketAddress()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return address
    }

    /// Receive up to the batch's free space with one `recvmmsg`. Each packet starts at the
    /// headroom, carries its source in `peer` and this link's index in `link`. A datagram
    /// larger than a slot is dropped as `oversize` (the kernel sets MSG_TRUNC).
    /// Returns the number received (0 when the socket is drained).
    public func receive(into batch: PacketBatch) -> Int {
        let first = batch.count
        let want = min(capacity, batch.capacity - first)
        guard want > 0 else { return 0 }
        let records = batch.records + first
        for i in 0..<want {
            let base = records[i].base + batch.headroom
            vectors[i] = iovec(iov_base: base, iov_len: records[i].capacity - batch.headroom - batch.tailroom)
            headers[i].msg_hdr.msg_name = UnsafeMutableRawPointer(records + i) + UDPLink.peerOffset
            headers[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            headers[i].msg_hdr.msg_iov = vectors + i
            headers[i].msg_hdr.msg_iovlen = 1
            headers[i].msg_hdr.msg_control = nil
            headers[i].msg_hdr.msg_controllen = 0
            headers[i].msg_hdr.msg_flags = 0
        }
        let n = tl_recvmmsg(fd, headers, UInt32(want), Int32(MSG_DONTWAIT))
        guard n > 0 else { return 0 }
        for i in 0..<Int(n) {
            let length = Int(headers[i].msg_len)
            records[i].offset = batch.headroom
            records[i].length = length
            records[i].link = Int32(index)
            records[i].dropReason = (headers[i].msg_hdr.msg_flags & Int32(MSG_TRUNC)) != 0 ? .oversize : nil
            counters.countReceived(bytes: length)
        }
        batch.setCount(first + Int(n))
        return Int(n)
    }

    /// Send the live packets of `batch` whose `link` is this link's index, each to its
    /// `peer` (or to `remote` when the packet has none), with as few `sendmmsg` calls as
    /// the kernel allows. Packets the kernel will not take are marked `sendFailed`.
    /// Returns the number sent.
    @discardableResult
    public func send(_ batch: PacketBatch) -> Int {
        var sent = 0
        var start = 0
        let total = batch.count
        let records = batch.records
        while start < total {
            // Gather the next run of up to `capacity` packets for this link.
            var gathered = 0
            var indices = start
            while indices < total && gathered < capacity {
                if records[indices].link == Int32(index) && records[indices].dropReason == nil {
                    if !records[indices].peer.isSet {
                        guard let remote else {
                            records[indices].dropReason = .noLink
                            indices += 1
                            continue
                        }
                        records[indices].peer = remote
                    }
                    vectors[gathered] = iovec(iov_base: records[indices].base + records[indices].offset,
                                              iov_len: records[indices].length)
                    headers[gathered].msg_hdr.msg_name = UnsafeMutableRawPointer(records + indices) + UDPLink.peerOffset
                    headers[gathered].msg_hdr.msg_namelen = records[indices].peer.length
                    headers[gathered].msg_hdr.msg_iov = vectors + gathered
                    headers[gathered].msg_hdr.msg_iovlen = 1
                    headers[gathered].msg_hdr.msg_control = nil
                    headers[gathered].msg_hdr.msg_controllen = 0
                    gathered += 1
                }
                indices += 1
            }
            start = indices
            var done = 0
            while done < gathered {
                let n = tl_sendmmsg(fd, headers + done, UInt32(gathered - done), Int32(MSG_DONTWAIT))
                if n <= 0 {
                    if n == -EINTR { continue }
                    break
                }
                done += Int(n)
            }
            if done < gathered {
                // Find the unsent records by address: headers[i].msg_name points into the record.
                for i in done..<gathered {
                    let record = (headers[i].msg_hdr.msg_name! - UDPLink.peerOffset).assumingMemoryBound(to: Packet.self)
                    record.pointee.dropReason = DropReason.sendFailed
                }
            }
            for i in 0..<done {
                counters.countSent(bytes: vectors[i].iov_len)
            }
            sent += done
        }
        return sent
    }

    /// Send one datagram now (control traffic: handshakes, keepalives, probes).
    @discardableResult
    public func sendControl(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        var address = destination.storage
        let n = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, destination.length)
            }
        }
        if n == bytes.count {
            counters.countSent(bytes: n)
            return true
        }
        return false
    }
}
