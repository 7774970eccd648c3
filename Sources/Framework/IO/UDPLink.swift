import CLinux
import Glibc

/// One UDP socket of a tunnel ("a link"): bound to a local address, port and optionally
/// a device, sending to a remote endpoint. Receives and sends in batches with
/// `recvmmsg`/`sendmmsg`; the message headers are allocated once, here.
public final class UDPLink {
    public let name: String
    /// Position in the tunnel's link list (what `Packet.link` holds); a reload may renumber.
    public internal(set) var index: Int
    /// Made on first use: most links never queue control datagrams.
    private var controlQueue: ControlSendQueue?
    let bind: SocketAddress
    public let device: String?
    /// Where datagrams go by default. Session managers may update it (a peer that moved).
    public var remote: SocketAddress?
    /// Settings a session manager declared for links (e.g. fallback_only), validated.
    public internal(set) var settings: Settings
    let counters = TrafficCounters()
    public private(set) var fd: Int32 = -1

    private let capacity: Int
    private let headers: UnsafeMutablePointer<tl_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let controls: UnsafeMutableRawPointer
    private let runs: UnsafeMutablePointer<(first: Int, end: Int, count: Int, bytes: Int)>
    /// UDP GSO in use; switched off for good if the kernel refuses it.
    private(set) var gso = true
    /// UDP GRO: coalesced reads, split here; nil when off or the kernel lacks it.
    private var coalesced: UDPCoalescedReceiver?
    var receivesCoalesced: Bool { coalesced != nil }
    var coalescedReads: Int { coalesced?.coalescedReads ?? 0 }
    /// Datagrams already read from the socket that the next `receive` hands out: the
    /// socket's readiness no longer shows them, so the reader must come back for them.
    var hasPendingReads: Bool { coalesced?.hasPending ?? false }
    private static let peerOffset = MemoryLayout<Packet>.offset(of: \Packet.peer)!

    /// Socket options for links opened at run time (a broker's per-tunnel sockets).
    public struct Options: Sendable {
        /// Share the bound address and port with other sockets (`SO_REUSEPORT`): a
        /// connected socket per client on the broker's well-known port.
        var reusePort = false
        /// `connect()` to this peer: the kernel then delivers only its datagrams here.
        var connectTo: SocketAddress?
        /// Path-MTU discovery mode (`IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER`).
        var pmtuDiscovery: PMTUDiscovery?
        /// Receive and send buffer size; a busy listening socket wants more.
        var socketBuffer = 4 << 20
        /// A runtime link the transport stage sends data on (a client's socket to
        /// its broker), not only control datagrams.
        var carriesData = false
        /// Coalesced reads (UDP GRO): for links that carry a tunnel's data, at the cost
        /// of 1 MB of read buffers; not for a broker's thousands of control sockets.
        var coalescedReceive = true

        public init(reusePort: Bool = false, connectTo: SocketAddress? = nil, pmtuDiscovery: PMTUDiscovery? = nil,
                    socketBuffer: Int = 4 << 20, carriesData: Bool = false, coalescedReceive: Bool = true) {
            (self.reusePort, self.connectTo, self.pmtuDiscovery, self.socketBuffer) = (reusePort, connectTo, pmtuDiscovery, socketBuffer)
            (self.carriesData, self.coalescedReceive) = (carriesData, coalescedReceive)
        }
    }

    /// The kernel's IP_PMTUDISC_* values (the same numbers for IPv6).
    public enum PMTUDiscovery: Int32, Sendable {
        /// Never set DF.
        case dont = 0
        /// Set DF, learn the path MTU from ICMP and refuse larger sends (EMSGSIZE).
        case `do` = 2
        /// Set DF but ignore the learnt path MTU: for probes that must try sizes
        /// beyond it (tunneldigger's PMTU discovery).
        case probe = 3
    }

    let options: Options

    public init(name: String, index: Int, bind: SocketAddress, remote: SocketAddress?, device: String?,
                settings: Settings, batchSize: Int, options: Options = Options()) throws {
        self.options = options
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
        controls = .allocate(byteCount: batchSize * UDPLink.controlSpace, alignment: 8)
        runs = .allocate(capacity: batchSize)
        runs.initialize(repeating: (0, 0, 0, 0), count: batchSize)
        // On failure every stored property is set, so deinit frees the buffers.
        try open(socketBuffer: options.socketBuffer)
    }

    deinit {
        close()
        headers.deallocate()
        vectors.deallocate()
        controls.deallocate()
        runs.deallocate()
    }

    private func open(socketBuffer: Int) throws {
        let family = bind.family
        fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw SystemError("link \(name): socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if options.reusePort {
            try check(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4) < 0 ? -errno : 0, "link \(name): SO_REUSEPORT")
        }
        if let mode = options.pmtuDiscovery { try setPMTUDiscovery(mode) }
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
        try attach(bind, "cannot bind \(bind)") { Glibc.bind($0, $1, $2) }
        if let peer = options.connectTo {
            try attach(peer, "cannot connect to \(peer)") { Glibc.connect($0, $1, $2) }
            remote = peer
        }
        if options.coalescedReceive && UDPCoalescedReceiver.enable(on: fd) {
            coalesced = UDPCoalescedReceiver(buffers: min(capacity, UDPLink.coalescedBuffers))
        }
    }

    /// Reads of up to 64 KB a coalescing link makes at once (16: 1 MB per link).
    static let coalescedBuffers = 16

    /// `bind` or `connect` the socket to `address`; on failure close it, so a link
    /// that could not open holds no descriptor.
    private func attach(_ address: SocketAddress, _ action: String,
                        _ call: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) throws {
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, address.length) }
        }
        if rc < 0 {
            let code = errno
            Glibc.close(fd)
            fd = -1
            throw SystemError("link \(name): \(action)", code: code)
        }
    }

    /// Change the path-MTU discovery mode of the open socket.
    public func setPMTUDiscovery(_ mode: PMTUDiscovery) throws {
        var value = mode.rawValue
        let (level, option) = bind.family == AF_INET6 ? (Int32(IPPROTO_IPV6), Int32(23 /* IPV6_MTU_DISCOVER */))
                                                      : (Int32(IPPROTO_IP), Int32(10 /* IP_MTU_DISCOVER */))
        try check(setsockopt(fd, level, option, &value, 4) < 0 ? -errno : 0, "link \(name): path-MTU discovery mode")
    }

    func close() {
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

    /// Receive up to the batch's free space with one `recvmmsg` (or, coalescing, from
    /// reads of whole GSO runs, split into their datagrams). Each packet starts at the
    /// headroom, carries its source in `peer` and this link's index in `link`. A datagram
    /// larger than a slot is dropped as `oversize` (the kernel sets MSG_TRUNC).
    /// Returns the number received (0 when the socket is drained).
    public func receive(into batch: PacketBatch) -> Int {
        if let coalesced {
            let (packets, bytes) = coalesced.receive(from: fd, link: Int32(index), into: batch)
            counters.block.add(TrafficCounters.rxPackets, UInt64(packets))
            counters.block.add(TrafficCounters.rxBytes, UInt64(bytes))
            return packets
        }
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
        batch.setCount(first + Int(n))
        var bytes = 0
        for i in 0..<Int(n) {
            let length = Int(headers[i].msg_len)
            records[i].offset = batch.headroom
            records[i].length = length
            records[i].link = Int32(index)
            bytes += length
            if headers[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 { batch.drop(first + i, .oversize) }
        }
        counters.block.add(TrafficCounters.rxPackets, UInt64(n))
        counters.block.add(TrafficCounters.rxBytes, UInt64(bytes))
        return Int(n)
    }

    /// Send the live packets of `batch` whose `link` is this link's index, each to its
    /// `peer` (or to `remote` when the packet has none). Consecutive packets to the same
    /// peer with the same size (the last of a run may be shorter) go as one UDP GSO
    /// message: the kernel walks its stack once per run instead of once per datagram.
    /// Runs are batched with `sendmmsg`. Packets the kernel will not take are marked
    /// `sendFailed`. Returns the number of packets sent.
    @discardableResult
    public func send(_ batch: PacketBatch) -> Int {
        let records = batch.records
        let total = batch.count
        let me = Int32(index)
        var sent = 0
        var cursor = 0
        while cursor < total {
            // Gather up to `capacity` messages (runs), using at most `capacity` iovecs.
            var messages = 0
            var iovecs = 0
            while cursor < total && messages < capacity && iovecs < capacity {
                guard records[cursor].link == me, records[cursor].dropReason == nil else {
                    cursor += 1
                    continue
                }
                if !records[cursor].peer.isSet {
                    guard let remote else {
                        batch.drop(cursor, .noLink)
                        cursor += 1
                        continue
                    }
                    records[cursor].peer = remote
                }
                let first = cursor
                let size = records[first].length
                var runLength = 0
                var runBytes = 0
                // Extend the run: same peer, same size; a shorter packet ends it. Packets
                // for other links are stepped over: a bond's scheduler interleaves its
                // links packet by packet, and each link's share must still go as one run.
                while cursor < total && iovecs + runLength < capacity && runLength < UDPLink.maxSegments {
                    let record = records + cursor
                    if runLength > 0 {
                        guard gso else { break }
                        if record.pointee.link != me || record.pointee.dropReason != nil {
                            cursor += 1
                            continue
                        }
                        guard record.pointee.length > 0,
                              record.pointee.length <= size, runBytes + record.pointee.length <= UDPLink.maxGSOBytes else { break }
                        if !record.pointee.peer.isSet, let remote { record.pointee.peer = remote }
                        guard record.pointee.peer == records[first].peer else { break }
                    }
                    vectors[iovecs + runLength] = iovec(iov_base: record.pointee.base + record.pointee.offset,
                                                        iov_len: record.pointee.length)
                    runBytes += record.pointee.length
                    runLength += 1
                    cursor += 1
                    if record.pointee.length < size { break }
                }
                let header = headers + messages
                header.pointee.msg_hdr.msg_name = UnsafeMutableRawPointer(records + first) + UDPLink.peerOffset
                header.pointee.msg_hdr.msg_namelen = records[first].peer.length
                header.pointee.msg_hdr.msg_iov = vectors + iovecs
                header.pointee.msg_hdr.msg_iovlen = runLength
                if runLength > 1 {
                    let control = controls + messages * UDPLink.controlSpace
                    UDPLink.writeSegmentControl(control, segmentSize: size)
                    header.pointee.msg_hdr.msg_control = control
                    header.pointee.msg_hdr.msg_controllen = UDPLink.controlSpace
                } else {
                    header.pointee.msg_hdr.msg_control = nil
                    header.pointee.msg_hdr.msg_controllen = 0
                }
                runs[messages] = (first, cursor, runLength, runBytes)
                iovecs += runLength
                messages += 1
            }
            guard messages > 0 else { continue }
            var done = 0
            var refusedGSO = false
            while done < messages {
                let n = tl_sendmmsg(fd, headers + done, UInt32(messages - done), Int32(MSG_DONTWAIT))
                if n == -EINTR { continue }
                if n <= 0 {
                    // EIO/EINVAL on a GSO message: this route cannot segment (no checksum offload).
                    refusedGSO = (n == -EIO || n == -EINVAL) && gso && runs[done].count > 1
                    break
                }
                done += Int(n)
            }
            for run in 0..<done {
                counters.block.add(TrafficCounters.txPackets, UInt64(runs[run].count))
                counters.block.add(TrafficCounters.txBytes, UInt64(runs[run].bytes))
                sent += runs[run].count
            }
            if refusedGSO {
                // Stop using GSO for good and send the rest one datagram each.
                gso = false
                return sent + sendSingly(batch, from: runs[done].first)
            }
            for run in done..<messages {
                for r in runs[run].first..<runs[run].end where records[r].link == me && records[r].dropReason == nil {
                    batch.drop(r, .sendFailed)
                }
            }
        }
        return sent
    }

    /// Send from `start` one datagram at a time (after the kernel refused a GSO message).
    private func sendSingly(_ batch: PacketBatch, from start: Int) -> Int {
        var sent = 0
        for index in start..<batch.count where batch[index].link == Int32(self.index) && batch[index].dropReason == nil {
            let packet = batch[index]
            if sendControl(UnsafeRawBufferPointer(start: packet.base + packet.offset, count: packet.length),
                           to: packet.peer.isSet ? packet.peer : (remote ?? packet.peer)) {
                sent += 1
            } else {
                batch.drop(index, .sendFailed)
            }
        }
        return sent
    }

    /// Most datagrams the kernel accepts in one GSO message, and most bytes.
    static let maxSegments = 64
    static let maxGSOBytes = 65000
    /// CMSG_SPACE(sizeof(uint16_t)) on 64-bit Linux: a 16-byte cmsghdr plus 8 aligned bytes.
    static let controlSpace = 24

    /// Write a `UDP_SEGMENT` control message (the GSO segment size) at `control`.
    static func writeSegmentControl(_ control: UnsafeMutableRawPointer, segmentSize: Int) {
        control.storeBytes(of: 18, toByteOffset: 0, as: Int.self)  // cmsg_len = CMSG_LEN(2)
        control.storeBytes(of: tl_SOL_UDP, toByteOffset: 8, as: Int32.self)
        control.storeBytes(of: tl_UDP_SEGMENT, toByteOffset: 12, as: Int32.self)
        control.storeBytes(of: UInt16(segmentSize), toByteOffset: 16, as: UInt16.self)
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

    /// Queue a small control datagram; it leaves with the others queued this turn at
    /// `flushControl()` (one `sendmmsg`). False when it cannot be queued (larger than
    /// a slot): send it with `sendControl` instead.
    public func queueControl(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        let queue = controlQueue ?? ControlSendQueue()
        controlQueue = queue
        if queue.isFull { flushControl() }
        return queue.append(bytes, to: destination)
    }

    /// Send what `queueControl` gathered; the number the kernel refused.
    @discardableResult
    public func flushControl() -> Int {
        guard let queue = controlQueue, queue.count > 0 else { return 0 }
        let result = queue.flush(fd: fd)
        counters.countSent(packets: result.sent, bytes: result.bytes)
        return result.refused
    }
}
