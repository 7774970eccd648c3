import XCTest
@testable import Framework

final class PipelineTests: XCTestCase {
    final class Log { var lines: [String] = [] }

    /// Records each call with the sequences it saw; drops listed sequences.
    final class Recorder: Stage {
        let name: String
        let log: Log
        var dropOnSend: [UInt64: DropReason] = [:]
        var dropOnReceive: [UInt64: DropReason] = [:]
        var consumeOnSend = false
        var stopped = 0

        init(_ name: String, _ log: Log) {
            self.name = name
            self.log = log
        }

        func send(_ batch: PacketBatch) {
            log.lines.append("\(name).send \(batch.sequences)")
            XCTAssertNotNil(batch.dropCounters, "counters are attached while the batch travels")
            for i in 0..<batch.count { if let r = dropOnSend[batch[i].sequence] { batch.drop(i, r) } }
            if consumeOnSend { batch.consumeAll() }
        }

        func receive(_ batch: PacketBatch) {
            log.lines.append("\(name).receive \(batch.sequences)")
            for i in 0..<batch.count { if let r = dropOnReceive[batch[i].sequence] { batch.drop(i, r) } }
        }

        func stop() { stopped += 1 }
    }

    private func fixture() -> (Pipeline, [Recorder], Recorder, TrafficCounters, Log) {
        let log = Log()
        let stages = ["ingress", "custom", "transport"].map { Recorder($0, log) }
        let egress = Recorder("egress", log)
        let counters = TrafficCounters()
        return (Pipeline(stages: stages, egress: egress, counters: counters), stages, egress, counters, log)
    }

    private func batch(_ sizes: [Int]) -> PacketBatch {
        let b = makeBatch(capacity: 8)
        for (i, size) in sizes.enumerated() { b.appendPacket(pattern(size, seed: i), sequence: UInt64(i)) }
        return b
    }

    func testSendWalksDownReceiveWalksUp() {
        let (pipeline, _, _, counters, log) = fixture()
        let out = batch([100, 200, 300])
        pipeline.send(out)
        XCTAssertEqual(log.lines, ["ingress.send [0, 1, 2]", "custom.send [0, 1, 2]", "transport.send [0, 1, 2]"])
        XCTAssertNil(out.dropCounters, "detached afterwards")
        XCTAssertEqual(counters.sentPackets, 3)
        XCTAssertEqual(counters.sentBytes, 600)
        XCTAssertEqual(counters.receivedPackets, 0)

        log.lines = []
        let inbound = batch([10, 20])
        pipeline.receive(inbound)
        XCTAssertEqual(log.lines, ["transport.receive [0, 1]", "custom.receive [0, 1]", "egress.receive [0, 1]"])
        XCTAssertNil(inbound.dropCounters)
        XCTAssertEqual(counters.receivedPackets, 2)
        XCTAssertEqual(counters.receivedBytes, 30)
        XCTAssertEqual(counters.sentPackets, 3)
    }

    func testDroppedPacketsAreCountedAndHiddenFromLaterStages() {
        let (pipeline, stages, egress, counters, log) = fixture()
        let filtered = DropReason(id: 9)
        stages[0].dropOnSend = [3: .malformed]
        stages[1].dropOnSend = [1: filtered, 4: filtered]
        pipeline.send(batch([10, 20, 30, 40, 50]))
        XCTAssertEqual(log.lines, ["ingress.send [0, 1, 2, 3, 4]", "custom.send [0, 1, 2, 4]", "transport.send [0, 2]"])
        XCTAssertEqual(counters.drops(.malformed), 1)
        XCTAssertEqual(counters.drops(filtered), 2)
        // What the ingress accepted is what the session sent.
        XCTAssertEqual(counters.sentPackets, 4)
        XCTAssertEqual(counters.sentBytes, 10 + 20 + 30 + 50)

        log.lines = []
        stages[2].dropOnReceive = [0: .unknownPeer]
        stages[1].dropOnReceive = [2: filtered]
        egress.dropOnReceive = [3: .oversize]
        pipeline.receive(batch([1, 2, 3, 4]))
        XCTAssertEqual(log.lines, ["transport.receive [0, 1, 2, 3]", "custom.receive [1, 2, 3]", "egress.receive [1, 3]"])
        XCTAssertEqual(counters.drops(.unknownPeer), 1)
        XCTAssertEqual(counters.drops(filtered), 3)
        XCTAssertEqual(counters.drops(.oversize), 1, "the egress's drops are counted too")
        XCTAssertEqual(counters.receivedPackets, 2, "counted as they reach the egress")
        XCTAssertEqual(counters.receivedBytes, 2 + 4)
    }

    func testEmptyBatchStopsTheWalk() {
        let (pipeline, stages, _, counters, log) = fixture()
        stages[1].dropOnSend = [0: .noRoom, 1: .noRoom]
        pipeline.send(batch([5, 6]))
        XCTAssertEqual(log.lines, ["ingress.send [0, 1]", "custom.send [0, 1]"])
        XCTAssertEqual(counters.drops(.noRoom), 2)
        XCTAssertEqual(counters.sentPackets, 2)

        log.lines = []
        stages[2].dropOnReceive = [0: .unclaimed]
        pipeline.receive(batch([5]))
        XCTAssertEqual(log.lines, ["transport.receive [0]"])
        XCTAssertEqual(counters.receivedPackets, 0)
        XCTAssertEqual(counters.drops(.unclaimed), 1)

        log.lines = []
        pipeline.send(makeBatch())
        pipeline.receive(makeBatch())
        XCTAssertEqual(log.lines, [])
    }

    func testIngressThatDropsEverythingCountsNothingSent() {
        let (pipeline, stages, _, counters, log) = fixture()
        stages[0].dropOnSend = [0: .truncated]
        pipeline.send(batch([40]))
        XCTAssertEqual(log.lines, ["ingress.send [0]"])
        XCTAssertEqual(counters.sentPackets, 0)
        XCTAssertEqual(counters.drops(.truncated), 1)
    }

    func testSinkConsumesTheBatch() {
        let (pipeline, stages, _, counters, _) = fixture()
        stages[2].consumeOnSend = true
        let b = batch([10, 10])
        pipeline.send(b)
        XCTAssertEqual(b.count, 0)
        XCTAssertEqual(counters.sentPackets, 2)
        XCTAssertEqual(counters.dropSummary(names: DropReason.frameworkNames).count, 0)
    }

    func testSingleStagePipeline() {
        let log = Log()
        let only = Recorder("only", log), egress = Recorder("egress", log)
        let pipeline = Pipeline(stages: [only], egress: egress, counters: TrafficCounters())
        pipeline.send(batch([1]))
        pipeline.receive(batch([1]))
        XCTAssertEqual(log.lines, ["only.send [0]", "egress.receive [0]"])
    }

    func testStopReachesEveryStageOnce() {
        let (pipeline, stages, egress, _, _) = fixture()
        pipeline.stop()
        XCTAssertEqual(stages.map(\.stopped) + [egress.stopped], [1, 1, 1, 1])
    }
}
