import Glibc

/// Reading a file that holds a secret (a private key, a passphrase, a pre-shared key).
///
/// The file must be readable by its owner only: a key that other local users can read
/// is a key an attacker may already have, so `tunneld` refuses to start rather than
/// warn. While a site file loads, it must also be owned by the daemon's user
/// (`DaemonUser.checkingFiles`): another user could replace the key, and after giving
/// up root the daemon reads it again (reloads, sessions made at run time). The error
/// names the file and the command that fixes it.
public enum SecretFile {
    /// Largest secret file accepted; keys and passphrases are tiny.
    static let maxBytes = 4096

    struct Refusal: Error, CustomStringConvertible, Equatable {
        let description: String
    }

    /// The file's text with surrounding whitespace removed.
    public static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let why = code == ENOENT ? "no such file" : String(cString: strerror(code))
            throw Refusal(description: "cannot read secret file '\(path)': \(why)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Refusal(description: "secret file '\(path)' is not a regular file")
        }
        if let user = DaemonUser.checkingFiles, info.st_uid != user.uid {
            throw Refusal(description: "secret file '\(path)' is owned by \(DaemonUser.userName(info.st_uid)), not by \(user.name), "
                + "the user tunneld runs as; give it to that user with 'chown \(user.name) \(path)'")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw Refusal(description: "secret file '\(path)' is readable by group or others (mode \(String(mode, radix: 8))); "
                + "make it private with 'chmod 600 \(path)'")
        }
        var buffer = [UInt8](repeating: 0, count: maxBytes + 1)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            total += n
        }
        defer { buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, $0.count) } }
        guard total <= maxBytes else { throw Refusal(description: "secret file '\(path)' is larger than \(maxBytes) bytes; it should hold one key or passphrase") }
        guard let text = String(validating: buffer[0..<total], as: UTF8.self) else {
            throw Refusal(description: "secret file '\(path)' is not UTF-8 text; it should hold a key as `tunneld genkey` writes it (base64 text) or a passphrase in UTF-8")
        }
        return text.trimmingWhitespace()
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line breaks (no Foundation here).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
