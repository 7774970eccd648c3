import CNetlink
import Glibc

/// A generic-netlink socket to the kernel: resolves families by name and sends
/// their requests, blocking until the kernel answers. Blocking, and not
/// thread-safe: run it on a `NetlinkWorker`, never on an event loop.
public final class GenericNetlink {
    private let socket: NetlinkSocket

    public init() throws {
        socket = try NetlinkSocket(netlinkProtocol: NETLINK_GENERIC, name: "generic netlink socket")
    }

    /// The id of family `name`, or nil when the kernel has no such family (the
    /// module is absent and could not be loaded): a normal answer, not an error.
    public func resolve(family name: String) throws -> UInt16? {
        let result = genl_ctrl_resolve(socket.handle, name)
        // The controller answers ENOENT, which libnl reports as NLE_OBJ_NOTFOUND.
        if result == -NLE_OBJ_NOTFOUND { return nil }
        if result < 0 { throw NetlinkError.libnl(result, request: "GETFAMILY \(name)") }
        guard let id = UInt16(exactly: result) else {
            throw NetlinkError(code: ERANGE, request: "GETFAMILY \(name)", detail: "family id \(result) out of range")
        }
        return id
    }

    /// Send `request` to family `family` and wait for the kernel's ACK; throws the
    /// kernel's errno if it refuses. Returns the attributes of any messages the
    /// kernel answered with before the ACK (most commands send none).
    @discardableResult
    public func perform(_ request: GenericNetlinkRequest, family: UInt16) throws -> [NetlinkAttributes] {
        precondition(!request.dump, "\(request.label) is a dump: use dump(_:family:)")
        return try exchange(request, family: family)
    }

    /// Send dump `request` to family `family`: the attributes of every message of
    /// the dump, in the order the kernel sent them.
    public func dump(_ request: GenericNetlinkRequest, family: UInt16) throws -> [NetlinkAttributes] {
        precondition(request.dump, "\(request.label) is not a dump: use perform(_:family:)")
        return try exchange(request, family: family)
    }

    private func exchange(_ request: GenericNetlinkRequest, family: UInt16) throws -> [NetlinkAttributes] {
        try socket.exchange(request.message(family: family), fixedHeaderSize: MemoryLayout<genlmsghdr>.size).map(\.attributes)
    }
}
