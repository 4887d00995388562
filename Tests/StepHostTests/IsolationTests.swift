import Foundation
import GRDB
import StepHostABI
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostSQLite
import StepHostStorage
import Testing

/// Out-of-process steps: the same plugins, the same ABI, served by runner children; a runner that crashes or
/// overruns ends only its step.
@Suite struct IsolationTests {
    static let allProcess = IsolationConfiguration(defaults: PluginPolicy(isolation: .process))

    /// The example plugins give the same operation in both modes: fields, overrides (secrets kept out of the
    /// request's stored form), labels and checkpoints all travel over the runner's pipe.
    @Test func examplePluginsGiveTheSameResultInBothModes() async throws {
        var results: [(OperationRecord, [StepRun])] = []
        for isolation in [IsolationConfiguration(), Self.allProcess] {
            let harness = try EngineHarness()
            try harness.addExamples()
            let (operation, runs, _) = try await harness.provision(
                #"{"name":"same","region":"europe-west4"}"#,
                isolation: isolation
            )
            #expect(operation.state == .succeeded, "\(operation.description)")
            results.append((operation, runs))
        }
        let (inProcess, isolated) = (results[0], results[1])
        #expect(inProcess.0.fields.keys.sorted() == isolated.0.fields.keys.sorted())
        #expect(inProcess.0.fields.count >= 2)
        #expect(inProcess.1.map(\.step) == isolated.1.map(\.step))
        #expect(inProcess.1.map(\.outcome) == isolated.1.map(\.outcome))
        let requests = [inProcess.0, isolated.0].map { $0.runtime.provisioningRequest ?? "" }
        #expect(!requests[0].isEmpty)
        // The same request, but for the operation's own ids.
        let normalized = requests.enumerated().map { index, request in
            request.replacingOccurrences(of: results[index].0.id, with: "ID")
                .replacingOccurrences(of: results[index].0.instanceID, with: "INSTANCE")
                .replacingOccurrences(of: #"AUD-[0-9a-f]{8}"#, with: "AUD-TICKET", options: .regularExpression)
        }
        #expect(normalized[0] == normalized[1])
    }

    /// A step that segfaults in its runner fails only its own operation, naming step, plugin and signal, while
    /// an operation of a healthy plugin running at the same time succeeds; the next call starts a new runner.
    @Test func aCrashingRunnerFailsOnlyItsOperation() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("crasher", mode: 28, weight: 20)
        try harness.addFixture("healthy", mode: 0, weight: 30)
        var options = EngineOptions()
        options.workers = 4
        let host = try await harness.host(options, isolation: Self.allProcess)
        let crash = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"a"}"#)
        )
        let report = try await host.engine.runUntilIdle()
        let failed = try #require(try await host.store.operation(id: crash.id))
        #expect(failed.state == .failed)
        #expect(failed.lastError?.step == "crasher_step")
        #expect(failed.lastError?.plugin == "crasher")
        #expect(
            failed.lastError?.message.contains("the runner of plugin crasher crashed with signal 11 (SIGSEGV") == true,
            "\(failed.lastError?.message ?? "")"
        )
        #expect(report.operations.count == 1)
    }

    /// A process step that never returns is stopped at its deadline: the runner gets SIGTERM, the operation fails
    /// naming the deadline, and the host goes on.
    @Test func aHangingProcessStepIsStoppedAtItsDeadline() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("sleeper", mode: 8, weight: 20)
        var isolation = Self.allProcess
        isolation.defaults.deadline = .seconds(1)
        let (operation, runs, _) = try await harness.provision(isolation: isolation)
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message
                == "step sleeper_step exceeded its deadline of 1 s; its runner was stopped with signal 15 "
                + "(SIGTERM, Terminated)",
            "\(operation.lastError?.message ?? "")"
        )
        #expect(runs.last?.outcome == .fault)
    }

    /// A runner that ignores SIGTERM gets SIGKILL once the grace period has passed.
    @Test func aRunnerThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("stubborn", mode: 43, weight: 20)
        var isolation = Self.allProcess
        isolation.defaults.deadline = .seconds(1)
        isolation.killGrace = .milliseconds(500)
        let (operation, _, _) = try await harness.provision(isolation: isolation)
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message
                == "step stubborn_step exceeded its deadline of 1 s; its runner was stopped with signal 9 "
                + "(SIGKILL, Killed)",
            "\(operation.lastError?.message ?? "")"
        )
    }

    /// An in-process step that never returns: at its deadline the host stops waiting (the run faults), counts the
    /// stuck thread, and past the allowed number of stuck threads takes no new work, saying why.
    @Test func aHangingInProcessStepIsAbandonedAndCounted() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("sleeper", mode: 8, weight: 20)
        var isolation = IsolationConfiguration()
        isolation.defaults.deadline = .seconds(1)
        isolation.maximumStuckThreads = 0
        var one = EngineOptions()
        one.workers = 1
        let host = try await harness.host(one, isolation: isolation)
        let first = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"a"}"#)
        )
        let second = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"b"}"#)
        )
        // The first pass is abandoned at its deadline; then the host refuses the second operation and says why.
        let stopped = await #expect(throws: EngineStopped.self) { try await host.engine.runUntilIdle() }
        #expect(stopped?.reason.contains("1 in-process steps are stuck past their deadlines, more than the 0") == true)
        let abandoned = try #require(try await host.store.operation(id: first.id))
        #expect(abandoned.state == .failed)
        #expect(abandoned.lastError?.message.hasPrefix("step sleeper_step exceeded its deadline of 1 s") == true)
        #expect(host.stuckSteps.count == 1)
        #expect(try await host.store.operation(id: second.id)?.state == .pending)
    }

    /// No plugin can make the host hold an unbounded amount for it: a run that writes more than 16 MiB in all
    /// (here the same 60 KiB field 300 times) is a fault at the write that crosses the line, in both modes.
    @Test(arguments: [Isolation.inProcess, .process])
    func aRunThatWritesWithoutBoundIsAFault(isolation: Isolation) async throws {
        let harness = try EngineHarness()
        try harness.addFixture("spammer", mode: 42, weight: 20)
        let (operation, _, _) = try await harness.provision(
            isolation: IsolationConfiguration(defaults: PluginPolicy(isolation: isolation))
        )
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message
                == "the plugin broke the ABI: set_field: the step wrote more than 16777216 bytes of fields, overrides "
                + "and labels in one run",
            "\(operation.lastError?.message ?? "")"
        )
    }

    /// A plugin that leaves a daemon behind (double fork, setsid: outside the runner's process group, holding the
    /// runner's pipes open) and then crashes: the host learns of the crash from the runner's pidfd, not from an end
    /// of file the daemon would hold back for an hour.
    @Test func aCrashThatLeavesADaemonHoldingThePipesIsReportedAtOnce() async throws {
        let harness = try EngineHarness()
        let pidFile = harness.directory.file("daemon.pid").path
        try compileFixture(
            harness.plugins.appendingPathComponent("forker.so"),
            [
                "PLUGIN_NAME": cString("forker"), "STEP1_NAME": cString("forker_step"), "RUN_MODE": "44",
                "DAEMON_PID_FILE": cString(pidFile),
            ]
        )
        defer { Self.killDaemon(pidFile) }
        let operation = try await Self.provision(try await harness.host(isolation: Self.allProcess))
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message
                == "the runner of plugin forker crashed with signal 11 (SIGSEGV, Segmentation fault) while running "
                + "step forker_step",
            "\(operation.lastError?.message ?? "")"
        )
    }

    /// A runner stopped at its deadline takes what its plugin forked with it, even a daemon that left its process
    /// group: the runner is a child subreaper, so the host finds the daemon below it and kills it first.
    @Test func aRunnerStoppedAtItsDeadlineTakesItsDaemonWithIt() async throws {
        let harness = try EngineHarness()
        let pidFile = harness.directory.file("daemon.pid").path
        try compileFixture(
            harness.plugins.appendingPathComponent("forker.so"),
            [
                "PLUGIN_NAME": cString("forker"), "STEP1_NAME": cString("forker_step"), "RUN_MODE": "45",
                "DAEMON_PID_FILE": cString(pidFile),
            ]
        )
        defer { Self.killDaemon(pidFile) }
        var isolation = Self.allProcess
        isolation.defaults.deadline = .seconds(1)
        let operation = try await Self.provision(try await harness.host(isolation: isolation))
        #expect(operation.state == .failed)
        let daemon = try #require(
            Int32(
                (try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
            )
        )
        // Gone, or a zombie waiting for init to reap it: in either case not running.
        let alive = try eventually(within: 10) {
            guard let stat = try? String(contentsOfFile: "/proc/\(daemon)/stat", encoding: .utf8) else { return true }
            return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") == true
        }
        #expect(alive, "the daemon \(daemon) of the stopped runner still runs")
    }

    /// Creates an operation and runs it to a final state, or fails after a minute instead of hanging the run.
    static func provision(_ host: ProvisioningHost) async throws -> OperationRecord {
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"daemon"}"#)
        )
        let id = created.id
        return try await within(60, "operation \(id)") { try await host.engine.runToCompletion(operationID: id) }
    }

    static func killDaemon(_ pidFile: String) {
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        {
            kill(pid, SIGKILL)
        }
    }

    /// A well-behaved 1.1 step that polls is_cancelled and, once cancelled, tries to save its work with a
    /// checkpoint: the checkpoint is refused (STEPHOST_STATUS_ERROR) and nothing of it lands, since the host has
    /// already failed the operation; the operation ends failed at its first pass with the deadline's message.
    @Test(arguments: [Isolation.inProcess, .process])
    func aCheckpointAfterTheDeadlineIsRefused(isolation: Isolation) async throws {
        let harness = try EngineHarness()
        let statusFile = harness.directory.file("checkpoint.status").path
        try compileFixture(
            harness.plugins.appendingPathComponent("late.so"),
            [
                "PLUGIN_NAME": cString("late"), "STEP1_NAME": cString("late_step"), "RUN_MODE": "46",
                "CHECKPOINT_STATUS_FILE": cString(statusFile),
            ]
        )
        var configuration = IsolationConfiguration(defaults: PluginPolicy(isolation: isolation))
        configuration.defaults.deadline = .milliseconds(500)
        let host = try await harness.host(isolation: configuration)
        let operation = try await Self.provision(host)
        #expect(operation.state == .failed)
        #expect(operation.passes == 1)
        #expect(operation.fields["after_cancel"] == nil, "\(operation.fields)")
        #expect(operation.lastError?.message.hasPrefix("step late_step exceeded its deadline of 500 ms") == true)
        if isolation == .inProcess {
            // The step's thread returns a moment later; its checkpoint was refused.
            #expect(try eventually(within: 10) { FileManager.default.fileExists(atPath: statusFile) })
            let status = try String(contentsOfFile: statusFile, encoding: .utf8)
            #expect(status == "\(STEPHOST_STATUS_ERROR)\n")
            #expect(try await host.store.operation(id: operation.id)?.fields["after_cancel"] == nil)
        }
    }

    /// A plugin that writes a forged "done" frame straight to its runner's pipe ends its own call with the
    /// forgery, but the real frames that follow never reach another operation: a runner with unread output is out
    /// of step and is replaced before its next call.
    @Test func aRunnerOutOfStepIsNeverHandedAnotherCall() async throws {
        let harness = try EngineHarness()
        try compileRunModeFixture(
            harness.plugins.appendingPathComponent("forger.so"),
            mode: 47,
            name: "forger",
            onlyWhen: "boom"
        )
        var options = EngineOptions()
        options.workers = 1
        let host = try await harness.host(options, isolation: Self.allProcess)
        for name in ["boom", "calm"] {
            let created = try await host.engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#)
            )
            let id = created.id
            let operation = try await within(60, name) { try await host.engine.runToCompletion(operationID: id) }
            if name == "calm" {
                #expect(operation.state == .succeeded, "\(operation.lastError?.message ?? "")")
            }
        }
    }

    /// A plugin that moves its runner out of its own process group (into the host's), ignores SIGTERM and clears
    /// its parent-death signal is still stopped at its deadline: the host signals the runner itself, not only its
    /// group.
    @Test func aRunnerThatLeavesItsProcessGroupIsStillStopped() async throws {
        let harness = try EngineHarness()
        try compileRunModeFixture(harness.plugins.appendingPathComponent("escaper.so"), mode: 48, name: "escaper")
        var isolation = Self.allProcess
        isolation.defaults.deadline = .seconds(1)
        isolation.killGrace = .milliseconds(500)
        let operation = try await Self.provision(try await harness.host(isolation: isolation))
        #expect(operation.state == .failed)
        #expect(
            operation.lastError?.message
                == "step escaper_step exceeded its deadline of 1 s; its runner was stopped with signal 9 (SIGKILL, Killed)",
            "\(operation.lastError?.message ?? "")"
        )
    }

    /// What the README claims of a runner, read back from the running runner through /proc: its own process
    /// group, only descriptors 0 to 5 (stdin on /dev/null, its output pipe twice, its two protocol pipes, the
    /// plugin's sealed copy), the configured limits, no core dumps, Swift's backtracer off.
    @Test func aRunnerHasOnlyItsPipesItsLimitsAndItsOwnGroup() async throws {
        let harness = try EngineHarness()
        let plugin = try compileRunModeFixture(
            harness.plugins.appendingPathComponent("held.so"),
            mode: 41,
            name: "held"
        )
        var isolation = Self.allProcess
        isolation.defaults.limits = ResourceLimits(addressSpace: 3 << 30, cpuSeconds: 1200, openFiles: 64)
        // What is read here is the runner's, not how fast it starts: on a machine loaded by the rest of the suite a
        // runner may take longer than the default 10 s to load its plugin (then the step faults and no runner is
        // left to read).
        isolation.initTimeout = .seconds(60)
        let host = try await harness.host(isolation: isolation)
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"held"}"#)
        )
        let id = created.id
        let task = Task { try await host.engine.runToCompletion(operationID: id) }
        var found: pid_t?
        let held = try eventually(within: 60) {
            found = ChildProcesses.runners(of: plugin.path).first
            return found != nil && (try? String(contentsOfFile: "/proc/\(found!)/limits", encoding: .utf8)) != nil
                && ChildProcesses.state(of: found!) == "S"
        }
        guard held, let runner = found else {
            // Say why: the operation's own account of its step (a runner that did not start, or ended early) and
            // what this process's children were at the end.
            task.cancel()
            let record = try await host.store.operation(id: id)
            let children = ChildProcesses.children().map { "\($0.pid) \($0.state) \($0.arguments.prefix(3))" }
            let last = found.map { String($0) } ?? "none"
            let story = record.map(\.description) ?? "missing"
            Issue.record(
                Comment(
                    rawValue: "no runner of \(plugin.lastPathComponent) held its step (last seen: \(last)); "
                        + "operation: \(story); children: \(children)"
                )
            )
            return
        }
        defer { kill(runner, SIGKILL) }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(runner)/fd").compactMap(Int.init)
        #expect(descriptors.sorted() == [0, 1, 2, 3, 4, 5], "\(descriptors)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(runner)/fd/0") == "/dev/null")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(runner)/fd/5").hasPrefix("/memfd:"))
        let limits = try String(contentsOfFile: "/proc/\(runner)/limits", encoding: .utf8)
        func limit(_ name: String) -> String? {
            limits.split(separator: "\n").first { $0.hasPrefix(name) }.map {
                $0.dropFirst(name.count).split(separator: " ").first.map(String.init) ?? ""
            }
        }
        #expect(limit("Max address space") == "\(3 << 30)")
        #expect(limit("Max cpu time") == "1200")
        #expect(limit("Max open files") == "64")
        #expect(limit("Max core file size") == "0")
        let stat = try String(contentsOfFile: "/proc/\(runner)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        #expect(fields[2] == "\(runner)", "the runner leads a process group of its own")
        let environment = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(runner)/environ"))
            .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(environment.contains("SWIFT_BACKTRACE=enable=no"))
        kill(runner, SIGKILL)
        let operation = try await task.value
        #expect(operation.state == .failed)
    }
}
