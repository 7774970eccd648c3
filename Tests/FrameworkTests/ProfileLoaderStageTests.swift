import XCTest
@testable import Framework

/// Slots (`pipeline:`), stage settings (`settings:`) and custom stages (`stages:`).
final class ProfileLoaderStageTests: XCTestCase {
    /// One custom stage on line 6, starting at column 5.
    private func customStage(_ body: String) throws -> TunnelSpec {
        try loadSite(siteText(extra: "stages:\n  - \(body)\n"))
    }

    // MARK: pipeline

    func testPipelineOverrides() throws {
        let spec = try loadSite(siteText(extra: "pipeline: { reorder: none, ingress: tun, egress: tun }\n"))
        XCTAssertEqual(spec.stages.map(\.descriptor.name), ["tun", "udp"])
        // The site's choice carries the site's mark.
        XCTAssertEqual(spec.stages[0].mark, SourceMark(file: "site.yaml", line: 5, column: 37))
        XCTAssertEqual(spec.egress.mark, SourceMark(file: "site.yaml", line: 5, column: 50))
    }

    func testUnknownStageInSlot() {
        assertProfileError("site.yaml:6:12: unknown stage 'tum' in slot 'ingress' (did you mean 'tun'?); known: tun, tap") {
            try loadSite(siteText(extra: "pipeline:\n  ingress: tum\n"))
        }
        assertProfileError("site.yaml:5:22: unknown stage 'aes' in slot 'encrypt'; known: crypto.aead, none") {
            try loadSite(siteText(extra: "pipeline: { encrypt: aes }\n"))
        }
        assertProfileError("site.yaml:5:22: unknown stage 'none' in slot 'ingress'; known: tun, tap") {
            try loadSite(siteText(extra: "pipeline: { ingress: none }\n"))
        }
        assertProfileError("site.yaml:5:24: unknown stage 'none' in slot 'transport'; known: udp") {
            try loadSite(siteText(extra: "pipeline: { transport: none }\n"))
        }
    }

    func testStageThatCannotFillTheSlot() {
        assertProfileError("site.yaml:5:24: stage 'tun' cannot fill slot 'transport'; stages for this slot: udp") {
            try loadSite(siteText(extra: "pipeline: { transport: tun }\n"))
        }
        assertProfileError("site.yaml:5:22: stage 'example.dscp-filter' cannot fill slot 'encrypt'; stages for this slot: crypto.aead, none") {
            try loadSite(siteText(extra: "pipeline: { encrypt: example.dscp-filter }\n"))
        }
        assertProfileError("site.yaml:5:22: stage 'udp' cannot fill slot 'ingress'; stages for this slot: tun, tap") {
            try loadSite(siteText(extra: "pipeline: { ingress: udp }\n"))
        }
    }

    func testIngressAndEgressMustUseTheSameDeviceKind() {
        assertProfileError("site.yaml:5:21: egress stage 'tap' writes a tap device but the ingress reads a tun device; use the same kind") {
            try loadSite(siteText(extra: "pipeline: { egress: tap }\n"))
        }
    }

    func testUnknownSlotAndWrongSlotValue() {
        assertProfileError("site.yaml:5:13: unknown key 'encrpyt' in 'pipeline' (did you mean 'encrypt'?); known: ingress, encrypt, schedule, transport, reorder, egress") {
            try loadSite(siteText(extra: "pipeline: { encrpyt: none }\n"))
        }
        assertProfileError("site.yaml:5:22: slot 'ingress' takes one stage name, found a list") {
            try loadSite(siteText(extra: "pipeline: { ingress: [tun] }\n"))
        }
        assertProfileError("site.yaml:5:11: 'pipeline' must be a mapping (key: value), found a list") {
            try loadSite(siteText(extra: "pipeline: [tun, udp]\n"))
        }
    }

    // MARK: settings of slot stages

    func testSettingsSection() {
        assertProfileError("site.yaml:5:13: settings for unknown stage 'tunn' (did you mean 'tun'?); known: tun, tap, udp, crypto.aead, bonding.scheduler, bonding.reorder, l2tpv3.pseudowire, example.dscp-filter") {
            try loadSite(siteText(extra: "settings: { tunn: {} }\n"))
        }
        assertProfileError("site.yaml:5:13: settings for stage 'example.dscp-filter', which fills no slot of profile 'plain'; settings of custom stages go under 'stages:'") {
            try loadSite(siteText(extra: "settings: { example.dscp-filter: { drop: [1] } }\n"))
        }
        assertProfileError("site.yaml:5:13: settings for stage 'tap', which fills no slot of profile 'plain'; settings of custom stages go under 'stages:'") {
            try loadSite(siteText(extra: "settings: { tap: {} }\n"))
        }
        assertProfileError("site.yaml:5:20: unknown setting 'x' for stage 'tun'; it takes no settings") {
            try loadSite(siteText(extra: "settings: { tun: { x: 1 } }\n"))
        }
        assertProfileError("site.yaml:5:18: settings of stage 'udp' must be a mapping, found a scalar") {
            try loadSite(siteText(extra: "settings: { udp: fast }\n"))
        }
        assertProfileError("site.yaml:5:11: 'settings' must be a mapping (key: value), found a list") {
            try loadSite(siteText(extra: "settings: [tun]\n"))
        }
    }

    // MARK: custom stages

    func testCustomStagesArePlacedByPosition() throws {
        let text = siteText(extra: """
            stages:
              - { use: example.dscp-filter, before: transport, settings: { drop: 6 } }
              - { use: example.dscp-filter, after: schedule, settings: { drop: 5 } }
              - { use: example.dscp-filter, before: encrypt, settings: { drop: 4 } }
              - { use: example.dscp-filter, after: reorder, settings: { drop: 3 } }
              - { use: example.dscp-filter, before: reorder, settings: { drop: 2 } }
              - { use: example.dscp-filter, after: ingress, settings: { drop: 1 } }
              - { use: example.dscp-filter, after: ingress, settings: { drop: 7 } }

            """)
        let spec = try loadSite(text)
        XCTAssertEqual(spec.stages.map(\.placement),
                       ["ingress", "after: ingress", "after: ingress", "before: reorder", "after: reorder", "before: encrypt",
                        "after: schedule", "before: transport", "transport"])
        XCTAssertEqual(spec.stages.map { $0.settings["drop"]?.description ?? "-" },
                       ["-", "[1]", "[7]", "[2]", "[3]", "[4]", "[5]", "[6]", "-"])
        XCTAssertEqual(spec.stages.map(\.descriptor.name).first, "tun")
        XCTAssertEqual(spec.stages.map(\.descriptor.name).last, "udp")
    }

    func testMissingRequiredSetting() {
        let message = "stage 'example.dscp-filter' requires the setting 'drop' (a list of an integer in 0...63): DSCP values to drop, e.g. [46] for EF"
        assertProfileError("site.yaml:6:12: " + message) {
            try self.customStage("{ use: example.dscp-filter, after: ingress }")
        }
        assertProfileError("site.yaml:6:59: " + message) {
            try self.customStage("{ use: example.dscp-filter, after: ingress, settings: { direction: send } }")
        }
    }

    func testBadSettingsOfACustomStage() {
        assertProfileError("site.yaml:6:73: unknown setting 'colour' for stage 'example.dscp-filter'; known: drop, direction") {
            try self.customStage("{ use: example.dscp-filter, after: ingress, settings: { drop: [46], colour: red } }")
        }
        assertProfileError("site.yaml:6:72: 'drop' of stage 'example.dscp-filter' must be an integer in 0...63, found 64") {
            try self.customStage("{ use: example.dscp-filter, after: ingress, settings: { drop: [46, 64] } }")
        }
        assertProfileError("site.yaml:6:67: 'drop' of stage 'example.dscp-filter' must be a list of an integer in 0...63, found a mapping") {
            try self.customStage("{ use: example.dscp-filter, after: ingress, settings: { drop: { ef: 46 } } }")
        }
        assertProfileError("site.yaml:6:82: 'direction' of stage 'example.dscp-filter' must be one of send, receive, both, found 'up'") {
            try self.customStage("{ use: example.dscp-filter, after: ingress, settings: { drop: 46, direction: up } }")
        }
    }

    func testAfterOrBeforeExactlyOnce() {
        let message = "custom stage 'example.dscp-filter' needs exactly one of 'after: SLOT' or 'before: SLOT'"
        assertProfileError("site.yaml:6:5: " + message) {
            try self.customStage("{ use: example.dscp-filter, after: ingress, before: transport, settings: { drop: 1 } }")
        }
        assertProfileError("site.yaml:6:5: " + message) {
            try self.customStage("{ use: example.dscp-filter, settings: { drop: 1 } }")
        }
    }

    func testImpossiblePositions() {
        assertProfileError("site.yaml:6:40: nothing can come after the transport (it sends to the network); use 'before: transport'") {
            try self.customStage("{ use: example.dscp-filter, after: transport, settings: { drop: 1 } }")
        }
        assertProfileError("site.yaml:6:41: nothing can come before the ingress (it reads the device); use 'after: ingress'") {
            try self.customStage("{ use: example.dscp-filter, before: ingress, settings: { drop: 1 } }")
        }
        assertProfileError("site.yaml:6:40: unknown position 'egress' (did you mean 'ingress'?); use one of ingress, reorder, encrypt, schedule, transport") {
            try self.customStage("{ use: example.dscp-filter, after: egress, settings: { drop: 1 } }")
        }
        assertProfileError("site.yaml:6:40: unknown position 'encrpt' (did you mean 'encrypt'?); use one of ingress, reorder, encrypt, schedule, transport") {
            try self.customStage("{ use: example.dscp-filter, after: encrpt, settings: { drop: 1 } }")
        }
    }

    func testWhatCanBeInserted() {
        assertProfileError("site.yaml:6:12: stage 'udp' fills a slot and cannot be inserted by position; choose it under 'pipeline:'") {
            try self.customStage("{ use: udp, after: ingress }")
        }
        assertProfileError("site.yaml:6:12: unknown stage 'dscp'; stages that can be inserted: example.dscp-filter") {
            try self.customStage("{ use: dscp, after: ingress }")
        }
        assertProfileError("site.yaml:6:12: unknown stage 'example.dscp-fliter' (did you mean 'example.dscp-filter'?); stages that can be inserted: example.dscp-filter") {
            try self.customStage("{ use: example.dscp-fliter, after: ingress }")
        }
        assertProfileError("site.yaml:6:5: a custom stage needs 'use': the stage name") {
            try self.customStage("{ after: ingress }")
        }
        assertProfileError("site.yaml:6:33: unknown key 'afer' in a custom stage (did you mean 'after'?); known: use, after, before, settings") {
            try self.customStage("{ use: example.dscp-filter, afer: ingress }")
        }
        assertProfileError("site.yaml:5:9: 'stages' must be a list of custom stages, each like '{ use: NAME, after: SLOT }'") {
            try loadSite(siteText(extra: "stages: { use: example.dscp-filter }\n"))
        }
    }
}
