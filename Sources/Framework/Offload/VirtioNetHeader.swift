/// The `virtio_net_hdr` that prefixes every packet on a TUN opened with IFF_VNET_HDR
/// (10 bytes, host byte order). It tells us when the kernel handed over a TCP
/// super-packet to segment (TSO) or a packet whose checksum we must complete, and
/// lets us hand the kernel coalesced super-packets (GRO) in return.
public struct VirtioNetHeader: Equatable {
    public static let size = 10
    public static let needsChecksum: UInt8 = 1
    static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    static let gsoUDP: UInt8 = 3
    static let gsoTCPv6: UInt8 = 4
    static let gsoECN: UInt8 = 0x80

    public var flags: UInt8 = 0
    public var gsoType: UInt8 = 0
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    init() {}

    public init(flags: UInt8, gsoType: UInt8, headerLength: UInt16, gsoSize: UInt16, checksumStart: UInt16, checksumOffset: UInt16) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    @inlinable
    init(from p: UnsafeRawPointer) {
        flags = p.load(fromByteOffset: 0, as: UInt8.self)
        gsoType = p.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        gsoSize = p.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        checksumStart = p.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        checksumOffset = p.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
    }

    @inlinable
    func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
    }
}
