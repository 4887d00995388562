import Foundation
import Glibc
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostSQLite
import StepHostStorage
import Testing

/// The isolation fault suite, step faults in `process` isolation: for every way a step can break the process it
/// runs in, the host (this test process) survives, the operation that faulted fails with a precise reason, and
/// another operation that runs through the same plugin at the same time, without faulting, succeeds. One plugin
/// does both: it faults only for operations named "boom" (the fixtures' ONLY_WHEN), and is done at once for "calm".
@Suite("FaultSuite: step faults in process isolation", .timeLimit(.minutes(1)))
struct FaultSuiteStepTests {
    static let boom = #"{"name":"boom"}"#
    static let calm = #"{"name":"calm"}"#
    /// The bytes only the "boom" operation's document holds.
    static let marker = #""boom""#

    /// Every plugin in a runner, with a deadline far enough that a loaded machine never reaches it unless the fault
    /// is a hang (those cases pass 1 s), a short grace and init timeout, and `limits` for the plugin named "faulty".
    static func processIsolation(
        limits: ResourceLimits = ResourceLimits(),
        deadline: Duration = .seconds(30)
    ) -> IsolationConfiguration {
        IsolationConfiguration(
            defaults: PluginPolicy(isolation: .process, deadline: deadline),
            plugins: ["faulty": PluginPolicyOverride(limits: limits)],
            initTimeout: .seconds(2),
            killGrace: .milliseconds(500)
        )
    }

    /// What a side-by-side run gave.
    struct SideBySide {
        var boom: OperationRecord
        var boomRuns: [StepRun]
        var calm: OperationRecord
        var calmRuns: [StepRun]
        /// An operation started after both ended: the plugin's runner was replaced and still serves.
        var after: OperationRecord
        var host: ProvisioningHost
    }

    /// Builds the plugin "faulty" (step "faulty_step") with `build` into a fresh plugin directory, runs a "boom"
    /// and a "calm" operation at the same time, then one more.
    static func runSideBySide(
        isolation: IsolationConfiguration = processIsolation(),
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
        build: (URL) throws -> Void
    ) async throws -> SideBySide {
        let harness = try EngineHarness()
        try build(harness.plugins.appendingPathComponent("faulty.so"))
        var options = EngineOptions()
        options.workers = 4
        let host = try await harness.host(options, isolation: isolation, logger: logger)
        #expect(host.plugins.used.map(\.isolation) == [.process])
        let boomID = try await host.engine.createOperation(parameters: try ProvisioningParameters(json: boom)).id
        let calmID = try await host.engine.createOperation(parameters: try ProvisioningParameters(json: calm)).id
        let engine = host.engine
        async let boomDone = within(30, "the boom operation") { try await engine.runToCompletion(operationID: boomID) }
        async let calmDone = within(30, "the calm operation") { try await engine.runToCompletion(operationID: calmID) }
        let (boom, calm) = try await (boomDone, calmDone)
        let afterID = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"after"}"#)
        ).id
        let after = try await within(30, "the operation after") {
            try await engine.runToCompletion(operationID: afterID)
        }
        return SideBySide(
            boom: boom,
            boomRuns: try await host.store.stepRuns(operationID: boomID),
            calm: calm,
            calmRuns: try await host.store.stepRuns(operationID: calmID),
            after: after,
            host: host
        )
    }

    /// One step fault of fixture_plugin.c and what the host must say about it.
    struct StepFault: Sendable, CustomTestStringConvertible {
        var label: String
        var mode: Int
        var sleepMilliseconds: Int?
        var limits: ResourceLimits = ResourceLimits()
        var deadline: Duration = .seconds(30)
        /// Texts the failed operation's last error must contain, in order.
        var message: [String]
        /// Whether the fault holds its step until the deadline: then the calm operation must have run meanwhile.
        var slow = false

        var testDescription: String { "\(label) (mode \(mode))" }
    }

    static let runnerCrash = "the runner of plugin faulty crashed with signal "
    static let whileRunning = " while running step faulty_step"
    static let deadline =
        "step faulty_step exceeded its deadline of 1 s; its runner was stopped with signal 15 (SIGTERM"

    static let stepFaults: [StepFault] = [
        StepFault(label: "segfault", mode: 28, message: [runnerCrash + "11 (SIGSEGV, ", whileRunning]),
        StepFault(label: "abort", mode: 31, message: [runnerCrash + "6 (SIGABRT, ", whileRunning]),
        StepFault(
            label: "exit(3)",
            mode: 32,
            message: ["the runner of plugin faulty exited with status 3 while running step faulty_step"]
        ),
        StepFault(label: "hang forever", mode: 33, deadline: .seconds(1), message: [deadline], slow: true),
        StepFault(
            label: "sleep past the deadline",
            mode: 34,
            sleepMilliseconds: 3000,
            deadline: .seconds(1),
            message: [deadline],
            slow: true
        ),
        StepFault(
            label: "allocate without bound under a 1 GiB address-space limit",
            mode: 35,
            limits: ResourceLimits(addressSpace: 1 << 30),
            deadline: .seconds(10),
            message: [runnerCrash + "6 (SIGABRT, ", whileRunning]
        ),
        StepFault(
            label: "invalid outcome 77",
            mode: 38,
            message: ["the plugin broke the ABI: the step returned the unknown outcome code 77"]
        ),
        StepFault(
            label: "invalid outcome 7",
            mode: 3,
            message: ["the plugin broke the ABI: the step returned the unknown outcome code 7"]
        ),
        StepFault(
            label: "invalid JSON field",
            mode: 4,
            message: ["the plugin broke the ABI: set_field: the value of field 'broken' is not valid UTF-8 JSON"]
        ),
        StepFault(label: "SIGKILL of itself", mode: 40, message: [runnerCrash + "9 (SIGKILL, ", whileRunning]),
    ]

    @Test(arguments: stepFaults)
    func aStepFaultFailsOnlyItsOperation(_ fault: StepFault) async throws {
        let run = try await Self.runSideBySide(
            isolation: Self.processIsolation(limits: fault.limits, deadline: fault.deadline)
        ) { file in
            try compileRunModeFixture(
                file,
                mode: fault.mode,
                name: "faulty",
                sleepMilliseconds: fault.sleepMilliseconds,
                onlyWhen: Self.marker
            )
        }
        #expect(run.boom.state == .failed, "\(run.boom.description)")
        #expect(run.boom.lastError?.step == "faulty_step")
        #expect(run.boom.lastError?.plugin == "faulty")
        let message = run.boom.lastError?.message ?? ""
        #expect(Self.containsInOrder(message, fault.message), "\(message)")
        #expect(run.boomRuns.last?.outcome == .fault)
        #expect(run.calm.state == .succeeded, "\(run.calm.description)")
        #expect(run.calmRuns.map(\.step) == ["faulty_step", "create_runtime"])
        #expect(run.after.state == .succeeded, "\(run.after.description)")
        if fault.slow {
            // The calm operation's step ran while the boom one's was held, not after it.
            let boomStep = try #require(run.boomRuns.first { $0.step == "faulty_step" })
            let calmStep = try #require(run.calmRuns.first { $0.step == "faulty_step" })
            let boomEnded = boomStep.startedAt.addingTimeInterval(boomStep.durationMilliseconds / 1000)
            #expect(calmStep.startedAt < boomEnded)
            #expect(boomStep.durationMilliseconds >= 1000)
        }
    }

    /// `text` holds each of `parts`, one after the other.
    static func containsInOrder(_ text: String, _ parts: [String]) -> Bool {
        var rest = text[...]
        for part in parts {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }
}

/// Step faults that are not a plain failure: output floods, an oversized value, a kept or foreign context, and
/// the C++, Rust and Swift fixtures.
@Suite("FaultSuite: other step faults in process isolation", .timeLimit(.minutes(1)))
struct FaultSuiteOtherStepTests {
    typealias Side = FaultSuiteStepTests

    /// Megabytes of binary garbage on the runner's stdout and stderr: the step still succeeds, and what the host
    /// logs of it is bounded (100 lines a window, each cut to 512 bytes and escaped).
    @Test func garbageOutputIsBoundedAndTheStepSucceeds() async throws {
        let lines = CapturingLogHandler.Lines()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: lines, logLevel: .trace) }
        // 8 MiB through two pipes takes a while on a loaded machine: a deadline far from the 1 s of the others.
        let run = try await Side.runSideBySide(isolation: Side.processIsolation(deadline: .seconds(15)), logger: logger)
        {
            file in
            try compileFaultFixture(file, mode: .garbageOutput, name: "faulty", onlyWhen: Side.marker)
        }
        #expect(run.boom.state == .succeeded, "\(run.boom.description)")
        #expect(run.calm.state == .succeeded, "\(run.calm.description)")
        #expect(run.after.state == .succeeded)
        // The capture thread logs while it drains: it reaches its 100 lines a window, then only counts.
        let reached = try eventually(within: 5) { lines.all.filter { $0.hasPrefix("plugin output") }.count >= 100 }
        #expect(reached, "the garbage was not seen: \(lines.all.count) lines logged")
        usleep(200_000)
        let output = lines.all.filter { $0.hasPrefix("plugin output") }
        #expect(output.count <= 101, "\(output.count) lines of plugin output were logged")
        #expect(output.reduce(0) { $0 + $1.utf8.count } < 150_000)
        #expect(output.allSatisfy { !$0.contains("\u{1B}") && !$0.contains("\n") })
    }

    /// A 100 MiB field value: the runner sends only its length, and the host refuses it as it refuses it in
    /// process (set_field returns an error and the call faults naming the value), without stopping the runner.
    @Test func aHundredMegabyteValueFailsOnlyItsOperation() async throws {
        let run = try await Side.runSideBySide { file in
            try compileFaultFixture(file, mode: .hugeField, name: "faulty", onlyWhen: Side.marker)
        }
        #expect(run.boom.state == .failed, "\(run.boom.description)")
        #expect(
            run.boom.lastError?.message
                == "the plugin broke the ABI: set_field: the value of field 'huge' is 104857600 bytes long, more "
                + "than 1048576",
            "\(run.boom.lastError?.message ?? "")"
        )
        #expect(run.boom.fields["huge"] == nil)
        #expect(run.calm.state == .succeeded, "\(run.calm.description)")
        #expect(run.after.state == .succeeded)
    }

    /// Mode 26 writes through the call's context from a thread of its own while the call runs: the write is
    /// refused and the call faults naming the misuse, in the runner as in the host.
    @Test func aContextUsedFromAnotherThreadFaultsOnlyItsOperation() async throws {
        let run = try await Side.runSideBySide { file in
            try compileRunModeFixture(file, mode: 26, name: "faulty", onlyWhen: Side.marker)
        }
        #expect(run.boom.state == .failed, "\(run.boom.description)")
        #expect(
            run.boom.lastError?.message
                == "the plugin broke the ABI: set_field was given a call context that is stale or belongs to another "
                + "call, or was called from a thread other than the call's"
        )
        #expect(run.boom.fields["foreign"] == nil)
        #expect(run.calm.state == .succeeded, "\(run.calm.description)")
        #expect(run.after.state == .succeeded)
    }

    /// Mode 25 keeps the first call's context and writes through it in the next call. The two "boom" calls run
    /// one after the other (one worker), so that the same runner serves both; then a calm operation succeeds.
    @Test func aContextKeptForALaterCallIsRefused() async throws {
        let harness = try EngineHarness()
        try compileRunModeFixture(
            harness.plugins.appendingPathComponent("faulty.so"),
            mode: 25,
            name: "faulty",
            onlyWhen: "boom"
        )
        var options = EngineOptions()
        options.workers = 1
        let host = try await harness.host(options, isolation: Side.processIsolation())
        var results: [OperationRecord] = []
        for name in ["boom-1", "boom-2", "calm"] {
            let id = try await host.engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#)
            ).id
            results.append(try await host.engine.runToCompletion(operationID: id))
        }
        #expect(results[0].state == .succeeded)
        #expect(results[1].state == .failed)
        #expect(
            results[1].lastError?.message
                == "the plugin broke the ABI: set_field was given a call context that is stale or belongs to another "
                + "call, or was called from a thread other than the call's"
        )
        #expect(results[2].state == .succeeded)
        #expect(results.allSatisfy { $0.fields["stale"] == nil })
    }
}

/// Plugins in other languages that take their process down: a C++ exception out of a step (std::terminate), a
/// Rust panic (abort at the extern "C" boundary) and a Swift trap. Each fixture faults only for the "boom"
/// operation (ONLY_WHEN; the Swift one by its "name" parameter), so a calm one runs beside it.
@Suite("FaultSuite: C++, Rust and Swift faults in process isolation", .timeLimit(.minutes(1)))
struct FaultSuiteLanguageTests {
    typealias Side = FaultSuiteStepTests

    enum Language: String, CaseIterable, Sendable {
        case cxx = "C++ exception"
        case rust = "Rust panic"
        case swift = "Swift trap"
    }

    @Test(arguments: Language.allCases)
    func aForeignRuntimeFaultFailsOnlyItsOperation(_ language: Language) async throws {
        // The runner is a Swift program: the Swift runtime's backtracer catches a trap and prints a backtrace
        // before the process dies, which can take longer than 1 s on a loaded machine.
        let run = try await Side.runSideBySide(isolation: Side.processIsolation(deadline: .seconds(10))) { file in
            switch language {
            case .cxx: try compileCxxFixture(file, name: "faulty", onlyWhen: Side.marker)
            case .rust: try buildRustFixture(file, name: "faulty", onlyWhen: Side.marker)
            case .swift: try compileSwiftTrapFixture(file, name: "faulty", onlyWhenName: "boom")
            }
        }
        let signal = language == .swift ? "4 (SIGILL, " : "6 (SIGABRT, "
        #expect(run.boom.state == .failed, "\(run.boom.description)")
        let message = run.boom.lastError?.message ?? ""
        #expect(
            Side.containsInOrder(message, [Side.runnerCrash + signal, Side.whileRunning]),
            "\(message)"
        )
        #expect(run.calm.state == .succeeded, "\(run.calm.description)")
        #expect(run.after.state == .succeeded, "\(run.after.description)")
    }
}

/// A runner killed from outside while its step runs (mode 41: it checkpoints "hang_started", then hangs): the
/// operation fails naming SIGKILL, and an operation that runs at the same time through the same plugin succeeds.
@Suite("FaultSuite: a runner killed from outside", .timeLimit(.minutes(1)))
struct FaultSuiteKilledRunnerTests {
    @Test func aRunnerKilledMidStepFailsOnlyItsOperation() async throws {
        let harness = try EngineHarness()
        let file = harness.plugins.appendingPathComponent("faulty.so")
        try compileFaultFixture(file, mode: .hangAfterCheckpoint, name: "faulty", onlyWhen: FaultSuiteStepTests.marker)
        var options = EngineOptions()
        options.workers = 4
        // A deadline far away: only the kill may end the step.
        let host = try await harness.host(
            options,
            isolation: FaultSuiteStepTests.processIsolation(deadline: .seconds(60))
        )
        let boomID = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: FaultSuiteStepTests.boom)
        ).id
        let boomTask = Task { try await host.engine.runToCompletion(operationID: boomID) }
        let hanging = try await eventually(within: 10) {
            try await host.store.operation(id: boomID)?.fields["hang_started"] != nil
        }
        try #require(hanging, "the step never checkpointed hang_started")
        // The only runner of this plugin so far is the one in the step.
        let runners = ChildProcesses.runners(of: file.path)
        try #require(runners.count == 1, "runners of \(file.path): \(runners)")

        // Meanwhile another operation runs through the same plugin (in a runner of its own) and succeeds.
        let calmID = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: FaultSuiteStepTests.calm)
        ).id
        let calm = try await host.engine.runToCompletion(operationID: calmID)
        #expect(calm.state == .succeeded, "\(calm.description)")
        #expect(try await host.store.operation(id: boomID)?.state == .inProgress)

        #expect(kill(runners[0], SIGKILL) == 0)
        let boom = try await within(30, "the boom operation after the kill") { try await boomTask.value }
        #expect(boom.state == .failed, "\(boom.description)")
        let message = boom.lastError?.message ?? ""
        #expect(
            message.hasPrefix("the runner of plugin faulty crashed with signal 9 (SIGKILL, ")
                && message.hasSuffix(" while running step faulty_step"),
            "\(message)"
        )
        // The killed runner was reaped: no zombie of it remains.
        #expect(ChildProcesses.state(of: runners[0]) == nil)
        let after = try await host.engine.runToCompletion(
            operationID: try await host.engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"after"}"#)
            ).id
        )
        #expect(after.state == .succeeded)
    }
}

/// A runner that dies while it is idle in its pool (killed from outside, or its CPU limit) must not cost the next
/// operation its step: the pool should start a new runner.
@Suite("FaultSuite: an idle runner killed from outside", .timeLimit(.minutes(1)))
struct FaultSuiteIdleRunnerTests {
    @Test func anIdleRunnerKilledFromOutsideIsReplaced() async throws {
        let harness = try EngineHarness()
        let file = harness.plugins.appendingPathComponent("steady.so")
        try compileRunModeFixture(file, mode: 30, name: "steady")
        var options = EngineOptions()
        options.workers = 1
        let host = try await harness.host(options, isolation: FaultSuiteStepTests.processIsolation())
        let engine = host.engine
        let first = try await engine.createOperation(parameters: try ProvisioningParameters(json: #"{"name":"a"}"#))
        #expect(try await engine.runToCompletion(operationID: first.id).state == .succeeded)
        let runners = ChildProcesses.runners(of: file.path)
        try #require(runners.count == 1)
        kill(runners[0], SIGKILL)
        _ = try eventually(within: 5) { ChildProcesses.state(of: runners[0]) == "Z" }

        let second = try await engine.createOperation(parameters: try ProvisioningParameters(json: #"{"name":"b"}"#))
        let operation = try await engine.runToCompletion(operationID: second.id)
        // Before the fix, RunnerPool.acquire handed out the dead runner and this operation failed with "the runner
        // of plugin steady crashed with signal 9 (SIGKILL, Killed) while running step steady_step: its pipe was
        // closed".
        #expect(operation.state == .succeeded, "\(operation.lastError?.message ?? "")")
        #expect(ChildProcesses.state(of: runners[0]) == nil, "the dead runner was not reaped")
    }
}
