/// A fully validated description of one tunnel: what `tunneld validate` checks and
/// what `Tunnel` builds. Produced only by `ProfileLoader`.
public struct TunnelSpec: Sendable {
    public struct DeviceSpec: Sendable {
        var name: String
        public var mtu: Int
        var addresses: [InterfaceAddress]
        /// TSO/GRO offloads between the kernel and the tunnel (TUN only).
        var offload: Bool
        var mark: SourceMark
    }

    public struct LinkSpec: Sendable {
        var name: String
        var bind: SocketAddress
        var remote: SocketAddress?
        var device: String?
        /// The session manager's per-link settings.
        var settings: Settings
        var mark: SourceMark
    }

    public struct StageSpec: Sendable {
        public var descriptor: StageDescriptor
        var settings: Settings
        /// How the profile placed it: a slot name, or a position such as "after: encrypt".
        public var placement: String
        var mark: SourceMark
    }

    struct ServiceSpec: Sendable {
        var descriptor: ServiceDescriptor
        var settings: Settings
    }

    public var file: String
    public var profile: String
    var summary: String
    /// The tunnel-wide device; nil when the pipeline has none or devices are per session.
    public var device: DeviceSpec?
    /// Each session owns a device of `deviceKind`, made by its session manager
    /// (a broker's `l2tp<T>-<S>` interfaces); the stock profile says `device: per-session`.
    var devicesPerSession: Bool
    static let perSessionDevices = "per-session"
    public var links: [LinkSpec]
    public var sessionManager: SessionManagerDescriptor
    public var sessionSettings: Settings
    /// Stages in send order: ingress first, transport last, custom stages in between.
    public var stages: [StageSpec]
    public var egress: StageSpec
    /// Services to start with the tunnel (status API, metrics).
    var services: [ServiceSpec]
    public var batchSize: Int
    public var logLevel: String
    /// The site file's `user:`: whom the daemon becomes after start-up, keeping only
    /// the capabilities it needs (`PrivilegeDrop`); nil keeps who started it.
    public var user: DaemonUser?

    /// The device kind the ingress/egress stages need, if any.
    public var deviceKind: TunDevice.Kind? {
        stages.first?.descriptor.deviceKind ?? egress.descriptor.deviceKind
    }
}
