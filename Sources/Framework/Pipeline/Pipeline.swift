/// One session's stages in send order (ingress first, transport last) plus the
/// egress stage that ends the receive direction.
///
/// `send` enters below the ingress stage's source (the device read already happened)
/// and walks down; `receive` enters at the transport and walks up to the egress.
/// Empty batches stop the walk early. Dropped packets are removed and counted after
/// every stage, so the next stage only sees live packets.
public final class Pipeline {
    public let stages: [Stage]
    let egress: Stage
    let counters: TrafficCounters
    private let count: Int

    public init(stages: [Stage], egress: Stage, counters: TrafficCounters) {
        precondition(!stages.isEmpty)
        self.stages = stages
        self.egress = egress
        self.counters = counters
        self.count = stages.count
    }

    /// Run a batch read from the local device through every stage toward the network.
    public func send(_ batch: PacketBatch) {
        batch.dropCounters = counters
        for index in 0..<count {
            if batch.isEmpty { break }
            stages[index].send(batch)
            batch.removeDropped()
            if index == 0 {
                // What the ingress accepted is what this session sends.
                counters.block.add(TrafficCounters.txPackets, UInt64(batch.count))
                counters.block.add(TrafficCounters.txBytes, UInt64(batch.byteCount))
            }
        }
        batch.dropCounters = nil  // later drops are not this session's
    }

    /// Run a batch the session made itself (a probe, an echo) through the stages from
    /// `first` on, toward the network. Not counted as the session's traffic: it did
    /// not come from the device.
    public func send(_ batch: PacketBatch, from first: Int) {
        batch.dropCounters = counters
        for index in first..<count {
            if batch.isEmpty { break }
            stages[index].send(batch)
            batch.removeDropped()
        }
        batch.dropCounters = nil
    }

    /// Hand packets straight to the egress, counted as received: for a stage that
    /// releases packets it held (a reorder buffer) outside the walk of `receive`.
    public func deliver(_ batch: PacketBatch) {
        guard !batch.isEmpty else { return }
        let saved = batch.dropCounters
        batch.dropCounters = counters
        counters.block.add(TrafficCounters.rxPackets, UInt64(batch.count))
        counters.block.add(TrafficCounters.rxBytes, UInt64(batch.byteCount))
        egress.receive(batch)
        batch.removeDropped()
        batch.dropCounters = saved
    }

    /// Where `stage` sits in send order, if it is one of this pipeline's.
    public func index(of stage: Stage) -> Int? {
        stages.firstIndex { $0 === stage }
    }

    /// Run a batch received from the network through every stage toward the local side.
    public func receive(_ batch: PacketBatch) {
        batch.dropCounters = counters
        var index = count - 1
        // The ingress stage (index 0) has no receive role: the egress stage takes its place.
        while index >= 1, !batch.isEmpty {
            stages[index].receive(batch)
            batch.removeDropped()
            index -= 1
        }
        if !batch.isEmpty {
            counters.block.add(TrafficCounters.rxPackets, UInt64(batch.count))
            counters.block.add(TrafficCounters.rxBytes, UInt64(batch.byteCount))
            egress.receive(batch)
            batch.removeDropped()
        }
        batch.dropCounters = nil
    }

    public func stop() {
        for stage in stages { stage.stop() }
        egress.stop()
    }
}
