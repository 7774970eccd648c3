#if FUZZING
/// One fuzz target: a name for `TUNNELD_FUZZ_TARGET` and the corpus folder, and what runs
/// each input. A target crashes (a trap, a failed precondition, a sanitizer report) only
/// on a bug; inputs that are merely wrong must come back as errors or counted drops.
struct FuzzTarget {
    let name: String
    let summary: String
    /// Once, before the first input (a loaded profile, a running tunnel, keys).
    var prepare: () -> Void = {}
    let run: (UnsafeRawBufferPointer) -> Void

    static let all: [FuzzTarget] = ProfileTargets.all + CryptoTargets.all + PacketTargets.all
        + MonitoringTargets.all + L2TPTargets.all
}

extension UnsafeRawBufferPointer {
    /// The input split into a mode byte (0 for an empty input) and the rest.
    var modeAndRest: (mode: UInt8, rest: UnsafeRawBufferPointer) {
        guard let first = first else { return (0, self) }
        return (first, UnsafeRawBufferPointer(rebasing: self[1...]))
    }
}
#endif
