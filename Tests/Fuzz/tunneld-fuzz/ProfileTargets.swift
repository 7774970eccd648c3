#if FUZZING
import Bonding
import Crypto
import ExampleStages
import Foundation
@testable import Framework
import L2TPv3
import Monitoring

/// The site file and the stock profiles file: user input, parsed by libyaml and then by
/// the loader. Every refusal must be a `ProfileError` that says where (file:line:column).
enum ProfileTargets {
    /// The repository, found from this file (Tests/Fuzz/tunneld-fuzz/…), for plugins.yaml.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The stock plugins, as `tunneld` registers them.
    static let registry: PluginRegistry = {
        var registry = PluginRegistry()
        for plugin in [CorePlugin.plugin, CryptoPlugin.plugin, MonitoringPlugin.plugin, BondingPlugin.plugin,
                       L2TPv3Plugin.plugin, ExamplePlugin.plugin] {
            registry.register(plugin)
        }
        return registry
    }()

    nonisolated(unsafe) static var loader: ProfileLoader!

    static let all = [
        FuzzTarget(name: "site-file", summary: "a site file, loaded with the repository's stock profiles",
                   prepare: {
                       let path = repository + "/plugins.yaml"
                       guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                             let stock = try? StockProfiles.parse(text, file: path, registry: registry) else {
                           fatalError("cannot load \(path)")
                       }
                       loader = ProfileLoader(registry: registry, stock: stock)
                   },
                   run: { input in
                       do {
                           _ = try loader.load(siteText: String(decoding: input, as: UTF8.self), file: "site.yaml")
                       } catch {
                           expectLocated(error, file: "site.yaml")
                       }
                   }),
        FuzzTarget(name: "stock-profiles", summary: "a stock profiles file (plugins.yaml)", run: { input in
            do {
                _ = try StockProfiles.parse(String(decoding: input, as: UTF8.self), file: "stock.yaml", registry: registry)
            } catch {
                expectLocated(error, file: "stock.yaml")
            }
        }),
    ]

    /// The rule for every profile error: it names the file, line and column.
    static func expectLocated(_ error: Error, file: String) {
        guard let error = error as? ProfileError, error.description.hasPrefix(file + ":") else {
            fatalError("a profile error without file:line:column: \(type(of: error)) \(error)")
        }
    }
}
#endif
