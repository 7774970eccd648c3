/// What a plugin offers: stages (each for some slots, or insertable anywhere as a
/// custom stage), session managers and services (status API, metrics). Plugins are values registered at start-up by
/// the executable; nothing is loaded at run time.
public struct Plugin: Sendable {
    public let name: String
    public let summary: String
    public let stages: [StageDescriptor]
    public let sessionManagers: [SessionManagerDescriptor]
    public let services: [ServiceDescriptor]

    public init(name: String, summary: String, stages: [StageDescriptor] = [],
                sessionManagers: [SessionManagerDescriptor] = [], services: [ServiceDescriptor] = []) {
        self.name = name
        self.summary = summary
        self.stages = stages
        self.sessionManagers = sessionManagers
        self.services = services
    }
}

/// Declares one stage: its name (as written in profiles), the slots it can fill,
/// whether it can be inserted by position, its settings, the drop reasons it counts,
/// and how to build one instance for a session.
public struct StageDescriptor: Sendable {
    public let name: String
    public let summary: String
    public let slots: [Slot]
    /// True when profiles may insert it between slots (`after: encrypt`).
    public let insertable: Bool
    public let settings: [SettingSpec]
    public let dropReasons: [String]
    /// For stages that define the tunnel's wire format on the network side: the first
    /// bytes of data datagrams they accept. The claim of the deepest such stage in a
    /// pipeline is the one the tunnel's demultiplexer uses.
    let dataFirstBytes: [ClosedRange<UInt8>]?
    /// The local device this stage reads or writes, when it is an ingress/egress stage.
    let deviceKind: TunDevice.Kind?
    /// True when the stage proves where each received packet comes from (an AEAD with
    /// a handshake). Session managers then follow a peer's new address only when the
    /// stage reports an authenticated packet from it, never on a bare datagram.
    let authenticates: Bool
    /// Checks that need more than types and ranges (files exist, keys parse, secret
    /// files are private), run when the profile is loaded, so `tunneld validate`
    /// catches them and `run` fails before touching the network. Throw a
    /// `ProfileError` at the setting's mark (`settings.mark(name)`).
    let check: (@Sendable (Settings) throws -> Void)?
    /// Tunnel-wide set-up, once at start before any session exists: what must listen
    /// even while no session is up (a handshake responder on a hub).
    let prepare: (@Sendable (Tunnel, Settings) throws -> Void)?
    let make: @Sendable (StageContext) throws -> Stage

    public init(name: String, summary: String, slots: [Slot], insertable: Bool = false,
                settings: [SettingSpec] = [], dropReasons: [String] = [],
                dataFirstBytes: [ClosedRange<UInt8>]? = nil, deviceKind: TunDevice.Kind? = nil,
                authenticates: Bool = false, check: (@Sendable (Settings) throws -> Void)? = nil,
                prepare: (@Sendable (Tunnel, Settings) throws -> Void)? = nil,
                make: @escaping @Sendable (StageContext) throws -> Stage) {
        self.prepare = prepare
        self.authenticates = authenticates
        self.check = check
        self.name = name
        self.summary = summary
        self.slots = slots
        self.insertable = insertable
        self.settings = settings
        self.dropReasons = dropReasons
        self.dataFirstBytes = dataFirstBytes
        self.deviceKind = deviceKind
        self.make = make
    }
}

/// Declares a session manager: how a tunnel decides when sessions start and end.
public struct SessionManagerDescriptor: Sendable {
    public let name: String
    public let summary: String
    public let settings: [SettingSpec]
    /// Extra per-link settings this manager understands (beyond name/bind/remote/device).
    public let linkSettings: [SettingSpec]
    /// Checks of the manager's settings beyond types and ranges, at load time
    /// (throw a `ProfileError` at the setting's mark).
    let check: (@Sendable (Settings) throws -> Void)?
    /// Socket options for the site's links, from the manager's settings: a broker
    /// that hands per-client sockets to the kernel needs `SO_REUSEPORT` on the
    /// listening ones, and large receive buffers for handshake bursts.
    let linkOptions: (@Sendable (Settings) -> UDPLink.Options)?
    /// The manager opens its sockets itself while running (a client that takes a
    /// new source port per attempt); a site file then has no `links:`, and this
    /// says where the peers go instead.
    let ownLinks: String?
    let make: @Sendable (SessionManagerContext) throws -> SessionManager

    public init(name: String, summary: String, settings: [SettingSpec] = [], linkSettings: [SettingSpec] = [],
                check: (@Sendable (Settings) throws -> Void)? = nil,
                linkOptions: (@Sendable (Settings) -> UDPLink.Options)? = nil,
                ownLinks: String? = nil,
                make: @escaping @Sendable (SessionManagerContext) throws -> SessionManager) {
        self.ownLinks = ownLinks
        self.name = name
        self.summary = summary
        self.settings = settings
        self.linkSettings = linkSettings
        self.check = check
        self.linkOptions = linkOptions
        self.make = make
    }
}
