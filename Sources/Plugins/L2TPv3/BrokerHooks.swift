import Framework

/// tunneldigger's broker hooks, with its names and argument order (§3.9), so
/// existing scripts run unchanged.
enum BrokerHook: String, CaseIterable {
    case sessionUp = "session.up"
    case sessionPreDown = "session.pre-down"
    case sessionDown = "session.down"
    case mtuChanged = "session.mtu-changed"
    case rateLimited = "broker.connection-rate-limit"

    var argumentsHelp: String {
        switch self {
        case .sessionUp, .sessionPreDown, .sessionDown:
            return "TUNNEL_ID SESSION_ID INTERFACE MTU CLIENT_IP CLIENT_PORT BROKER_PORT UUID BROKER_PORT"
        case .mtuChanged: return "TUNNEL_ID SESSION_ID INTERFACE OLD_MTU NEW_MTU UUID"
        case .rateLimited: return "CLIENT_IP CLIENT_PORT UUID"
        }
    }
}

extension BrokerTunnel {
    /// The nine arguments of session.up / pre-down / down. The broker port comes
    /// twice (a leftover of tunneldigger's old NAT design that scripts still index).
    var sessionArguments: [String] {
        [String(id), String(sessionID), interface, String(mtu), client.host, String(client.port),
         String(brokerPort), uuid, String(brokerPort)]
    }
}
