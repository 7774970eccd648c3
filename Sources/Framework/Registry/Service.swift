/// A tunnel-wide component that is neither a stage nor a session manager: the status
/// API, metrics exporters. It runs on the tunnel's loop thread (control plane) and is
/// configured by a top-level site key of its own name (`status: { socket: … }`).
public protocol Service: AnyObject {
    /// Close what it opened (sockets, files). Called once at shutdown.
    func stop()
}

/// Declares a service: its site key, settings, whether it runs when the site file
/// does not mention it, and how to start it once the tunnel is up.
public struct ServiceDescriptor: Sendable {
    public let name: String
    public let summary: String
    public let settings: [SettingSpec]
    public let enabledByDefault: Bool
    let make: @Sendable (ServiceContext) throws -> Service

    public init(name: String, summary: String, settings: [SettingSpec] = [], enabledByDefault: Bool = false,
                make: @escaping @Sendable (ServiceContext) throws -> Service) {
        self.name = name
        self.summary = summary
        self.settings = settings
        self.enabledByDefault = enabledByDefault
        self.make = make
    }
}

/// What a service gets when the tunnel starts it.
public struct ServiceContext {
    public let tunnel: Tunnel
    public let settings: Settings
}
