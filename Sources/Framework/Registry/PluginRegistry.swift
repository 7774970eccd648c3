/// The plugins compiled into this binary. Built once at start-up by the executable,
/// then read-only.
public struct PluginRegistry: Sendable {
    public private(set) var plugins: [Plugin] = []

    public init() {}

    /// Register a plugin. Names of stages and session managers must be unique across
    /// all plugins; a clash is a programming error caught on the first run.
    public mutating func register(_ plugin: Plugin) {
        for stage in plugin.stages {
            precondition(self.stage(named: stage.name) == nil, "stage '\(stage.name)' registered twice")
            precondition(stage.name != "none", "'none' is reserved for an empty slot")
        }
        for manager in plugin.sessionManagers {
            precondition(sessionManager(named: manager.name) == nil, "session manager '\(manager.name)' registered twice")
        }
        for service in plugin.services {
            precondition(self.service(named: service.name) == nil, "service '\(service.name)' registered twice")
            precondition(!ProfileLoader.siteKeys.contains(service.name), "service '\(service.name)' would shadow a site key")
        }
        plugins.append(plugin)
    }

    func service(named name: String) -> ServiceDescriptor? {
        for plugin in plugins {
            if let service = plugin.services.first(where: { $0.name == name }) { return service }
        }
        return nil
    }

    var allServices: [ServiceDescriptor] {
        plugins.flatMap(\.services)
    }

    func stage(named name: String) -> StageDescriptor? {
        for plugin in plugins {
            if let stage = plugin.stages.first(where: { $0.name == name }) { return stage }
        }
        return nil
    }

    func sessionManager(named name: String) -> SessionManagerDescriptor? {
        for plugin in plugins {
            if let manager = plugin.sessionManagers.first(where: { $0.name == name }) { return manager }
        }
        return nil
    }

    /// Stages that may fill `slot`, by name.
    func stages(for slot: Slot) -> [StageDescriptor] {
        plugins.flatMap(\.stages).filter { $0.slots.contains(slot) }
    }

    var insertableStages: [StageDescriptor] {
        plugins.flatMap(\.stages).filter(\.insertable)
    }

    var allSessionManagers: [SessionManagerDescriptor] {
        plugins.flatMap(\.sessionManagers)
    }
}
