import Framework

/// The bonding plugin (the mlvpn family): client and server session managers, the
/// `bonding.scheduler` and `bonding.reorder` stages. Registered by `tunneld`.
public enum BondingPlugin {
    public static let plugin = Plugin(
        name: "bonding",
        summary: "several uplinks aggregated into one tunnel: earliest-delivery scheduling, reordering, sub-second failover",
        stages: [SchedulerStage.descriptor, ReorderStage.descriptor],
        sessionManagers: [BondingClientManager.descriptor, BondingServerManager.descriptor])

    /// The tunnel's bonding sessions; the stages work only under a bonding manager,
    /// which owns the paths they schedule over.
    static func registry(of context: StageContext) throws -> BondingRegistry {
        guard context.tunnel.manager is BondingManager else {
            throw ConfigurationError("stage '\(context.stageName)' needs the bonding-client or bonding-server session manager, not '\(context.tunnel.spec.sessionManager.name)'")
        }
        return context.tunnel.shared(BondingRegistry.self) { BondingRegistry() }
    }
}
