import XCTest

/// Base for tests that need a lab: builds one per test and always destroys it.
class LabTestCase: XCTestCase {
    var lab: Lab!

    override func setUpWithError() throws {
        try Lab.requireBinary()
        lab = try Lab(String(describing: type(of: self)).lowercased())
        let lab = self.lab!
        addTeardownBlock { lab.destroy() }
    }

    /// Two hosts `a` and `b` joined by one veth (10.201.1.1/24 — 10.201.1.2/24),
    /// optionally rate-limited both ways.
    func twoHosts(rate: String? = nil) throws -> (a: String, b: String) {
        let a = try lab.namespace("a"), b = try lab.namespace("b")
        try lab.link(a, "10.201.1.1/24", b, "10.201.1.2/24", name: "\(lab.tag)v")
        if let rate {
            try lab.limit(a, "\(lab.tag)va", rate: rate)
            try lab.limit(b, "\(lab.tag)vb", rate: rate)
        }
        return (a, b)
    }

    /// A plain-profile site file.
    func plainSite(address: String, bind: String, remote: String, extra: String = "") -> String {
        """
        profile: plain
        device: { name: tun0, mtu: 1400, address: \(address) }
        links:
          - { name: wan1, bind: "\(bind)", remote: "\(remote)" }
        \(extra)
        """
    }

    /// Start a plain tunnel between a and b: 10.99.0.1 — 10.99.0.2.
    func plainTunnel(_ hosts: (a: String, b: String), extraA: String = "", extraB: String = "") throws -> (a: Lab.Daemon, b: Lab.Daemon) {
        let siteA = try lab.file("a.yaml", plainSite(address: "10.99.0.1/30", bind: "10.201.1.1:5080", remote: "10.201.1.2:5080", extra: extraA))
        let siteB = try lab.file("b.yaml", plainSite(address: "10.99.0.2/30", bind: "10.201.1.2:5080", remote: "10.201.1.1:5080", extra: extraB))
        let a = try lab.tunneld(hosts.a, site: siteA, name: "tunneld-a")
        let b = try lab.tunneld(hosts.b, site: siteB, name: "tunneld-b")
        return (a, b)
    }

    /// Wait until something listens on a TCP port in a namespace.
    func waitForListener(_ ns: String, port: Int) throws {
        for _ in 0..<100 {
            let listening = try lab.exec(ns, "ss", "-Hltn", "sport = :\(port)").output
            if !listening.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            usleep(50_000)
        }
        throw LabError("nothing listens on port \(port) in \(ns)")
    }
}
