import Foundation
import Framework

/// Finding and reading the stock profiles and site files.
enum ProfileFiles {
    /// Where `plugins.yaml` is looked for when `--stock` is not given, in order.
    static func stockCandidates() -> [String] {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TUNNELD_STOCK_PROFILES"] { candidates.append(env) }
        candidates += ["/etc/tunneld/plugins.yaml", "/usr/share/tunneld/plugins.yaml"]
        // Beside the executable, and up from it: covers running from a source checkout
        // (.build/release/tunneld finds the repository's plugins.yaml).
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(directory.appendingPathComponent("plugins.yaml").path)
            directory = directory.deletingLastPathComponent()
        }
        return candidates
    }

    static func read(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read \(what) '\(path)': \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError("\(path): not UTF-8 text; profiles are YAML text files")
        }
        return text
    }

    static func loadStock(path: String?, registry: PluginRegistry) throws -> StockProfiles {
        let chosen: String
        if let path {
            chosen = path
        } else {
            let candidates = stockCandidates()
            guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
                throw ConfigurationError("cannot find the stock profiles (plugins.yaml); looked in: \(candidates.joined(separator: ", ")). Pass --stock PATH or install it to /usr/share/tunneld/plugins.yaml")
            }
            chosen = found
        }
        return try StockProfiles.parse(try read(chosen, what: "stock profiles"), file: chosen, registry: registry)
    }

    static func loadSpec(site: String, stock: String?) throws -> TunnelSpec {
        let registry = StockPlugins.registry
        let profiles = try loadStock(path: stock, registry: registry)
        let loader = ProfileLoader(registry: registry, stock: profiles)
        return try loader.load(siteText: try read(site, what: "site file"), file: site)
    }
}
