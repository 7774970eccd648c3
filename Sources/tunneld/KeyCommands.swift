import ArgumentParser
import Crypto
import Foundation
import Framework

/// `tunneld genkey`: a new private key (X25519), base64, as `crypto.aead` reads it.
struct GenKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genkey",
        abstract: "Print a new private key (or write it to a file created with mode 0600).",
        discussion: """
        Example:
          tunneld genkey --out /etc/tunneld/site.key && tunneld pubkey /etc/tunneld/site.key
        """)

    @Option(name: .long, help: "Write the key to this new file (mode 0600) instead of standard output.")
    var out: String?

    func run() throws {
        let text = KeyText.encode(X25519KeyPair.generatePrivateKey()) + "\n"
        guard let out else {
            print(text, terminator: "")
            return
        }
        let fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            FileHandle.standardError.write(Data("tunneld: cannot create '\(out)': \(String(cString: strerror(errno))) (an existing key is never overwritten)\n".utf8))
            throw ExitCode(1)
        }
        defer { close(fd) }
        let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard written == text.utf8.count else { throw ExitCode(1) }
    }
}

/// `tunneld pubkey`: the public key of a private key, for the peer's site file.
struct PubKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubkey",
        abstract: "Print the public key of a private key read from a file (mode 0600) or standard input.",
        discussion: """
        Example (give the output to the peer, as its 'peer-public-key'):
          tunneld pubkey /etc/tunneld/site.key
        """)

    @Argument(help: "The private key file; standard input when omitted.")
    var file: String?

    func run() throws {
        let text: String
        if let file {
            do { text = try SecretFile.read(file) } catch {
                FileHandle.standardError.write(Data("tunneld: \(error)\n".utf8))
                throw ExitCode(1)
            }
        } else {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let key = KeyText.decode(text) else {
            FileHandle.standardError.write(Data("tunneld: not a private key (44 characters of base64, as 'tunneld genkey' prints)\n".utf8))
            throw ExitCode(1)
        }
        print(KeyText.encode(X25519KeyPair(privateKey: key).publicKey))
    }
}
