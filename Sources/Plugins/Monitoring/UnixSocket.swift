import Glibc

/// The small amount of AF_UNIX plumbing the status socket and its client need.
enum UnixSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A sockaddr_un for `path`, or a failure if the path does not fit (108 bytes).
    static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw Failure(description: "status socket path '\(path)' is longer than \(capacity - 1) bytes; choose a shorter 'socket'")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Connect to `path`; the file descriptor, or a failure naming the path.
    static func connect(_ path: String) throws -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            let hint = code == ENOENT ? " (is tunneld running with this site file? see 'status: { socket: … }')"
                : code == EACCES ? " (the socket is mode 0600: run as the user tunneld runs as, usually root)" : ""
            throw Failure(description: "cannot connect to '\(path)': \(String(cString: strerror(code)))\(hint)")
        }
        return fd
    }

    /// Everything the peer sends until it closes (bounded: 64 MiB).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while data.count < 64 << 20 {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return data
    }
}
