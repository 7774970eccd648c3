import Framework

/// mlvpn's status script, with its calling convention kept so existing scripts work:
/// `SCRIPT DEVICE tuntap_up|tuntap_down` and `SCRIPT DEVICE rtun_up|rtun_down LINK`,
/// environment `DEVICE MTU IP4 IP6 IP4_GATEWAY IP6_GATEWAY IP4_ROUTES IP6_ROUTES`.
/// `tuntap_up` runs when the first link of the tunnel comes up (before that link's
/// `rtun_up`), `tuntap_down` after the last one's `rtun_down`.
struct StatusHooks {
    let script: String?
    let timeout: Double
    let environment: [String: String]
    private(set) var linksUp = 0

    init(settings: Settings, tunnel: Tunnel) {
        script = settings.path("status-command")
        timeout = Double(settings.integer(Self.hookTimeout)) / 1000
        var environment: [String: String] = [
            "DEVICE": tunnel.device?.name ?? "",
            "MTU": String(tunnel.device?.mtu ?? tunnel.spec.device?.mtu ?? 0),
        ]
        for (key, name) in [("IP4", "ip4"), ("IP6", "ip6"), ("IP4_GATEWAY", "ip4-gateway"), ("IP6_GATEWAY", "ip6-gateway"),
                            ("IP4_ROUTES", "ip4-routes"), ("IP6_ROUTES", "ip6-routes")] {
            environment[key] = settings.string(name) ?? ""
        }
        self.environment = environment
    }

    mutating func linkUp(_ link: String, tunnel: Tunnel) {
        linksUp += 1
        if linksUp == 1 { run(["tuntap_up"], tunnel) }
        run(["rtun_up", link], tunnel)
    }

    mutating func linkDown(_ link: String, tunnel: Tunnel) {
        guard linksUp > 0 else { return }
        linksUp -= 1
        run(["rtun_down", link], tunnel)
        if linksUp == 0 { run(["tuntap_down"], tunnel) }
    }

    private func run(_ event: [String], _ tunnel: Tunnel) {
        guard let script else { return }
        let device = environment["DEVICE"] ?? ""
        tunnel.hooks.run(HookRunner.Hook(script: script, arguments: [device] + event, environment: environment, timeout: timeout))
    }

    static let hookTimeout = SettingSpec("hook-timeout", .milliseconds(100...300_000), default: .integer(10_000), help: "a status script running longer is killed")

    static let settings: [SettingSpec] = [
        SettingSpec("status-command", .executable, help: "script run on link and tunnel state changes, called like mlvpn's statuscommand (path relative to the site file)"),
        hookTimeout,
        SettingSpec("ip4", .string, help: "IP4 for the status script (e.g. 10.42.0.2/30)"),
        SettingSpec("ip6", .string, help: "IP6 for the status script"),
        SettingSpec("ip4-gateway", .string, help: "IP4_GATEWAY for the status script"),
        SettingSpec("ip6-gateway", .string, help: "IP6_GATEWAY for the status script"),
        SettingSpec("ip4-routes", .string, help: "IP4_ROUTES for the status script (space-separated prefixes)"),
        SettingSpec("ip6-routes", .string, help: "IP6_ROUTES for the status script"),
    ]
}
