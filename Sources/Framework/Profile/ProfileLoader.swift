/// Turns a site file plus the stock profiles into a validated `TunnelSpec`, or fails
/// with the first error found, always with `file:line:column` and what was expected.
/// Touches no network and no device.
public struct ProfileLoader: Sendable {
    let registry: PluginRegistry
    let stock: StockProfiles

    static let siteKeys = ["profile", "device", "links", "sessions", "pipeline", "settings", "stages", "batch", "log", "user"]
    static let deviceKeys = ["name", "mtu", "address", "offload"]
    static let linkKeys = ["name", "bind", "remote", "device"]
    static let customStageKeys = ["use", "after", "before", "settings"]

    public init(registry: PluginRegistry, stock: StockProfiles) {
        self.registry = registry
        self.stock = stock
    }

    public func load(siteText text: String, file: String) throws -> TunnelSpec {
        let site = try MappingReader(try YAMLParser.parse(text, file: file), owner: "the site file")
        try site.requireKnownKeys(Self.siteKeys + registry.allServices.map(\.name))
        let user = try parseUser(site)
        // Secret files and programs the settings name are checked against the user
        // the daemon will run as, wherever a plugin reads them during the load.
        return try DaemonUser.$checkingFiles.withValue(user ?? .current) {
            try load(site, file: file, user: user)
        }
    }

    private func load(_ site: MappingReader, file: String, user: DaemonUser?) throws -> TunnelSpec {
        let (profileName, profileMark) = try site.requiredScalar("profile", expected: "the stock profile to use; one of \(stock.profiles.map(\.name).joined(separator: ", "))")
        guard let profile = stock.profile(named: profileName) else {
            let known = stock.profiles.map(\.name)
            throw ProfileError(profileMark, "unknown profile '\(profileName)'\(suggestion(profileName, known)); stock profiles in \(stock.file): \(known.joined(separator: ", "))")
        }

        // Slots: the stock choice, overridden by the site's `pipeline:`.
        var slots = profile.slots
        if let node = site.value("pipeline") {
            for (slot, choice) in try StockProfiles.parseSlots(node, owner: "'pipeline'", registry: registry, requireAll: false) {
                slots[slot] = choice
            }
        }

        // Stage settings: defaults, then the stock profile's, then the site's.
        var siteStageSettings: [String: YAMLNode] = [:]
        if let node = site.value("settings") {
            let reader = try MappingReader(node, owner: "'settings'")
            let inUse = Set(slots.values.map(\.name))
            for entry in reader.entries {
                guard registry.stage(named: entry.key) != nil else {
                    let known = registry.plugins.flatMap(\.stages).map(\.name)
                    throw ProfileError(entry.keyMark, "settings for unknown stage '\(entry.key)'\(suggestion(entry.key, known)); known: \(known.joined(separator: ", "))")
                }
                guard inUse.contains(entry.key) else {
                    throw ProfileError(entry.keyMark, "settings for stage '\(entry.key)', which fills no slot of profile '\(profileName)'; settings of custom stages go under 'stages:'")
                }
                siteStageSettings[entry.key] = entry.value
            }
        }

        func stageSpec(_ name: String, placement: String, at mark: SourceMark, extra: YAMLNode? = nil) throws -> TunnelSpec.StageSpec {
            let descriptor = registry.stage(named: name)!
            let owner = "stage '\(name)'"
            var settings = try SettingsValidator.validate(profile.stageSettings[name], specs: descriptor.settings,
                                                          owner: owner, requireAll: false, at: mark)
            settings = try SettingsValidator.validate(extra ?? siteStageSettings[name], specs: descriptor.settings,
                                                      owner: owner, over: settings, at: mark)
            if let check = descriptor.check {
                do {
                    try check(settings)
                } catch let error as ProfileError {
                    throw error
                } catch {
                    // Point at the site's settings for the stage, else at its choice of profile.
                    throw ProfileError((extra ?? siteStageSettings[name])?.mark ?? profileMark, "\(owner): \(error)")
                }
            }
            return TunnelSpec.StageSpec(descriptor: descriptor, settings: settings, placement: placement, mark: mark)
        }

        // Stages in send order with custom stages inserted by position.
        var before: [Slot: [TunnelSpec.StageSpec]] = [:]
        var after: [Slot: [TunnelSpec.StageSpec]] = [:]
        if let node = site.value("stages") {
            guard case .sequence(let items, _) = node else {
                throw ProfileError(node.mark, "'stages' must be a list of custom stages, each like '{ use: NAME, after: SLOT }'")
            }
            for item in items {
                let reader = try MappingReader(item, owner: "a custom stage")
                try reader.requireKnownKeys(Self.customStageKeys)
                let (name, nameMark) = try reader.requiredScalar("use", expected: "the stage name")
                guard let descriptor = registry.stage(named: name) else {
                    let known = registry.insertableStages.map(\.name)
                    throw ProfileError(nameMark, "unknown stage '\(name)'\(suggestion(name, known)); stages that can be inserted: \(known.joined(separator: ", "))")
                }
                guard descriptor.insertable else {
                    throw ProfileError(nameMark, "stage '\(name)' fills a slot and cannot be inserted by position; choose it under 'pipeline:'")
                }
                let afterSlot = try reader.scalar("after")
                let beforeSlot = try reader.scalar("before")
                guard (afterSlot == nil) != (beforeSlot == nil) else {
                    throw ProfileError(reader.mark, "custom stage '\(name)' needs exactly one of 'after: SLOT' or 'before: SLOT'")
                }
                let (slotName, slotMark) = (afterSlot ?? beforeSlot)!
                let anchors = Slot.sendOrder.map(\.rawValue)
                guard let slot = Slot(rawValue: slotName), Slot.sendOrder.contains(slot) else {
                    throw ProfileError(slotMark, "unknown position '\(slotName)'\(suggestion(slotName, anchors)); use one of \(anchors.joined(separator: ", "))")
                }
                if afterSlot != nil && slot == .transport {
                    throw ProfileError(slotMark, "nothing can come after the transport (it sends to the network); use 'before: transport'")
                }
                if beforeSlot != nil && slot == .ingress {
                    throw ProfileError(slotMark, "nothing can come before the ingress (it reads the device); use 'after: ingress'")
                }
                let placement = afterSlot != nil ? "after: \(slotName)" : "before: \(slotName)"
                let spec = try stageSpec(name, placement: placement, at: nameMark, extra: reader.value("settings"))
                if afterSlot != nil { after[slot, default: []].append(spec) } else { before[slot, default: []].append(spec) }
            }
        }
        var stages: [TunnelSpec.StageSpec] = []
        for slot in Slot.sendOrder {
            stages += before[slot] ?? []
            let choice = slots[slot]!
            if choice.name != "none" {
                stages.append(try stageSpec(choice.name, placement: slot.rawValue, at: choice.mark))
            }
            stages += after[slot] ?? []
        }
        let egressChoice = slots[.egress]!
        let egress = try stageSpec(egressChoice.name, placement: "egress", at: egressChoice.mark)

        let ingressKind = stages.first?.descriptor.deviceKind
        if let ingressKind, let egressKind = egress.descriptor.deviceKind, ingressKind != egressKind {
            throw ProfileError(egressChoice.mark, "egress stage '\(egressChoice.name)' writes a \(egressKind.rawValue) device but the ingress reads a \(ingressKind.rawValue) device; use the same kind")
        }

        // Device.
        var device: TunnelSpec.DeviceSpec?
        var perSession = false
        if case .scalar(TunnelSpec.perSessionDevices, _, _) = profile.device {
            // A fleet profile (a broker): each session gets its own device, which
            // its session manager names and sizes; the tunnel has none.
            perSession = true
            if let node = site.value("device") {
                throw ProfileError(node.mark, "profile '\(profileName)' gives each session its own device, named and sized by its session manager; remove 'device:'")
            }
        } else if let kind = ingressKind ?? egress.descriptor.deviceKind {
            device = try parseDevice(site.value("device"), defaults: profile.device, kind: kind, siteMark: site.mark)
        } else if let node = site.value("device") {
            throw ProfileError(node.mark, "profile '\(profileName)' uses no local device; remove 'device:'")
        }

        // Session manager and links.
        let manager = registry.sessionManager(named: profile.sessions.name)!
        var sessionSettings = try SettingsValidator.validate(profile.sessionSettings, specs: manager.settings,
                                                             owner: "session manager '\(manager.name)'", requireAll: false, at: profile.sessions.mark)
        sessionSettings = try SettingsValidator.validate(site.value("sessions"), specs: manager.settings,
                                                         owner: "session manager '\(manager.name)'", over: sessionSettings,
                                                         at: site.keyMark("sessions") ?? site.mark)
        if let check = manager.check { try check(sessionSettings) }
        var links: [TunnelSpec.LinkSpec] = []
        if let whereInstead = manager.ownLinks {
            if let node = site.value("links") {
                throw ProfileError(site.keyMark("links") ?? node.mark, "profile '\(profileName)' opens its own sockets; remove 'links:' (\(whereInstead))")
            }
        } else {
            links = try parseLinks(site.value("links"), manager: manager, siteMark: site.mark)
        }

        var batch = 64
        if let node = site.value("batch") {
            batch = try SettingsValidator.integer(node, 1...1024, name: "'batch'")
        }
        var logLevel = "info"
        if let node = site.value("log") {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            logLevel = try SettingsValidator.string(node, name: "'log'", choices: levels)
        }

        // Services: those the site configures, and those on by default.
        var services: [TunnelSpec.ServiceSpec] = []
        for descriptor in registry.allServices {
            let node = site.value(descriptor.name)
            guard node != nil || descriptor.enabledByDefault else { continue }
            // `status: off` turns a service off, including one on by default.
            if case .scalar(let text, _, plain: true) = node, ["off", "false", "no"].contains(text) { continue }
            let settings = try SettingsValidator.validate(node, specs: descriptor.settings, owner: "'\(descriptor.name)'",
                                                          at: node?.mark ?? profileMark)
            services.append(TunnelSpec.ServiceSpec(descriptor: descriptor, settings: settings))
        }

        return TunnelSpec(file: file, profile: profileName, summary: profile.summary, device: device,
                          devicesPerSession: perSession, links: links,
                          sessionManager: manager, sessionSettings: sessionSettings, stages: stages, egress: egress,
                          services: services, batchSize: batch, logLevel: logLevel, user: user)
    }

    /// `user: NAME`: the account the daemon switches to once its devices and sockets
    /// exist. It must exist here, and not be root (that would keep every privilege).
    func parseUser(_ site: MappingReader) throws -> DaemonUser? {
        guard let (name, mark) = try site.scalar("user") else { return nil }
        guard let user = DaemonUser.named(name) else {
            throw ProfileError(mark, "no user '\(name)' on this system; create it ('adduser --system --group \(name)') or remove 'user:'")
        }
        guard user.uid != 0 else {
            throw ProfileError(mark, "user '\(name)' is root, which keeps every privilege; name an unprivileged user (the package creates 'tunneld') or remove 'user:'")
        }
        return user
    }

    func parseDevice(_ node: YAMLNode?, defaults: YAMLNode?, kind: TunDevice.Kind, siteMark: SourceMark) throws -> TunnelSpec.DeviceSpec {
        guard let node else {
            throw ProfileError(siteMark, "this profile reads a \(kind.rawValue) device: add 'device: { name: \(kind.rawValue)0, mtu: 1400, address: 10.99.0.1/30 }'")
        }
        let site = try MappingReader(node, owner: "'device'")
        try site.requireKnownKeys(Self.deviceKeys)
        let stock = try defaults.map { try MappingReader($0, owner: "the stock profile's 'device'") }
        try stock?.requireKnownKeys(Self.deviceKeys)
        func pick(_ key: String) -> YAMLNode? { site.value(key) ?? stock?.value(key) }

        var name = kind.rawValue + "%d"
        if let nameNode = pick("name") {
            let value = try SettingsValidator.string(nameNode, name: "'name' of 'device'")
            guard !value.isEmpty, value.utf8.count < 16, !value.contains("/"), !value.contains(" ") else {
                throw ProfileError(nameNode.mark, "device name '\(value)' is not a valid interface name (1 to 15 characters, no '/' or spaces)")
            }
            name = value
        }
        var mtu = 1400
        if let mtuNode = pick("mtu") {
            mtu = try SettingsValidator.integer(mtuNode, 576...9000, name: "'mtu' of 'device'")
        }
        var addresses: [InterfaceAddress] = []
        if let addressNode = pick("address") {
            let nodes: [YAMLNode]
            if case .sequence(let items, _) = addressNode { nodes = items } else { nodes = [addressNode] }
            for itemNode in nodes {
                let text = try SettingsValidator.string(itemNode, name: "'address' of 'device'")
                guard let address = InterfaceAddress.parse(text) else {
                    throw ProfileError(itemNode.mark, "'\(text)' is not an address with prefix length, such as 10.99.0.1/30 or fd00::1/64")
                }
                addresses.append(address)
            }
            if addresses.filter(\.isIPv4).count > 1 {
                throw ProfileError(addressNode.mark, "at most one IPv4 address per device (any number of IPv6 addresses)")
            }
        }
        var offload = kind == .tun
        if let offloadNode = pick("offload") {
            let value = try SettingsValidator.boolean(offloadNode, name: "'offload' of 'device'")
            guard !value || kind == .tun else {
                throw ProfileError(offloadNode.mark, "'offload' applies to TUN devices only; remove it for a TAP device")
            }
            offload = value
        }
        return TunnelSpec.DeviceSpec(name: name, mtu: mtu, addresses: addresses, offload: offload, mark: site.mark)
    }

    func parseLinks(_ node: YAMLNode?, manager: SessionManagerDescriptor, siteMark: SourceMark) throws -> [TunnelSpec.LinkSpec] {
        guard let node else {
            throw ProfileError(siteMark, "add 'links:', a list of links like '- { name: wan1, bind: 192.0.2.1:5080, remote: 198.51.100.1:5080 }'")
        }
        guard case .sequence(let items, _) = node, !items.isEmpty else {
            throw ProfileError(node.mark, "'links' must be a non-empty list of links, each like '{ name: wan1, bind: 192.0.2.1:5080, remote: 198.51.100.1:5080 }'")
        }
        var links: [TunnelSpec.LinkSpec] = []
        let allowed = Self.linkKeys + manager.linkSettings.map(\.name)
        for item in items {
            let reader = try MappingReader(item, owner: "a link")
            try reader.requireKnownKeys(allowed)
            let (name, nameMark) = try reader.requiredScalar("name", expected: "a name for the link, e.g. wan1")
            if links.contains(where: { $0.name == name }) {
                throw ProfileError(nameMark, "two links are named '\(name)'; link names must be unique")
            }
            guard let bindNode = reader.value("bind") else {
                throw ProfileError(reader.mark, "link '\(name)' needs 'bind: ADDRESS:PORT' (0.0.0.0:5080 to listen on every address)")
            }
            let bind = try SettingsValidator.endpoint(bindNode, name: "'bind' of link '\(name)'")
            var remote: SocketAddress?
            if let remoteNode = reader.value("remote") {
                let value = try SettingsValidator.endpoint(remoteNode, name: "'remote' of link '\(name)'")
                guard value.family == bind.family else {
                    throw ProfileError(remoteNode.mark, "link '\(name)' binds an \(bind.familyName) address but its remote is \(value.familyName); use one family per link")
                }
                remote = value
            }
            let device = try reader.scalar("device")?.0
            var extra: [(key: String, keyMark: SourceMark, value: YAMLNode)] = []
            for entry in reader.entries where !Self.linkKeys.contains(entry.key) { extra.append(entry) }
            let settings = try SettingsValidator.validate(extra.isEmpty ? nil : .mapping(extra, reader.mark),
                                                          specs: manager.linkSettings, owner: "link '\(name)'", at: reader.mark)
            links.append(TunnelSpec.LinkSpec(name: name, bind: bind, remote: remote, device: device, settings: settings, mark: nameMark))
        }
        return links
    }
}
