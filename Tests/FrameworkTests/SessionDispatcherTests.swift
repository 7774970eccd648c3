import Logging
import XCTest
@testable import Framework

private func byte(_ packet: Packet, _ at: Int) -> UInt8 {
    (packet.base + packet.offset + at).load(as: UInt8.self)
}

/// `SessionDispatcher` splits a batch between sessions: every packet reaches its own
/// session's pipeline, in arrival order within the session, each session's pipeline
/// runs once per batch, unowned packets are dropped with the given reason.
final class SessionDispatcherTests: XCTestCase {
    /// What each session's egress saw: per session, the tags (first payload byte) in
    /// order, and how many batches it was handed.
    final class Log: @unchecked Sendable {
        var tags: [String: [UInt8]] = [:]
        var runs: [String: Int] = [:]
    }

    final class Recorder: Stage {
        let name: String
        let log: Log
        init(name: String, log: Log) { (self.name, self.log) = (name, log) }
        func receive(_ batch: PacketBatch) {
            log.runs[name, default: 0] += 1
            for index in 0..<batch.count { log.tags[name, default: []].append(byte(batch[index], 0)) }
            batch.consumeAll()
        }
    }

    private let log = Log()

    private func tunnel() throws -> Tunnel {
        let log = self.log
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(Plugin(name: "recorder", summary: "records", stages: [
            StageDescriptor(name: "recorder", summary: "records what arrives", slots: [.ingress, .egress],
                            make: { context in Recorder(name: context.session.name, log: log) }),
        ]))
        let stock = try StockProfiles.parse("""
            profiles:
              rec:
                summary: "recorder"
                sessions: static
                pipeline: { ingress: recorder, reorder: none, encrypt: none, schedule: none, transport: udp, egress: recorder }
            """, file: "rec.yaml", registry: registry)
        let spec = try ProfileLoader(registry: registry, stock: stock).load(siteText: """
            profile: rec
            links: [ { name: lo, bind: 127.0.0.1:0, remote: 127.0.0.1:9 } ]
            """, file: "site.yaml")
        return try Tunnel(spec: spec, logger: Logger(label: "test"))
    }

    func testPacketsReachTheirOwnSessionInOrderWithOneRunPerSession() throws {
        let tunnel = try tunnel()
        let names = ["a", "b", "c"]
        var sessions: [UInt8: Session] = [:]
        for (index, name) in names.enumerated() { sessions[UInt8(index)] = try tunnel.makeSession(name: name, peer: nil) }
        let dispatcher = SessionDispatcher(batchSize: 16, headroom: 16, tailroom: 0)
        let batch = PacketBatch(capacity: 16, slotSize: 128, headroom: 16)
        // Owner by the second byte (0, 1, 2; 9 = nobody), tag in the first.
        let plan: [(tag: UInt8, owner: UInt8)] = [(1, 0), (2, 1), (3, 0), (4, 2), (5, 9), (6, 1), (7, 0), (8, 2), (9, 2)]
        for (tag, owner) in plan {
            let record = batch.nextFree!
            (record.pointee.base + record.pointee.offset).storeBytes(of: tag, as: UInt8.self)
            (record.pointee.base + record.pointee.offset + 1).storeBytes(of: owner, as: UInt8.self)
            batch.commit(length: 2)
        }
        let counters = TrafficCounters()
        batch.dropCounters = counters
        dispatcher.dispatch(batch, outbound: false, unowned: .unknownPeer) { packet in sessions[byte(packet, 1)] }
        XCTAssertEqual(log.tags["a"], [1, 3, 7])
        XCTAssertEqual(log.tags["b"], [2, 6])
        XCTAssertEqual(log.tags["c"], [4, 8, 9])
        XCTAssertEqual(log.runs, ["a": 1, "b": 1, "c": 1], "one pipeline run per session and batch")
        XCTAssertEqual(counters.dropSummary(names: tunnel.dropReasons.names).first { $0.0 == "unknown_peer" }?.1, 1)

        // A second batch: slots from the first pass must not leak into this one.
        batch.reset()
        for (tag, owner) in [(UInt8(10), UInt8(2)), (11, 2), (12, 1)] {
            let record = batch.nextFree!
            (record.pointee.base + record.pointee.offset).storeBytes(of: tag, as: UInt8.self)
            (record.pointee.base + record.pointee.offset + 1).storeBytes(of: owner, as: UInt8.self)
            batch.commit(length: 2)
        }
        dispatcher.dispatch(batch, outbound: false, unowned: .unknownPeer) { packet in sessions[byte(packet, 1)] }
        XCTAssertEqual(log.tags["c"], [4, 8, 9, 10, 11])
        XCTAssertEqual(log.tags["b"], [2, 6, 12])
        XCTAssertEqual(log.runs, ["a": 1, "b": 2, "c": 2])
    }

    /// Two dispatchers (two managers, or a manager and a stage) never read each
    /// other's notes on a session.
    func testTwoDispatchersDoNotShareSlots() throws {
        let tunnel = try tunnel()
        let a = try tunnel.makeSession(name: "a", peer: nil), b = try tunnel.makeSession(name: "b", peer: nil)
        let first = SessionDispatcher(batchSize: 8, headroom: 16, tailroom: 0)
        let second = SessionDispatcher(batchSize: 8, headroom: 16, tailroom: 0)
        let batch = PacketBatch(capacity: 8, slotSize: 128, headroom: 16)
        func fill(_ owners: [UInt8]) {
            batch.reset()
            for (tag, owner) in owners.enumerated() {
                let record = batch.nextFree!
                (record.pointee.base + record.pointee.offset).storeBytes(of: UInt8(tag), as: UInt8.self)
                (record.pointee.base + record.pointee.offset + 1).storeBytes(of: owner, as: UInt8.self)
                batch.commit(length: 2)
            }
        }
        let owner: (Packet) -> Session? = { byte($0, 1) == 0 ? a : b }
        fill([0, 1])
        first.dispatch(batch, outbound: false, unowned: .unknownPeer, owner: owner)
        fill([1, 0])
        second.dispatch(batch, outbound: false, unowned: .unknownPeer, owner: owner)
        XCTAssertEqual(log.tags["a"], [0, 1])
        XCTAssertEqual(log.tags["b"], [1, 0])
    }
}
