import Foundation
import GRDB
import Testing

/// What operators type: `--version`, an operation by the first characters of its id, listings cut to size.
@Suite struct OperatorCommandTests {
    func stephost(_ harness: EngineHarness, _ arguments: [String]) throws -> ProcessResult {
        try runProcess(
            Paths.stephost,
            arguments + ["--db", harness.databasePath],
            environment: ["STEPHOST_PLUGINS_DIR": harness.plugins.path]
        )
    }

    @Test func versionNamesTheBuildAndTheABIItSpeaks() throws {
        let result = try runProcess(Paths.stephost, ["--version"])
        #expect(result.status == 0)
        #expect(result.stdout == "stephost 0.9.0 (plugin ABI 1.0 to 1.1)\n")
    }

    /// `operations show` takes a unique prefix of an id; an ambiguous one names the candidates, a short or
    /// unknown one says what was wrong.
    @Test func operationsShowTakesAUniqueIDPrefix() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        var ids: [String] = []
        for name in ["one", "two"] {
            let created = try stephost(harness, ["provision", "--detach", "--parameters", #"{"name":"\#(name)"}"#])
            #expect(created.status == 0, "\(created.stderr)")
            ids.append(try #require(created.stdout.split(separator: " ").dropFirst().first.map(String.init)))
        }
        // Two ids that share their first eight characters.
        let shared = ["abcd1234-0000-4000-8000-000000000001", "abcd1234-0000-4000-8000-000000000002"]
        let queue = try DatabaseQueue(path: harness.databasePath)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            for (old, new) in zip(ids, shared) {
                try db.execute(sql: "UPDATE operations SET id = ? WHERE id = ?", arguments: [new, old])
                try db.execute(
                    sql: "UPDATE operation_documents SET operation_id = ? WHERE operation_id = ?",
                    arguments: [new, old]
                )
            }
        }
        try queue.close()

        let full = try stephost(harness, ["operations", "show", shared[0], "--json"])
        #expect(full.status == 0, "\(full.stderr)")
        let byPrefix = try stephost(harness, ["operations", "show", "ABCD1234-0000-4000-8000-00000000000", "--json"])
        #expect(byPrefix.status == 64)
        #expect(
            byPrefix.stderr.contains(
                "ABCD1234-0000-4000-8000-00000000000 is the beginning of several operation ids (\(shared[0]), "
                    + "\(shared[1])); give more of it"
            ),
            "\(byPrefix.stderr)"
        )
        let unique = try stephost(harness, ["operations", "show", "abcd1234-0000-4000-8000-000000000002", "--json"])
        #expect(unique.status == 0)
        let third = try stephost(harness, ["provision", "--detach", "--parameters", #"{"name":"three"}"#])
        let thirdID = try #require(third.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let whole = try stephost(harness, ["operations", "show", thirdID, "--json"])
        let short = try stephost(harness, ["operations", "show", String(thirdID.prefix(8)), "--json"])
        #expect(short.status == 0, "\(short.stderr)")
        #expect(short.stdout == whole.stdout)
        let tooShort = try stephost(harness, ["operations", "show", "abc"])
        #expect(tooShort.status == 66)
        #expect(tooShort.stderr.contains("there is no operation abc in") && tooShort.stderr.contains("at least 4"))
        let unknown = try stephost(harness, ["operations", "show", "ffff"])
        #expect(unknown.status == 66)
        // A prefix is text, not a pattern: '%' and '_' match only themselves.
        let pattern = try stephost(harness, ["operations", "show", "abcd%"])
        #expect(pattern.status == 66, "\(pattern.stdout)")
    }

    /// `operations list --instance ID --limit N`.
    /// The text of `operations show` names each step run's plugin build by its file's SHA-256 (the first 12
    /// digits), as the README says; built-in steps show "-".
    @Test func operationsShowNamesEachStepRunsPluginFile() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let created = try stephost(harness, ["provision", "--parameters", #"{"name":"hashed"}"#])
        #expect(created.status == 0, "\(created.stderr)")
        let id = try #require(created.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let shown = try stephost(harness, ["operations", "show", id])
        #expect(shown.status == 0, "\(shown.stderr)")
        let digest = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["sha256sum", harness.plugins.appendingPathComponent("libExampleNetworkPlugin.so").path]
        )
        let short = String(digest.stdout.prefix(12))
        let rows = shown.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        // Each run names its plugin's build twice: the version it declared and its file's hash.
        #expect(rows.contains(["PASS", "#", "STEP", "PLUGIN", "VERSION", "SHA-256", "OUTCOME", "MS", "MESSAGE"]))
        #expect(
            rows.contains {
                $0.count >= 7 && $0[2] == "allocate_subnet" && $0[3] == "network" && $0[4] == "1.2.0"
                    && $0[5] == short
            }
        )
        #expect(
            rows.contains {
                $0.count >= 7 && $0[2] == "create_runtime" && $0[3] == "built-in" && $0[4] == "-" && $0[5] == "-"
            }
        )
    }

    @Test func operationsListFiltersByInstanceAndLimits() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        for (name, instance) in [("a", "inst-a"), ("b", "inst-b"), ("c", "inst-b")] {
            let created = try stephost(
                harness,
                ["provision", "--detach", "--instance-id", instance, "--parameters", #"{"name":"\#(name)"}"#]
            )
            #expect(created.status == 0, "\(created.stderr)")
        }
        func listed(_ extra: [String]) throws -> [[String: Any]] {
            let result = try stephost(harness, ["operations", "list", "--json"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        }
        #expect(try listed([]).count == 3)
        #expect(try listed(["--instance", "inst-b"]).count == 2)
        #expect(try listed(["--instance", "inst-b", "--limit", "1"]).count == 1)
        #expect(try listed(["--limit", "2"]).count == 2)
        let bad = try stephost(harness, ["operations", "list", "--limit", "0"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--limit must be at least 1, not 0"))
    }

    /// An in-process step that calls exit(3) ends the command with 70 and says why, never with the plugin's
    /// status (3 would read as "a plugin is broken", 0 as success).
    @Test func anInProcessPluginCallingExitEndsTheHostWith70() throws {
        let harness = try EngineHarness()
        try compileRunModeFixture(harness.plugins.appendingPathComponent("quitter.so"), mode: 32, name: "quitter")
        let result = try stephost(harness, ["provision", "--parameters", #"{"name":"quit"}"#])
        #expect(result.status == 70, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("stephost: an in-process plugin called exit() while the host ran its code"))
    }

    /// `provision --json` and `run --json` print one JSON object per line per event, in order, and nothing else on
    /// standard output.
    @Test func provisionAndRunPrintOneJSONObjectPerEvent() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let result = try stephost(harness, ["provision", "--json", "--parameters", #"{"name":"json-events"}"#])
        #expect(result.status == 0, "\(result.stderr)")
        let events = try result.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let names = events.compactMap { $0["event"] as? String }
        #expect(names.count == events.count)
        #expect(names.first == "created")
        #expect(names.last == "finished")
        #expect(names.filter { $0 == "pass_started" }.count == 2)
        #expect(names.contains("parked"))
        #expect(events.last?["state"] as? String == "succeeded")
        let steps = events.filter { $0["event"] as? String == "step_finished" }
        #expect(steps.count == 13)  // pass 1 ends at verify_monitoring's retry (6), pass 2 runs all 7
        #expect(steps.first?["step"] as? String == "allocate_subnet")
        #expect(steps.first?["plugin"] as? String == "network")
        #expect(steps.allSatisfy { $0["duration_ms"] is Double && $0["outcome"] is String })

        let detached = try stephost(harness, ["provision", "--json", "--detach", "--parameters", #"{"name":"later"}"#])
        #expect(detached.stdout.split(separator: "\n").count == 1)
        let run = try stephost(harness, ["run", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let last = try #require(
            try JSONSerialization.jsonObject(with: Data((run.stdout.split(separator: "\n").last ?? "").utf8))
                as? [String: Any]
        )
        #expect(last["event"] as? String == "summary")
        #expect(last["processed"] as? Int == 1)
        #expect(last["succeeded"] as? Int == 1)
    }
}
