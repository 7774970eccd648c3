import Glibc

/// One background thread running closures one at a time in the order they were
/// queued. `@unchecked Sendable`: the queue and the closed flag are only touched
/// under `lock`; everything else is immutable after init.
final class WorkerThread: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var closed = false
    private var thread = pthread_t()

    /// Start the thread; `name` says which in errors.
    init(name: String) throws {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        // The thread holds its own reference until it has run everything queued.
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<WorkerThread>.fromOpaque(context).takeRetainedValue().serve()
            return nil
        }, context)
        if result != 0 {
            Unmanaged<WorkerThread>.fromOpaque(context).release()
            throw SystemError("pthread_create(\(name))", code: result)
        }
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(lock)
        wake.deallocate()
        lock.deallocate()
    }

    /// Queue `work`; ignored once `finish` was called.
    func enqueue(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(lock)
        if !closed {
            queue.append(work)
            pthread_cond_signal(wake)
        }
        pthread_mutex_unlock(lock)
    }

    /// Let the thread run what is queued and end. With `wait`, return once it has
    /// (never from the thread itself); without, it ends on its own.
    func finish(wait: Bool) {
        pthread_mutex_lock(lock)
        let first = !closed
        closed = true
        pthread_cond_signal(wake)
        pthread_mutex_unlock(lock)
        guard first else { return }
        if wait { pthread_join(thread, nil) } else { pthread_detach(thread) }
    }

    private func serve() {
        while true {
            pthread_mutex_lock(lock)
            while head == queue.count && !closed { pthread_cond_wait(wake, lock) }
            if head == queue.count {  // closed and drained
                pthread_mutex_unlock(lock)
                return
            }
            let work = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            pthread_mutex_unlock(lock)
            work()
        }
    }
}
