import Framework

/// Settings the broker and the client share, declared once.
enum L2TPSettings {
    /// Where frames are carried: the kernel's L2TPv3, a TAP device here, or the
    /// kernel when its generic-netlink family exists.
    enum DataPlane: String { case auto, kernel, userspace }

    static let dataPlane = SettingSpec("data-plane", .choice(["auto", "kernel", "userspace"]), default: .string("auto"),
                                       help: "kernel: L2TPv3 in the kernel over generic netlink; userspace: a TAP device per session here; auto: the kernel when its l2tp family exists")
    static let hookTimeout = SettingSpec("hook-timeout", .milliseconds(100...3_600_000), default: .integer(60_000),
                                         help: "a hook running longer is killed")

    static func dataPlane(_ settings: Settings) -> DataPlane {
        DataPlane(rawValue: settings.string(dataPlane))!  // the spec admits only these
    }

    static func hookTimeout(_ settings: Settings) -> Double {
        Double(settings.integer(hookTimeout)) / 1000
    }
}
