/// What a hook script may be handed. Arguments and environment values can come from
/// the network (a link name learnt from a probe, a tunneldigger client's UUID), and
/// scripts are often shell written without care for quoting: each value is cut to
/// `maximumLength` bytes and every byte outside printable ASCII (0x20–0x7E) becomes
/// `_`, so no value carries a newline, a NUL, an escape sequence or a multi-byte
/// character into a script or a log line. Values are passed in an argv, never through
/// a shell, so `$(…)` and quotes stay literal text.
public enum HookArgument {
    static let maximumLength = 255

    public static func sanitize(_ bytes: some Sequence<UInt8>) -> String {
        var result: [UInt8] = []
        result.reserveCapacity(maximumLength)
        for byte in bytes {
            guard result.count < maximumLength else { break }
            result.append((0x20...0x7e).contains(byte) ? byte : UInt8(ascii: "_"))
        }
        return String(decoding: result, as: UTF8.self)
    }

    static func sanitize(_ string: String) -> String {
        sanitize(string.utf8)
    }

    /// An environment variable's name: sanitised, and without `=`, which would end it.
    static func sanitizeName(_ name: String) -> String {
        String(sanitize(name).map { $0 == "=" ? "_" : $0 })
    }
}
