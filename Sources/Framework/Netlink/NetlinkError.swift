import Glibc

/// A netlink request that failed: the kernel's errno and which request it was, so a
/// log line reads "SESSION_CREATE tunnel 100 session 100: File exists (EEXIST)".
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kernel's errno (EEXIST, ENODEV, …); for a failure inside libnl or a
    /// malformed reply, the closest errno (EIO, EBADMSG) and a `detail`.
    public let code: Int32
    /// The request, as its description names it.
    let request: String
    /// Said instead of strerror when the errno alone would mislead.
    let detail: String?

    init(code: Int32, request: String, detail: String? = nil) {
        self.code = code
        self.request = request
        self.detail = detail
    }

    public var description: String {
        if let detail { return "\(request): \(detail)" }
        return "\(request): \(String(cString: strerror(code))) (\(NetlinkError.name(of: code)))"
    }

    /// The symbolic name of the errnos the kernel's netlink handlers answer with;
    /// the number for any other.
    static func name(of code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case EBADF: return "EBADF"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case EINVAL: return "EINVAL"
        case ERANGE: return "ERANGE"
        case EMSGSIZE: return "EMSGSIZE"
        case EPROTONOSUPPORT: return "EPROTONOSUPPORT"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case EAFNOSUPPORT: return "EAFNOSUPPORT"
        case ENOBUFS: return "ENOBUFS"
        case EBADMSG: return "EBADMSG"
        default: return "errno \(code)"
        }
    }
}
