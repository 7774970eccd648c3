import XCTest

/// The data path allocates nothing per packet in steady state: tunneld-bench counts
/// mallocs with the malloc interposer preloaded and fails if any measured loop
/// allocates (or if the interposer is not active, so a zero cannot be vacuous).
final class AllocationTests: XCTestCase {
    func testDataPathMakesNoHeapAllocationsPerPacket() throws {
        let release = URL(fileURLWithPath: Lab.binary).deletingLastPathComponent()
        let bench = release.appendingPathComponent("tunneld-bench").path
        let interposer = release.appendingPathComponent("libMallocInterposerSwift.so").path
        guard FileManager.default.isExecutableFile(atPath: bench), FileManager.default.fileExists(atPath: interposer) else {
            throw LabError("\(bench) or \(interposer) missing: build with 'swift build -c release' (scripts/test does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.environment = ["LD_PRELOAD": interposer]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("OK: zero heap allocations per packet on every measured path"), output)
        XCTAssertTrue(output.contains("mallocs/packet 0.0000 (0 in"), output)
    }
}
