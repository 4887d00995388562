import Foundation
import GRDB
import Glibc
import Testing

/// The `stephost` executable as users run it: real child processes, real plugins, a real SQLite file.
@Suite("stephost provision, run and operations")
struct ProvisionCommandTests {
    static let parameters = #"{"name":"demo-runtime","components":[{"name":"istio","namespace":"istio-system"}]}"#
    static let secrets = ["s3cr3t-grafana-admin", "dns-key-inst-1"]

    func stephost(_ harness: EngineHarness, _ arguments: [String]) throws -> ProcessResult {
        try runProcess(
            Paths.stephost,
            arguments + ["--db", harness.databasePath],
            environment: ["STEPHOST_PLUGINS_DIR": harness.plugins.path]
        )
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func provisionRunsTheExamplePluginsToSuccessAndOperationsShowTellsTheStory() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let result = try stephost(harness, ["provision", "--parameters", Self.parameters, "--instance-id", "inst-1"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("  [5/7] create_runtime") && $0.contains("done") })
        #expect(lines.contains { $0.hasPrefix("  [6/7] verify_monitoring") && $0.contains("retry") })
        #expect(lines.contains { $0.hasPrefix("  next pass in") && $0.contains("verify_monitoring asked to retry") })
        #expect(lines.last?.hasPrefix("succeeded: runtime ") == true)
        let id = try #require(lines.first?.split(separator: " ").dropFirst().first.map(String.init))

        let shown = try stephost(harness, ["operations", "show", id, "--json"])
        #expect(shown.status == 0)
        let operation = try json(shown.stdout)
        #expect(operation["state"] as? String == "succeeded")
        #expect(operation["passes"] as? Int == 2)
        let fields = try #require(operation["fields"] as? [String: Any])
        #expect(fields["audit_closed"] as? Bool == true)
        let steps = try #require(operation["steps"] as? [[String: Any]])
        #expect(steps.count == 13)
        #expect(steps.first?["plugin_file_sha256"] as? String != nil)
        #expect(steps.first?["plugin_version"] as? String == "1.2.0", "\(steps.first ?? [:])")
        let request = try #require(operation["provisioning_request"] as? [String: Any])
        #expect((request["runtimeInput"] as? [String: Any])?["name"] as? String == "demo-runtime")

        let text = try stephost(harness, ["operations", "show", id])
        #expect(text.stdout.contains("state        succeeded"))
        #expect(text.stdout.contains("\"value\" : \"<redacted>\""))

        let listed = try stephost(harness, ["operations", "list", "--state", "succeeded"])
        #expect(listed.stdout.contains(id))
    }

    /// With ten steps or more the step counter is padded, so the step names stay in one column.
    @Test func progressColumnsStayInLineWithTenStepsOrMore() throws {
        let harness = try EngineHarness()
        for index in 0..<10 { try harness.addFixture("step\(index)", mode: 30, weight: 10 + index) }
        let result = try stephost(harness, ["provision", "--parameters", #"{"name":"many"}"#])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").filter { $0.hasPrefix("  [") }
        #expect(rows.count == 11)
        #expect(rows.first?.hasPrefix("  [ 1/11] step0_step") == true, "\(rows)")
        #expect(rows.last?.hasPrefix("  [11/11] create_runtime") == true, "\(rows)")
        #expect(
            Set(rows.map { $0.firstRange(of: "_step")?.lowerBound.utf16Offset(in: $0) ?? -1 }.dropLast()).count == 1
        )
    }

    /// An operation records the plugins its host ran without: one disabled by its name (loaded, its steps left
    /// out) and one disabled by its file name (never opened); an operation run without any records none.
    @Test func anOperationRecordsThePluginsItRanWithout() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let disabled = try stephost(
            harness,
            [
                "provision", "--parameters", #"{"name":"without"}"#, "--disable-plugin", "audit", "--disable-plugin",
                "libExampleCPlugin.so",
            ]
        )
        #expect(disabled.status == 0, "\(disabled.stdout)\(disabled.stderr)")
        let id = try #require(disabled.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let shown = try json(try stephost(harness, ["operations", "show", id, "--json"]).stdout)
        #expect(shown["disabled_plugins"] as? [String] == ["audit", "libExampleCPlugin.so"], "\(shown)")
        let text = try stephost(harness, ["operations", "show", id]).stdout
        #expect(text.contains("disabled     audit, libExampleCPlugin.so (ran without their steps)"), "\(text)")
        let all = try stephost(harness, ["provision", "--parameters", #"{"name":"with"}"#])
        let other = try #require(all.stdout.split(separator: " ").dropFirst().first.map(String.init))
        #expect(
            try json(try stephost(harness, ["operations", "show", other, "--json"]).stdout)["disabled_plugins"]
                as? [String] == []
        )
    }

    @Test func secretsNeverAppearInTheDatabaseLogsOrOutput() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        var outputs: [String] = []
        let provision = try stephost(
            harness,
            ["provision", "--parameters", Self.parameters, "--instance-id", "inst-1", "--log-level", "trace"]
        )
        #expect(provision.status == 0)
        outputs += [provision.stdout, provision.stderr]
        let id = try #require(provision.stdout.split(separator: " ").dropFirst().first.map(String.init))
        for arguments in [
            ["operations", "show", id], ["operations", "show", id, "--json"], ["operations", "list", "--json"],
        ] {
            let result = try stephost(harness, arguments)
            outputs += [result.stdout, result.stderr]
        }
        // The secret overrides were made (redacted), so their absence below means something.
        #expect(outputs[2].components(separatedBy: "<redacted>").count - 1 == 2)
        for secret in Self.secrets {
            for output in outputs { #expect(!output.contains(secret)) }
            for file in try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
            where file.hasPrefix("stephost.sqlite") {
                let bytes = try Data(contentsOf: harness.directory.file(file))
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds \(secret)")
            }
        }
    }

    @Test(arguments: [9, 11])
    func secretDeclaredByAFailingOrFaultyStepStaysOutOfLogs(mode: Int) throws {
        let harness = try EngineHarness()
        try harness.addFixture("vault", mode: mode, weight: 10)
        let result = try stephost(harness, ["provision", "--parameters", #"{"name":"x"}"#, "--log-level", "trace"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("token <redacted> was refused"), "\(result.stderr)")
        #expect(!result.stdout.contains("hunter2") && !result.stderr.contains("hunter2"))
    }

    @Test func detachedOperationIsFinishedByRun() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let created = try stephost(harness, ["provision", "--parameters", Self.parameters, "--detach"])
        #expect(created.status == 0)
        #expect(created.stdout.contains("detached"))
        let pending = try json(#"{"list":"# + (try stephost(harness, ["operations", "list", "--json"])).stdout + "}")
        #expect(((pending["list"] as? [[String: Any]])?.first?["state"] as? String) == "pending")

        let run = try stephost(harness, ["run"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("processed 1 unfinished operation(s): 1 succeeded, 0 failed"))
    }

    @Test func runOnceRunsWhatIsDueAndLeavesParkedOperationsWaiting() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        _ = try stephost(harness, ["provision", "--parameters", Self.parameters, "--detach"])
        let once = try stephost(harness, ["run", "--once"])
        #expect(once.status == 0, "\(once.stderr)")
        // verify_monitoring parks the operation for 500 ms after its first pass.
        #expect(once.stdout.contains("processed 1 unfinished operation(s): 0 succeeded, 0 failed, 1 still waiting"))
        let rest = try stephost(harness, ["run"])
        #expect(rest.stdout.contains("processed 1 unfinished operation(s): 1 succeeded, 0 failed"))
    }

    /// A database of the first release: readers say how to upgrade it and leave it alone; the first command
    /// that writes upgrades it, and the old operations are there.
    @Test func databaseOfTheFirstSchemaIsUpgradedByTheFirstCommandThatWrites() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try await makeFirstSchemaDatabase(harness.databasePath)
        let before = try Data(contentsOf: URL(fileURLWithPath: harness.databasePath))

        let refused = try stephost(harness, ["operations", "list"])
        #expect(refused.status == 78)
        #expect(refused.stderr.contains("was written by an earlier stephost and needs the schema upgrade v2"))
        #expect(refused.stderr.contains("`stephost run --db \(harness.databasePath)`"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: harness.databasePath)) == before)

        let created = try stephost(harness, ["provision", "--parameters", Self.parameters, "--detach"])
        #expect(created.status == 0, "\(created.stderr)")
        let listed = try stephost(harness, ["operations", "list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let operations = try #require(
            try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        )
        #expect(operations.count == 3)
        let parked = try #require(operations.first { $0["id"] as? String == "op-parked" })
        #expect(parked["passes"] as? Int == 2)
        #expect(parked["state"] as? String == "in_progress")
    }

    @Test func brokenPluginStopsTheEngineUnlessDisabledKnowingly() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try compileFixture(
            harness.plugins.appendingPathComponent("old.so"),
            ["PLUGIN_NAME": cString("old"), "ABI_MAJOR": "2"]
        )
        let refused = try stephost(harness, ["provision", "--parameters", Self.parameters])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("refusing to run operations while plugins are broken"))
        #expect(refused.stderr.contains("old.so (plugin 'old'): [abi-version]"))
        #expect(!FileManager.default.fileExists(atPath: harness.databasePath))

        let allowed = try stephost(harness, ["provision", "--parameters", Self.parameters, "--disable-plugin", "old"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
    }

    /// The escape hatch for a plugin that crashes while it loads: disabled by its file name, it is never opened.
    @Test(arguments: ["crasher.so", "crasher"])
    func pluginThatCrashesWhileLoadingIsNeverOpenedWhenDisabledByFileName(name: String) throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try compileFixture(
            harness.plugins.appendingPathComponent("crasher.so"),
            ["PLUGIN_NAME": cString("crasher"), "INIT_ABORTS": ""]
        )
        let crashed = try stephost(harness, ["provision", "--parameters", Self.parameters])
        #expect(crashed.status != 0)  // the plugin's init really takes the host down

        let result = try stephost(harness, ["provision", "--parameters", Self.parameters, "--disable-plugin", name])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").last?.hasPrefix("succeeded: runtime ") == true)
    }

    /// A step's failure message and log line hold a newline, a line that looks like success and an escape
    /// sequence: on a terminal they stay on their own lines, escaped.
    @Test func pluginTextCannotForgeOutputLinesOrDriveTheTerminal() throws {
        let harness = try EngineHarness()
        try harness.addFixture("forger", mode: 17, weight: 10)
        let result = try stephost(harness, ["provision", "--parameters", Self.parameters, "--log-level", "info"])
        #expect(result.status == 1)
        let escaped = #"boom\nsucceeded: runtime forged\u{1B}[2J"#
        for output in [result.stdout, result.stderr] {
            #expect(!output.contains("\u{1B}"))
            #expect(!output.split(separator: "\n").contains { $0.hasPrefix("succeeded: runtime forged") })
            #expect(!output.split(separator: "\n").contains { $0.hasPrefix("forged log line") })
        }
        #expect(result.stdout.contains("failed at step forger_step (plugin forger): \(escaped)"))
        #expect(result.stderr.contains(#"probe\nforged log line"#))

        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        for arguments in [["operations", "show", id], ["operations", "list"]] {
            let shown = try stephost(harness, arguments)
            #expect(shown.status == 0)
            #expect(!shown.stdout.contains("\u{1B}"))
            #expect(!shown.stdout.split(separator: "\n").contains { $0.hasPrefix("succeeded: runtime forged") })
            #expect(shown.stdout.contains(escaped))
        }
    }

    /// Secrets are removed before a message is cut, and matched on bytes: neither a secret crossing the cut nor
    /// one followed by a combining mark leaves anything of itself in the output or the database.
    @Test func secretCrossingTheMessageCutOrFollowedByACombiningMarkIsRedacted() throws {
        let harness = try EngineHarness()
        try harness.addFixture("vault", mode: 19, weight: 10)
        let result = try stephost(harness, ["provision", "--parameters", Self.parameters, "--log-level", "info"])
        #expect(result.status == 1)
        // The marker itself may be cut, and the combining mark joins its '>' (one Character): compare prefixes.
        #expect(result.stdout.contains("AAAA<redac"))
        #expect(result.stderr.contains("token <redacted"))
        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let shown = try stephost(harness, ["operations", "show", id, "--json"])
        var outputs = [result.stdout, result.stderr, shown.stdout]
        for file in try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
        where file.hasPrefix("stephost.sqlite") {
            outputs.append(String(decoding: try Data(contentsOf: harness.directory.file(file)), as: UTF8.self))
        }
        for output in outputs {
            #expect(!output.contains("hunter"), "a part of the secret is left")
        }
    }

    /// A step longer than the lease: the host renews its claim while the step runs, so a second `run` started
    /// meanwhile never takes the operation over (before, the two took it from each other for minutes).
    @Test func stepLongerThanTheLeaseKeepsItsClaimAgainstASecondHost() throws {
        let harness = try EngineHarness()
        try harness.addFixture("long", mode: 20, weight: 10)
        let created = try stephost(harness, ["provision", "--parameters", Self.parameters, "--detach"])
        #expect(created.status == 0, "\(created.stderr)")
        let first = try BackgroundProcess(
            Paths.stephost,
            ["run", "--lease", "1", "--db", harness.databasePath, "--plugins-dir", harness.plugins.path]
        )
        let reader = try DatabaseQueue(path: harness.databasePath, configuration: Self.readOnly)
        #expect(
            try eventually {
                try reader.read { db in try String.fetchOne(db, sql: "SELECT fields FROM operations") }?
                    .contains("long_started") == true
            }
        )
        usleep(1_500_000)  // past the 1 s lease of the first host's claim
        let second = try stephost(harness, ["run", "--lease", "1"])
        first.process.waitUntilExit()
        #expect(first.process.terminationStatus == 0)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")

        let (passes, runs) = try reader.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT passes FROM operations") ?? 0,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM step_runs WHERE step = 'long_step'") ?? 0
            )
        }
        #expect(passes == 1, "a second host took the operation over while its step ran")
        #expect(runs == 1)
        #expect(second.stdout.contains("processed 1 unfinished operation(s): 1 succeeded, 0 failed"))
    }

    /// Upgrading a plugin in place (`cp new.so plugins/x.so`, same inode) while a host runs its step: the host
    /// runs its own sealed copy of what it checked, so it neither crashes nor runs the new code mid-operation.
    @Test func pluginFileOverwrittenWhileItsStepRunsDoesNotCrashTheHost() throws {
        let harness = try EngineHarness()
        try harness.addFixture("long", mode: 20, weight: 10)
        let plugin = harness.plugins.appendingPathComponent("long.so")
        let replacement = try compileFixture(
            harness.directory.file("replacement.so"),
            ["PLUGIN_NAME": cString("long"), "STEP1_NAME": cString("long_step"), "RUN_MODE": "2"]
        )
        let (host, reader) = try provisionInBackground(harness, until: "long_started")
        // Overwrite in place, as cp does: truncate the same inode and write the new build into it.
        let handle = try FileHandle(forWritingTo: plugin)
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: try Data(contentsOf: replacement))
        try handle.close()

        host.process.waitUntilExit()
        #expect(host.process.terminationReason == .exit)
        #expect(host.process.terminationStatus == 0)
        let state = try reader.read { db in try String.fetchOne(db, sql: "SELECT state FROM operations") }
        #expect(state == "succeeded")
    }

    /// The hash in the step history is the SHA-256 of the bytes that ran: the file's, as checked.
    @Test func stepHistoryNamesTheHashOfTheFileThatRan() throws {
        let harness = try EngineHarness()
        try harness.addFixture("hashed", mode: 0, weight: 10)
        let result = try stephost(harness, ["provision", "--parameters", Self.parameters])
        #expect(result.status == 0, "\(result.stderr)")
        let sum = try runProcess(
            URL(fileURLWithPath: "/usr/bin/sha256sum"),
            [harness.plugins.appendingPathComponent("hashed.so").path]
        )
        let expected = try #require(sum.stdout.split(separator: " ").first.map(String.init))
        let reader = try DatabaseQueue(path: harness.databasePath, configuration: Self.readOnly)
        let recorded = try reader.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT plugin_file_hash FROM step_runs WHERE plugin = 'hashed'")
        }
        #expect(recorded == [expected])
    }

    /// Hosts that start on a new database at the same moment take turns to create it: none loses its operation
    /// to the migration race (before: "table operations already exists", "database is locked").
    @Test func hostsCreatingTheSameNewDatabaseAtOnceAllSucceed() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        var failures = 0
        for round in 0..<12 {
            let path = harness.directory.file("race-\(round).sqlite").path
            let hosts = try (0..<4).map { _ in
                try BackgroundProcess(
                    Paths.stephost,
                    [
                        "provision", "--parameters", Self.parameters, "--detach", "--db", path, "--plugins-dir",
                        harness.plugins.path,
                    ]
                )
            }
            for host in hosts {
                host.process.waitUntilExit()
                if host.process.terminationStatus != 0 { failures += 1 }
            }
            let count = try DatabaseQueue(path: path, configuration: Self.readOnly).read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM operations")
            }
            #expect(count == 4, "round \(round)")
        }
        #expect(failures == 0)
    }

    /// A field value no reader could read once stored (512 levels deep) is a fault of that step; it never reaches the
    /// database, which stays readable for every other operation.
    @Test func fieldValueNoReaderCouldReadNeverReachesTheDatabase() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try harness.addFixture("deep", mode: 21, weight: 10)
        let faulty = try stephost(harness, ["provision", "--parameters", Self.parameters])
        #expect(faulty.status == 1)
        #expect(faulty.stdout.contains("is nested 512 levels deep, more than 64"))

        let other = try stephost(harness, ["provision", "--parameters", Self.parameters, "--disable-plugin", "deep"])
        #expect(other.status == 0, "\(other.stdout)\(other.stderr)")
        let listed = try stephost(harness, ["operations", "list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let operations = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        #expect(Set(operations?.compactMap { $0["state"] as? String } ?? []) == ["failed", "succeeded"])
    }

    @Test func killedHostIsResumedWithoutLosingFieldsOrSendingTwice() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try harness.addFixture("slow", mode: 8, weight: 110)  // after create_runtime: blocks on its first pass
        let (host, reader) = try provisionInBackground(harness, until: "slow_started")
        func fields() throws -> String? {
            try? reader.read { db in try String.fetchOne(db, sql: "SELECT fields FROM operations") }
        }
        host.killNow()

        let before = try reader.read { db in try Row.fetchOne(db, sql: "SELECT * FROM operations")! }
        #expect(before["state"] as String == "in_progress")
        let fieldsBefore = try #require(try fields())
        for key in ["subnet", "audit_ticket", "slow_started"] { #expect(fieldsBefore.contains("\"\(key)\"")) }
        #expect(before["provisioner_operation_id"] as String? != nil)

        let resumed = try stephost(harness, ["run"])
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("1 succeeded, 0 failed"))
        let after = try reader.read { db in try Row.fetchOne(db, sql: "SELECT * FROM operations")! }
        #expect(after["state"] as String == "succeeded")
        #expect(after["provisioner_operation_id"] as String? == before["provisioner_operation_id"])
        let afterFields =
            try JSONSerialization.jsonObject(with: Data((after["fields"] as String).utf8)) as? [String: Any]
        let beforeFields = try JSONSerialization.jsonObject(with: Data(fieldsBefore.utf8)) as? [String: Any]
        #expect(afterFields?["subnet"] as? String == beforeFields?["subnet"] as? String)
        #expect(afterFields?["audit_ticket"] as? String == beforeFields?["audit_ticket"] as? String)
        let sent = try reader.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM local_provisioning") }
        #expect(sent == 1)
    }

    /// A plugin that crashes the host in process is quarantined by the next run: its step then runs in a runner,
    /// where the crash ends only the step, and the operation fails at once with the runner's signal instead of
    /// taking the host down twice more.
    @Test func crashLoopEndsWithQuarantineAndARunnerCrash() throws {
        let harness = try EngineHarness()
        try harness.addFixture("crasher", mode: 28, weight: 20)
        let first = try stephost(harness, ["provision", "--parameters", #"{"name":"crash-loop"}"#])
        #expect(first.status == 128 + SIGSEGV || first.status == SIGSEGV, "\(first.stdout)\(first.stderr)")
        let id = try #require(first.stdout.split(separator: " ").dropFirst().first.map(String.init))

        let shown = try stephost(harness, ["operations", "show", id])
        #expect(
            shown.stdout.contains(
                "interrupted  the host died while running step crasher_step of plugin crasher, pass 1"
            ),
            "\(shown.stdout)"
        )
        let detail = try json(try stephost(harness, ["operations", "show", id, "--json"]).stdout)
        #expect((detail["running_step"] as? [String: Any])?["host_died"] as? Bool == true)

        let run = try stephost(harness, ["run"])
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        #expect(
            run.stderr.contains(
                "plugin quarantined: its steps run in a runner process until its file changes or "
                    + "`stephost plugins clear-quarantine crasher`"
            ),
            "\(run.stderr)"
        )
        #expect(run.stdout.contains("processed 1 unfinished operation(s): 0 succeeded, 1 failed"))
        let failed = try json(try stephost(harness, ["operations", "show", id, "--json"]).stdout)
        #expect(failed["state"] as? String == "failed")
        let error = try #require(failed["last_error"] as? [String: Any])
        #expect(error["step"] as? String == "crasher_step")
        #expect(error["plugin"] as? String == "crasher")
        #expect(
            error["message"] as? String
                == "the runner of plugin crasher crashed with signal 11 (SIGSEGV, Segmentation fault) while running "
                + "step crasher_step",
            "\(error)"
        )
        // Quarantined in the database: a later run starts no host death loop either.
        let again = try stephost(harness, ["run"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let quarantined = try DatabaseQueue(path: harness.databasePath, configuration: Self.readOnly).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM plugin_quarantine WHERE plugin = 'crasher'")
        }
        #expect(quarantined == 1)

        // list-plugins shows it, with why; clearing it lets the plugin run in process again.
        let listed = try stephost(harness, ["list-plugins"])
        #expect(listed.stdout.contains("crasher  process (quarantined)  10 min"), "\(listed.stdout)")
        #expect(
            listed.stdout.contains(
                "quarantined since 20"
            )
                && listed.stdout.contains(
                    ": the host died while running its step crasher_step in process (pass 1)\n"
                        + "    clear: stephost plugins clear-quarantine crasher"
                ),
            "\(listed.stdout)"
        )
        let listedJSON = try json(try stephost(harness, ["list-plugins", "--json"]).stdout)
        let plugin = try #require((listedJSON["plugins"] as? [[String: Any]])?.first)
        #expect(plugin["isolation"] as? String == "process (quarantined)")
        #expect(
            (plugin["quarantine"] as? [String: Any])?["reason"] as? String
                == "the host died while running its step crasher_step in process (pass 1)"
        )
        let cleared = try stephost(harness, ["plugins", "clear-quarantine", "crasher"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect(cleared.stdout == "cleared the quarantine of plugin 'crasher' (1 build)\n")
        let notQuarantined = try stephost(harness, ["plugins", "clear-quarantine", "crasher"])
        #expect(notQuarantined.status == 1)
        #expect(notQuarantined.stderr.contains("plugin 'crasher' is not quarantined in"))
        let relisted = try stephost(harness, ["list-plugins"])
        #expect(relisted.stdout.contains("crasher  in-process  10 min"), "\(relisted.stdout)")
    }

    /// A stored operation that cannot be read (its row was damaged by hand) is reported on its own: listing
    /// shows it beside the others, `operations show` prints what is stored and why it cannot be read, and `run`
    /// fails it with the reason while the others run.
    @Test func unreadableOperationIsReportedWithoutHidingTheOthers() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        var created: [String] = []
        for name in ["damaged", "intact"] {
            let result = try stephost(harness, ["provision", "--detach", "--parameters", #"{"name":"\#(name)"}"#])
            #expect(result.status == 0, "\(result.stderr)")
            created.append(try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init)))
        }
        let ids = created
        try await DatabaseQueue(path: harness.databasePath).write { db in
            try db.execute(
                sql: #"UPDATE operation_documents SET parameters = '{"name": 5}' WHERE operation_id = ?"#,
                arguments: [ids[0]]
            )
        }

        let list = try stephost(harness, ["operations", "list"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains(ids[1]))
        #expect(list.stdout.contains("\(ids[0])  ?"))
        #expect(
            list.stderr.contains("operation \(ids[0]) cannot be read: the stored parameters of operation \(ids[0])")
        )
        let listed = try #require(
            try JSONSerialization.jsonObject(
                with: Data(try stephost(harness, ["operations", "list", "--json"]).stdout.utf8)
            )
                as? [[String: Any]]
        )
        #expect(listed.count == 2)
        #expect(listed.contains { $0["id"] as? String == ids[0] && $0["unreadable"] != nil })

        let show = try stephost(harness, ["operations", "show", ids[0]])
        #expect(show.status == 65)
        #expect(show.stdout.contains("operation \(ids[0]) cannot be read"))
        #expect(show.stdout.contains(#"parameters = {"name": 5}"#))

        let run = try stephost(harness, ["run"])
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("failed: operation \(ids[0]) cannot be read"))
        #expect(run.stdout.contains("processed 2 unfinished operation(s): 1 succeeded, 1 failed"))
        let state = try await DatabaseQueue(path: harness.databasePath).read { db in
            try String.fetchOne(
                db,
                sql: "SELECT state || ' ' || last_error_message FROM operations WHERE id = ?",
                arguments: [ids[0]]
            )
        }
        #expect(state?.hasPrefix("failed the stored operation cannot be read, so it cannot run") == true)
    }

    /// Field keys are bytes: two keys a plugin sent as different byte sequences stay two fields, in the
    /// database, in the next pass's operation document and in `operations show`, even when Unicode calls them
    /// the same text.
    @Test func fieldKeysThatDifferInBytesStayApart() throws {
        let harness = try EngineHarness()
        try harness.addFixture("unicode", mode: 29, weight: 10)
        let result = try stephost(harness, ["provision", "--parameters", #"{"name":"keys"}"#])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let precomposed = Data("\"caf\u{E9}\" : 1".utf8)
        let decomposed = Data("\"cafe\u{301}\" : 2".utf8)
        let shown = try runProcess(
            Paths.stephost,
            ["operations", "show", id, "--json", "--db", harness.databasePath]
        )
        let bytes = Data(shown.stdout.utf8)
        #expect(bytes.range(of: precomposed) != nil && bytes.range(of: decomposed) != nil, "\(shown.stdout)")
        let stored = try DatabaseQueue(path: harness.databasePath, configuration: Self.readOnly).read { db in
            try Data.fetchOne(db, sql: "SELECT CAST(fields AS BLOB) FROM operations WHERE id = ?", arguments: [id])
        }
        // Sorted by bytes: "cafe" + U+0301 ("e" is 0x65) before "caf" + U+00E9 (0xC3 0xA9).
        #expect(stored == Data("{\"cafe\u{301}\":2,\"caf\u{E9}\":1}".utf8))
    }

    /// Stored values of the wrong type (written by hand or by a bug; SQLite's columns take any type) never crash
    /// a command, and never keep the other operations from running.
    @Test(arguments: [
        "UPDATE operations SET created_at = 'yesterday' WHERE id = ?",
        "UPDATE operations SET next_pass_at = 'soon' WHERE id = ?",
        "UPDATE operations SET deadline = x'00ff' WHERE id = ?",
        "UPDATE operation_documents SET provisioning_request = '5' WHERE operation_id = ?",
        "UPDATE step_runs SET pass = 'x' WHERE operation_id = ?",
        "INSERT INTO claims (operation_id, owner, expires_at, running_step) VALUES (?, 'h:1:1', 'notanumber', '{\"step\":5}')",
    ])
    func storedValuesOfTheWrongTypeNeverCrashACommand(damage: String) async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        var created: [String] = []
        for name in ["damaged", "intact"] {
            let result = try stephost(harness, ["provision", "--detach", "--parameters", #"{"name":"\#(name)"}"#])
            created.append(try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init)))
        }
        let ids = created
        // A step history for the damaged one, so its rows exist to damage.
        try await DatabaseQueue(path: harness.databasePath).write { db in
            try db.execute(
                sql: """
                    INSERT INTO step_runs (operation_id, pass, position, step, outcome, started_at, duration_ms)
                    VALUES (?, 1, 1, 'allocate_subnet', 'done', 0, 1.0)
                    """,
                arguments: [ids[0]]
            )
            try db.execute(sql: damage, arguments: [ids[0]])
        }
        for command in [["operations", "list"], ["operations", "list", "--json"], ["operations", "show", ids[0]]] {
            let result = try stephost(harness, command)
            #expect([0, 65, 74].contains(result.status), "\(command) \(result.status): \(result.stderr)")
        }
        let run = try stephost(harness, ["run"])
        #expect([0, 1].contains(run.status), "\(run.status): \(run.stdout)\(run.stderr)")
        let intact = try stephost(harness, ["operations", "show", ids[1], "--json"])
        #expect(try json(intact.stdout)["state"] as? String == "succeeded")
    }

    /// Starts `stephost provision` as a child process and waits until its operation has the custom field
    /// `field` (a step's checkpoint); returns the host and a read-only reader of its database.
    func provisionInBackground(
        _ harness: EngineHarness,
        until field: String
    ) throws -> (BackgroundProcess, DatabaseQueue) {
        let host = try BackgroundProcess(
            Paths.stephost,
            [
                "provision", "--parameters", Self.parameters, "--db", harness.databasePath, "--plugins-dir",
                harness.plugins.path,
            ]
        )
        try #require(try eventually { FileManager.default.fileExists(atPath: harness.databasePath) })
        let reader = try DatabaseQueue(path: harness.databasePath, configuration: Self.readOnly)
        // Before the host has created its schema, there is nothing to read yet.
        try #require(
            try eventually {
                (try? reader.read { db in try String.fetchOne(db, sql: "SELECT fields FROM operations") })??
                    .contains("\"\(field)\"") == true
            },
            "the step never checkpointed \(field)"
        )
        return (host, reader)
    }

    static var readOnly: Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        return configuration
    }
}
