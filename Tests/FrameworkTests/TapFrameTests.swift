import Glibc
import Logging
import TestSupport
import XCTest
@testable import Framework

/// The `tap` stage's size checks, in a running `plain-tap` tunnel: a real TAP device
/// (MTU 1400, no address, so nothing is routed through it) and a real UDP link on
/// 127.0.0.1 whose peer is a socket of this test. A frame shorter than an Ethernet
/// header (14 bytes) is `truncated`; one longer than MTU + 14 + 4 (one VLAN tag), 1418
/// here, is `oversize`; both are counted on the session, and frames of exactly 14 and
/// 1418 bytes pass. Frames go both ways: from the peer toward the device, and from
/// the kernel (a packet socket sending on the TAP) toward the peer.
final class TapFrameTests: XCTestCase {
    private var tunnel: Tunnel?
    private var peer: PeerSocket!

    /// An EtherType for local experiments (IEEE 802 "local experimental 1"): the kernel
    /// handles no such frames, and the peer tells the test's frames from anything the
    /// kernel sends on its own (IPv6 router solicitations and the like) by it.
    private static let etherType: UInt16 = 0x88B5
    private static let mtu = 1400
    private static let maxFrame = mtu + 14 + 4

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("a TAP device needs root (or CAP_NET_ADMIN)") }
        let probe = open("/dev/net/tun", O_RDWR)
        guard probe >= 0 else { throw XCTSkip("no /dev/net/tun here") }
        close(probe)
        peer = PeerSocket()
        let site = """
            profile: plain-tap
            device: { name: "tltapf%d", mtu: \(TapFrameTests.mtu) }
            links:
              - { name: lo, bind: "127.0.0.1:0", remote: "\(peer.address)" }
            """
        let tunnel = try Tunnel(spec: try loadSite(site), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        self.tunnel = tunnel
        try tunnel.start()
    }

    override func tearDown() {
        tunnel?.shutdown()  // closes the device: the kernel removes it
        tunnel = nil
        peer = nil
    }

    // MARK: helpers

    private var session: Session { tunnel!.manager!.sessions[0] }

    /// Every non-zero drop counter of `counters`, by name.
    private func drops(_ counters: TrafficCounters) -> [String: UInt64] {
        Dictionary(uniqueKeysWithValues: counters.dropSummary(names: tunnel!.dropReasons.names))
    }

    /// Serve the tunnel's events until `condition` holds or two seconds pass.
    @discardableResult
    private func pump(until condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.now() + 2
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            tunnel!.loop.poll(timeoutMilliseconds: 1)
        }
        return condition()
    }

    /// Serve events for a while longer: whatever would still be counted is counted.
    private func settle() {
        let deadline = MonotonicClock.now() + 0.2
        while MonotonicClock.now() < deadline { tunnel!.loop.poll(timeoutMilliseconds: 1) }
    }

    /// A broadcast frame of exactly `length` bytes with the test's EtherType (or, with
    /// `vlan`, an 802.1Q tag in front of it); the payload counts up from `seed`.
    private func frame(_ length: Int, seed: UInt8 = 0, vlan: Bool = false) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xFF, count: 6) + [0x02, 0, 0, 0, 0, 0x01]
        if vlan { bytes += [0x81, 0x00, 0x00, 0x07] }  // TPID, VLAN 7
        bytes += [UInt8(TapFrameTests.etherType >> 8), UInt8(TapFrameTests.etherType & 0xFF)]
        var next = seed
        while bytes.count < length {
            bytes.append(next)
            next &+= 1
        }
        return Array(bytes.prefix(length))
    }

    /// Whether `bytes` is one of the test's frames (tagged or not).
    private func isTestFrame(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 14 else { return false }
        let type = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
        if type == TapFrameTests.etherType { return true }
        return type == 0x8100 && bytes.count >= 18 && (UInt16(bytes[16]) << 8 | UInt16(bytes[17])) == TapFrameTests.etherType
    }

    /// The kernel's own count of frames written into the TAP (`rx` on the interface).
    private func kernelReceived(_ device: String) -> (packets: Int, bytes: Int) {
        func read(_ name: String) -> Int {
            guard let file = fopen("/sys/class/net/\(device)/statistics/\(name)", "r") else { return -1 }
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 32)
            guard fgets(&buffer, 32, file) != nil else { return -1 }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return Int(text.trimmingWhitespace()) ?? -1
        }
        return (read("rx_packets"), read("rx_bytes"))
    }

    // MARK: tests

    /// From the network: datagrams of 1 and 13 bytes (0 bytes is the link's own
    /// `truncated`, a tunnel counter, so 1 is the shortest the stage sees), 1419 (one
    /// byte over) and 1500 (a full frame from a peer with a 1500-byte MTU). Frames of
    /// exactly 14 and 1418 bytes (one VLAN tag at the full MTU) reach the device, and
    /// the kernel counts them on the interface.
    func testFramesFromThePeerOutsideEthernetSizesAreCountedAndTheRestReachTheDevice() throws {
        let tunnel = try XCTUnwrap(tunnel)
        let device = try XCTUnwrap(tunnel.device)
        let kernelBefore = kernelReceived(device.name)
        XCTAssertEqual(kernelBefore.packets, 0, "nothing writes into a new TAP but the tunnel")
        let target = tunnel.links[0].localAddress
        let good = [frame(14), frame(TapFrameTests.maxFrame, seed: 1, vlan: true)]
        for bytes in [[0x42], frame(13), good[0], frame(TapFrameTests.maxFrame + 1), good[1], frame(1500)] {
            peer.send(bytes, to: target)
        }
        let done = pump { session.counters.drops(.truncated) + session.counters.drops(.oversize) == 4 && device.counters.receivedPackets == 2 }
        XCTAssertTrue(done, "session drops: \(drops(session.counters)), written \(device.counters.receivedPackets)")
        settle()
        XCTAssertEqual(drops(session.counters), ["truncated": 2, "oversize": 2])
        XCTAssertEqual(drops(tunnel.counters), [:], "the stage's drops are the session's, not the tunnel's")
        // (The session's rx_packets is 6: it counts what reaches the egress stage, before
        // the stage's own check drops four.)
        XCTAssertEqual(device.counters.receivedPackets, 2, "written to the device")
        XCTAssertEqual(device.counters.receivedBytes, UInt64(14 + TapFrameTests.maxFrame))
        XCTAssertEqual(drops(device.counters), [:], "no write failed")
        let kernel = kernelReceived(device.name)
        XCTAssertEqual(kernel.packets, 2, "the kernel took both good frames")
        XCTAssertEqual(kernel.bytes, 14 + TapFrameTests.maxFrame)
    }

    /// From the device: what the kernel transmits on the TAP is what the tunnel reads.
    /// A packet socket sends a 60-byte frame and a tagged 1418-byte one: both reach the
    /// peer byte for byte. The kernel never sends more than MTU + 14 (+ 4 when tagged),
    /// so an oversize frame needs the MTU raised behind the tunnel's back (an operator's
    /// `ip link set tap0 mtu …`): the stage keeps the limit it was built with, and
    /// 1419- and 1514-byte frames are counted `oversize`, as is a 9014-byte one: longer
    /// than the read's room (1600 bytes), the read returns its first 1600 bytes, and only
    /// the check keeps that cut frame from being sent. A good frame after them passes.
    func testFramesFromTheDeviceOverTheLimitAreCountedAndGoodOnesReachThePeer() throws {
        let tunnel = try XCTUnwrap(tunnel)
        let device = try XCTUnwrap(tunnel.device)
        let sender = try PacketSocket(interface: device.name)
        var arrived: [[UInt8]] = []
        func collect() {
            while let (bytes, _) = peer.receive() {
                if isTestFrame(bytes) { arrived.append(bytes) }
            }
        }

        let good = [frame(60, seed: 3), frame(TapFrameTests.maxFrame, seed: 4, vlan: true)]
        for bytes in good { XCTAssertEqual(sender.send(bytes), bytes.count, "sent on \(device.name): errno \(errno)") }
        XCTAssertTrue(pump { collect(); return arrived.count == 2 }, "arrived: \(arrived.map(\.count))")
        XCTAssertEqual(arrived, good)
        XCTAssertEqual(drops(session.counters), [:])

        try TunDevice.setMTU(9000, interface: device.name)
        let over = [frame(TapFrameTests.maxFrame + 1, seed: 5), frame(1514, seed: 6), frame(9014, seed: 7)]
        for bytes in over { XCTAssertEqual(sender.send(bytes), bytes.count, "sent on \(device.name): errno \(errno)") }
        let after = frame(100, seed: 8)
        XCTAssertEqual(sender.send(after), after.count)
        arrived = []
        XCTAssertTrue(pump { collect(); return session.counters.drops(.oversize) == 3 && arrived.count == 1 },
                      "drops: \(drops(session.counters)), arrived: \(arrived.map(\.count))")
        settle()
        collect()
        XCTAssertEqual(drops(session.counters), ["oversize": 3])
        XCTAssertEqual(arrived, [after], "the oversize frames never reached the peer")
        XCTAssertEqual(drops(tunnel.counters), [:])
    }

    /// A frame shorter than an Ethernet header from the device side. The kernel never
    /// hands the TAP one (a packet socket is refused below the device's header length),
    /// so the frames enter where the device read puts them: the session's pipeline,
    /// through the static manager, as `deviceReadable` does. 13 and 1 bytes are
    /// `truncated`; a 14-byte frame beside them reaches the peer.
    func testFramesFromTheDeviceShorterThanAHeaderAreTruncated() throws {
        let tunnel = try XCTUnwrap(tunnel)
        let batch = PacketBatch(capacity: 4, slotSize: tunnel.slotSize, headroom: tunnel.headroom, tailroom: tunnel.tailroom)
        let header = frame(14, seed: 9)
        for bytes in [frame(13), header, [0x01]] { batch.appendPacket(bytes) }
        tunnel.manager!.outbound(batch)
        var arrived: [[UInt8]] = []
        XCTAssertTrue(pump {
            while let (bytes, _) = peer.receive() { if isTestFrame(bytes) { arrived.append(bytes) } }
            return arrived.count == 1
        })
        settle()
        XCTAssertEqual(arrived, [header])
        XCTAssertEqual(drops(session.counters), ["truncated": 2])
    }
}

/// The tunnel's peer: a UDP socket on 127.0.0.1 (a kernel-chosen port), non-blocking.
private typealias PeerSocket = LoopbackUDPSocket

/// An `AF_PACKET` socket that transmits whole Ethernet frames on one interface: to a
/// TAP, what the kernel transmits is what the device's reader gets.
private final class PacketSocket {
    let fd: Int32
    let index: UInt32

    init(interface: String) throws {
        index = if_nametoindex(interface)
        // Protocol 0: this socket only sends, it receives nothing.
        fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0)
        guard index != 0, fd >= 0 else { throw SystemError("packet socket on \(interface)", code: errno) }
    }

    deinit { close(fd) }

    /// Send one frame; the bytes sent, or -1 (errno set).
    func send(_ frame: [UInt8]) -> Int {
        // struct sockaddr_ll: family, protocol (big-endian), ifindex, hatype, pkttype,
        // halen, addr[8]; 20 bytes. Glibc's module does not export it.
        var address = [UInt8](repeating: 0, count: 20)
        address[0] = UInt8(AF_PACKET & 0xFF)
        address[1] = UInt8(AF_PACKET >> 8)
        withUnsafeBytes(of: Int32(bitPattern: index)) { for (offset, byte) in $0.enumerated() { address[4 + offset] = byte } }
        address[11] = 6
        for offset in 0..<6 { address[12 + offset] = frame[offset] }
        return address.withUnsafeBytes { raw in
            sendto(fd, frame, frame.count, 0, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }
}
