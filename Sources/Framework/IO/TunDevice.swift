import CLinux
import Glibc

/// A TUN (layer 3) or TAP (layer 2) device owned by this process. The kernel removes
/// the device when the descriptor closes, so a crash never leaves it behind.
public final class TunDevice {
    public enum Kind: String, Sendable { case tun, tap }

    public let kind: Kind
    public let name: String
    public let mtu: Int
    public let addresses: [InterfaceAddress]
    public private(set) var fd: Int32
    public let counters = TrafficCounters()

    /// Create the device, set its MTU and addresses, and bring it up.
    public init(kind: Kind, name: String, mtu: Int, addresses: [InterfaceAddress]) throws {
        self.kind = kind
        self.mtu = mtu
        self.addresses = addresses
        var actual = [CChar](repeating: 0, count: Int(tl_IFNAMSIZ))
        fd = try check(tl_tun_open(name, kind == .tap ? 1 : 0, 0, &actual), "cannot create \(kind.rawValue) device '\(name)'")
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
            try check(tl_if_set_up(self.name, 1), "cannot bring \(self.name) up")
        } catch {
            Glibc.close(fd)
            fd = -1
            throw error
        }
    }

    deinit { close() }

    /// Close the descriptor; the kernel deletes the device.
    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Read packets until the device is empty or the batch is full. Packets land at the
    /// batch's headroom. Returns the number read.
    public func read(into batch: PacketBatch) -> Int {
        var read = 0
        while let record = batch.nextFree {
            let room = record.pointee.capacity - record.pointee.offset - batch.tailroom
            let n = Glibc.read(fd, record.pointee.base + record.pointee.offset, room)
            if n <= 0 { break }  // EAGAIN (drained) or an error: try again on the next wake-up
            batch.commit(length: n)
            counters.countSent(bytes: n)  // "sent" into the tunnel from the device's side
            read += 1
        }
        return read
    }

    /// Write every live packet of the batch to the device and consume the batch.
    public func write(_ batch: PacketBatch) {
        for index in 0..<batch.count {
            let packet = batch.records[index]
            let n = Glibc.write(fd, packet.base + packet.offset, packet.length)
            if n == packet.length {
                counters.countReceived(bytes: n)
            } else {
                batch.drop(index, .deviceWriteFailed)
            }
        }
        batch.removeDropped()
        batch.consumeAll()
    }
}
