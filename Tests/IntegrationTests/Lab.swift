import Foundation
import XCTest

/// A throw-away network lab: network namespaces joined by veth pairs, processes
/// started inside them, files in a private temporary folder. Everything is removed
/// in `destroy()`, which tests register as a teardown block so it runs even when the
/// test fails. Names carry the test process's pid so parallel runs cannot collide.
///
/// Addresses used: 10.201.x.y/24 on the veths and 10.99.0.x/30 (or fd99::/64,
/// fd01::/64) on tunnel devices — only ever inside the lab's own namespaces.
final class Lab {
    let tag: String
    private(set) var namespaces: [String] = []
    private(set) var processes: [Process] = []
    let directory: URL

    init(_ name: String) throws {
        guard getuid() == 0 else {
            throw LabError("integration tests need root (network namespaces, TUN devices); run them as root, e.g. ./scripts/test")
        }
        tag = "td\(getpid() % 100_000)\(name.prefix(3))"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tunneld-\(tag)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// The tunneld binary under test: $TUNNELD_BIN, or the release build of this checkout.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["TUNNELD_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/release/tunneld").path
    }

    static var stockProfiles: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("plugins.yaml").path
    }

    static func requireBinary() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw LabError("\(binary) not found: build it first with 'swift build -c release --product tunneld' (scripts/test does)")
        }
    }

    /// Create a namespace named after the lab, with loopback up.
    func namespace(_ short: String) throws -> String {
        let name = "\(tag)\(short)"
        try run("ip", "netns", "add", name)
        namespaces.append(name)
        try run("ip", "-n", name, "link", "set", "lo", "up")
        return name
    }

    /// A veth pair between two namespaces with an address on each end.
    func link(_ a: String, _ addressA: String, _ b: String, _ addressB: String, name: String) throws {
        let endA = "\(name)a", endB = "\(name)b"
        try run("ip", "link", "add", endA, "netns", a, "type", "veth", "peer", "name", endB, "netns", b)
        for (ns, end, address) in [(a, endA, addressA), (b, endB, addressB)] {
            try run("ip", "-n", ns, "addr", "add", address, "dev", end, "nodad")
            try run("ip", "-n", ns, "link", "set", end, "up")
        }
    }

    /// Limit the egress rate of an interface with a token bucket filter.
    func limit(_ ns: String, _ device: String, rate: String) throws {
        try run("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", device, "root", "tbf",
                "rate", rate, "burst", "256kb", "latency", "50ms")
    }

    /// Write a file into the lab folder (mode 0600) and return its path.
    func file(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        chmod(url.path, 0o600)
        return url.path
    }

    /// Run a command to completion; throws with its output when it fails.
    @discardableResult
    func run(_ arguments: String..., allowFailure: Bool = false, timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        try runArray(arguments, allowFailure: allowFailure, timeout: timeout)
    }

    /// Start `arguments` (looked up on PATH) with stdout and stderr going to `log`.
    private func start(_ arguments: [String], log: URL) throws -> (Process, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return (process, handle)
    }

    @discardableResult
    func runArray(_ arguments: [String], allowFailure: Bool = false, timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        let outputFile = directory.appendingPathComponent("cmd-\(UUID().uuidString.prefix(8)).out")
        let (process, handle) = try start(arguments, log: outputFile)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace { usleep(20_000) }
            try? handle.close()
            throw LabError("timed out after \(Int(timeout)) s: \(arguments.joined(separator: " "))")
        }
        try? handle.close()
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        if process.terminationStatus != 0 && !allowFailure {
            throw LabError("'\(arguments.joined(separator: " "))' exited \(process.terminationStatus): \(output)")
        }
        return (process.terminationStatus, output)
    }

    /// Run a command inside a namespace.
    @discardableResult
    func exec(_ ns: String, _ arguments: String..., allowFailure: Bool = false, timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        try runArray(["ip", "netns", "exec", ns] + arguments, allowFailure: allowFailure, timeout: timeout)
    }

    /// A background process inside a namespace, its output in a log file.
    final class Daemon {
        let process: Process
        let log: URL
        init(process: Process, log: URL) {
            self.process = process
            self.log = log
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Send a signal and wait (bounded) for the process to exit; returns its status.
        @discardableResult
        func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 10) -> Int32? {
            guard process.isRunning else { return process.terminationStatus }
            kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            return process.isRunning ? nil : process.terminationStatus
        }
    }

    func spawn(_ ns: String, _ arguments: [String], name: String) throws -> Daemon {
        let log = directory.appendingPathComponent("\(name).log")
        let (process, _) = try start(["ip", "netns", "exec", ns] + arguments, log: log)
        processes.append(process)
        return Daemon(process: process, log: log)
    }

    /// Start `tunneld run` with a site file in a namespace and wait until it logs that
    /// it is running (or fail with its log).
    func tunneld(_ ns: String, site: String, name: String) throws -> Daemon {
        let daemon = try spawn(ns, [Lab.binary, "run", site, "--stock", Lab.stockProfiles], name: name)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if daemon.output.contains("running profile") { return daemon }
            if !daemon.process.isRunning { break }
            usleep(50_000)
        }
        throw LabError("tunneld '\(name)' did not start: \(daemon.output)")
    }

    /// Kill what is still running, delete namespaces (which removes their veths and
    /// devices) and the lab folder. Safe to call twice.
    func destroy() {
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        processes.removeAll()
        for ns in namespaces {
            // Processes started by commands in the namespace (iperf3 -D, socat) die with it.
            _ = try? runArray(["sh", "-c", "ip netns pids \(ns) | xargs -r kill -9"], allowFailure: true)
            _ = try? runArray(["ip", "netns", "del", ns], allowFailure: true)
        }
        namespaces.removeAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parse the `counters WHAT k=v …` lines tunneld logs at shutdown.
func counters(in log: String, for what: String) -> [String: UInt64] {
    var result: [String: UInt64] = [:]
    for line in log.split(separator: "\n") {
        guard let range = line.range(of: "counters \(what) ") else { continue }
        for pair in line[range.upperBound...].split(separator: " ") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let value = UInt64(parts[1]) { result[String(parts[0])] = value }
        }
    }
    return result
}
