import Glibc

/// The credentials of each thread of this process, as /proc/self/task/TID/status
/// shows them: how `PrivilegeDrop` proves that no thread kept more than it should
/// (capabilities are per thread in Linux).
struct ThreadCredentials: Equatable {
    var thread: Int32
    /// Real, effective, saved and filesystem ids.
    var uids: [uid_t]
    var gids: [gid_t]
    var inheritable: UInt64
    var permitted: UInt64
    var effective: UInt64
    var bounding: UInt64
    var ambient: UInt64

    /// Every thread's; threads that end while being read are left out.
    static func all() -> [ThreadCredentials] {
        guard let folder = opendir("/proc/self/task") else { return [] }
        defer { closedir(folder) }
        var result: [ThreadCredentials] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let thread = Int32(name), let text = read("/proc/self/task/\(name)/status"),
                  let credentials = parse(text, thread: thread) else { continue }
            result.append(credentials)
        }
        return result
    }

    /// The fields of one status file; nil when one is missing.
    static func parse(_ text: String, thread: Int32) -> ThreadCredentials? {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...]
        }
        func ids(_ key: Substring) -> [UInt32]? {
            guard let value = fields[key] else { return nil }
            let numbers = value.split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
            return numbers.count == 4 ? numbers : nil
        }
        func mask(_ key: Substring) -> UInt64? {
            fields[key].flatMap { UInt64($0.trimmingWhitespace(), radix: 16) }
        }
        guard let uids = ids("Uid"), let gids = ids("Gid"), let inheritable = mask("CapInh"), let permitted = mask("CapPrm"),
              let effective = mask("CapEff"), let bounding = mask("CapBnd"), let ambient = mask("CapAmb") else { return nil }
        return ThreadCredentials(thread: thread, uids: uids, gids: gids, inheritable: inheritable, permitted: permitted,
                                 effective: effective, bounding: bounding, ambient: ambient)
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}
