import Foundation
import Logging
import StepHostCore
import StepHostEngine
import StepHostPipeline
import StepHostRuntime
import StepHostStorage
import Synchronization
import Testing

/// The engine's rules (outcomes, retries, deadlines, conflicts, claims, create_runtime) on scripted Swift
/// steps, the in-memory store and a test clock: no plugin, no file, no wall-clock wait. The same rules hold
/// through real plugins and SQLite in `EngineTests`, and the in-memory store passes the store conformance
/// suite that SQLite passes.
@Suite("Engine semantics")
struct EngineSemanticsTests {
    /// An engine over `steps` plus the real create_runtime with the local provisioner.
    struct Harness {
        let store: InMemoryOperationStore
        let clock: TestClock
        let provisioner: RecordingProvisioner
        let engine: Engine
        static let owner = ClaimOwner("engine-host:100:1")

        init(
            store: InMemoryOperationStore = InMemoryOperationStore(),
            clock: TestClock = TestClock(),
            _ steps: [any Step],
            options: EngineOptions = EngineOptions()
        ) {
            self.store = store
            self.clock = clock
            provisioner = RecordingProvisioner(LocalProvisioner(records: store))
            engine = Engine(
                pipeline: Pipeline(steps + [CreateRuntimeStep(provisioner: provisioner)]),
                store: store,
                options: options,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                owner: Self.owner,
                clock: clock
            )
        }

        func create(_ parameters: String = #"{"name":"semantics"}"#) async throws -> OperationRecord {
            try await engine.createOperation(parameters: try ProvisioningParameters(json: parameters))
        }

        func stored(_ id: String) async throws -> OperationRecord {
            try #require(try await store.operation(id: id))
        }

        /// Claims the operation for `owner` with a 60 s lease, as a host starting a pass does.
        func claim(_ id: String, for owner: ClaimOwner) async throws -> OperationRecord {
            try #require(
                try await store.claimDue(now: clock.now, owner: owner, lease: .seconds(60), limit: 1, id: id).first?
                    .operation
            )
        }

        /// The lease of the last claim runs out and another host takes the operation over.
        func takeOver(_ id: String) async throws {
            clock.advance(by: 61)
            _ = try await claim(id, for: ClaimOwner("other-host:7:7"))
        }
    }

    static func options(_ configure: (inout EngineOptions) -> Void) -> EngineOptions {
        var options = EngineOptions()
        configure(&options)
        return options
    }

    @Test func everyStepRunsInWeightOrderAroundCreateRuntimeAndTheOperationSucceeds() async throws {
        let late = ScriptedStep.done("late", weight: 150)
        let early = ScriptedStep.setting("early", weight: 10, "note", #""early""#)
        let harness = Harness([late, early])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)

        #expect(operation.state == .succeeded)
        #expect(operation.passes == 1)
        #expect(operation.nextPassAt == nil)
        #expect(operation.fields == ["note": #""early""#])
        #expect(operation.runtime.provisionerOperationID?.hasPrefix("local-") == true)
        let runs = try await harness.store.stepRuns(operationID: created.id)
        #expect(runs.map(\.step) == ["early", "create_runtime", "late"])
        #expect(runs.map(\.plugin) == ["early", nil, "late"])
        #expect(runs.allSatisfy { $0.outcome == .done })
        // The operation the engine returns is the one stored.
        #expect(operation == (try await harness.stored(created.id)))
        #expect(try await harness.store.claim(operationID: created.id) == nil)
    }

    /// Running a queue reads its ids and, at the end, its states, never the whole listing of rows: a queue of
    /// any length costs the host a few bytes per operation, not its rows (the store's own light reads are used,
    /// not a default built on the listing).
    @Test func runningAQueueNeverLoadsTheWholeListing() async throws {
        let harness = Harness([ScriptedStep.done("step", weight: 10)])
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try await harness.create().id) }
        let report = try await harness.engine.runUntilIdle()
        #expect(Set(report.operations.map(\.id)) == Set(ids))
        #expect(report.operations.allSatisfy { $0.state == .succeeded })
        #expect(await harness.store.listings == 0)
    }

    @Test func failingStepEndsTheOperationFailedAndNoLaterStepRuns() async throws {
        let failing = ScriptedStep("breaker", weight: 20, plugin: "team-a") { _, _ in
            var result = StepResult(outcome: .fail("quota exhausted"))
            result.changes.fields.append(FieldChange(key: "tried", json: "true"))
            return result
        }
        let after = ScriptedStep.done("after", weight: 30)
        let harness = Harness([failing, after])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)

        #expect(operation.state == .failed)
        #expect(operation.lastError == LastError(step: "breaker", plugin: "team-a", message: "quota exhausted"))
        #expect(operation.description == "failed at step breaker: quota exhausted")
        // A failing step's writes are kept with the failure (they may say what it already did).
        #expect(operation.fields == ["tried": "true"])
        #expect(after.calls.count == 0)
        #expect(operation.runtime.provisionerOperationID == nil)
        #expect(harness.provisioner.provisionCalls == 0)
    }

    /// A step that wrote valid fields, checkpointed one, and then broke its contract: every write of it is
    /// discarded, the checkpointed one too; what earlier steps wrote stays.
    @Test func faultyStepsWritesAreAllDiscardedEvenCheckpointedOnes() async throws {
        let earlier = ScriptedStep.setting("earlier", weight: 10, "kept", "1")
        let faulty = ScriptedStep("faulty", weight: 20) { _, context in
            var result = StepResult(outcome: .fault("the plugin broke the ABI: it returned 7"))
            result.changes.fields.append(FieldChange(key: "checkpointed", json: "true"))
            _ = try? await context.checkpoint(result.changes)
            result.changes.fields.append(FieldChange(key: "unsaved", json: "true"))
            result.changes.fields.append(FieldChange(key: "kept", json: "2"))
            return result
        }
        let harness = Harness([earlier, faulty])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)

        #expect(operation.state == .failed)
        #expect(operation.lastError?.message == "the plugin broke the ABI: it returned 7")
        #expect(operation.fields == ["kept": "1"])
        #expect(try await harness.store.stepRuns(operationID: created.id).map(\.outcome) == [.done, .fault])
    }

    /// Each checkpoint persists everything the step changed so far, on top of the one before it.
    @Test func stepMayCheckpointSeveralTimes() async throws {
        let persisted = Observed()
        let twice = ScriptedStep("twice", weight: 10) { operation, context in
            var result = StepResult(outcome: .done)
            result.changes.fields.append(FieldChange(key: "first", json: "1"))
            let first = try? await context.checkpoint(result.changes)
            result.changes.fields.append(FieldChange(key: "second", json: "2"))
            let second = try? await context.checkpoint(result.changes)
            persisted.set(nil, second?.version)
            #expect(first?.fields == ["first": "1"])
            #expect(second?.fields == ["first": "1", "second": "2"])
            return result
        }
        let harness = Harness([twice])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .succeeded)
        #expect(operation.fields == ["first": "1", "second": "2"])
        // Created (1), pass started (2), two checkpoints (3, 4), create_runtime's attempt (5) and answer (6),
        // finished (7): the step's changes were all checkpointed, so nothing is saved again after it.
        #expect(persisted.value.1 == 4)
        #expect(operation.version == 7)
    }

    /// Each value within its limit, together beyond the operation's: a fault, nothing of it stored.
    @Test func writesThatWouldMakeTheFieldsTooLargeAreAFault() async throws {
        let hoarder = ScriptedStep("hoarder", weight: 10) { _, _ in
            var result = StepResult(outcome: .done)
            let value = "\"" + String(repeating: "x", count: 60 * 1024) + "\""
            for index in 0..<20 { result.changes.fields.append(FieldChange(key: "chunk\(index)", json: value)) }
            return result
        }
        let harness = Harness([hoarder])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .failed)
        #expect(operation.lastError?.message.contains("more than \(FieldValue.maximumTotalBytes)") == true)
        #expect(operation.fields.isEmpty)
    }

    /// KEB semantics: a retry parks the operation and repeats the whole pipeline later; persisted fields
    /// are kept, overrides are rebuilt, create_runtime sends once.
    @Test func retryParksTheOperationAndRepeatsThePipelineFromTheFirstStep() async throws {
        let allocate = ScriptedStep("allocate", weight: 10) { operation, _ in
            var result = StepResult(outcome: .done)
            if operation.fields["subnet"] == nil {
                result.changes.fields.append(FieldChange(key: "subnet", json: #""10.0.0.0/22""#))
            }
            result.componentOverrides.append(
                ComponentOverride(
                    component: "istio",
                    override: Override(key: "cidr", value: "10.0.0.0/22", secret: false)
                )
            )
            return result
        }
        let wait = ScriptedStep("wait", weight: 120) { _, context in
            StepResult(outcome: context.pass < 3 ? .retry(after: .seconds(30)) : .done)
        }
        let harness = Harness([allocate, wait])
        let created = try await harness.create()

        #expect(try await harness.engine.runDue().passes == 1)
        let parked = try await harness.stored(created.id)
        #expect(parked.state == .inProgress)
        #expect(parked.nextPassAt == harness.clock.now.addingTimeInterval(30))
        #expect(parked.description == "waiting for pass 2: wait asked to retry: after 30000 ms")
        #expect(try await harness.store.claim(operationID: created.id) == nil)
        // Not due yet: nothing runs.
        #expect(try await harness.engine.runDue().passes == 0)

        let operation = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .succeeded)
        #expect(operation.passes == 3)
        #expect(allocate.calls.all.map(\.pass) == [1, 2, 3])
        #expect(allocate.calls.all.dropFirst().allSatisfy { $0.operation.fields["subnet"] == #""10.0.0.0/22""# })
        let request = try #require(operation.runtime.provisioningRequest)
        #expect(request.components(separatedBy: "10.0.0.0/22").count == 2)  // the override once, not per pass
        #expect(try await harness.store.localProvisioningCount(operationID: created.id) == 1)
        let runs = try await harness.store.stepRuns(operationID: created.id)
        #expect(runs.filter { $0.step == "create_runtime" }.map(\.pass) == [1, 2, 3])
        // Sent once, in pass 1; passes 2 and 3 only asked how it goes.
        #expect(harness.provisioner.provisionCalls == 1)
        #expect(harness.provisioner.statusCalls == 2)
    }

    @Test func retryWithoutADelayWaitsTheDefaultRetryDelay() async throws {
        let once = ScriptedStep("once", weight: 10) { _, context in
            StepResult(outcome: context.pass == 1 ? .retry(after: nil) : .done)
        }
        let harness = Harness([once], options: Self.options { $0.defaultRetryDelay = .seconds(7) })
        let created = try await harness.create()
        try await harness.engine.runDue()
        let parked = try await harness.stored(created.id)
        #expect(parked.nextPassAt == harness.clock.now.addingTimeInterval(7))
        #expect(parked.description.hasSuffix("once asked to retry: after the default delay"))
    }

    /// A step that asks to retry at once would spin the host: it waits the minimum retry delay.
    @Test func retryAfterZeroWaitsTheMinimumRetryDelay() async throws {
        let eager = ScriptedStep("eager", weight: 10) { _, context in
            StepResult(outcome: context.pass == 1 ? .retry(after: .zero) : .done)
        }
        let harness = Harness([eager], options: Self.options { $0.minimumRetryDelay = .milliseconds(250) })
        let created = try await harness.create()
        try await harness.engine.runDue()
        let parked = try await harness.stored(created.id)
        #expect(parked.nextPassAt == harness.clock.now.addingTimeInterval(0.25))
        #expect(
            parked.description
                == "waiting for pass 2: eager asked to retry: after 0 ms (raised to the minimum retry delay of 250 ms)"
        )
    }

    @Test func retryIsParkedNeverPastTheDeadline() async throws {
        let stubborn = ScriptedStep("stubborn", weight: 10) { _, _ in StepResult(outcome: .retry(after: .seconds(250)))
        }
        let harness = Harness([stubborn], options: Self.options { $0.deadline = .seconds(100) })
        let created = try await harness.create()
        try await harness.engine.runDue()
        let parked = try await harness.stored(created.id)
        #expect(parked.state == .inProgress)
        #expect(parked.nextPassAt == created.deadline)
    }

    /// Time-limited: without the deadline rule, this operation would retry forever.
    @Test(.timeLimit(.minutes(1)))
    func operationStillRetryingAtItsDeadlineFailsWithoutRunningAgain() async throws {
        let stubborn = ScriptedStep("stubborn", weight: 10) { _, _ in StepResult(outcome: .retry(after: .seconds(60))) }
        let harness = Harness([stubborn], options: Self.options { $0.deadline = .seconds(600) })
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)

        #expect(operation.state == .failed)
        #expect(operation.passes == 10)  // at 0, 60, ..., 540 s; the pass due at 600 s fails it
        #expect(stubborn.calls.count == 10)
        let error = try #require(operation.lastError)
        #expect(error.step == "stephost")
        #expect(error.message.contains("the operation passed its deadline"))
        #expect(error.message.contains("after 10 passes; it was waiting for pass 11: stubborn asked to retry"))
        #expect(harness.clock.now == created.deadline)
    }

    /// A slow step that overruns the deadline: no later step starts, create_runtime sends nothing.
    @Test func deadlineIsCheckedBeforeEveryStepAndNothingIsSentAfterIt() async throws {
        let clock = TestClock()
        let slow = ScriptedStep("slow", weight: 10) { _, _ in
            clock.advance(by: 601)
            return StepResult(outcome: .done)
        }
        let harness = Harness(clock: clock, [slow], options: Self.options { $0.deadline = .seconds(600) })
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)

        #expect(operation.state == .failed)
        #expect(harness.provisioner.provisionCalls == 0)
        #expect(operation.runtime.provisionerOperationID == nil)
        let error = try #require(operation.lastError)
        #expect(error.step == "stephost")
        #expect(error.message.contains("passed its deadline"))
        #expect(error.message.contains("in pass 1 before step create_runtime (2 of 2) could start"))
        // The slow step's run is in the history; create_runtime's is not.
        #expect(try await harness.store.stepRuns(operationID: created.id).map(\.step) == ["slow"])
    }

    /// Virtual time: two one-hour retries finish at once, because the engine waits on its clock.
    @Test(.timeLimit(.minutes(1)))
    func parkedOperationsWaitOnTheEnginesClock() async throws {
        let slow = ScriptedStep("slow", weight: 10) { _, context in
            StepResult(outcome: context.pass < 3 ? .retry(after: .seconds(3600)) : .done)
        }
        let harness = Harness([slow])
        let start = harness.clock.now
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .succeeded)
        #expect(harness.clock.now.timeIntervalSince(start) == 7200)
    }

    /// Another writer changes the operation while a step runs: the pass's next write is refused, the other
    /// writer's change stands, and the operation finishes in a later pass.
    @Test func writeRacingAPassIsRefusedAndTheOtherWritersChangeStands() async throws {
        let store = InMemoryOperationStore()
        let racer = ScriptedStep("racer", weight: 10) { operation, context in
            if context.pass == 1 {
                var intruder = try? await store.operation(id: operation.id)
                intruder?.fields["intruder"] = #""was here""#
                if let intruder { _ = try? await store.save(intruder) }
            }
            var result = StepResult(outcome: .done)
            result.changes.fields.append(FieldChange(key: "racer_pass", json: "\(context.pass)"))
            return result
        }
        let harness = Harness(store: store, [racer])
        let created = try await harness.create()
        // The first pass is abandoned at its first write; the operation is still due, so the same call runs
        // it again and that pass finishes it.
        #expect(try await harness.engine.runDue().passes == 1)
        let operation = try await harness.stored(created.id)
        #expect(operation.state == .succeeded)
        #expect(operation.fields == ["intruder": #""was here""#, "racer_pass": "2"])
        #expect(racer.calls.all.map(\.pass) == [1, 2])
        // The abandoned pass wrote nothing at all, not even its step history.
        #expect(try await harness.store.stepRuns(operationID: created.id).allSatisfy { $0.pass == 2 })
    }

    /// A slow step holds its own worker only: with two workers, the other one runs every quick operation
    /// while the slow one waits.
    @Test(.timeLimit(.minutes(1)))
    func slowStepNeverHoldsBackOtherOperationsWhileAWorkerIsFree() async throws {
        let store = InMemoryOperationStore()
        let gate = Gate()
        let step = ScriptedStep("work", weight: 10) { operation, _ in
            if operation.parameters.name == "slow" { await gate.wait() }
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, [step], options: Self.options { $0.workers = 2 })
        let slow = try await harness.create(#"{"name":"slow"}"#)
        var quick: [String] = []
        for index in 0..<5 { quick.append(try await harness.create(#"{"name":"quick-\#(index)"}"#).id) }

        let run = Task { try await harness.engine.runDue() }
        // A bounded wait (up to 20 s of real time), not a timing assertion: it ends as soon as all are done.
        var finished = 0
        for _ in 0..<2_000 where finished < quick.count {
            finished = 0
            for id in quick where try await store.operation(id: id)?.state == .succeeded { finished += 1 }
            if finished < quick.count { try await Task.sleep(for: .milliseconds(10)) }
        }
        let slowWhileQuickFinished = try await store.operation(id: slow.id)?.state
        gate.open()
        let report = try await run.value
        #expect(finished == quick.count, "the quick operations waited for the slow one")
        #expect(slowWhileQuickFinished == .inProgress)
        #expect(report.passes == 6)
    }

    /// Suspends callers until opened.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        func wait() async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.open { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }

        func open() {
            let waiters = state.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// What `run` prints comes from this report: every operation unfinished when the call began, as stored
    /// when it ended, whoever wrote it last; not as this host's last pass left it.
    @Test func reportHoldsEveryOperationUnfinishedAtTheStartAsStoredAtTheEnd() async throws {
        let store = InMemoryOperationStore()
        let other = ClaimOwner("other-host:7:7")
        // While this host runs the first operation, the other host fails the one it holds.
        let meanwhile = ScriptedStep("meanwhile", weight: 10) { operation, _ in
            if operation.fields["held"] == nil,
                let held = try? await store.operations(state: nil).operations.first(where: { $0.fields["held"] != nil })
            {
                var failed = held
                failed.state = .failed
                failed.nextPassAt = nil
                failed.lastError = LastError(step: "x", plugin: "other", message: "failed by the other host")
                _ = try? await store.save(failed, stepRuns: [], claim: other, releasingClaim: true)
            }
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, [meanwhile])
        let due = try await harness.create()
        var held = try await harness.create()
        held.fields["held"] = "true"
        held = try await store.save(held)
        _ = try await store.claimDue(now: harness.clock.now, owner: other, lease: .seconds(600), limit: 1, id: held.id)
        var parked = try await harness.create()
        parked.nextPassAt = harness.clock.now.addingTimeInterval(3600)
        parked = try await store.save(parked)
        var done = try await harness.create()
        done.state = .succeeded
        done = try await store.save(done)

        let report = try await harness.engine.runDue()
        #expect(report.passes == 1)
        #expect(Set(report.operations.map(\.id)) == [due.id, held.id, parked.id])
        #expect(report.operation(id: due.id)?.state == .succeeded)
        #expect(report.operation(id: held.id)?.state == .failed)
        #expect(try await store.operation(id: held.id)?.lastError?.message == "failed by the other host")
        #expect(report.operation(id: parked.id)?.state == .pending)
        #expect(report.operation(id: done.id) == nil)
    }

    @Test func operationHeldByAnotherLiveHostIsLeftAloneUntilItsLeaseRunsOut() async throws {
        let step = ScriptedStep.done("step", weight: 10)
        let harness = Harness([step], options: Self.options { $0.lease = .seconds(60) })
        let created = try await harness.create()
        let other = ClaimOwner("other-host:7:7")
        _ = try await harness.store.claimDue(
            now: harness.clock.now,
            owner: other,
            lease: .seconds(60),
            limit: 1,
            id: nil
        )

        #expect(try await harness.engine.runDue().passes == 0)
        #expect(step.calls.count == 0)
        harness.clock.advance(by: 61)
        #expect(try await harness.engine.runDue().passes == 1)
        #expect(try await harness.stored(created.id).state == .succeeded)
    }

    /// A host that lost its claim while a step ran writes nothing more: the new holder's work stands.
    @Test func passStopsWithoutWritingOnceAnotherHostTookTheOperation() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let other = ClaimOwner("other-host:7:7")
        let overtaken = ScriptedStep("overtaken", weight: 10) { operation, _ in
            // The lease runs out while the step runs and another host takes the operation over.
            clock.advance(by: 301)
            _ = try? await store.claimDue(
                now: clock.now,
                owner: other,
                lease: .seconds(300),
                limit: 1,
                id: operation.id
            )
            var result = StepResult(outcome: .done)
            result.changes.fields.append(FieldChange(key: "late_write", json: "true"))
            return result
        }
        let harness = Harness(store: store, clock: clock, [overtaken])
        let created = try await harness.create()
        let before = try await harness.stored(created.id)

        #expect(try await harness.engine.runDue().passes == 0)
        let after = try await harness.stored(created.id)
        #expect(after.fields.isEmpty)
        #expect(after.version == before.version + 1)  // only the pass start, written while the claim held
        #expect(try await harness.store.claim(operationID: created.id)?.owner == other)
    }

    /// create_runtime records its attempt under the claim before sending: a host whose claim another host took
    /// (between the last renewal and the send) cannot record it, and so never sends.
    @Test func createRuntimeDoesNotSendWhenItCannotRecordTheAttempt() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let harness = Harness(store: store, clock: clock, [])
        let created = try await harness.create()
        let mine = ClaimOwner("this-host:1:1")
        let claimed = try await harness.claim(created.id, for: mine)
        try await harness.takeOver(created.id)
        let step = CreateRuntimeStep(provisioner: harness.provisioner, clock: clock)
        let context = StepContext(
            input: InputCreator(),
            pass: 1,
            checkpoint: { changes in
                var updated = claimed
                updated.apply(changes)
                return try await store.save(updated, stepRuns: [], claim: mine, releasingClaim: false)
            }
        )
        let result = await step.run(claimed, context: context)

        #expect(harness.provisioner.provisionCalls == 0)
        #expect(result.outcome.kind == .retry)
        #expect(result.changes.runtime == nil)
        #expect(result.logs.contains { $0.message.contains("could not be recorded, so it was not sent") })
        #expect(try await harness.stored(created.id).runtime.attempts.isEmpty)
    }

    /// The claim is lost while the request is at the provisioner: the answer cannot be recorded with the
    /// operation, so it is appended apart, and the provisioner's operation id stays tracked.
    @Test func answerThatCannotBeRecordedWithItsOperationIsRecordedApart() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let harness = Harness(store: store, clock: clock, [])
        let created = try await harness.create()
        let mine = ClaimOwner("this-host:1:1")
        let claimed = try await harness.claim(created.id, for: mine)
        let checkpoints = Mutex(0)
        let step = CreateRuntimeStep(provisioner: harness.provisioner, clock: clock, answers: store)
        let context = StepContext(
            input: InputCreator(),
            pass: 1,
            checkpoint: { changes in
                if checkpoints.withLock({
                    $0 += 1
                    return $0
                }) == 2 {
                    // While the request was out, the lease ran out and another host took the operation.
                    try await harness.takeOver(created.id)
                }
                var updated = try #require(try await store.operation(id: created.id))
                updated.apply(changes)
                return try await store.save(updated, stepRuns: [], claim: mine, releasingClaim: false)
            }
        )
        let result = await step.run(claimed, context: context)

        #expect(harness.provisioner.provisionCalls == 1)
        let stored = try await harness.stored(created.id)
        #expect(stored.runtime.attempts.map(\.outcome) == [.sending])
        let apart = try await store.provisionerAnswers(operationID: created.id)
        #expect(apart.count == 1)
        #expect(apart.first?.provisionerOperationID == result.changes.runtime?.provisionerOperationID)
        #expect(apart.first?.provisionerOperationID?.hasPrefix("local-") == true)
    }

    /// An attempt recorded as being sent, with no answer (the host died while sending), is never sent again
    /// unless the provisioner is declared idempotent; then it is, with the same key, and both attempts stay.
    @Test(arguments: [false, true])
    func attemptWithoutARecordedAnswerIsSentAgainOnlyToAnIdempotentProvisioner(idempotent: Bool) async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let provisioner = RecordingProvisioner(LocalProvisioner(records: store), idempotent: idempotent)
        let engine = Engine(
            pipeline: Pipeline([CreateRuntimeStep(provisioner: provisioner, clock: clock)]),
            store: store,
            options: EngineOptions(),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            owner: Harness.owner,
            clock: clock
        )
        var created = try await engine.createOperation(parameters: try ProvisioningParameters(json: #"{"name":"x"}"#))
        created.runtime.attempts = [
            ProvisioningAttempt(number: 1, pass: 1, idempotencyKey: created.id, startedAt: clock.now)
        ]
        created = try await store.save(created, stepRuns: [], claim: nil, releasingClaim: false)

        let operation = try await engine.runToCompletion(operationID: created.id)
        if idempotent {
            #expect(operation.state == .succeeded)
            #expect(provisioner.provisionCalls == 1)
            #expect(operation.runtime.attempts.map(\.outcome) == [.sending, .accepted])
            #expect(operation.runtime.attempts.map(\.idempotencyKey) == [created.id, created.id])
        } else {
            #expect(operation.state == .failed)
            #expect(provisioner.provisionCalls == 0)
            #expect(operation.lastError?.message.contains("attempt 1") == true)
            #expect(operation.lastError?.message.contains("may have been accepted") == true)
        }
    }

    /// The crash-loop guard: deaths while the operation ran alone count, up to the limit in the options, in
    /// whatever step; a death while other passes ran too is only suspected and makes the next pass run alone; a
    /// pass that ends clears the trace.
    @Test func hostDeathsWhileRunningAloneAreCountedUpToTheLimit() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let first = ScriptedStep.done("first", weight: 10)
        let second = ScriptedStep.done("second", weight: 20)
        let harness = Harness(
            store: store,
            clock: clock,
            [first, second],
            options: Self.options { $0.maximumHostDeaths = 2 }
        )
        let dead = ClaimOwner("\(ProcessInfo.processInfo.hostName):999999:1")
        func running(_ step: ScriptedStep, alone: Bool) -> RunningStep {
            RunningStep(
                step: step.identity.name,
                plugin: step.identity.plugin?.name,
                pluginFileHash: step.identity.plugin?.fileHash,
                pass: 1,
                startedAt: clock.now,
                alone: alone
            )
        }
        /// An operation with `earlier` deaths on record, whose last host just died in `step`.
        func operation(diedIn step: ScriptedStep, alone: Bool, after earlier: HostDeaths?) async throws -> String {
            var created = try await harness.create()
            created.hostDeaths = earlier
            created = try await store.save(created)
            try await store.leaveRunning(
                created.id,
                owner: dead,
                step: running(step, alone: alone),
                now: clock.now,
                until: clock.now
            )
            return created.id
        }

        // One more death alone reaches the limit, even in another step than the one before: the operation fails
        // without running again.
        let looping = try await operation(
            diedIn: second,
            alone: true,
            after: HostDeaths(step: running(first, alone: true), count: 1)
        )
        try await harness.engine.runDue(only: looping)
        let failed = try await harness.stored(looping)
        #expect(failed.state == .failed)
        #expect(failed.hostDeaths?.count == 2)
        #expect(failed.lastError?.step == "second")
        #expect(
            failed.lastError?.message.hasPrefix(
                "the host died while running step second of plugin second, pass 1 (2 times in a row while it ran alone)"
            ) == true
        )
        #expect(first.calls.count == 0 && second.calls.count == 0)

        // Deaths while other passes ran only count as suspected: below the limit, the pass runs, and a pass that
        // ends clears the trace.
        let suspected = try await operation(
            diedIn: second,
            alone: false,
            after: HostDeaths(step: running(second, alone: false), count: 1, suspected: 3)
        )
        let succeeded = try await harness.engine.runToCompletion(operationID: suspected)
        #expect(succeeded.state == .succeeded)
        #expect(succeeded.hostDeaths == nil)
        #expect(succeeded.passes == 1)
        #expect(second.calls.count == 1)
    }

    /// A step that was running when the database went away, taken over from a host on another machine after the
    /// outage, is repeated without counting as a host death (that host gave its pass up; nothing crashed): no
    /// death is reported and the operation does not have to run alone. A step that began after the database
    /// answered again, or a takeover later than a lease after it, still counts.
    @Test func aStepInterruptedByADatabaseOutageIsNotCountedAsAHostDeath() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let step = ScriptedStep.done("step", weight: 10)
        let deaths = Mutex<[String]>([])
        let engine = Engine(
            pipeline: Pipeline([step, CreateRuntimeStep(provisioner: LocalProvisioner(records: store))]),
            store: store,
            options: Self.options { $0.lease = .seconds(30) },
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            owner: Harness.owner,
            clock: clock,
            hostDied: { running, _ in deaths.withLock { $0.append(running.step) } }
        )
        let remote = ClaimOwner("another-machine:41:7:1")
        /// An operation whose host on another machine recorded `step` as running from `startedAt`, claim expired.
        func interrupted(_ name: String, startedAt: Date) async throws -> String {
            let created = try await engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"\#(name)"}"#)
            )
            try await store.leaveRunning(
                created.id,
                owner: remote,
                step: RunningStep(step: "step", plugin: "step", pluginFileHash: nil, pass: 1, startedAt: startedAt),
                now: clock.now,
                until: startedAt
            )
            return created.id
        }
        let start = clock.now
        store.outage.withLock {
            $0 = DatabaseOutage(lostAt: start.addingTimeInterval(1), answeredAt: start.addingTimeInterval(61))
        }
        // Running when the database went away; taken over 5 s after it answered again: excused.
        let excused = try await interrupted("excused", startedAt: start)
        // Begun after the database answered: a death.
        let after = try await interrupted("after", startedAt: start.addingTimeInterval(62))
        clock.advance(by: 66)
        #expect(try await engine.runToCompletion(operationID: excused).state == .succeeded)
        #expect(deaths.withLock { $0 } == [])
        #expect(try await engine.runToCompletion(operationID: after).state == .succeeded)
        #expect(deaths.withLock { $0 } == ["step"])
        // Running in the outage, but taken over more than a lease after it ended: a death.
        let late = try await interrupted("late", startedAt: start.addingTimeInterval(30))
        clock.advance(by: 30)
        #expect(try await engine.runToCompletion(operationID: late).state == .succeeded)
        #expect(deaths.withLock { $0 } == ["step", "step"])
    }

    /// The running record says whether the pass ran alone: false while another pass runs beside it, true when it
    /// is the host's only one. (A death counts only in the second case.)
    @Test func runningRecordSaysWhetherThePassRanAlone() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let started = Mutex(0)
        let seen = Mutex<[String: Bool]>([:])
        let observe = ScriptedStep("observe", weight: 10) { operation, _ in
            started.withLock { $0 += 1 }
            // Both passes of the pair are inside this step before either looks (bounded wait).
            if operation.parameters.name != "single" {
                for _ in 0..<200 where started.withLock({ $0 }) < 2 { try? await Task.sleep(for: .milliseconds(5)) }
            }
            let alone = try? await store.claim(operationID: operation.id)?.running?.alone
            seen.withLock { $0[operation.parameters.name] = alone ?? nil }
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, clock: clock, [observe], options: Self.options { $0.workers = 2 })
        _ = try await harness.create(#"{"name":"left"}"#)
        _ = try await harness.create(#"{"name":"right"}"#)
        try await harness.engine.runUntilIdle()
        let single = try await harness.create(#"{"name":"single"}"#)
        _ = try await harness.engine.runToCompletion(operationID: single.id)

        #expect(seen.withLock { $0 } == ["left": false, "right": false, "single": true])
    }

    /// An operation a host died while running runs alone: its pass starts once the other passes have ended, and
    /// no other pass starts while it runs, so a death during it is its own.
    @Test func operationAHostDiedInRunsAlone() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let concurrency = Mutex((now: 0, most: 0, suspectOverlapped: false))
        let slow = ScriptedStep("slow", weight: 10) { operation, _ in
            concurrency.withLock {
                $0.now += 1
                $0.most = max($0.most, $0.now)
                if operation.parameters.name == "suspect" && $0.now > 1 { $0.suspectOverlapped = true }
            }
            try? await Task.sleep(for: .milliseconds(20))
            concurrency.withLock { $0.now -= 1 }
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, clock: clock, [slow], options: Self.options { $0.workers = 4 })
        let dead = ClaimOwner("\(ProcessInfo.processInfo.hostName):999999:1")
        var ids: [String] = []
        for name in ["a", "b", "suspect", "c", "d"] {
            ids.append(try await harness.create(#"{"name":"\#(name)"}"#).id)
        }
        try await store.leaveRunning(
            ids[2],
            owner: dead,
            step: RunningStep(
                step: "slow",
                plugin: "slow",
                pluginFileHash: nil,
                pass: 1,
                startedAt: clock.now,
                alone: false
            ),
            now: clock.now,
            until: clock.now
        )
        let report = try await harness.engine.runUntilIdle()
        #expect(report.operations.allSatisfy { $0.state == .succeeded })
        let seen = concurrency.withLock { $0 }
        #expect(seen.most > 1)  // the others ran side by side
        #expect(!seen.suspectOverlapped)
    }

    /// When the database fails under one pass, the run stops claiming and throws, but only after the passes
    /// already running have ended normally: none is cancelled (a request already sent keeps its answer), and the
    /// failing operation is left as stored, unclaimed, not failed.
    @Test func databaseFailureUnderOnePassLetsTheOthersFinishUncancelled() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let cancelled = Mutex<[String]>([])
        let slow = ScriptedStep("slow", weight: 10) { operation, _ in
            if operation.parameters.name != "broken" { try? await Task.sleep(for: .milliseconds(100)) }
            if Task.isCancelled { cancelled.withLock { $0.append(operation.parameters.name) } }
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, clock: clock, [slow], options: Self.options { $0.workers = 3 })
        let healthy = try await harness.create(#"{"name":"healthy"}"#)
        let broken = try await harness.create(#"{"name":"broken"}"#)
        await store.failSaves(of: broken.id, with: StorageError(.unavailable, "the disk is full"))

        let error = await #expect(throws: StorageError.self) { try await harness.engine.runDue() }
        #expect(error?.message == "the disk is full")
        #expect(cancelled.withLock { $0 }.isEmpty)
        #expect(try await harness.stored(healthy.id).state == .succeeded)
        let left = try await harness.stored(broken.id)
        #expect(left.state == .pending && left.lastError == nil)
        #expect(try await store.claim(operationID: broken.id) == nil)
    }

    /// Between steps, a pass renews its claim once half the lease is used, and renewing never touches the
    /// operation's data version.
    @Test func claimIsRenewedBetweenStepsWithoutChangingTheVersion() async throws {
        let store = InMemoryOperationStore()
        let clock = TestClock()
        let slow = ScriptedStep("slow", weight: 10) { _, _ in
            clock.advance(by: 40)
            return StepResult(outcome: .done)
        }
        let observed = Observed()
        let check = ScriptedStep("check", weight: 20) { operation, _ in
            observed.set(
                try? await store.claim(operationID: operation.id),
                (try? await store.operation(id: operation.id))?.version
            )
            return StepResult(outcome: .done)
        }
        let harness = Harness(
            store: store,
            clock: clock,
            [slow, check],
            options: Self.options { $0.lease = .seconds(60) }
        )
        let created = try await harness.create()
        try await harness.engine.runDue()

        let (claim, version) = observed.value
        #expect(claim?.owner == Harness.owner)
        #expect(claim?.expiresAt == clock.now.addingTimeInterval(60))
        #expect(version == created.version + 1)  // the pass start only
    }

    final class Observed: Sendable {
        private let state = Mutex<(Claim?, Int?)>((nil, nil))
        func set(_ claim: Claim?, _ version: Int?) { state.withLock { $0 = (claim, version) } }
        var value: (Claim?, Int?) { state.withLock { $0 } }
    }

    /// create_runtime's answer is stored before the next step runs: a host that dies after it never sends
    /// again.
    @Test func provisionerOperationIdIsStoredBeforeTheNextStepRuns() async throws {
        let store = InMemoryOperationStore()
        let seen = Observed()
        let after = ScriptedStep("after", weight: 110) { operation, _ in
            let stored = try? await store.operation(id: operation.id)
            seen.set(nil, stored?.runtime.provisionerOperationID == nil ? 0 : 1)
            return StepResult(outcome: .done)
        }
        let harness = Harness(store: store, [after])
        let created = try await harness.create()
        _ = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(seen.value.1 == 1)
    }

    /// A faulty step's overrides are discarded with its writes, but the secrets it declared are still kept out
    /// of its messages.
    @Test(arguments: [StepOutcome.fail("vault refused hunter2-token"), .fault("vault refused hunter2-token")])
    func secretsAStepDeclaredAreRemovedFromItsMessages(outcome: StepOutcome) async throws {
        let vault = ScriptedStep("vault", weight: 10) { _, _ in
            var result = StepResult(outcome: outcome)
            result.globalOverrides.append(Override(key: "token", value: "hunter2-token", secret: true))
            return result
        }
        let harness = Harness([vault])
        let created = try await harness.create()
        let operation = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(operation.lastError?.message == "vault refused <redacted>")
        #expect(try await harness.store.stepRuns(operationID: created.id).first?.message == "vault refused <redacted>")
    }

    @Test func stepsReceiveTheOperationAsStoredAndThePassNumber() async throws {
        let first = ScriptedStep.setting("first", weight: 10, "seen", "1")
        let second = ScriptedStep("second", weight: 20) { operation, context in
            StepResult(
                outcome: context.pass == 1 && operation.fields["seen"] == "1" ? .retry(after: .seconds(1)) : .done
            )
        }
        let harness = Harness([first, second])
        let created = try await harness.create(#"{"name":"params","custom":{"k":[1,2]}}"#)
        _ = try await harness.engine.runToCompletion(operationID: created.id)
        #expect(second.calls.all.map(\.pass) == [1, 2])
        #expect(second.calls.all.first?.operation.parameters.json == #"{"custom":{"k":[1,2]},"name":"params"}"#)
        #expect(second.calls.all.first?.operation.passes == 1)
    }
}
