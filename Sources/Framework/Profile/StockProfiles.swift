/// The stock profiles of `plugins.yaml`: for each, the session manager, which stage
/// fills each slot, and default settings. Parsed and checked against the registry.
public struct StockProfiles: Sendable {
    struct Profile: Sendable {
        let name: String
        let summary: String
        let sessions: (name: String, mark: SourceMark)
        let sessionSettings: YAMLNode?
        /// Stage name per slot ("none" for an empty slot), with where it was written.
        let slots: [Slot: (name: String, mark: SourceMark)]
        /// Default settings per stage name.
        let stageSettings: [String: YAMLNode]
        let device: YAMLNode?
        let mark: SourceMark
    }

    let file: String
    let profiles: [Profile]

    func profile(named name: String) -> Profile? { profiles.first { $0.name == name } }

    static let profileKeys = ["summary", "sessions", "session-settings", "pipeline", "settings", "device"]

    /// Parse `plugins.yaml`.
    public static func parse(_ text: String, file: String, registry: PluginRegistry) throws -> StockProfiles {
        let root = try MappingReader(try YAMLParser.parse(text, file: file), owner: "the stock profiles file")
        try root.requireKnownKeys(["profiles"])
        guard let profilesNode = root.value("profiles") else {
            throw ProfileError(root.mark, "the stock profiles file needs 'profiles:', a mapping of profile name to profile")
        }
        let profilesMap = try MappingReader(profilesNode, owner: "'profiles'")
        var profiles: [Profile] = []
        for entry in profilesMap.entries {
            let owner = "profile '\(entry.key)'"
            let reader = try MappingReader(entry.value, owner: owner)
            try reader.requireKnownKeys(profileKeys)
            let summary = try reader.scalar("summary")?.0 ?? ""
            let sessions = try reader.requiredScalar("sessions", expected: "the session manager, e.g. 'static'")
            guard registry.sessionManager(named: sessions.0) != nil else {
                let known = registry.allSessionManagers.map(\.name)
                throw ProfileError(sessions.1, "unknown session manager '\(sessions.0)'\(suggestion(sessions.0, known)); known: \(known.joined(separator: ", "))")
            }
            guard let pipelineNode = reader.value("pipeline") else {
                throw ProfileError(reader.mark, "\(owner) needs 'pipeline:', the stage of each slot")
            }
            let slots = try parseSlots(pipelineNode, owner: "the pipeline of \(owner)", registry: registry, requireAll: true)
            var stageSettings: [String: YAMLNode] = [:]
            if let node = reader.value("settings") {
                let settings = try MappingReader(node, owner: "the settings of \(owner)")
                for setting in settings.entries {
                    guard registry.stage(named: setting.key) != nil else {
                        throw ProfileError(setting.keyMark, "settings for unknown stage '\(setting.key)'")
                    }
                    stageSettings[setting.key] = setting.value
                }
            }
            profiles.append(Profile(name: entry.key, summary: summary, sessions: sessions,
                                    sessionSettings: reader.value("session-settings"), slots: slots,
                                    stageSettings: stageSettings, device: reader.value("device"), mark: entry.keyMark))
        }
        return StockProfiles(file: file, profiles: profiles)
    }

    /// Parse a `pipeline:` mapping of slot to stage name, checking that each stage
    /// exists and may fill that slot.
    static func parseSlots(_ node: YAMLNode, owner: String, registry: PluginRegistry,
                           requireAll: Bool) throws -> [Slot: (name: String, mark: SourceMark)] {
        let reader = try MappingReader(node, owner: owner)
        try reader.requireKnownKeys(Slot.allCases.map(\.rawValue))
        var slots: [Slot: (name: String, mark: SourceMark)] = [:]
        for entry in reader.entries {
            let slot = Slot(rawValue: entry.key)!
            guard case .scalar(let name, let mark, _) = entry.value else {
                throw ProfileError(entry.value.mark, "slot '\(slot.rawValue)' takes one stage name, found \(entry.value.kindName)")
            }
            let candidates = registry.stages(for: slot).map(\.name)
            let allowsNone = ![Slot.ingress, .egress, .transport].contains(slot)
            let known = candidates + (allowsNone ? ["none"] : [])
            if name == "none" && allowsNone {
                slots[slot] = (name, mark)
                continue
            }
            guard candidates.contains(name) else {
                if registry.stage(named: name) != nil {
                    throw ProfileError(mark, "stage '\(name)' cannot fill slot '\(slot.rawValue)'; stages for this slot: \(known.joined(separator: ", "))")
                }
                throw ProfileError(mark, "unknown stage '\(name)' in slot '\(slot.rawValue)'\(suggestion(name, known)); known: \(known.joined(separator: ", "))")
            }
            slots[slot] = (name, mark)
        }
        if requireAll {
            for slot in Slot.allCases where slots[slot] == nil {
                let hint = [Slot.ingress, .egress, .transport].contains(slot)
                    ? "this slot needs a stage: " + registry.stages(for: slot).map(\.name).joined(separator: ", ")
                    : "write '\(slot.rawValue): none' for an empty slot"
                throw ProfileError(reader.mark, "\(owner) does not say which stage fills slot '\(slot.rawValue)' (\(hint))")
            }
        }
        return slots
    }
}
