import CLinux
import Glibc

/// Hands work from other threads (a netlink worker, the HTTP thread) to an event
/// loop: closures queue under a lock and an eventfd wakes the loop, which runs them
/// in order on its own thread. Never used per packet.
final class LoopMailbox: @unchecked Sendable {
    let fd: Int32
    private var pending: [@Sendable () -> Void] = []
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() throws {
        fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if fd < 0 { throw SystemError("eventfd") }
        pthread_mutex_init(lock, nil)
    }

    deinit {
        close(fd)
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func post(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(lock)
        pending.append(work)
        pthread_mutex_unlock(lock)
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// On the loop: run everything posted so far.
    func drain() {
        var count: UInt64 = 0
        _ = read(fd, &count, 8)
        pthread_mutex_lock(lock)
        let work = pending
        pending.removeAll(keepingCapacity: true)
        pthread_mutex_unlock(lock)
        for item in work { item() }
    }
}
