import XCTest
@testable import Bonding
import Framework

final class PrefixTableTests: XCTestCase {
    private func assertRouteError(_ lines: [String], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let table = try PrefixTable.parse(lines)
            XCTFail("expected an error, got \(table.entries.count) entries", file: file, line: line)
        } catch let error as ConfigurationError {
            XCTAssertEqual(error.description, expected, file: file, line: line)
        } catch {
            XCTFail("expected a ConfigurationError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    private func v4(source: [UInt8], destination: [UInt8], _ packets: TestPackets) -> Packet {
        packets.make(testIPv4(protocol: 17, source: source, destination: destination))
    }

    private func v6(source: String, destination: String, _ packets: TestPackets) -> Packet {
        packets.make(testIPv6(nextHeader: 17, source: testIPv6Address(source), destination: testIPv6Address(destination)))
    }

    // MARK: parsing

    func testParsesNamesAndPrefixesSortedLongestFirst() throws {
        let table = try PrefixTable.parse(["site-a=10.10.1.0/24 fd00:a::/64", "site-b = 10.0.0.0/8"])
        XCTAssertEqual(table.owners, ["site-a", "site-b"])
        XCTAssertEqual(table.entries.map(\.prefix), [64, 24, 8])
        XCTAssertEqual(table.entries.map(\.owner), ["site-a", "site-a", "site-b"])
    }

    func testEmptyListGivesEmptyTable() throws {
        let table = try PrefixTable.parse([])
        XCTAssertTrue(table.entries.isEmpty)
        let packets = TestPackets()
        XCTAssertNil(table.owner(of: v4(source: [10, 0, 0, 1], destination: [10, 0, 0, 2], packets), destination: true))
    }

    func testLineWithoutEqualsIsRejected() {
        assertRouteError(["site-a"], "route 'site-a' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
    }

    func testLineWithoutNameOrPrefixesIsRejected() {
        assertRouteError(["=10.0.0.0/8"], "route '=10.0.0.0/8' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
        assertRouteError(["site-a="], "route 'site-a=' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
        assertRouteError(["site-a=   "], "route 'site-a=   ' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
    }

    func testBadPrefixIsNamedInTheError() {
        assertRouteError(["site-a=10.10.1.0/33"],
                         "route 'site-a=10.10.1.0/33': '10.10.1.0/33' is not an address/prefix such as 10.10.1.0/24")
        assertRouteError(["site-a=10.10.1.0/24 nonsense"],
                         "route 'site-a=10.10.1.0/24 nonsense': 'nonsense' is not an address/prefix such as 10.10.1.0/24")
        assertRouteError(["site-a=10.10.1.0"],
                         "route 'site-a=10.10.1.0': '10.10.1.0' is not an address/prefix such as 10.10.1.0/24")
        assertRouteError(["site-b=fd00::/129"],
                         "route 'site-b=fd00::/129': 'fd00::/129' is not an address/prefix such as 10.10.1.0/24")
    }

    func testErrorInLaterLineIsReported() {
        assertRouteError(["site-a=10.0.0.0/8", "site-b"],
                         "route 'site-b' is not NAME=PREFIX [PREFIX…], e.g. site-a=10.10.1.0/24")
    }

    // MARK: IPv4 lookups

    func testLongestIPv4PrefixWinsWhateverTheOrder() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["wide=10.0.0.0/8", "narrow=10.10.1.0/24", "middle=10.10.0.0/16"])
        XCTAssertEqual(table.owner(of: v4(source: [1, 1, 1, 1], destination: [10, 10, 1, 5], packets), destination: true), "narrow")
        XCTAssertEqual(table.owner(of: v4(source: [1, 1, 1, 1], destination: [10, 10, 2, 5], packets), destination: true), "middle")
        XCTAssertEqual(table.owner(of: v4(source: [1, 1, 1, 1], destination: [10, 20, 0, 1], packets), destination: true), "wide")
        XCTAssertNil(table.owner(of: v4(source: [1, 1, 1, 1], destination: [192, 168, 1, 1], packets), destination: true))
    }

    func testIPv4SourceAndDestinationAreLookedUpSeparately() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["site-a=10.10.1.0/24", "site-b=10.20.0.0/16"])
        let packet = v4(source: [10, 10, 1, 7], destination: [10, 20, 3, 4], packets)
        XCTAssertEqual(table.owner(of: packet, destination: false), "site-a")
        XCTAssertEqual(table.owner(of: packet, destination: true), "site-b")
    }

    func testIPv4PrefixBoundaries() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["site=192.168.4.0/22"])
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [192, 168, 4, 0], packets), destination: true), "site")
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [192, 168, 7, 255], packets), destination: true), "site")
        XCTAssertNil(table.owner(of: v4(source: [0, 0, 0, 0], destination: [192, 168, 3, 255], packets), destination: true))
        XCTAssertNil(table.owner(of: v4(source: [0, 0, 0, 0], destination: [192, 168, 8, 0], packets), destination: true))
    }

    func testIPv4DefaultRouteMatchesEverythingLast() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["hub=0.0.0.0/0", "site=10.1.0.0/16"])
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [8, 8, 8, 8], packets), destination: true), "hub")
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [10, 1, 2, 3], packets), destination: true), "site")
    }

    func testIPv4HostRoute() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["host=10.0.0.5/32", "net=10.0.0.0/24"])
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [10, 0, 0, 5], packets), destination: true), "host")
        XCTAssertEqual(table.owner(of: v4(source: [0, 0, 0, 0], destination: [10, 0, 0, 6], packets), destination: true), "net")
    }

    func testIPv4PacketIgnoresIPv6Entries() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["v6=::/0"])
        XCTAssertNil(table.owner(of: v4(source: [10, 0, 0, 1], destination: [10, 0, 0, 2], packets), destination: true))
    }

    func testPacketShorterThanIPv4HeaderHasNoOwner() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["all=0.0.0.0/0"])
        let short = packets.make(Array(testIPv4(protocol: 17, transportBytes: 0)[0..<19]))
        XCTAssertNil(table.owner(of: short, destination: true))
    }

    // MARK: IPv6 lookups

    func testLongestIPv6PrefixWins() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["wide=fd00:a::/32", "narrow=fd00:a:0:5::/64"])
        XCTAssertEqual(table.owner(of: v6(source: "2001:db8::1", destination: "fd00:a:0:5::9", packets), destination: true), "narrow")
        XCTAssertEqual(table.owner(of: v6(source: "2001:db8::1", destination: "fd00:a:0:6::9", packets), destination: true), "wide")
        XCTAssertNil(table.owner(of: v6(source: "2001:db8::1", destination: "fd00:b::1", packets), destination: true))
    }

    func testIPv6SourceAndDestinationAreLookedUpSeparately() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["site-a=10.10.1.0/24 fd00:a::/64", "site-b=fd00:b::/64"])
        let packet = v6(source: "fd00:a::10", destination: "fd00:b::20", packets)
        XCTAssertEqual(table.owner(of: packet, destination: false), "site-a")
        XCTAssertEqual(table.owner(of: packet, destination: true), "site-b")
    }

    func testIPv6PrefixNotOnAByteBoundary() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["site=fd00:a:0:10::/60"])
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a:0:10::1", packets), destination: true), "site")
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a:0:1f::1", packets), destination: true), "site")
        XCTAssertNil(table.owner(of: v6(source: "::1", destination: "fd00:a:0:20::1", packets), destination: true))
        XCTAssertNil(table.owner(of: v6(source: "::1", destination: "fd00:a:0:0f::1", packets), destination: true))
    }

    func testIPv6PacketIgnoresIPv4Entries() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["v4=0.0.0.0/0"])
        XCTAssertNil(table.owner(of: v6(source: "fd00::1", destination: "fd00::2", packets), destination: true))
    }

    func testIPv6DefaultRouteMatchesAnyAddress() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["hub=::/0"])
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "2001:db8::99", packets), destination: true), "hub")
    }

    func testPacketShorterThanIPv6HeaderHasNoOwner() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["hub=::/0"])
        let full = testIPv6(nextHeader: 17, transportBytes: 0)
        XCTAssertNil(table.owner(of: packets.make(Array(full[0..<39])), destination: true))
        XCTAssertEqual(table.owner(of: packets.make(full), destination: true), "hub")
    }

    func testIPv6PrefixesInTheLowHalfAndHostRoutes() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["half=fd00:a::8000:0:0:0/65", "host=fd00:a::1/128", "all=::/0"])
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a::8000:0:0:5", packets), destination: true), "half")
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a::7fff:0:0:5", packets), destination: true), "all")
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a::1", packets), destination: true), "host")
        XCTAssertEqual(table.owner(of: v6(source: "::1", destination: "fd00:a::2", packets), destination: true), "all")
    }

    func testOwnersAreNumberedInTheOrderTheRoutesNameThem() throws {
        let packets = TestPackets()
        let table = try PrefixTable.parse(["b=10.2.0.0/16", "a=10.1.0.0/16 10.3.0.0/16", "b=10.4.0.0/16"])
        XCTAssertEqual(table.names, ["b", "a"])
        XCTAssertEqual(table.ownerIndex(of: v4(source: [0, 0, 0, 0], destination: [10, 3, 0, 1], packets), destination: true), 1)
        XCTAssertEqual(table.ownerIndex(of: v4(source: [0, 0, 0, 0], destination: [10, 4, 0, 1], packets), destination: true), 0)
    }
}
