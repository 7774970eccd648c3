/// What a SIGHUP reload can apply to a running tunnel, and what it cannot.
///
/// Links and the session manager's settings change live: that is what operators
/// retune (a new uplink, a tolerance, a fallback flag). The pipeline, the device and
/// stage settings (keys, ciphers) are wired into every session; changing them means
/// a restart, so a reload names them and keeps the running values.
enum ReloadPlan {
    static func restartOnlyChanges(from old: TunnelSpec, to new: TunnelSpec) -> [String] {
        var changes: [String] = []
        if old.profile != new.profile { changes.append("the profile ('\(old.profile)' → '\(new.profile)')") }
        if old.sessionManager.name != new.sessionManager.name { changes.append("the session manager") }
        let oldStages = old.stages.map(\.descriptor.name) + [old.egress.descriptor.name]
        let newStages = new.stages.map(\.descriptor.name) + [new.egress.descriptor.name]
        if oldStages != newStages {
            changes.append("the pipeline (\(oldStages.joined(separator: " → ")) → \(newStages.joined(separator: " → ")))")
        } else {
            for (before, after) in zip(old.stages + [old.egress], new.stages + [new.egress])
            where before.settings.values != after.settings.values {
                changes.append("the settings of stage '\(before.descriptor.name)'")
            }
        }
        if old.device?.name != new.device?.name || old.device?.mtu != new.device?.mtu
            || old.device?.addresses != new.device?.addresses {
            changes.append("the device")
        }
        if old.services.map(\.descriptor.name) != new.services.map(\.descriptor.name) {
            changes.append("the services")
        }
        // Privileges given up cannot be taken back; a new user needs a fresh start as root.
        if old.user != new.user {
            changes.append("the user (\(old.user?.name ?? "none") → \(new.user?.name ?? "none"))")
        }
        return changes
    }
}
