import Glibc
import XCTest
@testable import Framework

final class SocketAddressTests: XCTestCase {
    func testParseIPv4() throws {
        let a = try XCTUnwrap(SocketAddress.parse("192.0.2.1:5080"))
        XCTAssertEqual(a.family, AF_INET)
        XCTAssertEqual(a.port, 5080)
        XCTAssertEqual(a.host, "192.0.2.1")
        XCTAssertEqual(a.description, "192.0.2.1:5080")
        XCTAssertEqual(a.length, socklen_t(MemoryLayout<sockaddr_in>.size))
        XCTAssertTrue(a.isSet)
        // Stored as a sockaddr_in: port and address in network order.
        withUnsafeBytes(of: a.storage) { raw in
            XCTAssertEqual(Array(raw[2..<8]), [0x13, 0xd8, 192, 0, 2, 1])
        }
        XCTAssertEqual(SocketAddress.parse("0.0.0.0:0")?.description, "0.0.0.0:0")
        XCTAssertEqual(SocketAddress.parse("255.255.255.255:65535")?.port, 65535)
    }

    func testParseIPv6() throws {
        let a = try XCTUnwrap(SocketAddress.parse("[2001:db8::1]:5080"))
        XCTAssertEqual(a.family, AF_INET6)
        XCTAssertEqual(a.port, 5080)
        XCTAssertEqual(a.host, "2001:db8::1")
        XCTAssertEqual(a.description, "[2001:db8::1]:5080")
        XCTAssertEqual(a.length, socklen_t(MemoryLayout<sockaddr_in6>.size))
        XCTAssertEqual(SocketAddress.parse("[::]:1")?.description, "[::]:1")
        XCTAssertEqual(SocketAddress.parse("[2001:0db8:0000::0001]:80")?.description, "[2001:db8::1]:80")
        XCTAssertEqual(SocketAddress.parse("[::ffff:192.0.2.1]:80")?.description, "[::ffff:192.0.2.1]:80")
    }

    func testBareAddressNeedsDefaultPort() {
        XCTAssertNil(SocketAddress.parse("192.0.2.1"))
        XCTAssertEqual(SocketAddress.parse("192.0.2.1", defaultPort: 5080)?.description, "192.0.2.1:5080")
        XCTAssertEqual(SocketAddress.parse("2001:db8::1", defaultPort: 5080)?.description, "[2001:db8::1]:5080")
        XCTAssertEqual(SocketAddress.parse("[2001:db8::1]", defaultPort: 7)?.description, "[2001:db8::1]:7")
        XCTAssertNil(SocketAddress.parse("[2001:db8::1]"))
        // An explicit port wins over the default.
        XCTAssertEqual(SocketAddress.parse("192.0.2.1:9", defaultPort: 5080)?.port, 9)
    }

    func testGarbage() {
        for text in ["", ":", ":80", "192.0.2.1:", "192.0.2.1:65536", "192.0.2.1:-1", "192.0.2.1:http", "192.0.2:80",
                     "192.0.2.256:80", "localhost:80", "example.com:5080", "[2001:db8::1]:", "[2001:db8::1]80",
                     "[2001:db8::1", "2001:db8::1]:80", "[2001:db8::g]:80", "2001:db8::1:80", "[]:80", "1.2.3.4:5:6"] {
            XCTAssertNil(SocketAddress.parse(text), "'\(text)' should not parse")
        }
    }

    func testEqualityAndHash() throws {
        let a = try XCTUnwrap(SocketAddress.parse("192.0.2.1:5080"))
        var b = try XCTUnwrap(SocketAddress.parse("192.0.2.1:5080"))
        // Bytes the family does not use do not matter.
        withUnsafeMutableBytes(of: &b.storage) { $0[20] = 0xaa; $0[27] = 0x55 }
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.hashValue, b.hashValue)
        XCTAssertNotEqual(a, SocketAddress.parse("192.0.2.1:5081"))
        XCTAssertNotEqual(a, SocketAddress.parse("192.0.2.2:5080"))
        XCTAssertNotEqual(a, SocketAddress.parse("[::ffff:192.0.2.1]:5080"))
        let v6 = try XCTUnwrap(SocketAddress.parse("[2001:db8::1]:5080"))
        XCTAssertEqual(v6, SocketAddress.parse("[2001:db8:0::1]:5080"))
        XCTAssertNotEqual(v6, SocketAddress.parse("[2001:db8::2]:5080"))
        XCTAssertEqual(Set([a, b, v6, SocketAddress.parse("[2001:db8::1]:5080")!]).count, 2)
        // Unset addresses are equal to each other and to nothing set.
        XCTAssertEqual(SocketAddress(), SocketAddress())
        XCTAssertNotEqual(SocketAddress(), a)
        XCTAssertFalse(SocketAddress().isSet)
        XCTAssertEqual(SocketAddress().description, "-")
        XCTAssertEqual(SocketAddress().host, "-")
    }

    func testInitialisers() {
        var v4 = in_addr()
        inet_pton(AF_INET, "198.51.100.7", &v4)
        XCTAssertEqual(SocketAddress(ipv4: v4, port: 443).description, "198.51.100.7:443")
        var v6 = in6_addr()
        inet_pton(AF_INET6, "fe80::1", &v6)
        let scoped = SocketAddress(ipv6: v6, port: 443, scope: 2)
        XCTAssertEqual(scoped.description, "[fe80::1]:443")
        XCTAssertEqual(scoped.storage.sin6_scope_id, 2)
    }

    // MARK: InterfaceAddress

    func testInterfaceAddressParse() throws {
        let v4 = try XCTUnwrap(InterfaceAddress.parse("10.99.0.1/30"))
        XCTAssertEqual(v4.prefix, 30)
        XCTAssertTrue(v4.isIPv4)
        XCTAssertEqual(v4.description, "10.99.0.1/30")
        var expected = in_addr()
        inet_pton(AF_INET, "10.99.0.1", &expected)
        XCTAssertEqual(v4.family, .ipv4(expected.s_addr))

        let v6 = try XCTUnwrap(InterfaceAddress.parse("fd00::1/64"))
        XCTAssertEqual(v6.prefix, 64)
        XCTAssertFalse(v6.isIPv4)
        XCTAssertEqual(v6.family, .ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))

        XCTAssertEqual(InterfaceAddress.parse("0.0.0.0/0")?.prefix, 0)
        XCTAssertEqual(InterfaceAddress.parse("10.0.0.1/32")?.prefix, 32)
        XCTAssertEqual(InterfaceAddress.parse("::1/128")?.prefix, 128)
        for text in ["10.99.0.1", "10.99.0.1/", "/24", "10.99.0.1/33", "10.99.0.1/-1", "10.99.0.1/24/1", "fd00::1/129",
                     "fd00::1", "10.99.0.256/24", "tun0/24", "10.99.0.1/x", ""] {
            XCTAssertNil(InterfaceAddress.parse(text), "'\(text)' should not parse")
        }
    }
}
