import Glibc
import XCTest
@testable import Framework

final class UDPLinkTests: XCTestCase {
    /// Receive into `batch` until `want` packets arrived or `timeout` passed.
    private func receive(_ link: UDPLink, into batch: PacketBatch, want: Int, timeout: Double = 3) -> Int {
        let deadline = monotonicSeconds() + timeout
        while batch.count < want && monotonicSeconds() < deadline {
            if link.receive(into: batch) == 0 { usleep(1000) }
        }
        return batch.count
    }

    /// Two loopback links, `a` sending to `b`.
    private func sendingPair() throws -> (UDPLink, UDPLink) {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        a.remote = b.localAddress
        return (a, b)
    }

    func testLocalAddressHasTheKernelsPort() throws {
        let link = try loopbackLink(name: "a", index: 0)
        defer { link.close() }
        XCTAssertEqual(link.localAddress.host, "127.0.0.1")
        XCTAssertNotEqual(link.localAddress.port, 0)
        XCTAssertGreaterThanOrEqual(link.fd, 0)
        link.close()
        XCTAssertEqual(link.fd, -1)
        link.close()
    }

    /// A link that cannot bind throws a SystemError naming the address. Run in a child
    /// process: on this path UDPLink frees its buffers twice (see the report), which
    /// aborts the process.
    func testBindFailureThrowsAndDoesNotCrash() {
        let end = runInChild {
            do {
                // Not a local address: bind fails with EADDRNOTAVAIL (nothing is sent).
                _ = try UDPLink(name: "b", index: 1, bind: SocketAddress.parse("192.0.2.1:0")!, remote: nil, device: nil,
                                settings: Settings(), batchSize: 4)
                _exit(2)
            } catch {
                _exit("\(error)" == "link b: cannot bind 192.0.2.1:0: Cannot assign requested address (no local interface has this address)" ? 0 : 3)
            }
        }
        XCTAssertEqual(end, .exited(0), "UDPLink.init with a failing bind \(end)")
    }

    /// Ten equal packets and a shorter last one go out as one UDP GSO message and arrive
    /// as eleven datagrams, in order, from the sender's address.
    func testSendBatchWithGSOAndReceiveAll() throws {
        let (a, b) = try sendingPair()
        defer { a.close(); b.close() }
        let sizes = Array(repeating: 1200, count: 10) + [333]
        let out = makeBatch(capacity: 16)
        for (i, size) in sizes.enumerated() { out.appendPacket(pattern(size, seed: i), link: 0, sequence: UInt64(i)) }
        XCTAssertEqual(a.send(out), 11)
        XCTAssertTrue(a.gso, "the kernel took the GSO message")
        XCTAssertEqual(a.counters.sentPackets, 11)
        XCTAssertEqual(a.counters.sentBytes, UInt64(sizes.reduce(0, +)))
        XCTAssertTrue((0..<out.count).allSatisfy { out[$0].dropReason == nil })
        // The packets got their destination.
        XCTAssertEqual(out[0].peer, b.localAddress)

        let inbound = makeBatch(capacity: 16)
        XCTAssertEqual(receive(b, into: inbound, want: 11), 11)
        XCTAssertEqual((0..<inbound.count).map { inbound[$0].length }, sizes)
        for i in 0..<inbound.count {
            XCTAssertEqual(inbound.bytes(i), pattern(sizes[i], seed: i), "datagram \(i)")
            XCTAssertEqual(inbound[i].peer, a.localAddress)
            XCTAssertEqual(inbound[i].link, 1)
            XCTAssertNil(inbound[i].dropReason)
            XCTAssertEqual(inbound[i].offset, 64)
        }
        XCTAssertEqual(b.counters.receivedPackets, 11)
        XCTAssertEqual(b.counters.receivedBytes, UInt64(sizes.reduce(0, +)))
        // Nothing more to read.
        XCTAssertEqual(b.receive(into: makeBatch(capacity: 4)), 0)
    }

    /// UDP GRO: a GSO run of 40 arrives as one read, split into 40 packets over batches of
    /// 16 (the rest waits in the link, in order, and says so); with coalesced reads off
    /// the kernel hands over the same 40 datagrams one by one.
    func testCoalescedReadIsSplitAcrossBatchesInOrder() throws {
        for coalescing in [true, false] {
            let a = try loopbackLink(name: "a", index: 0)
            let b = try UDPLink(name: "b", index: 3, bind: SocketAddress.parse("127.0.0.1:0")!, remote: nil, device: nil,
                                settings: Settings(), batchSize: 64, options: UDPLink.Options(coalescedReceive: coalescing))
            defer { a.close(); b.close() }
            XCTAssertEqual(b.receivesCoalesced, coalescing)
            a.remote = b.localAddress
            let sizes = Array(repeating: 1000, count: 39) + [77]
            let out = makeBatch(capacity: 40)
            for (i, size) in sizes.enumerated() { out.appendPacket(pattern(size, seed: i), link: 0) }
            XCTAssertEqual(a.send(out), 40)
            var got: [[UInt8]] = []
            let deadline = monotonicSeconds() + 3
            while got.count < 40 && monotonicSeconds() < deadline {
                let inbound = makeBatch(capacity: 16)
                if b.receive(into: inbound) == 0 { usleep(1000); continue }
                if coalescing && got.isEmpty { XCTAssertTrue(b.hasPendingReads, "24 datagrams wait in the link") }
                for i in 0..<inbound.count {
                    XCTAssertEqual(inbound[i].peer, a.localAddress)
                    XCTAssertEqual(inbound[i].link, 3)
                    XCTAssertEqual(inbound[i].offset, 64)
                    XCTAssertNil(inbound[i].dropReason)
                    got.append(inbound.bytes(i))
                }
            }
            XCTAssertEqual(got.count, 40)
            XCTAssertEqual(got, sizes.enumerated().map { pattern($0.element, seed: $0.offset) }, "coalescing \(coalescing)")
            XCTAssertFalse(b.hasPendingReads)
            XCTAssertEqual(b.coalescedReads > 0, coalescing, "the kernel coalesced the run: \(b.coalescedReads) reads")
            XCTAssertEqual(b.counters.receivedPackets, 40)
            XCTAssertEqual(b.counters.receivedBytes, UInt64(sizes.reduce(0, +)))
        }
    }

    /// A coalesced run whose datagrams are larger than a slot: each is cut and marked
    /// `oversize`, as a datagram read on its own would be.
    func testCoalescedDatagramsLargerThanASlotAreOversize() throws {
        let (a, b) = try sendingPair()
        defer { a.close(); b.close() }
        let out = makeBatch(capacity: 4)
        for i in 0..<3 { out.appendPacket(pattern(500, seed: i), link: 0) }
        XCTAssertEqual(a.send(out), 3)
        let inbound = makeBatch(capacity: 4, slotSize: 256, headroom: 32)
        XCTAssertEqual(receive(b, into: inbound, want: 3), 3)
        for i in 0..<3 {
            XCTAssertEqual(inbound[i].dropReason, .oversize)
            XCTAssertEqual(inbound.bytes(i), Array(pattern(500, seed: i)[0..<224]))
        }
    }

    /// A broker's per-client socket: `SO_REUSEPORT` on the listening port and
    /// `connect()` to one client; the kernel then delivers that client's datagrams to
    /// the connected socket and everyone else's to the listening one.
    func testReusePortAndConnectSplitClientsBetweenSockets() throws {
        let any = SocketAddress.parse("127.0.0.1:0")!
        let listening = try UDPLink(name: "listen", index: 0, bind: any, remote: nil, device: nil, settings: Settings(),
                                    batchSize: 8, options: UDPLink.Options(reusePort: true, pmtuDiscovery: .probe))
        let clientA = try loopbackLink(name: "a", index: 1)
        let clientB = try loopbackLink(name: "b", index: 2)
        let connected = try UDPLink(name: "to-a", index: -1, bind: listening.localAddress, remote: nil, device: nil,
                                    settings: Settings(), batchSize: 8,
                                    options: UDPLink.Options(reusePort: true, connectTo: clientA.localAddress))
        defer { for link in [listening, clientA, clientB, connected] { link.close() } }
        XCTAssertEqual(connected.remote, clientA.localAddress)
        XCTAssertEqual(connected.localAddress, listening.localAddress, "both on the same port")
        for client in [clientA, clientB] {
            XCTAssertTrue([UInt8](repeating: 7, count: 20).withUnsafeBytes { client.sendControl($0, to: listening.localAddress) })
        }
        let toConnected = makeBatch(capacity: 4), toListening = makeBatch(capacity: 4)
        XCTAssertEqual(receive(connected, into: toConnected, want: 1), 1)
        XCTAssertEqual(receive(listening, into: toListening, want: 1), 1)
        XCTAssertEqual(toConnected[0].peer, clientA.localAddress)
        XCTAssertEqual(toListening[0].peer, clientB.localAddress)
    }

    /// Packets of other links are skipped, dropped ones are not sent, and packets that
    /// carry their own peer go there.
    func testSendSelectsPacketsAndPeers() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        let c = try loopbackLink(name: "c", index: 2)
        defer { a.close(); b.close(); c.close() }
        a.remote = b.localAddress
        let out = makeBatch(capacity: 8)
        out.appendPacket(pattern(100, seed: 0), link: 0)
        out.appendPacket(pattern(100, seed: 1), link: 1)  // another link's
        out.appendPacket(pattern(100, seed: 2), link: 0)
        out[2].peer = c.localAddress                       // its own peer
        out.appendPacket(pattern(100, seed: 3), link: 0)
        out.drop(3, .noRoom)                               // already dropped
        out.appendPacket(pattern(100, seed: 4), link: 0)
        XCTAssertEqual(a.send(out), 3)
        XCTAssertEqual(a.counters.sentPackets, 3)

        let atB = makeBatch(capacity: 8), atC = makeBatch(capacity: 8)
        XCTAssertEqual(receive(b, into: atB, want: 2), 2)
        XCTAssertEqual(receive(c, into: atC, want: 1), 1)
        XCTAssertEqual([atB.bytes(0), atB.bytes(1)], [pattern(100, seed: 0), pattern(100, seed: 4)])
        XCTAssertEqual(atC.bytes(0), pattern(100, seed: 2))
    }

    /// A bond interleaves its links packet by packet: each link still sends its share as
    /// one GSO run (the receiver, reading coalesced, gets it in one read), in order.
    func testInterleavedLinksEachSendOneRun() throws {
        let (a, b) = try sendingPair()
        defer { a.close(); b.close() }
        let out = makeBatch(capacity: 32)
        for i in 0..<20 { out.appendPacket(pattern(1200, seed: i), link: Int32(i % 2)) }
        out.drop(4, .noRoom)  // a dropped packet of this link inside the run
        XCTAssertEqual(a.send(out), 9)
        XCTAssertTrue(a.gso)
        XCTAssertTrue(b.receivesCoalesced)
        let inbound = makeBatch(capacity: 16)
        XCTAssertEqual(receive(b, into: inbound, want: 9), 9)
        XCTAssertEqual(b.coalescedReads, 1, "the nine datagrams went as one GSO message")
        let expected = stride(from: 0, to: 20, by: 2).filter { $0 != 4 }
        XCTAssertEqual((0..<inbound.count).map { inbound.bytes($0) }, expected.map { pattern(1200, seed: $0) })
        XCTAssertTrue((0..<out.count).allSatisfy { $0 == 4 || out[$0].dropReason == nil })
    }

    func testNoRemoteMeansNoLink() throws {
        let a = try loopbackLink(name: "a", index: 0)
        defer { a.close() }
        let out = makeBatch(capacity: 2)
        out.appendPacket([1, 2, 3])
        XCTAssertEqual(a.send(out), 0)
        XCTAssertEqual(out[0].dropReason, .noLink)
        XCTAssertEqual(a.counters.sentPackets, 0)
    }

    func testOversizeDatagramIsMarked() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        defer { a.close(); b.close() }
        let big = pattern(500, seed: 5), small = pattern(224, seed: 6)
        XCTAssertTrue(big.withUnsafeBytes { a.sendControl($0, to: b.localAddress) })
        XCTAssertTrue(small.withUnsafeBytes { a.sendControl($0, to: b.localAddress) })
        XCTAssertEqual(a.counters.sentPackets, 2)
        // 256-byte slots with 32 headroom: room for 224 bytes.
        let inbound = makeBatch(capacity: 4, slotSize: 256, headroom: 32)
        XCTAssertEqual(receive(b, into: inbound, want: 2), 2)
        XCTAssertEqual(inbound[0].dropReason, .oversize)
        XCTAssertEqual(inbound[0].length, 224)
        XCTAssertEqual(inbound.bytes(0), Array(big[0..<224]))
        XCTAssertNil(inbound[1].dropReason, "a datagram that exactly fills the room is fine")
        XCTAssertEqual(inbound.bytes(1), small)
        // Counted as dropped once the batch is cleaned.
        let counters = TrafficCounters()
        inbound.dropCounters = counters
        inbound.removeDropped()
        XCTAssertEqual(counters.drops(.oversize), 1)
        XCTAssertEqual(inbound.count, 1)
    }

    /// Tailroom is kept free: a datagram that would reach into it is oversize.
    func testReceiveLeavesTailroomFree() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        defer { a.close(); b.close() }
        let data = pattern(200, seed: 1)
        XCTAssertTrue(data.withUnsafeBytes { a.sendControl($0, to: b.localAddress) })
        let inbound = makeBatch(capacity: 2, slotSize: 256, headroom: 32, tailroom: 32)  // room: 192
        XCTAssertEqual(receive(b, into: inbound, want: 1), 1)
        XCTAssertEqual(inbound[0].dropReason, .oversize)
        XCTAssertEqual(inbound[0].length, 192)
    }

    /// Receive appends after packets already in the batch and stops when it is full.
    func testReceiveFillsOnlyFreeRecords() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1, batchSize: 8)
        defer { a.close(); b.close() }
        for i in 0..<5 {
            let data = [UInt8(i)]
            XCTAssertTrue(data.withUnsafeBytes { a.sendControl($0, to: b.localAddress) })
        }
        let inbound = makeBatch(capacity: 3)
        inbound.appendPacket([0xee], sequence: 99)
        XCTAssertEqual(receive(b, into: inbound, want: 3), 3)
        XCTAssertEqual((0..<3).map { inbound.bytes($0) }, [[0xee], [0], [1]])
        XCTAssertEqual(b.receive(into: inbound), 0, "full batch: nothing read")
        inbound.reset()
        XCTAssertEqual(receive(b, into: inbound, want: 3), 3)
        XCTAssertEqual((0..<3).map { inbound.bytes($0) }, [[2], [3], [4]])
    }

    /// IPv6 loopback, both ways.
    func testIPv6Loopback() throws {
        let bind = SocketAddress.parse("[::1]:0")!
        let a = try UDPLink(name: "a", index: 0, bind: bind, remote: nil, device: nil, settings: Settings(), batchSize: 8)
        let b = try UDPLink(name: "b", index: 0, bind: bind, remote: nil, device: nil, settings: Settings(), batchSize: 8)
        defer { a.close(); b.close() }
        a.remote = b.localAddress
        let out = makeBatch(capacity: 4)
        for i in 0..<3 { out.appendPacket(pattern(700, seed: i)) }
        XCTAssertEqual(a.send(out), 3)
        let inbound = makeBatch(capacity: 4)
        XCTAssertEqual(receive(b, into: inbound, want: 3), 3)
        XCTAssertEqual((0..<3).map { inbound.bytes($0) }, (0..<3).map { pattern(700, seed: $0) })
        XCTAssertEqual(inbound[0].peer, a.localAddress)
        XCTAssertEqual(inbound[0].peer.description, "[::1]:\(a.localAddress.port)")
    }
}
