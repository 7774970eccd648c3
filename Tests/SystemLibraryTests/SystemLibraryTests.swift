import CNetlink
import CSodium
import CYAML
import XCTest

/// The system-library targets resolve through pkg-config and link: one real call
/// into each library.
final class SystemLibraryTests: XCTestCase {
    func testLibsodiumInitialisesAndSeals() {
        XCTAssertGreaterThanOrEqual(sodium_init(), 0)
        var key = [UInt8](repeating: 7, count: Int(crypto_aead_chacha20poly1305_ietf_KEYBYTES))
        var nonce = [UInt8](repeating: 0, count: Int(crypto_aead_chacha20poly1305_ietf_NPUBBYTES))
        let message: [UInt8] = Array("tunneld".utf8)
        var sealed = [UInt8](repeating: 0, count: message.count + Int(crypto_aead_chacha20poly1305_ietf_ABYTES))
        var sealedLength: UInt64 = 0
        XCTAssertEqual(crypto_aead_chacha20poly1305_ietf_encrypt(&sealed, &sealedLength, message, UInt64(message.count),
                                                                 nil, 0, nil, &nonce, &key), 0)
        XCTAssertEqual(Int(sealedLength), message.count + 16)
    }

    func testLibyamlReportsItsVersion() {
        XCTAssertTrue(String(cString: yaml_get_version_string()).hasPrefix("0."))
    }

    func testLibnlAllocatesASocket() {
        let socket = nl_socket_alloc()
        XCTAssertNotNil(socket)
        nl_socket_free(socket)
    }
}
