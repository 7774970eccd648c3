/// A packet stage: one transformation at one depth of a pipeline, with a send side
/// (toward the network) and a receive side (toward the local device).
///
/// Stages work on whole batches: the dynamic call is paid once per batch, and the
/// loop inside a stage is plain code over `PacketBatch` records. To drop a packet a
/// stage calls `batch.drop(i, reason)`; the pipeline removes and counts it when the
/// stage returns. A stage must not allocate, lock or `await` per packet.
///
/// A sink (the transport's send side, the egress's receive side) writes the packets
/// out and empties the batch with `consumeAll()`.
public protocol Stage: AnyObject {
    /// Process a batch travelling toward the network.
    func send(_ batch: PacketBatch)
    /// Process a batch travelling toward the local side.
    func receive(_ batch: PacketBatch)
    /// Release what the stage holds (timers, held packets). Called once, at shutdown.
    func stop()
}

extension Stage {
    public func send(_ batch: PacketBatch) {}
    public func receive(_ batch: PacketBatch) {}
    public func stop() {}
}
