/// Reads one YAML mapping of a profile, refusing keys it does not know.
struct MappingReader {
    let entries: [(key: String, keyMark: SourceMark, value: YAMLNode)]
    let mark: SourceMark
    let owner: String

    init(_ node: YAMLNode, owner: String) throws {
        guard case .mapping(let entries, let mark) = node else {
            throw ProfileError(node.mark, "\(owner) must be a mapping (key: value), found \(node.kindName)")
        }
        self.entries = entries
        self.mark = mark
        self.owner = owner
    }

    func value(_ key: String) -> YAMLNode? {
        entries.first(where: { $0.key == key })?.value
    }

    func keyMark(_ key: String) -> SourceMark? {
        entries.first(where: { $0.key == key })?.keyMark
    }

    /// Every key must be one of `allowed`.
    func requireKnownKeys(_ allowed: [String]) throws {
        for entry in entries where !allowed.contains(entry.key) {
            throw ProfileError(entry.keyMark, "unknown key '\(entry.key)' in \(owner)\(suggestion(entry.key, allowed)); known: \(allowed.joined(separator: ", "))")
        }
    }

    /// A scalar value as text, or nil when the key is absent.
    func scalar(_ key: String) throws -> (String, SourceMark)? {
        guard let node = value(key) else { return nil }
        guard case .scalar(let text, let mark, _) = node else {
            throw ProfileError(node.mark, "'\(key)' in \(owner) must be a single value, found \(node.kindName)")
        }
        return (text, mark)
    }

    func requiredScalar(_ key: String, expected: String) throws -> (String, SourceMark) {
        guard let found = try scalar(key) else {
            throw ProfileError(mark, "\(owner) needs '\(key)': \(expected)")
        }
        return found
    }
}

/// ", did you mean 'x'?" when a known word is within two edits of `word`.
func suggestion(_ word: String, _ known: [String]) -> String {
    let best = known.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= 2, best.1 < word.count else { return "" }
    return " (did you mean '\(best.0)'?)"
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
