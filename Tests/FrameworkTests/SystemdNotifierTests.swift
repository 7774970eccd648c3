import Glibc
import XCTest
@testable import Framework

/// sd_notify spoken to a socket the test owns: path and abstract names, the watchdog
/// interval, and silence without NOTIFY_SOCKET.
final class SystemdNotifierTests: XCTestCase {
    /// A bound datagram socket; `name` starting with "@" is abstract.
    func listener(_ name: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (bytes[0] == 0 ? 0 : 1))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }

    func testReadyAndReloadingReachAPathSocket() throws {
        let path = "/tmp/tunneld-notify-\(getpid()).sock"
        unlink(path)
        let fd = try listener(path)
        defer { close(fd); unlink(path) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        XCTAssertTrue(notifier.isActive)
        XCTAssertNil(notifier.watchdogInterval)
        notifier.ready(status: "profile p2p, 1 link")
        XCTAssertEqual(receive(fd), "READY=1\nSTATUS=profile p2p, 1 link")
        notifier.reloading()
        let reloading = try XCTUnwrap(receive(fd))
        XCTAssertTrue(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading)
        XCTAssertNotNil(UInt64(reloading.split(separator: "=").last!), reloading)
        notifier.stopping()
        XCTAssertEqual(receive(fd), "STOPPING=1")
    }

    func testAbstractSocketNames() throws {
        let name = "@tunneld-notify-test-\(getpid())"
        let fd = try listener(name)
        defer { close(fd) }
        SystemdNotifier(environment: ["NOTIFY_SOCKET": name]).watchdog()
        XCTAssertEqual(receive(fd), "WATCHDOG=1")
    }

    func testWatchdogIntervalIsHalfTheUnitsAndOnlyForItsPid() {
        let socket = ["NOTIFY_SOCKET": "/run/systemd/notify"]
        XCTAssertEqual(SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "10000000"]) { $1 }).watchdogInterval, 5)
        XCTAssertEqual(SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "400000", "WATCHDOG_PID": "\(getpid())"]) { $1 })
            .watchdogInterval, 0.2)
        XCTAssertNil(SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"]) { $1 }).watchdogInterval,
                     "the watchdog is meant for another process")
        XCTAssertNil(SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "0"]) { $1 }).watchdogInterval)
        XCTAssertNil(SystemdNotifier(environment: ["WATCHDOG_USEC": "400000"]).watchdogInterval, "no socket to ping")
    }

    func testWithoutAUsableNotifySocketNothingIsSent() throws {
        XCTAssertFalse(SystemdNotifier(environment: [:]).isActive)
        // systemd only ever gives absolute or abstract names; a relative one is not used,
        // even when a socket of that name exists.
        let relative = "tunneld-notify-relative-\(getpid()).sock"
        unlink(relative)
        let fd = try listener(relative)
        defer { close(fd); unlink(relative) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": relative])
        XCTAssertFalse(notifier.isActive)
        notifier.ready(status: "x")
        XCTAssertNil(receive(fd), "nothing may reach a socket systemd did not name")
    }
}
