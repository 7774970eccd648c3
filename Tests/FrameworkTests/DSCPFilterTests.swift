import Logging
import XCTest
@testable import Framework
import ExampleStages

final class DSCPFilterTests: XCTestCase {
    final class PassThrough: Stage {}

    /// Build the stage the way a tunnel does: from a site file, through its descriptor.
    private func filter(_ settings: String) throws -> (Pipeline, TrafficCounters, DropReason, Tunnel) {
        let spec = try loadSite(siteText(extra: "stages:\n  - { use: example.dscp-filter, after: ingress, settings: \(settings) }\n"))
        let tunnel = try Tunnel(spec: spec, logger: Logger(label: "test"))
        let session = Session(id: 1, name: "peer", peer: nil)
        let stageSpec = spec.stages[1]
        XCTAssertEqual(stageSpec.descriptor.name, "example.dscp-filter")
        let stage = try stageSpec.descriptor.make(StageContext(tunnel: tunnel, session: session, settings: stageSpec.settings,
                                                               stageName: stageSpec.descriptor.name))
        let pipeline = Pipeline(stages: [PassThrough(), stage, PassThrough()], egress: PassThrough(), counters: session.counters)
        return (pipeline, session.counters, tunnel.dropReason(named: "dscp_filtered"), tunnel)
    }

    /// Packets with DSCP 46 (v4), 8 (v6), 0, 10 (v4), 46 (v6), a non-IP one and a 1-byte one.
    private func mixedBatch() -> PacketBatch {
        let b = makeBatch(capacity: 8)
        b.appendPacket(ipv4Packet(tos: 46 << 2), sequence: 0)
        b.appendPacket(ipv6Packet(trafficClass: 8 << 2), sequence: 1)
        b.appendPacket(ipv4Packet(tos: 0), sequence: 2)
        b.appendPacket(ipv4Packet(tos: 10 << 2 | 1), sequence: 3)
        b.appendPacket(ipv6Packet(trafficClass: 46 << 2), sequence: 4)
        b.appendPacket([0x00, 46 << 2, 0, 0], sequence: 5)
        b.appendPacket([0x45], sequence: 6)
        return b
    }

    func testDropReasonIsRegisteredByTheTunnel() throws {
        let (_, _, reason, tunnel) = try filter("{ drop: [46] }")
        XCTAssertEqual(reason, DropReason(id: 9))
        XCTAssertEqual(tunnel.dropReasons.names, DropReason.frameworkNames + ["dscp_filtered"])
    }

    func testDropsListedDSCPsInBothDirections() throws {
        let (pipeline, counters, reason, _) = try filter("{ drop: [46, 8] }")
        let out = mixedBatch()
        pipeline.send(out)
        XCTAssertEqual(out.sequences, [2, 3, 5, 6])
        XCTAssertEqual(counters.drops(reason), 3)
        let inbound = mixedBatch()
        pipeline.receive(inbound)
        XCTAssertEqual(inbound.sequences, [2, 3, 5, 6])
        XCTAssertEqual(counters.drops(reason), 6)
        XCTAssertEqual(counters.dropSummary(names: DropReason.frameworkNames + ["dscp_filtered"]).map { "\($0.0)=\($0.1)" },
                       ["dscp_filtered=6"])
    }

    func testSendOnly() throws {
        let (pipeline, counters, reason, _) = try filter("{ drop: 10, direction: send }")
        let out = mixedBatch()
        pipeline.send(out)
        XCTAssertEqual(out.sequences, [0, 1, 2, 4, 5, 6])
        let inbound = mixedBatch()
        pipeline.receive(inbound)
        XCTAssertEqual(inbound.sequences, [0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(counters.drops(reason), 1)
    }

    func testReceiveOnly() throws {
        let (pipeline, counters, reason, _) = try filter("{ drop: [0, 46], direction: receive }")
        let out = mixedBatch()
        pipeline.send(out)
        XCTAssertEqual(out.sequences, [0, 1, 2, 3, 4, 5, 6])
        let inbound = mixedBatch()
        pipeline.receive(inbound)
        XCTAssertEqual(inbound.sequences, [1, 3, 5, 6])
        XCTAssertEqual(counters.drops(reason), 3)
    }

    func testEmptyListDropsNothing() throws {
        let (pipeline, counters, reason, _) = try filter("{ drop: [] }")
        let out = mixedBatch()
        pipeline.send(out)
        XCTAssertEqual(out.count, 7)
        XCTAssertEqual(counters.drops(reason), 0)
    }

    func testDirectInit() {
        let reason = DropReason(id: 20)
        let stage = DSCPFilterStage(drop: [63], direction: "both", reason: reason)
        let counters = TrafficCounters()
        let b = makeBatch(capacity: 2)
        b.appendPacket(ipv4Packet(tos: 0xfc))
        b.appendPacket(ipv4Packet(tos: 0xf8))
        b.dropCounters = counters
        stage.send(b)
        b.removeDropped()
        XCTAssertEqual(b.count, 1)
        XCTAssertEqual(IPHeader.dscp(b[0]), 62)
        XCTAssertEqual(counters.drops(reason), 1)
    }
}
