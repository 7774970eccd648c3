import Glibc

/// A failed system call, with what was being done, so the user learns what to fix.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    let action: String
    public let code: Int32

    public init(_ action: String, code: Int32 = errno) {
        self.action = action
        self.code = code
    }

    public var description: String {
        var text = "\(action): \(String(cString: strerror(code)))"
        switch code {
        case EPERM, EACCES: text += " (tunneld needs root or CAP_NET_ADMIN for this)"
        case EADDRINUSE: text += " (another process already uses this address and port)"
        case EADDRNOTAVAIL: text += " (no local interface has this address)"
        case ENODEV: text += " (no such network device)"
        case EBUSY: text += " (another process holds this device open; stop it or pick another name)"
        default: break
        }
        return text
    }
}

/// Turn a C shim's `-errno` result into a thrown error.
@discardableResult
func check(_ result: Int32, _ action: @autoclosure () -> String) throws -> Int32 {
    if result < 0 { throw SystemError(action(), code: -result) }
    return result
}
