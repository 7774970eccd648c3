/// One message the kernel sent in answer to a request: its type, the family's fixed
/// header and the attributes after it. Parsed from the bytes libnl received, every
/// length checked before it is used.
struct NetlinkReply: Sendable, Equatable {
    let type: UInt16
    let fixedHeader: [UInt8]
    let attributes: NetlinkAttributes

    /// nil if the message is shorter than its header says, or the headers or
    /// attributes do not fit in it.
    init?(bytes: [UInt8], fixedHeaderSize: Int) {
        guard bytes.count >= 16 else { return nil }
        let (length, type) = bytes.withUnsafeBytes {
            (Int($0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)), $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        }
        let attributesStart = 16 + netlinkAlign(fixedHeaderSize)
        guard length <= bytes.count, length >= 16 + fixedHeaderSize else { return nil }
        guard let attributes = NetlinkAttributes(parsing: bytes[min(attributesStart, length)..<length]) else { return nil }
        self.type = type
        self.fixedHeader = Array(bytes[16..<(16 + fixedHeaderSize)])
        self.attributes = attributes
    }
}
