/// A plain INI reader for the configurations `tunneld import` converts (mlvpn's,
/// tunneldigger's): `[section]` headers and `key = value` lines, each remembered with
/// its line and columns so that every later complaint can point at the place.
///
/// It knows syntax only. What a key means, which keys may repeat and what an empty
/// value stands for belong to the importer of each tool, which is why sections and
/// entries are kept in file order, repeats included.
struct INIFile: Sendable, Equatable {
    struct Entry: Sendable, Equatable {
        var key: String
        /// Without its surrounding quotes, if it had them.
        var value: String
        var line: Int
        /// 1-based columns (in characters) of the key and of the value's first
        /// character (its opening quote when quoted).
        var keyColumn: Int
        var valueColumn: Int
        var quoted: Bool
    }

    struct Section: Sendable, Equatable {
        var name: String
        var line: Int
        var entries: [Entry]
    }

    /// The dialect: tools differ in what starts a comment and what separates a key
    /// from its value.
    struct Syntax: Sendable {
        /// Separate the key from the value; the first one on the line wins.
        var delimiters: Set<Character> = ["="]
        /// Start a comment when they are the first character of a line (after blanks).
        var lineComments: Set<Character> = ["#", ";"]
        /// Start a comment anywhere outside quotes.
        var inlineComments: Set<Character> = ["#"]
        /// Enclose a value (no escapes inside: none of these tools has any).
        var quotes: Set<Character> = ["\""]
    }

    var sections: [Section]

    static func parse(_ text: String, file: String, syntax: Syntax = Syntax()) throws(INIError) -> INIFile {
        var sections: [Section] = []
        // A byte-order mark some editors write is not part of the first line.
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        // "\r\n" is one Character in Swift, not a "\r" before a "\n"; a lone "\r" ends a line too.
        let lines = body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        // Messages suggest '=' when the dialect has it (the usual one), else its first delimiter.
        let delimiterShown = syntax.delimiters.contains("=") ? "=" : syntax.delimiters.sorted().first ?? "="
        let commentShown = syntax.lineComments.contains("#") ? "#" : syntax.lineComments.sorted().first ?? "#"
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            let line = Array(rawLine)
            func fail(_ column: Int, _ message: String) -> INIError {
                INIError(file: file, line: number, column: column, message: message)
            }
            guard let start = line.firstIndex(where: { !$0.isBlank }) else { continue }
            if syntax.lineComments.contains(line[start]) { continue }

            if line[start] == "[" {
                guard let close = line[start...].firstIndex(of: "]") else {
                    throw fail(start + 1, "section header '\(String(line[start...]).trimmedBlanks)' has no closing ']'; write it as [NAME]")
                }
                let name = String(line[(start + 1)..<close]).trimmedBlanks
                guard !name.isEmpty else { throw fail(start + 1, "empty section name '[]'; write it as [NAME]") }
                if let extra = line[(close + 1)...].firstIndex(where: { !$0.isBlank }), !syntax.inlineComments.contains(line[extra]) {
                    throw fail(extra + 1, "unexpected '\(String(line[extra...]).trimmedBlanks)' after the section header [\(name)]; put it on a line of its own or comment it out")
                }
                sections.append(Section(name: name, line: number, entries: []))
                continue
            }

            guard let delimiter = line[start...].firstIndex(where: { syntax.delimiters.contains($0) }) else {
                let shown = String(line[start...]).trimmedBlanks
                throw fail(start + 1, "'\(shown)' is not 'key \(delimiterShown) value'; add the '\(delimiterShown)' or comment the line out with '\(commentShown)'")
            }
            let key = String(line[start..<delimiter]).trimmedBlanks
            guard !key.isEmpty else { throw fail(delimiter + 1, "'\(line[delimiter])' with no key before it; write 'key \(line[delimiter]) value'") }
            guard sections.last != nil else {
                throw fail(start + 1, "'\(key)' comes before any [section]; move it under the section it belongs to")
            }

            // The value: quoted up to its closing quote, or up to an inline comment.
            var value = ""
            var quoted = false
            var valueColumn = delimiter + 2
            if let first = line[(delimiter + 1)...].firstIndex(where: { !$0.isBlank }) {
                valueColumn = first + 1
                if syntax.quotes.contains(line[first]) {
                    guard let close = line[(first + 1)...].firstIndex(of: line[first]) else {
                        throw fail(first + 1, "the value of '\(key)' opens a quote that is never closed; end it with \(line[first]) on the same line")
                    }
                    value = String(line[(first + 1)..<close])
                    quoted = true
                    if let extra = line[(close + 1)...].firstIndex(where: { !$0.isBlank }), !syntax.inlineComments.contains(line[extra]) {
                        throw fail(extra + 1, "unexpected '\(String(line[extra...]).trimmedBlanks)' after the quoted value of '\(key)'; put the whole value inside the quotes")
                    }
                } else {
                    let end = line[first...].firstIndex(where: { syntax.inlineComments.contains($0) }) ?? line.endIndex
                    value = String(line[first..<end]).trimmedBlanks
                }
            }
            sections[sections.count - 1].entries.append(
                Entry(key: key, value: value, line: number, keyColumn: start + 1, valueColumn: valueColumn, quoted: quoted))
        }
        return INIFile(sections: sections)
    }
}

/// A configuration that cannot be read or converted, at `file:line:column`.
struct INIError: Error, Sendable, Equatable, CustomStringConvertible {
    var file: String
    var line: Int
    var column: Int
    var message: String

    var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Something converted, but not as the user may expect, at `file:line`.
struct INIWarning: Sendable, Equatable, CustomStringConvertible {
    var file: String
    var line: Int
    var message: String

    var description: String { "\(file):\(line): warning: \(message)" }
}

extension Character {
    fileprivate var isBlank: Bool { self == " " || self == "\t" }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmedBlanks: String {
        guard let first = firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(self[first...last])
    }
}
