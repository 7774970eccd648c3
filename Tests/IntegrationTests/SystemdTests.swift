import Foundation
import XCTest

/// systemd integration: the readiness protocol spoken by a real `tunneld run`, and the
/// unit template in the repository checked by systemd's own verifier.
final class SystemdTests: LabTestCase {
    /// A datagram socket standing in for systemd's notification socket.
    final class NotifySocket {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw LabError("cannot bind \(path)") }
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        /// Messages received until `until` returns true for one of them, or the timeout.
        func messages(timeout: TimeInterval, until done: (String) -> Bool) -> [String] {
            var received: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n > 0 else { continue }
                let message = String(decoding: buffer[..<n], as: UTF8.self)
                received.append(message)
                if done(message) { break }
            }
            return received
        }
    }

    func testReadinessReloadWatchdogAndStop() throws {
        let hosts = try twoHosts()
        let notify = try NotifySocket(path: lab.directory.appendingPathComponent("notify.sock").path)
        let siteA = try lab.file("a.yaml", plainSite(address: "10.99.0.1/30", bind: "10.201.1.1:5080", remote: "10.201.1.2:5080",
                                                     extra: "status: off"))
        let daemon = try lab.spawn(hosts.a, ["env", "NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=400000",
                                             Lab.binary, "run", siteA, "--stock", Lab.stockProfiles], name: "tunneld")
        let start = notify.messages(timeout: 15) { $0.hasPrefix("READY=1") }
        XCTAssertEqual(start.last, "READY=1\nSTATUS=profile plain, 1 link", "\(start)\n\(daemon.output)")
        XCTAssertTrue(daemon.output.contains("running profile"), "READY=1 comes once the tunnel runs")
        XCTAssertFalse(daemon.output.contains("status on"), "'status: off' turns the status socket off")

        // The loop pings the watchdog at half of WATCHDOG_USEC.
        let pings = notify.messages(timeout: 1.1) { _ in false }.filter { $0 == "WATCHDOG=1" }
        XCTAssertTrue((4...6).contains(pings.count), "\(pings.count) watchdog pings in 1.1 s at a 200 ms interval")

        kill(daemon.process.processIdentifier, SIGHUP)
        let reload = notify.messages(timeout: 5) { $0.hasPrefix("READY=1") }.filter { $0 != "WATCHDOG=1" }
        XCTAssertEqual(reload.count, 2, "\(reload)")
        XCTAssertTrue(reload.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") ?? false, "\(reload)")
        XCTAssertEqual(reload.last, "READY=1\nSTATUS=profile plain, 1 link")

        kill(daemon.process.processIdentifier, SIGTERM)
        let stop = notify.messages(timeout: 5) { $0 == "STOPPING=1" }
        XCTAssertEqual(stop.last, "STOPPING=1")
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testUnitTemplateVerifies() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            throw XCTSkip("systemd-analyze is not installed")
        }
        let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("dist/systemd/tunneld@.service")
        let text = try String(contentsOf: template, encoding: .utf8)
        XCTAssertTrue(text.contains("Type=notify"))
        XCTAssertTrue(text.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        // The verifier wants the binary it names to exist: point it at the one built here.
        let instance = lab.directory.appendingPathComponent("tunneld@site1.service").path
        try text.replacingOccurrences(of: "/usr/local/bin/tunneld", with: Lab.binary)
            .write(toFile: instance, atomically: true, encoding: .utf8)
        let verified = try lab.run("systemd-analyze", "verify", instance, allowFailure: true)
        XCTAssertEqual(verified.status, 0, verified.output)
        XCTAssertFalse(verified.output.contains("tunneld@site1.service:"), "warnings about the unit: \(verified.output)")
    }
}
