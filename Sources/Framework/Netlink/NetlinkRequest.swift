import CNetlink

/// A netlink request before a socket numbers it: message type, flags, the family's
/// fixed header (a genlmsghdr, an ifinfomsg) and attributes. The socket sends exactly
/// what `encoded` returns, so a test comparing those bytes with reference vectors
/// checks what goes to the kernel.
struct NetlinkRequest: Sendable, Equatable {
    /// A family id (generic netlink) or an RTM_* message type (rtnetlink).
    var type: UInt16
    var flags: UInt16
    var fixedHeader: [UInt8]
    var attributes: [NetlinkAttribute]
    /// Names the request in errors, e.g. "SESSION_CREATE tunnel 100 session 100".
    var label: String

    /// Every request asks for an ACK so that success is confirmed, not assumed.
    static let requestFlags = UInt16(NLM_F_REQUEST | NLM_F_ACK)
    /// A dump: the kernel answers with many messages and a DONE instead of an ACK.
    static let dumpFlags = UInt16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP)

    init(type: UInt16, flags: UInt16, fixedHeader: [UInt8], attributes: [NetlinkAttribute], label: String) {
        self.type = type
        self.flags = flags
        self.fixedHeader = fixedHeader
        self.attributes = attributes
        self.label = label
    }

    var isDump: Bool { flags & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP) }

    /// The whole message: `nlmsghdr` (length, type, flags, sequence, port), the fixed
    /// header padded to 4 bytes, then the attributes. Host byte order throughout.
    func encoded(sequence: UInt32, portID: UInt32) -> [UInt8] {
        let body = fixedHeader + [UInt8](repeating: 0, count: netlinkAlign(fixedHeader.count) - fixedHeader.count)
            + NetlinkAttribute.encode(attributes)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + body.count)
        appendHost(&bytes, UInt32(16 + body.count))
        appendHost(&bytes, type)
        appendHost(&bytes, flags)
        appendHost(&bytes, sequence)
        appendHost(&bytes, portID)
        return bytes + body
    }
}
