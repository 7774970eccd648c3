import Framework

/// An example custom stage, written as a user would in their own target: it drops IP
/// packets whose DSCP is in a list, in either direction, and counts them under its
/// own drop reason `dscp_filtered`.
///
///     stages:
///       - { use: example.dscp-filter, after: ingress, settings: { drop: [46], direction: both } }
public final class DSCPFilterStage: Stage {
    /// One flag per DSCP value (0–63): a table lookup instead of a list search per packet.
    private var blocked = [Bool](repeating: false, count: 64)
    private let filterSend: Bool
    private let filterReceive: Bool
    private let reason: DropReason

    public init(drop: [Int], direction: String, reason: DropReason) {
        for value in drop { blocked[value] = true }
        filterSend = direction != "receive"
        filterReceive = direction != "send"
        self.reason = reason
    }

    public func send(_ batch: PacketBatch) {
        if filterSend { filter(batch) }
    }

    public func receive(_ batch: PacketBatch) {
        if filterReceive { filter(batch) }
    }

    private func filter(_ batch: PacketBatch) {
        blocked.withUnsafeBufferPointer { table in
            for index in 0..<batch.count {
                let packet = batch[index]
                guard packet.length >= 2 else { continue }
                let version = packet.byte(at: 0) >> 4
                guard version == 4 || version == 6 else { continue }
                if table[Int(IPHeader.dscp(packet))] { batch.drop(index, reason) }
            }
        }
    }

    static let direction = SettingSpec("direction", .choice(["send", "receive", "both"]), default: .string("both"),
                                       help: "which direction to filter")

    public static let descriptor = StageDescriptor(
        name: "example.dscp-filter",
        summary: "drops IP packets whose DSCP is listed (example of a custom stage)",
        slots: [],
        insertable: true,
        settings: [
            SettingSpec("drop", .list(.integer(0...63)), required: true, help: "DSCP values to drop, e.g. [46] for EF"),
            direction,
        ],
        dropReasons: ["dscp_filtered"],
        make: { context in
            let values = context.settings.list("drop").compactMap { value -> Int? in
                if case .integer(let v) = value { return v }
                return nil
            }
            return DSCPFilterStage(drop: values, direction: context.settings.string(DSCPFilterStage.direction),
                                   reason: context.dropReason("dscp_filtered"))
        })
}

/// The example plugin, registered by `tunneld` beside the stock plugins.
public enum ExamplePlugin {
    public static let plugin = Plugin(name: "example", summary: "example custom stages",
                                      stages: [DSCPFilterStage.descriptor])
}
