import Foundation
import Glibc
import StepHostLoader
import Testing

/// `stephost check-plugin`, run as a user runs it, against good plugins and against every fixture of the
/// broken-plugin and fault suites: each is reported with its reason and the exit status of its verdict, and none
/// takes the command down.
@Suite("stephost check-plugin")
struct CheckPluginCommandTests {
    /// The command's JSON output, parsed, with its exit status and standard error.
    struct Checked {
        var status: Int32
        var json: [String: Any]
        var stderr: String
        var plugins: [[String: Any]] { json["plugins"] as? [[String: Any]] ?? [] }
        var codes: [String] {
            plugins.flatMap { ($0["findings"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String } }
        }
        var findings: String {
            plugins.flatMap {
                ($0["findings"] as? [[String: Any]] ?? []).map { "\($0["code"] ?? ""): \($0["message"] ?? "")" }
            }
            .joined(separator: "\n")
        }
    }

    static func check(_ arguments: [String]) throws -> Checked {
        let result = try runProcess(Paths.stephost, ["check-plugin", "--json"] + arguments)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return Checked(
            status: result.status,
            json: try #require(object, "no JSON: \(result.stdout) \(result.stderr)"),
            stderr: result.stderr
        )
    }

    /// The example plugins are conformant: they load, export only the entry point, and every step does the same
    /// the second time. Secret override values never appear.
    @Test(arguments: Paths.examplePlugins)
    func theExamplePluginsAreConformant(_ product: String) throws {
        let plugin = try Paths.examplePlugin(product)
        let checked = try Self.check([plugin.path])
        #expect(checked.status == 0, "\(checked.findings) \(checked.stderr)")
        #expect(checked.json["verdict"] as? String == "conformant")
        let report = try #require(checked.plugins.first)
        #expect(report["exports"] as? [String] == ["stephost_plugin_init"])
        #expect((report["sha256"] as? String)?.count == 64)
        let steps = report["steps"] as? [[String: Any]] ?? []
        #expect(!steps.isEmpty)
        for step in steps {
            #expect(step["idempotent"] as? Bool == true, "\(step)")
            #expect((step["runs"] as? [Any])?.count == 2)
        }
        let pipeline = report["pipeline"] as? [[String: Any]] ?? []
        #expect(pipeline.contains { $0["step"] as? String == "create_runtime" && $0["plugin"] is NSNull })
        #expect(pipeline.filter { $0["checked"] as? Bool == true }.count == steps.count)
        // The network plugin's DNS step adds a secret override, the API key of the sample operation's domain.
        let text = String(data: try JSONSerialization.data(withJSONObject: checked.json), encoding: .utf8) ?? ""
        if product == "ExampleNetworkPlugin" {
            #expect(text.contains("<redacted>"))
            #expect(!text.contains("dns-key-"), "a secret override's value was printed")
        }
    }

    /// The text report names the verdict, the plugin, its place in the pipeline and each run.
    @Test func theTextReportTellsTheStory() throws {
        let plugin = try Paths.examplePlugin("ExampleNetworkPlugin")
        let result = try runProcess(Paths.stephost, ["check-plugin", plugin.path])
        #expect(result.status == 0, "\(result.stderr)")
        for text in [
            ": CONFORMANT", "plugin    network (1.2.0, ABI 1.1)", "exports   stephost_plugin_init",
            "→  1  20      allocate_subnet  network", "run 1: done", "run 2: done",
            "idempotent: the second run did the same as the first",
            "override  dns: provider.apiKey = <redacted> (secret)",
        ] {
            #expect(result.stdout.contains(text), "missing \(text) in:\n\(result.stdout)")
        }
    }

    /// Every broken-plugin fixture is reported broken (exit 1) with the loader's own check, or, for the trust
    /// cases, with the warning that the host would refuse the file as it lies (exit 4); the command never crashes.
    @Test(arguments: BrokenCase.all)
    func everyBrokenPluginIsReported(_ broken: BrokenCase) throws {
        let directory = try TemporaryDirectory()
        let files = try broken.make(directory)
        defer { try? FileManager.default.removeItem(atPath: directory.path + ".outside.so") }
        let checked = try Self.check(["--init-timeout", "2"] + files.map { directory.file($0).path })
        let expected = "\(broken.code)"
        switch expected {
        case "untrusted-file":
            #expect(checked.status == 4, "\(checked.findings)")
            #expect(checked.codes.contains("untrusted-file"), "\(checked.findings)")
        case "duplicate-plugin-name", "duplicate-step-name", "symlink-escape":
            // Properties of a directory, not of a file: checked one by one, each file is judged on its own (the
            // directory case is tested below with --plugins-dir).
            #expect([0, 1, 4].contains(checked.status), "\(checked.findings)")
        default:
            #expect(checked.status == 1, "\(checked.findings) \(checked.stderr)")
            #expect(checked.json["verdict"] as? String == "broken")
            #expect(checked.codes.contains(expected), "expected \(expected): \(checked.findings)")
        }
    }

    /// Every step fault of the isolation fault suite (crash, abort, exit, hang, deadline, unbounded memory,
    /// invalid outcome, invalid JSON, SIGKILL) is a broken verdict with the runner's own account, and the command
    /// goes on to the next file.
    @Test(arguments: FaultSuiteStepTests.stepFaults)
    func everyStepFaultIsReported(_ fault: FaultSuiteStepTests.StepFault) throws {
        let directory = try TemporaryDirectory()
        let file = try compileRunModeFixture(
            directory.file("faulty.so"),
            mode: fault.mode,
            name: "faulty",
            sleepMilliseconds: fault.sleepMilliseconds
        )
        let good = try Paths.examplePlugin("ExampleCPlugin")
        let seconds = fault.slow ? "1" : "30"
        let checked = try Self.check(["--deadline", seconds, file.path, good.path])
        #expect(checked.status == 1, "\(checked.findings)")
        let first = try #require(checked.plugins.first)
        #expect(first["verdict"] as? String == "broken")
        let messages = (first["findings"] as? [[String: Any]] ?? []).filter { $0["code"] as? String == "step-fault" }
            .compactMap { $0["message"] as? String }
        #expect(!messages.isEmpty, "\(checked.findings)")
        let expected = fault.message.map {
            $0.replacingOccurrences(of: "exceeded its deadline of 1 s", with: "exceeded its deadline of \(seconds) s")
        }
        #expect(messages.contains { FaultSuiteStepTests.containsInOrder($0, expected) }, "\(messages)")
        // The next file is still checked, and is fine.
        #expect(checked.plugins.count == 2)
        #expect(checked.plugins.last?["verdict"] as? String == "conformant")
    }

    /// Plugins that crash, exit or hang while they load are broken with the scanner's account.
    @Test(arguments: FaultSuiteLoadTests.loadFaults)
    func everyLoadFaultIsReported(_ fault: LoadFault) throws {
        let directory = try TemporaryDirectory()
        let file = try compileLoadFaultFixture(directory.file("faulty.so"), fault, name: "faulty")
        let checked = try Self.check(["--init-timeout", "2", file.path])
        #expect(checked.status == 1)
        let expected = FaultSuiteLoadTests.expected(fault)
        #expect(checked.codes == ["\(expected.code)"], "\(checked.findings)")
        #expect(checked.findings.contains(expected.message), "\(checked.findings)")
    }

    /// A step that writes what changes from pass to pass is not idempotent: a warning (exit 4) that names the
    /// field.
    @Test func aStepThatChangesAFieldAgainIsNotIdempotent() throws {
        let directory = try TemporaryDirectory()
        let file = try compileRunModeFixture(directory.file("counter.so"), mode: 6, name: "counter")
        let checked = try Self.check([file.path])
        #expect(checked.status == 4, "\(checked.findings)")
        #expect(checked.json["verdict"] as? String == "warnings")
        #expect(checked.codes.contains("not-idempotent"))
        #expect(checked.findings.contains("it changed field passes_seen again"), "\(checked.findings)")
    }

    /// A library that exports more than the entry point gets a warning naming what it exports (here beside the
    /// loader's own refusal: it has no entry point at all).
    @Test func exportsBesidesTheEntryPointAreNamed() throws {
        let directory = try TemporaryDirectory()
        let source = try directory.write("leaky.c", "int leaky_helper(void) { return 1; }\nint leaky_table[4];\n")
        let output = directory.file("leaky.so")
        let built = try runProcess(
            URL(fileURLWithPath: "/usr/bin/cc"),
            ["-shared", "-fPIC", source.path, "-o", output.path]
        )
        try #require(built.status == 0, "\(built.stderr)")
        let checked = try Self.check([output.path])
        #expect(checked.status == 1)
        #expect(checked.codes.sorted() == ["exports", "missing-entry-symbol"], "\(checked.findings)")
        #expect(
            checked.findings.contains("it exports 2 symbols besides stephost_plugin_init (leaky_helper, leaky_table)")
        )
        #expect(checked.plugins.first?["exports"] as? [String] == ["leaky_helper", "leaky_table"])
    }

    /// With --plugins-dir, the steps are placed among the directory's, and a step name the directory already
    /// uses is a conflict that makes the plugin broken.
    @Test func aPluginsDirectoryPlacesTheStepsAndNamesConflicts() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        let checks = try TemporaryDirectory()
        let fine = try compileRunModeFixture(
            checks.file("fine.so"),
            mode: 30,
            name: "fine",
            step: "fine_step",
            weight: 60
        )
        let placed = try Self.check(["--plugins-dir", directory.path, fine.path])
        let pipeline = (placed.plugins.first?["pipeline"] as? [[String: Any]] ?? []).map {
            "\($0["weight"] ?? 0) \($0["step"] ?? "")"
        }
        let index = try #require(pipeline.firstIndex(of: "60 fine_step"), "\(pipeline)")
        #expect(pipeline[index - 1].hasPrefix("50 "), "\(pipeline)")
        #expect(pipeline.contains("100 create_runtime"))
        let clash = try compileRunModeFixture(
            checks.file("clash.so"),
            mode: 30,
            name: "clash",
            step: "configure_dns",
            weight: 70
        )
        let checked = try Self.check(["--plugins-dir", directory.path, clash.path])
        #expect(checked.status == 1)
        #expect(checked.codes.contains("duplicate-step-name"))
        #expect(
            checked.findings.contains("step configure_dns is also declared by plugin network"),
            "\(checked.findings)"
        )
        let missing = try Self.check(["--plugins-dir", directory.path + "/nothing-here", clash.path])
        #expect(missing.status == 2)
    }

    /// Bad input: a missing file is broken with its reason; a bad --operation is a usage error before anything
    /// runs; hostile plugin text cannot reach the terminal raw.
    @Test func badInputIsNamed() throws {
        let directory = try TemporaryDirectory()
        let missing = try Self.check([directory.file("absent.so").path])
        #expect(missing.status == 1)
        #expect(missing.codes == ["not-found"])
        let good = try Paths.examplePlugin("ExampleCPlugin")
        let bad = try runProcess(Paths.stephost, ["check-plugin", "--operation", "[1,2]", good.path])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("is not a JSON object"), "\(bad.stderr)")
        let invalid = try runProcess(
            Paths.stephost,
            ["check-plugin", "--operation", #"{"name":"Not A Label"}"#, good.path]
        )
        #expect(invalid.status == 64)
        #expect(invalid.stderr.contains("must be a DNS label"), "\(invalid.stderr)")
        let file = try runProcess(
            Paths.stephost,
            ["check-plugin", "--operation", "@" + directory.file("none.json").path, good.path]
        )
        #expect(file.status == 66)
        // A step that logs and fails with a terminal escape sequence and a newline (fixture mode 17).
        let forger = try compileRunModeFixture(directory.file("forger.so"), mode: 17, name: "forger")
        let result = try runProcess(Paths.stephost, ["check-plugin", forger.path])
        #expect(result.status == 4, "\(result.stdout)")
        #expect(!result.stdout.contains("\u{1B}"), "an escape sequence reached the output")
        #expect(result.stdout.contains("step-failed"))
    }

    /// A plugin that declares a secret on its first run, then logs it on its second, fails with it, stores it in
    /// a field as a JSON encoder writes it (slash escaped, or as \u002f), uses it as a field key, and crashes in
    /// a third mode after logging it: the value is never shown, in text or JSON.
    static let secretPlugin = #"""
        #define _GNU_SOURCE
        #include <signal.h>
        #include <stdlib.h>
        #include <string.h>
        #include "stephost.h"
        #define SECRET "Zq9/TOKEN+abc=="
        static stephost_outcome run_step(void *step_ctx, const stephost_step_call *call) {
            const stephost_call_services *s = call->services;
            (void)step_ctx;
            const char *at = memmem(call->operation_json, call->operation_json_len, "\"pass\":", 7);
            long pass = at == NULL ? 0 : strtol(at + 7, NULL, 10);
            if (pass == 1) {
                s->add_global_override(call->ctx, STEPHOST_LITERAL("api.token"), STEPHOST_LITERAL(SECRET), 1);
                s->set_field(call->ctx, STEPHOST_LITERAL("escaped"), STEPHOST_LITERAL("\"Zq9\\/TOKEN+abc==\""));
                s->set_field(call->ctx, STEPHOST_LITERAL("unicode"), STEPHOST_LITERAL("\"Zq9\\u002fTOKEN+abc==\""));
                s->set_field(call->ctx, STEPHOST_LITERAL("key_" SECRET), STEPHOST_LITERAL("1"));
                #ifdef CRASH
                s->log(call->ctx, STEPHOST_LOG_ERROR, STEPHOST_LITERAL("about to use " SECRET));
                raise(SIGSEGV);
                #endif
                return STEPHOST_OUTCOME_DONE;
            }
            s->log(call->ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL("token already issued: " SECRET));
            s->set_error(call->ctx, STEPHOST_LITERAL("second pass refused " SECRET));
            return STEPHOST_OUTCOME_FAIL;
        }
        static const stephost_step_descriptor step = {sizeof step, 10, STEPHOST_LITERAL("secret_step"), run_step, NULL};
        static const stephost_step_descriptor *const steps[] = {&step};
        stephost_status stephost_plugin_init(const stephost_host_offer *offer, stephost_plugin_descriptor *d) {
            (void)offer;
            d->abi_version = STEPHOST_ABI_VERSION(1, 0);
            d->name = "secretive";
            d->name_len = 9;
            d->version = "1.0";
            d->version_len = 3;
            d->steps = steps;
            d->step_count = 1;
            return STEPHOST_STATUS_OK;
        }
        """#

    @Test(arguments: [false, true])
    func aSecretDeclaredInOneRunIsHiddenEverywhere(crash: Bool) throws {
        let directory = try TemporaryDirectory()
        let source = try directory.write("secret.c", Self.secretPlugin)
        let output = directory.file("secret.so")
        let built = try runProcess(
            URL(fileURLWithPath: "/usr/bin/cc"),
            ["-shared", "-fPIC", "-fvisibility=hidden", "-I", Paths.includeDirectory.path]
                + (crash ? ["-DCRASH"] : []) + [source.path, "-o", output.path]
        )
        try #require(built.status == 0, "\(built.stderr)")
        for json in [false, true] {
            let result = try runProcess(Paths.stephost, ["check-plugin"] + (json ? ["--json"] : []) + [output.path])
            #expect(!result.stdout.contains("Zq9"), "a secret was shown:\n\(result.stdout)")
            #expect(!result.stderr.contains("Zq9"))
            #expect(result.stdout.contains("<redacted>"))
            #expect(result.status == (crash ? 1 : 4), "\(result.stdout)")
        }
    }

    /// A plugin deployed as a link (x.so -> x.so.1.2) is checked as the file it leads to, and checking it changes
    /// nothing of that file; a link to a file that is not a plugin changes nothing either.
    @Test func aLinkedPluginIsCheckedWithoutTouchingItsTarget() throws {
        let directory = try TemporaryDirectory()
        let target = directory.file("network.so.1.2")
        try FileManager.default.copyItem(at: try Paths.examplePlugin("ExampleCPlugin"), to: target)
        chmod(target.path, 0o750)
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("network.so").path,
            withDestinationPath: "network.so.1.2"
        )
        let private_ = try directory.write("private.txt", "secret\n")
        chmod(private_.path, 0o600)
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("evil.so").path,
            withDestinationPath: private_.path
        )
        let linked = try Self.check([directory.file("network.so").path, directory.file("evil.so").path])
        #expect(linked.plugins.first?["verdict"] as? String == "conformant", "\(linked.findings)")
        #expect(linked.plugins.last?["verdict"] as? String == "broken")
        for (file, mode) in [(target.path, 0o750), (private_.path, 0o600)] {
            var info = stat()
            #expect(stat(file, &info) == 0)
            #expect(info.st_mode & 0o7777 == mode_t(mode), "\(file) changed mode")
        }
    }

    /// Runs that fault cannot be compared: idempotency is not claimed for them.
    @Test func idempotencyIsNotClaimedWhenARunFaulted() throws {
        let directory = try TemporaryDirectory()
        let file = try compileRunModeFixture(directory.file("crash.so"), mode: 28, name: "crash")
        let checked = try Self.check([file.path])
        let step = try #require((checked.plugins.first?["steps"] as? [[String: Any]])?.first)
        #expect(step["idempotent"] is NSNull, "\(step)")
        let text = try runProcess(Paths.stephost, ["check-plugin", file.path]).stdout
        #expect(text.contains("idempotency not checked: a run faulted"))
        #expect(!text.contains("idempotent: the second run did the same"))
    }

    /// The export table is read within bounds: names that run to the end of a large string table cost their
    /// bytes once, and a table whose entry size would hide every symbol is refused, not read as empty.
    @Test func aCraftedSymbolTableNeitherHangsNorHides() throws {
        let directory = try TemporaryDirectory()
        let plugin = try compileRunModeFixture(directory.file("ok.so"), mode: 30, name: "ok")
        var bytes = [UInt8](try Data(contentsOf: plugin))
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        let table = u64(0x28)
        let entry = u16(0x3A)
        let dynsym = try #require(
            (0..<u16(0x3C)).map { table + $0 * entry }.first { bytes[$0 + 4] == 11 }
        )
        bytes[dynsym + 0x38] = 0
        bytes[dynsym + 0x38 + 5] = 1  // sh_entsize = 1 << 40
        let hidden = directory.file("hidden.so")
        try Data(bytes).write(to: hidden)
        let checked = try Self.check([hidden.path])
        #expect(checked.findings.contains("entries of 1099511627776 bytes, not 24"), "\(checked.findings)")
        #expect(checked.status == 4)
    }

    /// A step that starts a daemon (double fork, setsid: it leaves the runner's process group) and then crashes
    /// its runner leaves the daemon to whoever adopts orphans: check-plugin does (it is a child subreaper) and
    /// stops it before it exits, so a check leaves no process behind.
    @Test func aDaemonAPluginLeavesBehindIsStopped() throws {
        let directory = try TemporaryDirectory()
        let pidFile = directory.file("daemon.pid").path
        let file = try compileFixture(
            directory.file("daemon.so"),
            [
                "PLUGIN_NAME": cString("daemon"), "STEP1_NAME": cString("daemon_step"), "RUN_MODE": "44",
                "DAEMON_PID_FILE": cString(pidFile),
            ]
        )
        let checked = try Self.check([file.path])
        #expect(checked.status == 1)
        let text = try String(contentsOfFile: pidFile, encoding: .utf8)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        // Gone, or a zombie being reaped: never still sleeping.
        let gone = try eventually(within: 5) { kill(pid, 0) != 0 || ChildProcesses.state(of: pid) == "Z" }
        #expect(
            gone,
            "the daemon \(pid) outlived check-plugin (state \(ChildProcesses.state(of: pid).map(String.init) ?? "?"))"
        )
    }

    /// Plugin text with a bidirectional override and DEL reaches neither the text nor the JSON report raw.
    @Test func bidiControlsAndDELAreEscapedInBothReports() throws {
        let directory = try TemporaryDirectory()
        let source = try directory.write(
            "bidi.c",
            #"""
            #include "stephost.h"
            static stephost_outcome run_step(void *step_ctx, const stephost_step_call *call) {
                (void)step_ctx;
                call->services->log(call->ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL("evil \xe2\x80\xae txt.exe \x7f end"));
                return STEPHOST_OUTCOME_DONE;
            }
            static const stephost_step_descriptor step = {sizeof step, 10, STEPHOST_LITERAL("bidi_step"), run_step, NULL};
            static const stephost_step_descriptor *const steps[] = {&step};
            stephost_status stephost_plugin_init(const stephost_host_offer *offer, stephost_plugin_descriptor *d) {
                (void)offer;
                d->abi_version = STEPHOST_ABI_VERSION(1, 0);
                d->name = "bidi";
                d->name_len = 4;
                d->version = "1.0";
                d->version_len = 3;
                d->steps = steps;
                d->step_count = 1;
                return STEPHOST_STATUS_OK;
            }
            """#
        )
        let output = directory.file("bidi.so")
        let built = try runProcess(
            URL(fileURLWithPath: "/usr/bin/cc"),
            [
                "-shared", "-fPIC", "-fvisibility=hidden", "-I", Paths.includeDirectory.path, source.path, "-o",
                output.path,
            ]
        )
        try #require(built.status == 0, "\(built.stderr)")
        for json in [false, true] {
            let result = try runProcess(Paths.stephost, ["check-plugin"] + (json ? ["--json"] : []) + [output.path])
            #expect(result.stdout.contains("evil "), "\(result.stdout)")
            #expect(
                !result.stdout.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x7F },
                "\(result.stdout)"
            )
            #expect(result.stdout.lowercased().contains("202e"))
        }
    }

    /// The private copy a plugin is checked from lives only while the scanner loads it: while its step still runs
    /// (in a runner, from the loader's sealed copy) and after the check, nothing of it is left in TMPDIR.
    @Test func theScratchCopyIsGoneWhileTheStepsRun() throws {
        let directory = try TemporaryDirectory()
        let scratch = directory.file("tmp")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false)
        let file = try compileRunModeFixture(directory.file("slow.so"), mode: 34, name: "slow", sleepMilliseconds: 3000)
        let process = Process()
        process.executableURL = Paths.stephost
        process.arguments = ["check-plugin", "--deadline", "30", file.path]
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": scratch.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // A runner of the plugin holds the sleeping step.
        func runnerStarted() -> Bool {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
            return pids.contains { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")"),
                    let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))
                else { return false }
                let parent = stat[stat.index(after: close)...].split(separator: " ").dropFirst().first
                let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                return parent == "\(process.processIdentifier)" && arguments.contains("__runner")
            }
        }
        let running = try eventually(within: 30) { runnerStarted() }
        #expect(running)
        let during = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        process.waitUntilExit()
        let after = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        #expect(during.filter { $0.hasPrefix("stephost-check.") }.isEmpty, "while the step ran: \(during)")
        #expect(after.filter { $0.hasPrefix("stephost-check.") }.isEmpty, "after the check: \(after)")
        #expect(process.terminationStatus == 0)
    }

    /// An `@FILE` that is a FIFO is refused without being read, for check-plugin's --operation and provision's
    /// --parameters: the command does not wait for a writer that never comes.
    @Test func aFIFOGivenAsAFileIsRefusedWithoutBlocking() throws {
        let directory = try TemporaryDirectory()
        let fifo = directory.file("input.json")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let good = try Paths.examplePlugin("ExampleCPlugin")
        let checked = try runProcess(
            Paths.stephost,
            ["check-plugin", "--operation", "@" + fifo.path, good.path],
            timeout: 20
        )
        #expect(checked.status == 64, "\(checked.stderr)")
        #expect(checked.stderr.contains("is not a regular file"), "\(checked.stderr)")
        let provisioned = try runProcess(
            Paths.stephost,
            [
                "provision", "--parameters", "@" + fifo.path, "--db", directory.file("db.sqlite").path,
                "--plugins-dir", directory.path,
            ],
            timeout: 20
        )
        #expect(provisioned.status == 65, "\(provisioned.stderr)")
        #expect(provisioned.stderr.contains("is not a regular file"), "\(provisioned.stderr)")
    }
}
