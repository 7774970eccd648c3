import Glibc

/// One packet: a window `[offset, offset + length)` into a fixed-size slot of memory
/// owned by a `PacketBatch` or a `BufferPool`.
///
/// Stages prepend headers by moving `offset` back into the headroom and append
/// trailers (an AEAD tag) into the tailroom, so no stage copies a payload or allocates.
/// The struct is plain data: copying it copies a pointer, never the bytes.
public struct Packet {
    /// Start of the slot.
    public let base: UnsafeMutableRawPointer
    /// Size of the slot in bytes.
    public let capacity: Int
    /// Where the packet's first byte is, from `base`.
    public var offset: Int
    /// Bytes in the packet.
    public var length: Int
    /// Index of the link the packet arrived on or must leave by (set by transport/schedule).
    public var link: Int32
    /// Free for stages: a sequence number, a flow hash.
    public var sequence: UInt64
    /// Free for stages to pass a decision down the send path (a classifier's pinned
    /// link, a forced path for a probe); 0 means none. Survives encryption.
    public var mark: UInt32
    /// Set by a stage to drop the packet; the pipeline removes it after the stage returns.
    public var dropReason: DropReason?
    /// Receive side: a stage checked the bytes end to end from the peer (an AEAD tag),
    /// so the inner checksums need no second look. Kernel WireGuard marks its decrypted
    /// packets CHECKSUM_UNNECESSARY for the same reason.
    public var authenticated: Bool
    /// The peer this datagram came from or goes to (IPv4 or IPv6).
    public var peer: SocketAddress

    @inlinable
    public init(base: UnsafeMutableRawPointer, capacity: Int, offset: Int) {
        self.base = base
        self.capacity = capacity
        self.offset = offset
        self.length = 0
        self.link = 0
        self.sequence = 0
        self.mark = 0
        self.dropReason = nil
        self.authenticated = false
        self.peer = SocketAddress()
    }

    /// The packet's bytes.
    @inlinable
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + offset, count: length)
    }

    @inlinable public var headroom: Int { offset }
    @inlinable public var tailroom: Int { capacity - offset - length }

    /// Grow the packet at the front by `count` bytes and return a pointer to them,
    /// or nil when the headroom is too small (the caller drops the packet).
    @inlinable
    public mutating func prepend(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count <= offset else { return nil }
        offset -= count
        length += count
        return base + offset
    }

    /// Remove `count` bytes from the front. False if the packet is shorter.
    @inlinable
    public mutating func trimFront(_ count: Int) -> Bool {
        guard count <= length else { return false }
        offset += count
        length -= count
        return true
    }

    /// Grow the packet at the back by `count` bytes and return a pointer to them.
    @inlinable
    public mutating func append(_ count: Int) -> UnsafeMutableRawPointer? {
        guard count <= tailroom else { return nil }
        let end = base + offset + length
        length += count
        return end
    }

    /// Remove `count` bytes from the back. False if the packet is shorter.
    @inlinable
    public mutating func trimBack(_ count: Int) -> Bool {
        guard count <= length else { return false }
        length -= count
        return true
    }

    /// Byte at `index` from the packet's start (the caller checks `index < length`).
    @inlinable
    public func byte(at index: Int) -> UInt8 {
        base.load(fromByteOffset: offset + index, as: UInt8.self)
    }
}
