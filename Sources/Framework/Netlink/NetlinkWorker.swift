/// Runs blocking netlink requests on one background thread, one at a time in the
/// order they were submitted, so an event loop never waits for the kernel (a
/// device removal can take tens of milliseconds, a group of thousands most of a
/// second). Each result comes back to the loop through `EventLoop.post`, in order.
///
/// `Resource` is what the requests use — a `GenericNetlink`, a `RouteNetlink`, a
/// plugin's wrapper of them — and, like libnl's sockets, needs no locking because
/// only the worker's thread ever touches it.
public final class NetlinkWorker<Resource>: Sendable {
    private let thread: WorkerThread
    private let resource: WorkerOwned<Resource>
    private let post: @Sendable (@escaping @Sendable () -> Void) -> Void

    /// Hand `resource` to a new worker thread; completions run on `loop`.
    public init(resource: sending Resource, loop: EventLoop) throws {
        self.resource = WorkerOwned(resource)
        post = loop.poster
        thread = try WorkerThread(name: "tunneld-netlink")
    }

    /// Lets requests already submitted finish; their completions are still posted.
    deinit { thread.finish(wait: false) }

    /// Run `request` on the worker thread after every request submitted before it,
    /// then `completion` with its result on the loop's thread.
    func submit<T: Sendable>(_ request: @escaping @Sendable (Resource) throws -> T,
                                    completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let resource = self.resource, post = self.post
        thread.enqueue {
            let result = Result { try request(resource.value) }
            post { completion(result) }
        }
    }

    /// `submit` for a caller on the loop's thread whose completion touches loop-only
    /// state (sessions, sockets): the completion comes back to that same thread, so
    /// it need not be `Sendable`.
    public func submitFromLoop<T: Sendable>(_ request: @escaping @Sendable (Resource) throws -> T,
                                            completion: @escaping (Result<T, any Error>) -> Void) {
        let bound = WorkerOwned(completion)
        submit(request) { result in bound.value(result) }
    }

    /// Run every request submitted so far and end the thread; returns when it has.
    /// Blocks the caller: for shutdown, when the loop has nothing else to do.
    func stop() {
        thread.finish(wait: true)
    }
}

/// Carries a non-Sendable value to the one thread that uses it. `@unchecked
/// Sendable`: the resource is read only on the worker's thread (`NetlinkWorker.init`
/// took it as `sending`); a `submitFromLoop` completion only on the loop's thread.
private final class WorkerOwned<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
