/// The type of one setting a stage, session manager or link accepts.
public enum SettingType: Sendable, CustomStringConvertible {
    case integer(ClosedRange<Int>)
    case string
    case boolean
    case choice([String])
    /// A list whose elements all have the given type.
    indirect case list(SettingType)
    /// An `address:port` endpoint (IPv4 or `[IPv6]`).
    case endpoint
    /// A duration in milliseconds, written as `250ms`, `2s` or a plain number of ms.
    case milliseconds(ClosedRange<Int>)
    /// A program the daemon runs (a hook, a status command), relative to the file it is
    /// written in. Stored as `.string`, read with `Settings.path`; at load time it must
    /// pass `ExecutableFile.check` for the daemon's user.
    case executable

    public var description: String {
        switch self {
        case .integer(let range): return "an integer in \(range.lowerBound)...\(range.upperBound)"
        case .string: return "a string"
        case .boolean: return "true or false"
        case .choice(let options): return "one of " + options.joined(separator: ", ")
        case .list(let element): return "a list of \(element)"
        case .endpoint: return "an address:port such as 192.0.2.1:5080 or [2001:db8::1]:5080"
        case .milliseconds(let range): return "a duration such as 250ms or 2s (\(range.lowerBound)...\(range.upperBound) ms)"
        case .executable: return "a program's path (relative to the site file), owned by root or the daemon's user, writable by its owner only"
        }
    }
}

/// A validated setting value.
public enum SettingValue: Sendable, Equatable, CustomStringConvertible {
    case integer(Int)
    case string(String)
    case boolean(Bool)
    case list([SettingValue])
    case endpoint(SocketAddress)

    public var description: String {
        switch self {
        case .integer(let v): return String(v)
        case .string(let v): return v
        case .boolean(let v): return String(v)
        case .list(let v): return "[" + v.map(\.description).joined(separator: ", ") + "]"
        case .endpoint(let v): return v.description
        }
    }
}

/// Declares one setting: its name, type, default, whether it is required, and help text
/// shown by `tunneld plugins`.
public struct SettingSpec: Sendable {
    public let name: String
    public let type: SettingType
    public let defaultValue: SettingValue?
    public let required: Bool
    public let help: String

    public init(_ name: String, _ type: SettingType, default defaultValue: SettingValue? = nil,
                required: Bool = false, help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.help = help
    }
}

/// Validated settings handed to a stage or session manager. Every declared setting
/// has a value here unless it is optional without a default.
public struct Settings: Sendable {
    private(set) var values: [String: SettingValue]
    /// Where each value was written, for errors found later (e.g. a device that will not open).
    private(set) var marks: [String: SourceMark]

    public init(values: [String: SettingValue] = [:], marks: [String: SourceMark] = [:]) {
        self.values = values
        self.marks = marks
    }

    subscript(name: String) -> SettingValue? { values[name] }

    public func integer(_ name: String) -> Int? {
        if case .integer(let v) = values[name] { return v }
        return nil
    }

    public func string(_ name: String) -> String? {
        if case .string(let v) = values[name] { return v }
        return nil
    }

    func boolean(_ name: String) -> Bool? {
        if case .boolean(let v) = values[name] { return v }
        return nil
    }

    public func endpoint(_ name: String) -> SocketAddress? {
        if case .endpoint(let v) = values[name] { return v }
        return nil
    }

    public func list(_ name: String) -> [SettingValue] {
        if case .list(let v) = values[name] { return v }
        return []
    }

    // A declared setting read through its spec: the value written, else the spec's
    // default, so the default is written only in the spec. Only for specs with a
    // default; a setting without one is read by name (optional). A `.milliseconds`
    // setting is stored as `.integer`, so it is read with `integer`.

    public func integer(_ spec: SettingSpec) -> Int {
        let value = valueOrDefault(spec)
        if case .integer(let v) = value { return v }
        preconditionFailure("setting '\(spec.name)' is \(value), not an integer")
    }

    public func string(_ spec: SettingSpec) -> String {
        let value = valueOrDefault(spec)
        if case .string(let v) = value { return v }
        preconditionFailure("setting '\(spec.name)' is \(value), not a string")
    }

    public func boolean(_ spec: SettingSpec) -> Bool {
        let value = valueOrDefault(spec)
        if case .boolean(let v) = value { return v }
        preconditionFailure("setting '\(spec.name)' is \(value), not a boolean")
    }

    private func valueOrDefault(_ spec: SettingSpec) -> SettingValue {
        guard let value = values[spec.name] ?? spec.defaultValue else {
            preconditionFailure("setting '\(spec.name)' has no value and its spec no default: read it by name")
        }
        return value
    }

    public func mark(_ name: String) -> SourceMark? { marks[name] }

    /// A string setting naming a file: relative paths are taken from the folder of
    /// the file the setting was written in, so a site file can say `key: site.key`.
    public func path(_ name: String) -> String? {
        guard let value = string(name) else { return nil }
        return Self.resolve(value, writtenIn: marks[name]?.file)
    }

    static func resolve(_ value: String, writtenIn file: String?) -> String {
        guard !value.hasPrefix("/"), let file, let slash = file.lastIndex(of: "/") else { return value }
        return String(file[...slash]) + value
    }

    mutating func set(_ name: String, _ value: SettingValue, at mark: SourceMark?) {
        values[name] = value
        if let mark { marks[name] = mark }
    }
}

/// Checks YAML against setting specs.
enum SettingsValidator {
    /// Validate a YAML mapping of settings, layered over `base` (defaults, or a stock
    /// profile's values). `owner` names what the settings belong to, for messages.
    static func validate(_ node: YAMLNode?, specs: [SettingSpec], owner: String,
                                over base: Settings = Settings(), requireAll: Bool = true,
                                at ownerMark: SourceMark) throws -> Settings {
        var result = base
        for spec in specs where result[spec.name] == nil {
            if let value = spec.defaultValue { result.set(spec.name, value, at: nil) }
        }
        if let node {
            guard case .mapping(let entries, _) = node else {
                throw ProfileError(node.mark, "settings of \(owner) must be a mapping, found \(node.kindName)")
            }
            for entry in entries {
                guard let spec = specs.first(where: { $0.name == entry.key }) else {
                    let known = specs.map(\.name)
                    let hint = known.isEmpty ? "it takes no settings" : "known: " + known.joined(separator: ", ")
                    throw ProfileError(entry.keyMark, "unknown setting '\(entry.key)' for \(owner); \(hint)")
                }
                let value = try convert(entry.value, to: spec.type, name: "'\(entry.key)' of \(owner)")
                result.set(spec.name, value, at: entry.value.mark)
            }
        }
        if requireAll {
            for spec in specs where spec.required && result[spec.name] == nil {
                throw ProfileError(node?.mark ?? ownerMark, "\(owner) requires the setting '\(spec.name)' (\(spec.type)): \(spec.help)")
            }
        }
        return result
    }

    static func convert(_ node: YAMLNode, to type: SettingType, name: String) throws -> SettingValue {
        let expected = "\(name) must be \(type)"
        switch type {
        case .list(let element):
            guard case .sequence(let items, _) = node else {
                // A single value where a list is expected is accepted as a list of one.
                if case .scalar = node { return .list([try convert(node, to: element, name: name)]) }
                throw ProfileError(node.mark, "\(expected), found \(node.kindName)")
            }
            return .list(try items.map { try convert($0, to: element, name: name) })
        default:
            break
        }
        guard case .scalar(let text, let mark, let plain) = node else {
            throw ProfileError(node.mark, "\(expected), found \(node.kindName)")
        }
        switch type {
        case .integer(let range):
            guard plain, let value = Int(text) else { throw ProfileError(mark, "\(expected), found '\(text)'") }
            guard range.contains(value) else { throw ProfileError(mark, "\(expected), found \(value)") }
            return .integer(value)
        case .milliseconds(let range):
            guard let value = parseMilliseconds(text) else { throw ProfileError(mark, "\(expected), found '\(text)'") }
            guard range.contains(value) else { throw ProfileError(mark, "\(expected), found \(value) ms") }
            return .integer(value)
        case .string:
            return .string(text)
        case .boolean:
            switch text {
            case "true", "yes", "on": return .boolean(true)
            case "false", "no", "off": return .boolean(false)
            default: throw ProfileError(mark, "\(expected), found '\(text)'")
            }
        case .choice(let options):
            guard options.contains(text) else { throw ProfileError(mark, "\(expected), found '\(text)'") }
            return .string(text)
        case .endpoint:
            guard let address = SocketAddress.parse(text) else { throw ProfileError(mark, "\(expected), found '\(text)'") }
            return .endpoint(address)
        case .executable:
            guard !text.isEmpty else { throw ProfileError(mark, "\(name) is empty; name a program or remove the setting") }
            // One check for every plugin's hooks, where the path is written.
            if let user = DaemonUser.checkingFiles {
                do {
                    try ExecutableFile.check(Settings.resolve(text, writtenIn: mark.file), runAs: user)
                } catch {
                    throw ProfileError(mark, "\(name): \(error)")
                }
            }
            return .string(text)
        case .list:
            fatalError("handled above")
        }
    }

    // Typed conversions for fixed keys of the profile format (not plugin settings).

    static func integer(_ node: YAMLNode, _ range: ClosedRange<Int>, name: String) throws -> Int {
        if case .integer(let value) = try convert(node, to: .integer(range), name: name) { return value }
        preconditionFailure("convert(.integer) returns .integer")
    }

    static func string(_ node: YAMLNode, name: String, choices: [String]? = nil) throws -> String {
        if case .string(let value) = try convert(node, to: choices.map { .choice($0) } ?? .string, name: name) { return value }
        preconditionFailure("convert(.string/.choice) returns .string")
    }

    static func boolean(_ node: YAMLNode, name: String) throws -> Bool {
        if case .boolean(let value) = try convert(node, to: .boolean, name: name) { return value }
        preconditionFailure("convert(.boolean) returns .boolean")
    }

    static func endpoint(_ node: YAMLNode, name: String) throws -> SocketAddress {
        if case .endpoint(let value) = try convert(node, to: .endpoint, name: name) { return value }
        preconditionFailure("convert(.endpoint) returns .endpoint")
    }

    static func parseMilliseconds(_ text: String) -> Int? {
        if text.hasSuffix("ms") { return Int(text.dropLast(2)) }
        if text.hasSuffix("s") {
            guard let seconds = Int(text.dropLast()) else { return nil }
            let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : ms
        }
        return Int(text)
    }
}
