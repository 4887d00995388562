import Foundation
import GRDB
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostPipeline
import StepHostRuntime
import StepHostSQLite
import StepHostStorage
import Synchronization
import Testing

/// The end-to-end layer: real plugins (.so files), a real SQLite file, the host as `ProvisioningHost` builds
/// it. The engine's rules are tested fast, on an in-memory store and a test clock, in `EngineSemanticsTests`.
@Suite("Running operations through real plugins")
struct EngineTests {
    @Test func stepsRunInPipelineOrderAndTheOperationSucceeds() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let (operation, runs, host) = try await harness.provision()

        #expect(operation.state == .succeeded)
        #expect(operation.nextPassAt == nil)
        #expect(operation.lastError == nil)
        #expect(operation.passes == 2)  // verify_monitoring asks for one retry
        let order = [
            "allocate_subnet", "configure_monitoring", "open_audit_ticket", "configure_dns", "create_runtime",
            "verify_monitoring",
        ]
        #expect(runs.filter { $0.pass == 1 }.map(\.step) == order)
        #expect(runs.filter { $0.pass == 2 }.map(\.step) == order + ["close_audit_ticket"])
        #expect(runs.map(\.outcome).filter { $0 != .done } == [.retry])
        #expect(runs.first { $0.step == "allocate_subnet" }?.pluginFileHash?.count == 64)
        #expect(runs.first { $0.step == "create_runtime" }?.plugin == nil)
        #expect(Set(operation.fields.keys) == ["subnet", "audit_ticket", "audit_closed", "monitoring_probe_started"])
        #expect(operation.runtime.runtimeID != nil)
        #expect(try await host.store.localProvisioningCount(operationID: operation.id) == 1)
    }

    @Test func failingStepEndsTheOperationFailedNamingStepAndPlugin() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try harness.addFixture("breaker", mode: 2, weight: 40)
        let (operation, runs, host) = try await harness.provision()

        #expect(operation.state == .failed)
        #expect(operation.lastError == LastError(step: "breaker_step", plugin: "breaker", message: "fixture failure"))
        #expect(runs.map(\.step) == ["allocate_subnet", "configure_monitoring", "breaker_step"])
        #expect(operation.runtime.provisionerOperationID == nil)
        #expect(try await host.store.localProvisioningCount(operationID: operation.id) == 0)
    }

    @Test(arguments: [
        (3, "the plugin broke the ABI: the step returned the unknown outcome code 7"),
        (4, "the plugin broke the ABI: set_field: the value of field 'broken' is not valid UTF-8 JSON"),
        (
            5,
            "the plugin broke the ABI: set_field: field 'stephost_state' uses the prefix 'stephost', reserved for the host"
        ),
        (12, "the plugin broke the ABI: the step returned the unknown outcome code 7"),
    ])
    func pluginFaultFailsTheOperationAndWritesNothingOfIt(mode: Int, message: String) async throws {
        let harness = try EngineHarness()
        try harness.addFixture("faulty", mode: mode, weight: 10)
        let (operation, runs, _) = try await harness.provision()
        #expect(operation.state == .failed)
        #expect(operation.lastError == LastError(step: "faulty_step", plugin: "faulty", message: message))
        #expect(runs.map(\.outcome) == [.fault])
        // Mode 12 wrote two valid fields and checkpointed one before it faulted: neither stays.
        #expect(operation.fields.isEmpty)
    }

    /// KEB semantics: a retry repeats the whole pipeline; overrides are rebuilt, persisted fields kept.
    @Test func stepThatRetriesTwiceThenSucceedsRerunsThePipelineWithFieldsKept() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try harness.addFixture("flaky", mode: 6, weight: 60)
        let (operation, runs, host) = try await harness.provision()

        #expect(operation.state == .succeeded)
        // Pass 1 and 2 retry at flaky_step; pass 3 reaches create_runtime and verify_monitoring retries once more.
        #expect(operation.passes == 4)
        #expect(runs.filter { $0.step == "flaky_step" }.map(\.outcome) == [.retry, .retry, .done, .done])
        #expect(runs.filter { $0.step == "allocate_subnet" }.count == 4)
        #expect(operation.fields["passes_seen"] == "4")
        let subnet = try #require(operation.fields["subnet"])

        // create_runtime ran in passes 3 and 4 and sent once; the request holds each override once.
        #expect(runs.filter { $0.step == "create_runtime" }.map(\.pass) == [3, 4])
        #expect(try await host.store.localProvisioningCount(operationID: operation.id) == 1)
        let request = try #require(operation.runtime.provisioningRequest)
        let istio = try #require(
            try Self.components(request).first { $0["component"] as? String == "istio" }?["configuration"]
                as? [[String: Any]]
        )
        #expect(istio.count == 1)
        // The field is kept as the plugin wrote it (here with an escaped slash): compare the JSON string's value.
        let subnetValue = try JSONSerialization.jsonObject(with: Data(subnet.utf8), options: .fragmentsAllowed)
        #expect(istio.first?["value"] as? String == subnetValue as? String)
    }

    @Test func pluginStepsRunOnTheEnginesOwnThreadsNotTheCooperativePool() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("threads", mode: 7, weight: 10)
        let (operation, _, _) = try await harness.provision()
        #expect(operation.state == .succeeded)
        let thread = try #require(operation.fields["thread"])
        #expect(thread.hasPrefix("\"stephost-step-"))
    }

    /// A plugin's log lines go to the host's logger as they are written, through the step context, not into
    /// the bounded buffer of the step's result: all 1500 error lines arrive, nothing is counted as dropped.
    @Test func pluginLogLinesReachTheHostsLoggerAsTheyAreWritten() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("chatty", mode: 27, weight: 10)
        let lines = CapturingLogHandler.Lines()
        let logger = Logger(label: "test", factory: { _ in CapturingLogHandler(lines: lines, logLevel: .warning) })
        let host = try await harness.host(logger: logger)
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"c"}"#)
        )
        let operation = try await host.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .succeeded)
        #expect(lines.all.filter { $0 == "error line" }.count == 1500)
        #expect(!lines.all.contains("debug line"))
        #expect(!lines.all.contains { $0.contains("were dropped") })
    }

    @Test func secretValuesAreRemovedFromMessagesAndNeverStored() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("vault", mode: 9, weight: 10)
        let (operation, runs, _) = try await harness.provision()
        #expect(operation.lastError?.message == "vault refused <redacted>")
        #expect(runs.first?.message == "vault refused <redacted>")
        for file in try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
        where file.hasPrefix("stephost.sqlite") {
            let bytes = try Data(contentsOf: harness.directory.file(file))
            #expect(bytes.range(of: Data("hunter2-vault-token".utf8)) == nil, "\(file) holds the secret")
        }
    }

    /// Another writer changes the operation while a step blocks: the pass's next write is refused, the other
    /// writer's change stands, and the operation still finishes in a later pass.
    @Test func concurrentWriteIsDetectedAndNeverOverwritten() async throws {
        let harness = try EngineHarness()
        // The step blocks until the intruder has written (a fixed second was missed once on a loaded machine).
        let release = harness.directory.file("release")
        try compileFixture(
            harness.plugins.appendingPathComponent("slowpoke.so"),
            [
                "PLUGIN_NAME": cString("slowpoke"), "STEP1_NAME": cString("slowpoke_step"), "STEP1_WEIGHT": "10",
                "RUN_MODE": "10", "MODE10_RELEASE_FILE": cString(release.path),
            ]
        )
        let host = try await harness.host()
        let store = host.store
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"race"}"#)
        )
        let pass = Task { try await host.engine.runUntilIdle(only: created.id) }

        var checkpointed: OperationRecord?
        for _ in 0..<600 where checkpointed == nil {
            if let current = try await store.operation(id: created.id), current.fields["slow_started"] != nil {
                checkpointed = current
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        var intruder = try #require(checkpointed, "the step never checkpointed")
        intruder.fields["intruder"] = #""was here""#
        _ = try await store.save(intruder)
        try Data().write(to: release)
        _ = try await pass.value

        let operation = try #require(try await store.operation(id: created.id))
        #expect(operation.fields["intruder"] == #""was here""#)
        #expect(operation.fields["after_sleep"] == nil)  // the refused write
        #expect(operation.state == .succeeded)
    }

    static func components(_ request: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(request.utf8)) as? [String: Any]
        return (object?["kymaConfig"] as? [String: Any])?["components"] as? [[String: Any]] ?? []
    }

    /// A write the database refuses for one operation (here a trigger that refuses one row) fails that
    /// operation, as it was last stored, with the reason; the run goes on and the others succeed.
    @Test func saveErrorOfOneOperationFailsOnlyThatOperation() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let store = try SQLiteOperationStore(path: path)
        try await DatabaseQueue(path: path).write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER refuse_poison BEFORE UPDATE ON operations WHEN NEW.fields LIKE '%poison%'
                    BEGIN SELECT RAISE(ABORT, 'this row refuses the write'); END;
                    """
            )
        }
        let poisoner = ScriptedStep("poisoner", weight: 10) { operation, _ in
            var result = StepResult(outcome: .done)
            if operation.parameters.name == "bad" {
                result.changes.fields.append(FieldChange(key: "poison", json: "1"))
            }
            return result
        }
        let engine = Engine(
            pipeline: Pipeline([poisoner, CreateRuntimeStep(provisioner: LocalProvisioner(records: store))]),
            store: store,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        var ids: [String: String] = [:]
        for name in ["good-1", "bad", "good-2"] {
            ids[name] = try await engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#)
            ).id
        }
        let report = try await engine.runUntilIdle()

        #expect(report.operation(id: ids["good-1"]!)?.state == .succeeded)
        #expect(report.operation(id: ids["good-2"]!)?.state == .succeeded)
        #expect(report.operation(id: ids["bad"]!)?.state == .failed)
        let bad = try #require(try await store.operation(id: ids["bad"]!))
        #expect(bad.state == .failed)
        #expect(bad.lastError?.step == "stephost")
        #expect(bad.lastError?.message.contains("this row refuses the write") == true)
        #expect(bad.fields.isEmpty)
        #expect(try await store.claim(operationID: ids["bad"]!) == nil)
    }

    /// A claim taken late in a batch (one worker: the second operation waits for the first) is leased from when
    /// it is taken, not from the batch's start: it must not run out before its pass's first renewal, a third of
    /// the lease later, or another host could run the same operation meanwhile.
    @Test func claimTakenLateInABatchIsLeasedFromWhenItIsTaken() async throws {
        let clock = TestClock()
        let directory = try TemporaryDirectory()
        // The real store: it records running steps on its board, which renews nothing, so the step reads the claim
        // as it was taken.
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        let expiries = Mutex<[Date?]>([])
        let slow = ScriptedStep("slow", weight: 10) { operation, _ in
            // Each step reads its claim's expiry as its pass began, then takes 50 s of the 60 s lease.
            let claim = try? await store.claim(operationID: operation.id)
            expiries.withLock { $0.append(claim?.expiresAt) }
            clock.advance(by: 50)
            return StepResult(outcome: .done)
        }
        var options = EngineOptions()
        options.workers = 1
        options.lease = .seconds(60)
        let engine = Engine(
            pipeline: Pipeline([slow, CreateRuntimeStep(provisioner: LocalProvisioner(records: store), clock: clock)]),
            store: store,
            options: options,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            clock: clock
        )
        let started = clock.now
        for name in ["first", "second"] {
            _ = try await engine.createOperation(parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#))
        }
        try await engine.runUntilIdle()
        let ran = expiries.withLock { $0 }
        try #require(ran.count == 2)
        let second = try #require(ran[1])
        // Taken after the first one's 50 s step: leased until at least 50 + 60 s after the batch began.
        #expect(second >= started.addingTimeInterval(110), "the late claim ran out at \(second)")
    }
}
