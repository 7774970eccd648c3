/// The `tun` stage: layer-3 packets from and to the tunnel's TUN device.
///
/// As ingress it checks each packet read from the device (a whole IP header, no more
/// than the MTU); as egress it checks each packet from the network the same way and
/// writes it to the device. IP packets are also the wire format when nothing deeper
/// in the pipeline adds a header, so it claims first bytes 0x40–0x4F and 0x60–0x6F.
final class TunStage: Stage {
    let device: TunDevice

    init(device: TunDevice) {
        self.device = device
    }

    /// Drop what is not a whole IP packet within the MTU; trim link-layer padding.
    /// The MTU is the device's now: the L2TP data planes lower it after the stage is made.
    private func check(_ batch: PacketBatch) {
        let mtu = device.mtu
        for index in 0..<batch.count {
            if batch[index].length > mtu {
                batch.drop(index, .oversize)
                continue
            }
            switch IPHeader.check(batch[index]) {
            case .ok(let length): batch[index].length = length
            case .truncated: batch.drop(index, .truncated)
            case .malformed: batch.drop(index, .malformed)
            }
        }
    }

    func send(_ batch: PacketBatch) { check(batch) }

    func receive(_ batch: PacketBatch) {
        check(batch)
        device.write(batch)  // skips and counts the dropped ones
    }
}

/// The `tap` stage: Ethernet frames from and to the tunnel's TAP device.
final class TapStage: Stage {
    static let ethernetHeader = 14
    let device: TunDevice

    init(device: TunDevice) {
        self.device = device
    }

    /// The device's MTU now (the L2TP data planes lower it after the stage is made)
    /// plus the Ethernet header and one VLAN tag.
    private func check(_ batch: PacketBatch) {
        let maxFrame = device.mtu + TapStage.ethernetHeader + 4
        for index in 0..<batch.count {
            let length = batch[index].length
            if length < TapStage.ethernetHeader { batch.drop(index, .truncated) }
            else if length > maxFrame { batch.drop(index, .oversize) }
        }
    }

    func send(_ batch: PacketBatch) { check(batch) }

    func receive(_ batch: PacketBatch) {
        check(batch)
        device.write(batch)
    }
}

enum DeviceStages {
    static func device(_ context: StageContext) throws -> TunDevice {
        guard let device = context.session.device ?? context.tunnel.device else {
            throw ConfigurationError("stage '\(context.stageName)' needs a device: the tunnel's, or in a per-session profile the session's, and neither is open")
        }
        return device
    }

    static let tun = StageDescriptor(
        name: "tun",
        summary: "IP packets from/to a TUN device (layer 3); checks headers and MTU",
        slots: [.ingress, .egress],
        dataFirstBytes: [0x40...0x4F, 0x60...0x6F],
        deviceKind: .tun,
        make: { context in TunStage(device: try device(context)) })

    static let tap = StageDescriptor(
        name: "tap",
        summary: "Ethernet frames from/to a TAP device (layer 2); checks frame size",
        slots: [.ingress, .egress],
        dataFirstBytes: [0x00...0xFF],
        deviceKind: .tap,
        make: { context in TapStage(device: try device(context)) })
}

/// A problem found while assembling a tunnel that the profile check could not see.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
