import XCTest
@testable import Framework

final class StockProfilesTests: XCTestCase {
    private func parse(_ text: String) throws -> StockProfiles {
        try StockProfiles.parse(text, file: "stock.yaml", registry: testRegistry())
    }

    /// A stock file with one profile `p`, whose pipeline lines are given.
    private func stock(pipeline: String = "{ ingress: tun, reorder: none, encrypt: none, schedule: none, transport: udp, egress: tun }",
                       extra: String = "") -> String {
        "profiles:\n  p:\n    sessions: static\n    pipeline: \(pipeline)\n" + extra
    }

    func testRepositoryPluginsFile() throws {
        let stock = try StockProfiles.parse(stockProfilesText(), file: "plugins.yaml", registry: testRegistry())
        XCTAssertEqual(stock.file, "plugins.yaml")
        XCTAssertEqual(stock.profiles.map(\.name), ["p2p", "p2p-tap", "plain", "plain-tap", "bonding-client", "bonding-server", "l2tp-broker", "l2tp-client"])
        XCTAssertEqual(stock.profile(named: "p2p")?.slots[.encrypt]?.name, "crypto.aead")
        let plain = try XCTUnwrap(stock.profile(named: "plain"))
        XCTAssertEqual(plain.sessions.name, "static")
        XCTAssertEqual(plain.summary, "one UDP link, no encryption, no reordering: for measurements and trusted networks only")
        var slots: [String: String] = [:]
        for (slot, choice) in plain.slots { slots[slot.rawValue] = choice.name }
        XCTAssertEqual(slots, ["ingress": "tun", "reorder": "none", "encrypt": "none", "schedule": "none", "transport": "udp", "egress": "tun"])
        XCTAssertNotNil(plain.device)
        XCTAssertNil(plain.sessionSettings)
        XCTAssertTrue(plain.stageSettings.isEmpty)
        XCTAssertEqual(stock.profile(named: "plain-tap")?.slots[.ingress]?.name, "tap")
        XCTAssertNil(stock.profile(named: "bonding"))
    }

    func testMinimalStockFile() throws {
        let stock = try parse(stock(extra: "    settings: { tun: {} }\n    summary: short\n"))
        let p = try XCTUnwrap(stock.profile(named: "p"))
        XCTAssertEqual(p.summary, "short")
        XCTAssertEqual(p.mark, SourceMark(file: "stock.yaml", line: 2, column: 3))
        XCTAssertEqual(p.slots[.transport]?.mark, SourceMark(file: "stock.yaml", line: 4, column: 88))
        XCTAssertEqual(Array(p.stageSettings.keys), ["tun"])
    }

    func testErrors() {
        assertProfileError("stock.yaml:1:1: unknown key 'profile' in the stock profiles file (did you mean 'profiles'?); known: profiles") {
            try self.parse("profile: {}\n")
        }
        assertProfileError("stock.yaml:1:1: the stock profiles file needs 'profiles:', a mapping of profile name to profile") {
            try self.parse("{}\n")
        }
        assertProfileError("stock.yaml:1:11: 'profiles' must be a mapping (key: value), found a list") {
            try self.parse("profiles: [plain]\n")
        }
        assertProfileError("stock.yaml:3:15: unknown session manager 'statc' (did you mean 'static'?); known: static, bonding-client, bonding-server, l2tp-broker, l2tp-client") {
            try self.parse("profiles:\n  p:\n    sessions: statc\n    pipeline: {}\n")
        }
        assertProfileError("stock.yaml:3:5: profile 'p' needs 'sessions': the session manager, e.g. 'static'") {
            try self.parse("profiles:\n  p:\n    pipeline: {}\n")
        }
        assertProfileError("stock.yaml:3:5: profile 'p' needs 'pipeline:', the stage of each slot") {
            try self.parse("profiles:\n  p:\n    sessions: static\n")
        }
        assertProfileError("stock.yaml:5:5: unknown key 'sumary' in profile 'p' (did you mean 'summary'?); known: summary, sessions, session-settings, pipeline, settings, device") {
            try self.parse(self.stock(extra: "    sumary: x\n"))
        }
        assertProfileError("stock.yaml:5:17: settings for unknown stage 'aes'") {
            try self.parse(self.stock(extra: "    settings: { aes: {} }\n"))
        }
        assertProfileError("stock.yaml:4:15: the pipeline of profile 'p' does not say which stage fills slot 'reorder' (write 'reorder: none' for an empty slot)") {
            try self.parse(self.stock(pipeline: "{ ingress: tun, encrypt: none, schedule: none, transport: udp, egress: tun }"))
        }
        assertProfileError("stock.yaml:4:26: unknown stage 'tunn' in slot 'ingress' (did you mean 'tun'?); known: tun, tap") {
            try self.parse(self.stock(pipeline: "{ ingress: tunn, reorder: none, encrypt: none, schedule: none, transport: udp, egress: tun }"))
        }
    }

    /// The hint for a missing slot must be advice that works: 'egress: none' is
    /// refused for the egress (and ingress/transport) slot; see the report.
    func testMissingRequiredSlotHintIsUsable() {
        XCTAssertThrowsError(try parse(stock(pipeline: "{ ingress: tun, reorder: none, encrypt: none, schedule: none, transport: udp }"))) { error in
            let message = (error as? ProfileError)?.message ?? "\(error)"
            XCTAssertTrue(message.hasPrefix("the pipeline of profile 'p' does not say which stage fills slot 'egress'"), message)
            XCTAssertFalse(message.contains("'egress: none'"), "suggests a value the loader refuses: \(message)")
        }
        // Following that hint indeed fails.
        assertProfileError("stock.yaml:4:101: unknown stage 'none' in slot 'egress'; known: tun, tap") {
            try self.parse(self.stock(pipeline: "{ ingress: tun, reorder: none, encrypt: none, schedule: none, transport: udp, egress: none }"))
        }
    }
}
