// libFuzzer targets for every parser of untrusted or user input (issue 15). Built only by
// scripts/fuzz, with `-sanitize=fuzzer,address -DFUZZING -enable-testing` (the targets reach
// internal parsers through @testable imports); an ordinary build makes a stub.
//
//   TUNNELD_FUZZ_TARGET=NAME tunneld-fuzz [libFuzzer flags] [CORPUS...]   fuzz one target
//   tunneld-fuzz list                                                    the targets
//   tunneld-fuzz seed DIR                                                write seed inputs, DIR/NAME/*
#if FUZZING
import Glibc

/// libFuzzer's own driver. SwiftPM links executables with `main` bound to this module's
/// entry point, so libFuzzer's `main` is not used: we call its driver ourselves.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The target this process fuzzes, chosen once from the environment.
nonisolated(unsafe) var selectedTarget: FuzzTarget?

/// libFuzzer's entry point (its archive refers to it even though its `main` is not used).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct FuzzMain {
    static func main() {
        let arguments = CommandLine.arguments
        if let name = getenv("TUNNELD_FUZZ_TARGET").map({ String(cString: $0) }) {
            guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
                fail("unknown target '\(name)'; targets: \(FuzzTarget.all.map(\.name).joined(separator: ", "))")
            }
            target.prepare()
            selectedTarget = target
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
        }
        switch (arguments.dropFirst().first, arguments.count) {
        case ("list", 2):
            for target in FuzzTarget.all { print("\(target.name)\t\(target.summary)") }
        case ("seed", 3):
            FuzzSeeds.write(into: arguments[2])
        default:
            fail("usage: TUNNELD_FUZZ_TARGET=NAME tunneld-fuzz [libFuzzer flags] [CORPUS...] | tunneld-fuzz list | tunneld-fuzz seed DIR")
        }
    }

    static func fail(_ message: String) -> Never {
        fputs("tunneld-fuzz: \(message)\n", stderr)
        exit(2)
    }
}
#else
import Glibc

@main
struct FuzzMain {
    static func main() {
        fputs("tunneld-fuzz: built without the fuzzer; run scripts/fuzz, which builds it with -sanitize=fuzzer\n", stderr)
        exit(1)
    }
}
#endif
