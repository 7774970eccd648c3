import Glibc
import XCTest
@testable import Framework

final class TunDeviceTests: XCTestCase {
    /// A device whose setup fails after it was opened (here: an MTU the kernel refuses)
    /// must throw a SystemError, close the device and not crash. Run in a child process:
    /// on this path TunDevice frees its scratch buffers twice (see the report). The
    /// device exists only for the moment between open and close; nothing is sent.
    func testFailedSetupThrowsAndDoesNotCrash() throws {
        let fd = open("/dev/net/tun", O_RDWR)
        guard fd >= 0 else { throw XCTSkip("no /dev/net/tun here") }
        close(fd)
        let end = runInChild {
            do {
                _ = try TunDevice(kind: .tun, name: "tltest%d", mtu: 10, addresses: [])
                _exit(2)
            } catch let error as SystemError {
                let ok = error.action.hasPrefix("cannot set MTU 10 on tltest") && error.code == EINVAL
                _exit(ok ? 0 : 3)
            } catch {
                _exit(4)
            }
        }
        XCTAssertEqual(end, .exited(0), "TunDevice.init with a failing MTU \(end)")
    }
}
