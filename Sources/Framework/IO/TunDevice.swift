import CLinux
import Glibc

/// A TUN (layer 3) or TAP (layer 2) device owned by this process. The kernel removes
/// the device when the descriptor closes, so a crash never leaves it behind.
///
/// With `offload` (TUN only) the device is opened with IFF_VNET_HDR and TSO/checksum
/// offloads: the kernel hands over TCP super-packets of up to 64 KB, which
/// `TCPSegmenter` splits into MTU-sized packets, and `TCPCoalescer` joins received
/// segments back into super-packets on the way in. One read or write then moves
/// dozens of packets, which is what lets a userspace tunnel pass gigabits.
public final class TunDevice {
    public enum Kind: String, Sendable { case tun, tap }

    let kind: Kind
    public let name: String
    /// The MTU now: set at creation, changed by `setMTU` (a PMTU discovery result).
    public private(set) var mtu: Int
    let addresses: [InterfaceAddress]
    /// Virtio headers on every read and write (TUN with `offload`).
    let offload: Bool
    /// The kernel accepted TSO: reads may be TCP super-packets.
    let tso: Bool
    private(set) var fd: Int32
    let counters = TrafficCounters()

    private static let scratchSize = VirtioNetHeader.size + TCPCoalescer.maxLength + 1
    /// Super-packet buffers, only with offloads: a broker's thousands of plain TAP
    /// devices must not each carry 64 KB they never use. A super-packet written goes
    /// out of the batch's slots by `writev`: only its headers need a buffer here.
    private let readScratch: UnsafeMutableRawPointer?
    private let writeHead: UnsafeMutableRawPointer?
    private var writeVectors = UnsafeMutablePointer<iovec>.allocate(capacity: 0)
    private var writeVectorCapacity = 0
    /// Which packets of a batch join into which super-packet (offload only).
    private lazy var flowTable = TCPFlowTable()

    /// Create the device, set its MTU and addresses, and bring it up.
    init(kind: Kind, name: String, mtu: Int, addresses: [InterfaceAddress], offload: Bool = false, up: Bool = true) throws {
        self.kind = kind
        self.mtu = mtu
        self.addresses = addresses
        var actual = [CChar](repeating: 0, count: Int(tl_IFNAMSIZ))
        let useOffload = offload && kind == .tun
        fd = try check(tl_tun_open(name, kind == .tap ? 1 : 0, useOffload ? 1 : 0, &actual), "cannot create \(kind.rawValue) device '\(name)'")
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        readScratch = useOffload ? .allocate(byteCount: TunDevice.scratchSize, alignment: 64) : nil
        writeHead = useOffload ? .allocate(byteCount: TCPCoalescer.headRoom, alignment: 64) : nil
        // If the kernel refuses the offload flags we still get (empty) virtio headers,
        // so the framing stays on; only the super-packets do not come.
        tso = useOffload && tl_tun_set_offload(fd, tl_TUN_F_CSUM | tl_TUN_F_TSO4 | tl_TUN_F_TSO6) == 0
        self.offload = useOffload
        do {
            try check(tl_if_set_mtu(self.name, Int32(mtu)), "cannot set MTU \(mtu) on \(self.name)")
            for address in addresses {
                switch address.family {
                case .ipv4(let bits):
                    try check(tl_if_set_ipv4(self.name, bits, Int32(address.prefix)), "cannot set address \(address) on \(self.name)")
                case .ipv6(let bytes):
                    try check(tl_if_add_ipv6(self.name, bytes, Int32(address.prefix)), "cannot add address \(address) on \(self.name)")
                }
            }
            if up { try check(tl_if_set_up(self.name, 1), "cannot bring \(self.name) up") }
        } catch {
            close()  // deinit frees the scratch buffers
            throw error
        }
    }

    deinit {
        close()
        readScratch?.deallocate()
        writeHead?.deallocate()
        writeVectors.deallocate()
    }

    /// Close the descriptor; the kernel deletes the device (about 20 ms of kernel
    /// time each: many devices go through `DeviceReaper` instead).
    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Give up the descriptor without closing it (the caller removes the device).
    func detachDescriptor() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    /// Change the MTU (a PMTU discovery result); the caller's packets must fit it.
    public func setMTU(_ value: Int) throws {
        try Self.setMTU(value, interface: name)
        mtu = value
    }

    /// Set the MTU of any interface by name (one the kernel made, say).
    public static func setMTU(_ value: Int, interface: String) throws {
        _ = try check(tl_if_set_mtu(interface, Int32(value)), "cannot set MTU \(value) on \(interface)")
    }

    /// Read packets until the device is empty or `maxReads` reads were made. Packets
    /// land at the batch's headroom; when the batch fills, `flush` must empty it.
    /// Returns the number of reads that returned data.
    func read(into batch: PacketBatch, maxReads: Int, flush: (PacketBatch) -> Void) -> Int {
        var reads = 0
        while reads < maxReads {
            if offload {
                guard let readScratch else { break }
                let n = Glibc.read(fd, readScratch, TunDevice.scratchSize)
                if n <= VirtioNetHeader.size { break }  // EAGAIN (drained), or nothing useful
                let header = VirtioNetHeader(from: readScratch)
                switch TCPSegmenter.split(readScratch + VirtioNetHeader.size, length: n - VirtioNetHeader.size,
                                          header: header, into: batch, flush: flush) {
                case .success(let produced):
                    counters.block.add(TrafficCounters.txPackets, UInt64(produced.packets))
                    counters.block.add(TrafficCounters.txBytes, UInt64(produced.bytes))
                case .failure(let reason):
                    counters.countDrop(reason.reason)
                }
            } else {
                guard let record = batch.nextFree else {
                    flush(batch)
                    batch.reset()
                    continue
                }
                let room = record.pointee.capacity - record.pointee.offset - batch.tailroom
                let n = Glibc.read(fd, record.pointee.base + record.pointee.offset, room)
                if n <= 0 { break }
                batch.commit(length: n)
                counters.countSent(bytes: n)
            }
            reads += 1
        }
        return reads
    }

    /// Write every live packet of the batch to the device and consume the batch.
    /// Packets a stage marked are removed (and counted) first; failed writes are
    /// counted as `device_write_failed`.
    func write(_ batch: PacketBatch) {
        batch.removeDropped()
        if offload {
            writeCoalesced(batch)
        } else {
            for index in 0..<batch.count {
                let packet = batch[index]
                if Glibc.write(fd, packet.base + packet.offset, packet.length) != packet.length {
                    batch.drop(index, .deviceWriteFailed)
                }
            }
        }
        batch.removeDropped()
        counters.block.add(TrafficCounters.rxPackets, UInt64(batch.count))
        counters.block.add(TrafficCounters.rxBytes, UInt64(batch.byteCount))
        batch.consumeAll()
    }

    /// Room for `needed` vectors (a group is at most the batch, plus its headers); grows
    /// only when a larger batch comes, never per packet.
    private func reserveVectors(_ needed: Int) {
        guard needed > writeVectorCapacity else { return }
        writeVectors.deallocate()
        writeVectors = .allocate(capacity: needed)
        writeVectorCapacity = needed
    }

    private func writeCoalesced(_ batch: PacketBatch) {
        flowTable.plan(batch)
        reserveVectors(batch.capacity + 1)
        for index in 0..<batch.count {
            let size = flowTable.groupSize(at: index)
            if size == 0 { continue }  // written with its group's head
            if size > 1, let writeHead {
                let (count, bytes) = TCPCoalescer.gather(batch, group: index, of: flowTable, head: writeHead, vectors: writeVectors)
                if Glibc.writev(fd, writeVectors, Int32(count)) != bytes {
                    flowTable.forEachMember(of: index) { batch.drop($0, .deviceWriteFailed) }
                }
            } else {
                // A lone packet: an all-zero virtio header in the headroom says "nothing to do".
                // The header is taken off again so the packet's length stays the IP length.
                guard let header = batch[index].prepend(VirtioNetHeader.size) else {
                    batch.drop(index, .noRoom)
                    continue
                }
                memset(header, 0, VirtioNetHeader.size)
                let packet = batch[index]
                if Glibc.write(fd, packet.base + packet.offset, packet.length) != packet.length {
                    batch.drop(index, .deviceWriteFailed)
                }
                _ = batch[index].trimFront(VirtioNetHeader.size)
            }
        }
    }
}
