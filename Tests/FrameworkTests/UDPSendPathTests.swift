import Glibc
import XCTest
@testable import Framework

/// Batched sending in detail: several sendmmsg rounds, the fallback when the kernel
/// refuses UDP GSO, and the `udp` transport stage.
final class UDPSendPathTests: XCTestCase {
    private func receiveAll(_ link: UDPLink, want: Int, timeout: Double = 3) -> [[UInt8]] {
        let batch = makeBatch(capacity: 64)
        let deadline = monotonicSeconds() + timeout
        while batch.count < want && monotonicSeconds() < deadline {
            if link.receive(into: batch) == 0 { usleep(1000) }
        }
        return (0..<batch.count).map { batch.bytes($0) }
    }

    /// A link whose batch size (4) is smaller than the batch: several sendmmsg rounds,
    /// runs cut at the link's iovec limit, order kept.
    func testMoreRunsThanTheLinkBatchSize() throws {
        let a = try loopbackLink(name: "a", index: 0, batchSize: 4)
        let b = try loopbackLink(name: "b", index: 1, batchSize: 16)
        defer { a.close(); b.close() }
        a.remote = b.localAddress
        let sizes = [500, 500, 500, 500, 500, 500, 100, 800, 800, 20, 300, 300, 300]
        let out = makeBatch(capacity: 16)
        for (i, size) in sizes.enumerated() { out.appendPacket(pattern(size, seed: i)) }
        XCTAssertEqual(a.send(out), sizes.count)
        XCTAssertEqual(a.counters.sentPackets, UInt64(sizes.count))
        let got = receiveAll(b, want: sizes.count)
        XCTAssertEqual(got.map(\.count), sizes)
        XCTAssertEqual(got, sizes.enumerated().map { pattern($0.element, seed: $0.offset) })
    }

    /// With SO_NO_CHECK the kernel refuses UDP GSO (EINVAL), so the link falls back to
    /// one datagram per packet. Every packet still arrives, and `send` and the link's
    /// counters must count every packet sent, including those sent by the sendmmsg
    /// call before the refused message (see the report).
    func testFallbackWhenTheKernelRefusesGSO() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        defer { a.close(); b.close() }
        var one: Int32 = 1
        XCTAssertEqual(setsockopt(a.fd, SOL_SOCKET, 11 /* SO_NO_CHECK */, &one, 4), 0)
        a.remote = b.localAddress
        // A lone packet (sent without GSO: the next is larger, so no run), then a run of
        // three equal packets (one GSO message, which the kernel refuses).
        let sizes = [100, 400, 400, 400]
        let out = makeBatch(capacity: 8)
        for (i, size) in sizes.enumerated() { out.appendPacket(pattern(size, seed: i)) }
        let sent = a.send(out)
        XCTAssertFalse(a.gso, "GSO switched off after EINVAL")
        let got = receiveAll(b, want: 4)
        XCTAssertEqual(got, sizes.enumerated().map { pattern($0.element, seed: $0.offset) }, "all four arrive, in order")
        XCTAssertTrue((0..<out.count).allSatisfy { out[$0].dropReason == nil })
        XCTAssertEqual(sent, 4, "send returns the number of packets sent")
        XCTAssertEqual(a.counters.sentPackets, 4)
        XCTAssertEqual(a.counters.sentBytes, 1300)

        // Later batches go without GSO from the start.
        let again = makeBatch(capacity: 4)
        for i in 0..<3 { again.appendPacket(pattern(300, seed: 10 + i)) }
        XCTAssertEqual(a.send(again), 3)
        XCTAssertEqual(receiveAll(b, want: 3), (0..<3).map { pattern(300, seed: 10 + $0) })
    }

    func testTransportStageSendsAndCountsNoLink() throws {
        let a = try loopbackLink(name: "a", index: 0)
        let b = try loopbackLink(name: "b", index: 1)
        defer { a.close(); b.close() }
        a.remote = b.localAddress
        let stage = UDPTransportStage { [a] }
        let out = makeBatch(capacity: 8)
        out.appendPacket(pattern(64, seed: 0), link: 0)
        out.appendPacket(pattern(64, seed: 1), link: 3)   // no such link
        out.appendPacket(pattern(64, seed: 2), link: -1)  // no such link
        out.appendPacket(pattern(64, seed: 3), link: 0)
        let counters = TrafficCounters()
        out.dropCounters = counters
        stage.send(out)
        XCTAssertEqual(out.count, 0, "the transport is a sink")
        XCTAssertEqual(counters.drops(.noLink), 2)
        XCTAssertEqual(counters.drops(.sendFailed), 0)
        XCTAssertEqual(receiveAll(b, want: 2), [pattern(64, seed: 0), pattern(64, seed: 3)])
    }

    func testTransportStageWithTwoLinks() throws {
        let a0 = try loopbackLink(name: "a0", index: 0)
        let a1 = try loopbackLink(name: "a1", index: 1)
        let b0 = try loopbackLink(name: "b0", index: 0)
        let b1 = try loopbackLink(name: "b1", index: 1)
        defer { [a0, a1, b0, b1].forEach { $0.close() } }
        a0.remote = b0.localAddress
        a1.remote = b1.localAddress
        let stage = UDPTransportStage { [a0, a1] }
        let out = makeBatch(capacity: 8)
        for i in 0..<6 { out.appendPacket(pattern(90, seed: i), link: Int32(i % 2)) }
        stage.send(out)
        XCTAssertEqual(out.count, 0)
        XCTAssertEqual(receiveAll(b0, want: 3), [0, 2, 4].map { pattern(90, seed: $0) })
        XCTAssertEqual(receiveAll(b1, want: 3), [1, 3, 5].map { pattern(90, seed: $0) })
        XCTAssertEqual(a0.counters.sentPackets, 3)
        XCTAssertEqual(a1.counters.sentPackets, 3)
    }
}
