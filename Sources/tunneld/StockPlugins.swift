import Bonding
import Crypto
import ExampleStages
import Framework
import L2TPv3
import Monitoring

/// The one place that lists the plugins compiled into `tunneld`. To add your own
/// stages, add your target to Package.swift and register its plugin here.
enum StockPlugins {
    static var registry: PluginRegistry {
        var registry = PluginRegistry()
        registry.register(CorePlugin.plugin)
        registry.register(CryptoPlugin.plugin)
        registry.register(MonitoringPlugin.plugin)
        registry.register(BondingPlugin.plugin)
        registry.register(L2TPv3Plugin.plugin)
        registry.register(ExamplePlugin.plugin)
        return registry
    }
}
