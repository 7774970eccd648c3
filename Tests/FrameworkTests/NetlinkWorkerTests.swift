import Glibc
import XCTest
@testable import Framework

/// The worker runs requests off the loop's thread, one at a time in submission
/// order, and hands each result back on the loop's thread, in the same order.
final class NetlinkWorkerTests: XCTestCase {
    /// Stands in for a netlink socket: not Sendable, used only by the worker thread.
    final class FakeSocket {
        var served: [Int] = []
        var running = false
    }

    /// What the loop saw. `@unchecked Sendable`: completions run on the test's own
    /// thread (the loop's), the only thread that touches it.
    final class Completions: @unchecked Sendable {
        var indexes: [Int] = []
        var offLoop: [Bool] = []
        var onLoop: [Bool] = []
        var failures: [String] = []
    }

    /// Drive `loop` until `done` or 5 s pass.
    private func drive(_ loop: EventLoop, until done: () -> Bool) {
        let deadline = monotonicSeconds() + 5
        while !done() && monotonicSeconds() < deadline { loop.poll(timeoutMilliseconds: 50) }
    }

    func testRequestsRunInOrderOffTheLoopAndCompleteOnIt() throws {
        let loop = try EventLoop()
        let worker = try NetlinkWorker(resource: FakeSocket(), loop: loop)
        let loopThread = pthread_self()
        let completions = Completions()
        let count = 20
        for index in 0..<count {
            worker.submit({ socket -> (Int, Bool, Bool) in
                // Early requests take longest: a pool of threads would finish them last.
                let overlapped = socket.running
                socket.running = true
                usleep(UInt32((count - index) * 500))
                socket.served.append(index)
                socket.running = false
                return (socket.served.count - 1 == index ? index : -1, pthread_equal(pthread_self(), loopThread) == 0, overlapped)
            }, completion: { result in
                switch result {
                case .success(let (index, offLoop, overlapped)):
                    completions.indexes.append(index)
                    completions.offLoop.append(offLoop && !overlapped)
                case .failure(let error):
                    completions.failures.append("\(error)")
                }
                completions.onLoop.append(pthread_equal(pthread_self(), loopThread) != 0)
            })
        }
        drive(loop) { completions.onLoop.count == count }
        XCTAssertEqual(completions.indexes, Array(0..<count), "served and completed in submission order")
        XCTAssertEqual(completions.offLoop, Array(repeating: true, count: count), "on the worker, one at a time")
        XCTAssertEqual(completions.onLoop, Array(repeating: true, count: count), "completions on the loop's thread")
        XCTAssertEqual(completions.failures, [])
        worker.stop()
    }

    func testThrownErrorsArriveAsFailures() throws {
        let loop = try EventLoop()
        let worker = try NetlinkWorker(resource: FakeSocket(), loop: loop)
        let completions = Completions()
        worker.submit({ _ -> Int in throw NetlinkError(code: EEXIST, request: "TUNNEL_CREATE tunnel 100") },
                      completion: { result in
                          if case .failure(let error) = result { completions.failures.append("\(error)") }
                          completions.onLoop.append(true)
                      })
        drive(loop) { !completions.onLoop.isEmpty }
        XCTAssertEqual(completions.failures, ["TUNNEL_CREATE tunnel 100: File exists (EEXIST)"])
        worker.stop()
    }

    func testStopRunsWhatWasSubmitted() throws {
        let loop = try EventLoop()
        let worker = try NetlinkWorker(resource: FakeSocket(), loop: loop)
        let completions = Completions()
        for index in 0..<5 {
            worker.submit({ _ -> Int in
                usleep(2000)
                return index
            }, completion: { result in
                if case .success(let index) = result { completions.indexes.append(index) }
            })
        }
        worker.stop()
        // Every request ran before stop returned; their completions wait in the mailbox.
        loop.poll(timeoutMilliseconds: 1000)
        XCTAssertEqual(completions.indexes, [0, 1, 2, 3, 4])
    }
}
