/// Which answering broker the client takes (§2.3 step 3), as a pure rule.
enum ClientSelection {
    struct Candidate: Equatable {
        /// Position in the configured list.
        let order: Int
        let usage: UInt16
    }

    /// The chosen candidate's `order`, or nil when nobody answered. `random(n)`
    /// returns an index below `n`.
    static func pick(_ candidates: [Candidate], rule: ClientSettings.Selection,
                     random: (Int) -> Int = { Int.random(in: 0..<$0) }) -> Int? {
        let ordered = candidates.sorted { $0.order < $1.order }
        guard let first = ordered.first else { return nil }
        switch rule {
        case .first:
            return first.order
        case .usage:
            // Lowest usage; ties go to the earlier broker (min keeps the first of equals).
            return ordered.min { $0.usage < $1.usage }!.order
        case .random:
            return ordered[random(ordered.count)].order
        }
    }
}
