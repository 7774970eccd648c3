import ArgumentParser
import Foundation
import Framework
import Logging

struct TunneldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunneld",
        abstract: "A plugin-driven tunnel: a pipeline of packet stages chosen by a YAML profile.",
        version: VersionInfo.text,
        subcommands: [Run.self, Status.self, Validate.self, Plugins.self, GenKey.self, PubKey.self, Import.self])
}

struct StockOption: ParsableArguments {
    @Option(name: .long, help: "The stock profiles file (default: $TUNNELD_STOCK_PROFILES, /etc/tunneld/plugins.yaml, /usr/share/tunneld/plugins.yaml, or plugins.yaml beside the binary).")
    var stock: String?
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the tunnel a site file describes, until SIGTERM or SIGINT.",
        discussion: """
        SIGHUP reloads the site file; SIGUSR1 logs the status.

        Examples:
          tunneld run /etc/tunneld/office.yaml
          tunneld run --log-level debug --stock ./plugins.yaml site.yaml
        """)

    @Argument(help: "The site file (YAML).") var file: String
    @OptionGroup var stockOption: StockOption
    @Option(help: "Log level, overriding the site file's 'log:'.") var logLevel: String?

    func run() throws {
        // Before any thread exists, so these signals reach only the event loop's signalfd.
        EventLoop.blockSignals([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        let spec: TunnelSpec
        do {
            spec = try ProfileFiles.loadSpec(site: file, stock: stockOption.stock)
        } catch {
            FileHandle.standardError.write(Data("tunneld: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let levelName = logLevel ?? spec.logLevel
        guard let level = Logger.Level(rawValue: levelName) else {
            FileHandle.standardError.write(Data("tunneld: unknown log level '\(levelName)'\n".utf8))
            throw ExitCode(1)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tunneld")
        do {
            let tunnel = try Tunnel(spec: spec, logger: logger)
            let (site, stock) = (file, stockOption.stock)
            tunnel.reloader = { try ProfileFiles.loadSpec(site: site, stock: stock) }
            try tunnel.start()
            logger.info("running profile '\(spec.profile)' from \(spec.file): \(spec.stages.map(\.descriptor.name).joined(separator: " → ")) / egress \(spec.egress.descriptor.name)")
            tunnel.run()
        } catch {
            logger.error("\(error)")
            throw ExitCode(1)
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a site file and its profile without touching the network. Exit 0 if valid, 1 if not.",
        discussion: """
        Errors name the file, line and column, and what to do.

        Example:
          tunneld validate /etc/tunneld/office.yaml
        """)

    @Argument(help: "The site file (YAML).") var file: String
    @OptionGroup var stockOption: StockOption

    func run() throws {
        do {
            let spec = try ProfileFiles.loadSpec(site: file, stock: stockOption.stock)
            print("\(file): valid (profile '\(spec.profile)', \(spec.links.count) link\(spec.links.count == 1 ? "" : "s"))")
            for stage in spec.stages {
                print("  \(stage.placement.padding(toLength: 18, withPad: " ", startingAt: 0)) \(stage.descriptor.name)")
            }
            print("  \("egress".padding(toLength: 18, withPad: " ", startingAt: 0)) \(spec.egress.descriptor.name)")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the registered plugins, their stages, slots and settings.",
        discussion: """
        Example (every setting of the bonding plugin):
          tunneld plugins | sed -n '/^bonding:/,/^[a-z]/p'
        """)

    func run() throws {
        for plugin in StockPlugins.registry.plugins {
            print("\(plugin.name): \(plugin.summary)")
            for stage in plugin.stages {
                var places = stage.slots.map(\.rawValue)
                if stage.insertable { places.append("custom (after:/before: a slot)") }
                print("  stage \(stage.name) [\(places.joined(separator: ", "))]")
                print("    \(stage.summary)")
                printSettings(stage.settings)
                if !stage.dropReasons.isEmpty { print("    drop reasons: \(stage.dropReasons.joined(separator: ", "))") }
            }
            for manager in plugin.sessionManagers {
                print("  sessions \(manager.name)")
                print("    \(manager.summary)")
                printSettings(manager.settings)
                if !manager.linkSettings.isEmpty {
                    print("    per-link settings:")
                    printSettings(manager.linkSettings, indent: "      ")
                }
            }
            for service in plugin.services {
                print("  service \(service.name) (site key '\(service.name):'\(service.enabledByDefault ? ", on by default" : ""))")
                print("    \(service.summary)")
                printSettings(service.settings)
            }
        }
    }

    func printSettings(_ specs: [SettingSpec], indent: String = "    ") {
        for spec in specs {
            var line = "\(indent)\(spec.name): \(spec.type)"
            if let value = spec.defaultValue, value != .string("") { line += " (default \(value))" }
            if spec.required { line += " (required)" }
            print(line)
            print("\(indent)  \(spec.help)")
        }
    }
}

TunneldCommand.main()
