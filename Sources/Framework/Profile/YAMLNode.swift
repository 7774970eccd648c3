import CYAML

/// A position in a source file, 1-based, for error messages (`file:line:column`).
public struct SourceMark: Sendable, Equatable, CustomStringConvertible {
    let file: String
    let line: Int
    let column: Int

    init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A parsed YAML document: scalars, sequences and mappings, each with the mark of
/// where it starts. Keys keep their own marks so "unknown key" points at the key.
indirect enum YAMLNode: Sendable {
    case scalar(String, SourceMark, plain: Bool)
    case sequence([YAMLNode], SourceMark)
    case mapping([(key: String, keyMark: SourceMark, value: YAMLNode)], SourceMark)

    var mark: SourceMark {
        switch self {
        case .scalar(_, let mark, _), .sequence(_, let mark), .mapping(_, let mark): return mark
        }
    }

    var kindName: String {
        switch self {
        case .scalar: return "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// An error in a profile or site file, always with the place it was found.
public struct ProfileError: Error, CustomStringConvertible, Equatable, Sendable {
    let mark: SourceMark
    let message: String

    public init(_ mark: SourceMark, _ message: String) {
        self.mark = mark
        self.message = message
    }

    public var description: String { "\(mark): \(message)" }
}

/// Parses YAML text into `YAMLNode`s with libyaml's event API.
///
/// Only one document per file; anchors and aliases are refused (a profile should
/// read top to bottom), as are tags. Depth is bounded so hostile input cannot
/// exhaust the stack.
enum YAMLParser {
    static let maxDepth = 64

    static func parse(_ text: String, file: String) throws -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw ProfileError(SourceMark(file: file, line: 1, column: 1), "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer -> YAMLNode in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var reader = EventReader(parser: &parser, file: file)
            return try reader.readDocument()
        }
    }
}

private struct EventReader {
    let parser: UnsafeMutablePointer<yaml_parser_t>
    let file: String

    init(parser: UnsafeMutablePointer<yaml_parser_t>, file: String) {
        self.parser = parser
        self.file = file
    }

    func mark(_ m: yaml_mark_t) -> SourceMark {
        SourceMark(file: file, line: Int(m.line) + 1, column: Int(m.column) + 1)
    }

    /// The next event, with its type, mark and (for scalars) value.
    mutating func next() throws -> (yaml_event_type_t, SourceMark, String?, Bool) {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else {
            let p = parser.pointee
            let problem = p.problem.map { String(cString: $0) } ?? "invalid YAML"
            let context = p.context.map { String(cString: $0) + ": " } ?? ""
            let where_ = p.problem != nil ? p.problem_mark : p.context_mark
            throw ProfileError(mark(where_), "not valid YAML: \(context)\(problem)")
        }
        defer { yaml_event_delete(&event) }
        let at = mark(event.start_mark)
        switch event.type {
        case YAML_ALIAS_EVENT:
            throw ProfileError(at, "YAML aliases (*name) are not supported in profiles; write the value out")
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            if s.anchor != nil {
                throw ProfileError(at, "YAML anchors (&name) are not supported in profiles")
            }
            if s.tag != nil {
                throw ProfileError(at, "YAML tags (!!str, !name) are not supported in profiles; write the plain value")
            }
            let value = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
            return (event.type, at, value, s.plain_implicit == 1)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let anchor = event.type == YAML_SEQUENCE_START_EVENT ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
            if anchor != nil { throw ProfileError(at, "YAML anchors (&name) are not supported in profiles") }
            let tag = event.type == YAML_SEQUENCE_START_EVENT ? event.data.sequence_start.tag : event.data.mapping_start.tag
            if tag != nil { throw ProfileError(at, "YAML tags (!!map, !name) are not supported in profiles") }
            return (event.type, at, nil, false)
        default:
            return (event.type, at, nil, false)
        }
    }

    mutating func readDocument() throws -> YAMLNode {
        var (type, at, _, _) = try next()
        guard type == YAML_STREAM_START_EVENT else { throw ProfileError(at, "not valid YAML: no stream") }
        (type, at, _, _) = try next()
        if type == YAML_STREAM_END_EVENT {
            throw ProfileError(at, "the file is empty; expected a mapping such as 'profile: plain'")
        }
        guard type == YAML_DOCUMENT_START_EVENT else { throw ProfileError(at, "not valid YAML: no document") }
        let root = try readNode(depth: 0)
        (type, at, _, _) = try next()
        guard type == YAML_DOCUMENT_END_EVENT else { throw ProfileError(at, "not valid YAML: expected the end of the document") }
        (type, at, _, _) = try next()
        if type == YAML_DOCUMENT_START_EVENT {
            throw ProfileError(at, "more than one YAML document ('---') in one file; keep one")
        }
        return root
    }

    mutating func readNode(depth: Int) throws -> YAMLNode {
        let (type, at, value, plain) = try next()
        return try readNode(type: type, at: at, value: value, plain: plain, depth: depth)
    }

    mutating func readNode(type: yaml_event_type_t, at: SourceMark, value: String?, plain: Bool, depth: Int) throws -> YAMLNode {
        guard depth < YAMLParser.maxDepth else { throw ProfileError(at, "nested deeper than \(YAMLParser.maxDepth) levels") }
        switch type {
        case YAML_SCALAR_EVENT:
            return .scalar(value ?? "", at, plain: plain)
        case YAML_SEQUENCE_START_EVENT:
            var items: [YAMLNode] = []
            while true {
                let (t, m, v, p) = try next()
                if t == YAML_SEQUENCE_END_EVENT { break }
                items.append(try readNode(type: t, at: m, value: v, plain: p, depth: depth + 1))
            }
            return .sequence(items, at)
        case YAML_MAPPING_START_EVENT:
            var entries: [(key: String, keyMark: SourceMark, value: YAMLNode)] = []
            while true {
                let (t, m, v, _) = try next()
                if t == YAML_MAPPING_END_EVENT { break }
                guard t == YAML_SCALAR_EVENT, let key = v else {
                    throw ProfileError(m, "a mapping key must be a plain word, not a list or mapping")
                }
                if entries.contains(where: { $0.key == key }) {
                    throw ProfileError(m, "duplicate key '\(key)'")
                }
                let child = try readNode(depth: depth + 1)
                entries.append((key, m, child))
            }
            return .mapping(entries, at)
        default:
            throw ProfileError(at, "not valid YAML: unexpected event")
        }
    }
}
