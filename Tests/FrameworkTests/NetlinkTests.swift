import Foundation
import Glibc
import XCTest
@testable import Framework

/// The netlink layer: request bytes, bounds-checked reply parsing, and real requests
/// to this kernel — generic netlink's controller (present on every kernel), and
/// rtnetlink inside a throwaway network namespace so no device of the host is touched.
final class NetlinkTests: XCTestCase {
    // The generic-netlink controller (linux/genetlink.h): id, command, attributes.
    let controllerID: UInt16 = 0x10
    let getFamily: UInt8 = 3
    let familyIDAttribute: UInt16 = 1
    let familyNameAttribute: UInt16 = 2

    func getFamilyRequest(_ name: String, dump: Bool = false) -> GenericNetlinkRequest {
        GenericNetlinkRequest(command: getFamily, version: 1, attributes: dump ? [] : [.string(familyNameAttribute, name)],
                              dump: dump, label: dump ? "GETFAMILY dump" : "GETFAMILY \(name)")
    }

    // MARK: encoding

    func testGetFamilyEncodesAsLibnlSendsIt() {
        // Protocol doc §6.6, with seq 1 and port 0x1234.
        let expected: [UInt8] = [0x20, 0, 0, 0, 0x10, 0, 0x05, 0, 1, 0, 0, 0, 0x34, 0x12, 0, 0,
                                 0x03, 0x01, 0, 0, 0x09, 0, 0x02, 0, 0x6c, 0x32, 0x74, 0x70, 0, 0, 0, 0]
        XCTAssertEqual(getFamilyRequest("l2tp").encoded(family: controllerID, sequence: 1, portID: 0x1234), expected)
    }

    func testHeaderFieldsAndDumpFlags() {
        let request = GenericNetlinkRequest(command: 9, version: 2, attributes: [], dump: true, label: "x")
        let bytes = request.encoded(family: 0xabcd, sequence: 0x0102_0304, portID: 0x0a0b_0c0d)
        XCTAssertEqual(bytes, [20, 0, 0, 0, 0xcd, 0xab, 0x05, 0x03, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, 9, 2, 0, 0])
        XCTAssertTrue(request.message(family: 1).isDump)
        XCTAssertFalse(getFamilyRequest("x").message(family: 1).isDump)
    }

    func testAttributesArePaddedAndStringsCarryTheirNUL() {
        XCTAssertEqual(NetlinkAttribute.encode([.u8(7, 0xaa)]), [5, 0, 7, 0, 0xaa, 0, 0, 0])
        XCTAssertEqual(NetlinkAttribute.encode([.u16(7, 0x1234)]), [6, 0, 7, 0, 0x34, 0x12, 0, 0])
        XCTAssertEqual(NetlinkAttribute.encode([.u32(7, 0x0102_0304)]), [8, 0, 7, 0, 4, 3, 2, 1])
        XCTAssertEqual(NetlinkAttribute.encode([.string(7, "")]), [5, 0, 7, 0, 0, 0, 0, 0])
        XCTAssertEqual(NetlinkAttribute.encode([.string(7, "abc")]), [8, 0, 7, 0, 0x61, 0x62, 0x63, 0])
        XCTAssertEqual(NetlinkAttribute.encode([.string(7, "abcd"), .u8(1, 2)]),
                       [9, 0, 7, 0, 0x61, 0x62, 0x63, 0x64, 0, 0, 0, 0, 5, 0, 1, 0, 2, 0, 0, 0])
    }

    func testLinkRequestsEncodeAnIfinfomsg() throws {
        let header: [UInt8] = [0x28, 0, 0, 0, 17, 0, 5, 0, 1, 0, 0, 0, 0x34, 0x12, 0, 0]  // RTM_DELLINK
        let ifinfo = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(try RouteNetlink.deleteGroupRequest(7).encoded(sequence: 1, portID: 0x1234),
                       header + ifinfo + [8, 0, 27, 0, 7, 0, 0, 0])  // IFLA_GROUP = 27
        let set = RouteNetlink.setGroupRequest(ifindex: 3, group: 9).encoded(sequence: 1, portID: 0x1234)
        XCTAssertEqual(Array(set[4..<6]), [19, 0])  // RTM_SETLINK
        XCTAssertEqual(Array(set[16..<32]), [0, 0, 0, 0, 3, 0, 0, 0] + [UInt8](repeating: 0, count: 8))
        XCTAssertEqual(Array(set[32...]), [8, 0, 27, 0, 9, 0, 0, 0])
    }

    func testGroupZeroIsRefusedBeforeTheKernelSeesIt() {
        XCTAssertThrowsError(try RouteNetlink.deleteGroupRequest(0)) { error in
            XCTAssertEqual((error as? NetlinkError)?.code, EINVAL)
            XCTAssertTrue("\(error)".contains("group 0"), "\(error)")
        }
    }

    // MARK: parsing

    func testAttributesParseBackWithExactWidths() throws {
        let bytes = NetlinkAttribute.encode([.u8(1, 9), .u16(2, 0x0506), .u32(3, 0x0708_090a), .string(4, "nlctrl")])
        let attributes = try XCTUnwrap(NetlinkAttributes(parsing: bytes))
        XCTAssertEqual(attributes.types, [1, 2, 3, 4])
        XCTAssertEqual(attributes.u8(1), 9)
        XCTAssertEqual(attributes.u16(2), 0x0506)
        XCTAssertEqual(attributes.u32(3), 0x0708_090a)
        XCTAssertEqual(attributes.string(4), "nlctrl")
        XCTAssertNil(attributes.u32(2), "a u16 is not read as a u32")
        XCTAssertNil(attributes.u16(3), "a u32 is not read as a u16")
        XCTAssertNil(attributes.u8(5), "absent")
    }

    func testNestedAttributesAndFlagBitsMasked() throws {
        let inner = NetlinkAttribute.encode([.u32(1, 42)])
        // Type 6 with NLA_F_NESTED (0x8000) set, as the kernel sends nests.
        let bytes: [UInt8] = [UInt8(4 + inner.count), 0, 6, 0x80] + inner
        let attributes = try XCTUnwrap(NetlinkAttributes(parsing: bytes))
        XCTAssertEqual(attributes.nested(6)?.u32(1), 42)
    }

    func testMalformedAttributesAreRejected() {
        XCTAssertNil(NetlinkAttributes(parsing: [3, 0, 1, 0]), "length shorter than a header")
        XCTAssertNil(NetlinkAttributes(parsing: [12, 0, 1, 0, 0, 0, 0, 0]), "length past the end")
        XCTAssertNil(NetlinkAttributes(parsing: [8, 0, 1, 0, 0, 0, 0, 0, 1, 0]), "bytes left over")
        XCTAssertNil(NetlinkAttributes(parsing: [5, 0]), "truncated header")
        XCTAssertNotNil(NetlinkAttributes(parsing: [5, 0, 1, 0, 9]), "last padding cut off by the end")
        XCTAssertNotNil(NetlinkAttributes(parsing: []))
    }

    func testMalformedMessagesAreRejected() {
        let good = getFamilyRequest("l2tp").encoded(family: controllerID, sequence: 1, portID: 2)
        XCTAssertEqual(NetlinkReply(bytes: good, fixedHeaderSize: 4)?.attributes.string(familyNameAttribute), "l2tp")
        XCTAssertNil(NetlinkReply(bytes: Array(good.prefix(15)), fixedHeaderSize: 4), "shorter than nlmsghdr")
        XCTAssertNil(NetlinkReply(bytes: Array(good.prefix(28)), fixedHeaderSize: 4), "nlmsg_len past the bytes")
        var short = good
        short[0] = 18
        XCTAssertNil(NetlinkReply(bytes: short, fixedHeaderSize: 4), "nlmsg_len shorter than the fixed header")
        var cut = good
        cut[20] = 0x40  // the attribute claims 64 bytes
        XCTAssertNil(NetlinkReply(bytes: cut, fixedHeaderSize: 4))
    }

    // MARK: generic netlink against this kernel

    func testControllerFamilyResolves() throws {
        XCTAssertEqual(try GenericNetlink().resolve(family: "nlctrl"), controllerID)
    }

    func testAbsentFamiliesResolveToNilQuickly() throws {
        let netlink = try GenericNetlink()
        // No kernel L2TP on these machines (architecture doc §10); the controller
        // tries to load the module first, which must not make the answer slow.
        let start = monotonicSeconds()
        XCTAssertNil(try netlink.resolve(family: "l2tp"))
        XCTAssertLessThan(monotonicSeconds() - start, 0.5)
        XCTAssertNil(try netlink.resolve(family: "tunneld-absent"))
        XCTAssertEqual(try netlink.resolve(family: "nlctrl"), controllerID, "the socket still works")
    }

    func testAcknowledgedRequestReturnsItsReply() throws {
        let replies = try GenericNetlink().perform(getFamilyRequest("nlctrl"), family: controllerID)
        XCTAssertEqual(replies.count, 1)
        XCTAssertEqual(replies.first?.u16(familyIDAttribute), controllerID)
        XCTAssertEqual(replies.first?.string(familyNameAttribute), "nlctrl")
    }

    func testDumpReturnsEveryFamily() throws {
        let families = try GenericNetlink().dump(getFamilyRequest("", dump: true), family: controllerID)
        XCTAssertGreaterThan(families.count, 1)
        XCTAssertTrue(families.contains { $0.string(familyNameAttribute) == "nlctrl" && $0.u16(familyIDAttribute) == controllerID })
    }

    func testKernelErrorCarriesErrnoAndNamesTheRequest() throws {
        let netlink = try GenericNetlink()
        XCTAssertThrowsError(try netlink.perform(getFamilyRequest("tunneld-absent"), family: controllerID)) { error in
            XCTAssertEqual(error as? NetlinkError, NetlinkError(code: ENOENT, request: "GETFAMILY tunneld-absent"))
            XCTAssertEqual("\(error)", "GETFAMILY tunneld-absent: No such file or directory (ENOENT)")
        }
        // The error ended that exchange cleanly: the next request gets its own answer.
        XCTAssertEqual(try netlink.perform(getFamilyRequest("nlctrl"), family: controllerID).first?.u16(familyIDAttribute),
                       controllerID)
    }

    // MARK: rtnetlink in a namespace of our own

    func testGroupOfDevicesGoesInOneRequestInsideANamespace() throws {
        let namespace = try TestNamespace()
        defer { namespace.remove() }
        let count = 50
        // Dummy devices are not built into these kernels; ifb devices are as simple.
        // (Bridges would do too but gain nothing from the batch: each takes ~17 ms.)
        let commands = (0..<count).map { "link add tlg\($0) type ifb" } + ["link add tlkeep type ifb"]
        try namespace.batch(commands)
        XCTAssertEqual(try namespace.links().filter { $0.hasPrefix("tlg") }.count, count)

        let report = try namespace.onThreadInside { () throws -> String in
            let route = try RouteNetlink()
            var indexes: [Int32] = []
            for k in 0..<count {
                guard let index = try route.ifindex(of: "tlg\(k)") else { throw NetlinkError(code: ENODEV, request: "tlg\(k)") }
                indexes.append(index)
            }
            guard try route.ifindex(of: "tl-absent") == nil else { return "an absent device has an index" }
            var start = monotonicSeconds()
            for index in indexes { try route.setGroup(ifindex: index, group: 4711) }
            let setTime = monotonicSeconds() - start
            start = monotonicSeconds()
            try route.deleteGroup(4711)
            let deleteTime = monotonicSeconds() - start
            do {
                try route.deleteGroup(4711)
                return "deleting an empty group succeeded"
            } catch let error as NetlinkError where error.code == ENODEV {}
            do {
                try route.deleteGroup(0)
                return "group 0 was not refused"
            } catch let error as NetlinkError where error.code == EINVAL {}
            print("NetlinkTests: set group on \(count) devices \(Int(setTime * 1000)) ms, deleted the group in \(Int(deleteTime * 1000)) ms")
            return "ok"
        }
        XCTAssertEqual(report, "ok")
        let remaining = try namespace.links()
        XCTAssertEqual(remaining.filter { $0.hasPrefix("tlg") }, [], "every device of the group is gone")
        XCTAssertTrue(remaining.contains("tlkeep"), "a device outside the group remains: \(remaining)")

        try namespace.onThreadInside {
            let route = try RouteNetlink()
            guard let index = try route.ifindex(of: "tlkeep") else { throw NetlinkError(code: ENODEV, request: "tlkeep") }
            try route.deleteLink(ifindex: index)
        }
        XCTAssertFalse(try namespace.links().contains("tlkeep"))
    }
}

/// A network namespace of the test's own (`tl-nl-<pid>-<n>`), so requests that
/// delete devices can only ever delete the test's devices.
final class TestNamespace {
    private nonisolated(unsafe) static var created = 0
    let name: String

    init() throws {
        TestNamespace.created += 1
        name = "tl-nl-\(getpid())-\(TestNamespace.created)"
        try runCommand(["ip", "netns", "add", name])
    }

    /// Remove the namespace and every device in it; safe to call when it is gone.
    func remove() {
        _ = try? runCommand(["ip", "netns", "del", name])
    }

    /// Run `ip` commands (without "ip") inside the namespace in one process.
    func batch(_ commands: [String]) throws {
        try runCommand(["ip", "-n", name, "-batch", "-"], input: commands.joined(separator: "\n") + "\n")
    }

    /// The names of the namespace's devices, as `ip -o link` lists them.
    func links() throws -> [String] {
        try runCommand(["ip", "-n", name, "-o", "link"]).split(separator: "\n").compactMap { line in
            // "3: tlg0: <BROADCAST,...": the second field, without a veth's "@peer".
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count >= 2 else { return nil }
            return String(fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0])
        }
    }

    /// Run `body` on a new thread that entered the namespace (setns moves only the
    /// calling thread, so the test's own threads stay where they are) and ends after.
    func onThreadInside<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let path = "/run/netns/\(name)"
        let outcome = Outcome<T>()
        let thread = Thread {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            defer { if fd >= 0 { close(fd) } }
            if fd < 0 || enterNetworkNamespace(fd) != 0 {
                outcome.result = .failure(SystemError("setns(\(path))"))
            } else {
                outcome.result = Result { try body() }
            }
            outcome.done.signal()
        }
        thread.start()
        outcome.done.wait()
        guard let result = outcome.result else { throw SystemError("namespace thread", code: EIO) }
        return try result.get()
    }
}

/// The result of the namespace thread. `@unchecked Sendable`: written once by that
/// thread before it signals `done`, read by the test only after waiting for it.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
    let done = DispatchSemaphore(value: 0)
}

/// setns(fd, CLONE_NEWNET) for the calling thread. glibc declares setns only with
/// _GNU_SOURCE, which Swift's Glibc module lacks, so it is looked up by name.
private func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "setns") else { return -1 }
    let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET
    return unsafeBitCast(symbol, to: SetNS.self)(fd, cloneNewNet)
}

/// Run a command to completion; its standard output, or an error with its output
/// when it fails.
@discardableResult
func runCommand(_ arguments: [String], input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    if process.terminationStatus != 0 {
        throw SystemError("\(arguments.joined(separator: " ")): \(text)", code: EIO)
    }
    return text
}
