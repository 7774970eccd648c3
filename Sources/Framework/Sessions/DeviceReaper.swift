import Dispatch
import Glibc

/// Removes the devices of ended sessions off the event loop, many at a time.
///
/// The kernel spends about 20 ms removing one network device (it waits for RCU
/// grace periods), but removes a whole interface group in one request (5 000 TAPs in
/// 0.8 s). A broker whose clients time out together, or that shuts down, would stall
/// for minutes closing devices one by one on its loop. So sessions hand their
/// devices here; everything handed over during one turn of the loop goes to a
/// background thread as one batch, which moves the devices into a group of their
/// own and deletes that group with one rtnetlink request, then closes descriptors.
final class DeviceReaper: @unchecked Sendable {
    private let queue = DispatchQueue(label: "tunneld.device-reaper")
    private let post: @Sendable (@escaping @Sendable () -> Void) -> Void
    /// Only touched on the loop's thread.
    private var pending: [(fd: Int32, name: String)] = []
    private var flushScheduled = false
    /// A group number no other process uses: this process's devices, while going.
    let group: UInt32
    private let remover: BatchDeviceRemover

    init(post: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void, remover: BatchDeviceRemover) {
        self.post = post
        self.remover = remover
        // High bits mark tunneld, low bits the pid: two daemons never share a group,
        // and group 0 (every device's default) is never used.
        group = 0x7D00_0000 | (UInt32(truncatingIfNeeded: getpid()) & 0x00FF_FFFF)
    }

    /// Take over `device` (already unwatched): it is removed soon, with others.
    func remove(_ device: TunDevice) {
        pending.append((device.detachDescriptor(), device.name))
        guard !flushScheduled else { return }
        flushScheduled = true
        // After the current events: a mass timeout hands over many devices first.
        post { [self] in self.flush() }
    }

    private func flush() {
        flushScheduled = false
        let batch = pending
        pending.removeAll()
        guard !batch.isEmpty else { return }
        queue.async { [remover, group] in remover.remove(batch, group: group) }
    }

    /// At shutdown: remove what is pending and wait for every batch to finish.
    func removeAllNow() {
        flush()
        queue.sync {}
    }
}

/// How a batch of devices leaves the kernel. `RouteNetlinkRemover` is the fast
/// way; closing descriptors one by one is the fallback when rtnetlink fails.
protocol BatchDeviceRemover: Sendable {
    func remove(_ devices: [(fd: Int32, name: String)], group: UInt32)
}

/// Closes each descriptor: the kernel removes a non-persistent TUN/TAP device when
/// its last descriptor closes, one at a time.
struct ClosingRemover: BatchDeviceRemover {
    func remove(_ devices: [(fd: Int32, name: String)], group: UInt32) {
        for device in devices where device.fd >= 0 { close(device.fd) }
    }
}
