import Foundation
import Logging
import StepHostCore
import StepHostPostgres
import StepHostSQLite
import StepHostStorage
import Testing

/// What every `OperationStore` must do, run against each implementation: the in-memory store of the engine
/// tests and the SQLite store (PostgreSQL joins the list when it exists).
@Suite("Operation store conformance")
struct StoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, sqlite, postgres
        var testDescription: String { rawValue }

        /// PostgreSQL runs when a server is given (`scripts/with-postgres` gives one; `scripts/test` runs the suite
        /// through it), and always in CI, where a missing server fails the tests instead of skipping them.
        static var allCases: [Kind] {
            let environment = ProcessInfo.processInfo.environment
            let server = environment["STEPHOST_TEST_DATABASE_URL"].map { !$0.isEmpty } ?? false
            return server || environment["CI"] == "true" ? [.memory, .sqlite, .postgres] : [.memory, .sqlite]
        }
    }

    /// A fresh store of `kind`; the directory keeps the SQLite file alive for the test, and each PostgreSQL store
    /// has a database of its own on the test server.
    final class Subject {
        let store: any OperationStore & LocalProvisioningRecords & ProvisionerAnswerLog
        let directory: TemporaryDirectory

        init(_ kind: Kind) async throws {
            directory = try TemporaryDirectory("stephost-store")
            switch kind {
            case .memory: store = InMemoryOperationStore()
            case .sqlite: store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
            case .postgres: store = try await scratchPostgresStore()
            }
        }
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let me = ClaimOwner("host-a:1:1")
    static let other = ClaimOwner("host-b:2:2")

    @Test(arguments: Kind.allCases)
    func operationReadsBackAsItWasWritten(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        var operation = try newOperation()
        operation.fields = [
            "list": "[1,2,3]", "nested": #"{"a":{"b":null}}"#, "text": #""quote \" and \\ slash""#,
            // Keys are bytes: these two are canonically equivalent, and two fields.
            "caf\u{E9}": "1", "cafe\u{301}": "2", "spaced": #"{ "k" : [ "}" , "\"" ] }"#,
        ]
        operation.runtime = RuntimeRecord(
            provisionerOperationID: "p-1",
            runtimeID: "r-1",
            provisioningRequest: "{}",
            attempts: [
                ProvisioningAttempt(number: 1, pass: 1, idempotencyKey: "op-1", startedAt: Self.now, outcome: .unknown),
                ProvisioningAttempt(
                    number: 2,
                    pass: 2,
                    idempotencyKey: "op-1",
                    startedAt: Self.now.addingTimeInterval(1),
                    outcome: .accepted,
                    provisionerOperationID: "p-1",
                    runtimeID: "r-1",
                    message: "accepted \"quoted\""
                ),
            ]
        )
        operation.lastError = LastError(step: "s", plugin: nil, message: "m")
        operation.passes = 3
        operation.hostDeaths = HostDeaths(
            step: RunningStep(step: "s", plugin: "p", pluginFileHash: "ab", pass: 2, startedAt: Self.now),
            count: 2
        )
        operation.disabledPlugins = ["audit", "caf\u{E9} \"quoted\".so"]
        try await store.create(operation)
        #expect(try await store.operation(id: "op-1") == operation)
        #expect(try await store.operation(id: "absent") == nil)
        await #expect(throws: (any Error).self) { try await store.create(operation) }
    }

    @Test(arguments: Kind.allCases)
    func staleWriteIsRefusedAndNeverOverwrites(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        let read = try #require(try await store.operation(id: "op-1"))

        var first = read
        first.fields["winner"] = #""first""#
        let saved = try await store.save(first)
        #expect(saved.version == read.version + 1)

        var second = read  // based on the same, now stale, version
        second.fields["winner"] = #""second""#
        let run = StepRun(
            operationID: "op-1",
            pass: 1,
            position: 1,
            step: "s",
            plugin: nil,
            pluginFileHash: nil,
            outcome: .done,
            startedAt: Self.now,
            durationMilliseconds: 1,
            message: nil
        )
        let error = try await #require(throws: StorageError.self) { try await store.save(second, stepRuns: [run]) }
        #expect(error.code == .conflict)
        #expect(
            error.message.contains(
                "stored version \(read.version + 1), this write was based on version \(read.version)"
            )
        )
        #expect(try await store.operation(id: "op-1")?.fields["winner"] == #""first""#)
        #expect(try await store.stepRuns(operationID: "op-1").isEmpty)  // refused with the write
    }

    @Test(arguments: Kind.allCases)
    func writeOfAnUnknownOperationIsNotFound(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        let error = try await #require(throws: StorageError.self) { try await store.save(try newOperation("ghost")) }
        #expect(error.code == .notFound)
    }

    @Test(arguments: Kind.allCases)
    func operationsAreListedNewestFirstAndByState(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        for (index, id) in ["b", "a", "c"].enumerated() {
            var operation = try newOperation(id, now: Self.now.addingTimeInterval(Double(index % 2)))
            if id == "c" { operation.state = .failed }
            try await store.create(operation)
        }
        #expect(try await store.operations(state: nil).operations.map(\.id) == ["a", "b", "c"])
        #expect(try await store.operations(state: .failed).operations.map(\.id) == ["c"])
    }

    @Test(arguments: Kind.allCases)
    func stepRunsAreKeptInTheOrderTheyWereSaved(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        var operation = try #require(try await store.operation(id: "op-1"))
        let runs = (1...3).map {
            StepRun(
                operationID: "op-1",
                pass: $0,
                position: 4 - $0,
                step: "s\($0)",
                plugin: "p",
                pluginFileHash: "h",
                outcome: .retry,
                startedAt: Self.now.addingTimeInterval(Double($0)),
                durationMilliseconds: 0.25,
                message: "after 5 ms",
                pluginVersion: "1.\($0).0"
            )
        }
        operation = try await store.save(operation, stepRuns: Array(runs[0..<2]))
        _ = try await store.save(operation, stepRuns: [runs[2]])
        #expect(try await store.stepRuns(operationID: "op-1") == runs)
    }

    /// An operation that retries for a day must not grow its history without bound: the first pass and the
    /// most recent ones are kept, and what was dropped is counted.
    @Test(arguments: Kind.allCases)
    func stepHistoryKeepsTheFirstAndTheMostRecentPasses(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        var operation = try #require(try await store.operation(id: "op-1"))
        let passes = StepHistory.keptPasses + 10
        for pass in 1...passes {
            let runs = (1...2).map {
                StepRun(
                    operationID: "op-1",
                    pass: pass,
                    position: $0,
                    step: "s\($0)",
                    plugin: nil,
                    pluginFileHash: nil,
                    outcome: .retry,
                    startedAt: Self.now,
                    durationMilliseconds: 1,
                    message: nil
                )
            }
            operation = try await store.save(operation, stepRuns: runs)
        }
        let kept = try await store.stepRuns(operationID: "op-1")
        #expect(Set(kept.map(\.pass)) == Set([1] + Array((passes - StepHistory.keptPasses + 1)...passes)))
        #expect(kept.count == 2 * (StepHistory.keptPasses + 1))
        #expect(operation.droppedStepRuns == 2 * (passes - StepHistory.keptPasses - 1))
        #expect(try await store.operation(id: "op-1")?.droppedStepRuns == operation.droppedStepRuns)
    }

    @Test(arguments: Kind.allCases)
    func onlyDueUnfinishedOperationsAreClaimedEarliestFirst(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        for (id, due, state) in [
            ("later", 20.0, OperationState.inProgress), ("first", -5, .pending), ("second", 0, .inProgress),
            ("done", -10, .succeeded), ("future", 60, .pending),
        ] {
            var operation = try newOperation(id)
            operation.nextPassAt = Self.now.addingTimeInterval(due)
            operation.state = state
            try await store.create(operation)
        }
        let at = Self.now.addingTimeInterval(30)
        #expect(
            try await store.claimDue(now: at, owner: Self.me, lease: .seconds(60), limit: 2, id: nil).map(\.id) == [
                "first", "second",
            ]
        )
        #expect(
            try await store.claimDue(now: at, owner: Self.other, lease: .seconds(60), limit: 5, id: nil).map(\.id) == [
                "later"
            ]
        )
        #expect(
            try await store.claimDue(now: at, owner: Self.other, lease: .seconds(60), limit: 5, id: "future").isEmpty
        )
        #expect(try await store.nextDue(id: nil) == Self.now.addingTimeInterval(-5))
        #expect(try await store.nextDue(id: "future") == Self.now.addingTimeInterval(60))
        #expect(try await store.nextDue(id: "done") == nil)
    }

    @Test(arguments: Kind.allCases)
    func claimHeldByALiveHostIsNotTakenUntilItsLeaseRunsOut(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation("held"))
        #expect(
            try await store.claimDue(now: Self.now, owner: Self.other, lease: .seconds(60), limit: 1, id: nil).count
                == 1
        )
        #expect(try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil).isEmpty)
        // Not even the holder claims it again while it holds it: it is running a pass of it.
        #expect(
            try await store.claimDue(now: Self.now, owner: Self.other, lease: .seconds(60), limit: 1, id: nil).isEmpty
        )
        let later = Self.now.addingTimeInterval(61)
        #expect(try await store.claimDue(now: later, owner: Self.me, lease: .seconds(60), limit: 1, id: nil).count == 1)
        #expect(
            try await store.claim(operationID: "held")
                == Claim(operationID: "held", owner: Self.me, expiresAt: later.addingTimeInterval(60))
        )
    }

    @Test(arguments: Kind.allCases)
    func claimOfADeadLocalProcessIsTakenAtOnce(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation("orphan"))
        let dead = ClaimOwner("\(ProcessInfo.processInfo.hostName):999999:1")
        _ = try await store.claimDue(now: Self.now, owner: dead, lease: .seconds(600), limit: 1, id: nil)
        let claimed = try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil)
        #expect(claimed.map(\.id) == ["orphan"])
        #expect(try await store.claim(operationID: "orphan")?.owner == Self.me)
    }

    /// The step a host records before running it stays with its claim; whoever takes the claim over learns it
    /// (the host died in that step), and a claim taken fresh or after a released one carries none.
    @Test(arguments: Kind.allCases)
    func runningStepRecordedWithTheClaimIsHandedToTheHostThatTakesItOver(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        let first = try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil)
        #expect(first.map(\.interrupted) == [nil])
        let version = try #require(try await store.operation(id: "op-1")).version
        let step = RunningStep(step: "deploy", plugin: "team", pluginFileHash: "cafe", pass: 1, startedAt: Self.now)
        let until = Self.now.addingTimeInterval(90)
        try await store.markRunning(operationID: "op-1", owner: Self.me, step: step, until: until)
        #expect(
            try await store.claim(operationID: "op-1")
                == Claim(operationID: "op-1", owner: Self.me, expiresAt: until, running: step)
        )
        #expect(try await store.operation(id: "op-1")?.version == version)
        let refused = try await #require(throws: StorageError.self) {
            try await store.markRunning(operationID: "op-1", owner: Self.other, step: step, until: until)
        }
        #expect(refused.code == .claimLost)

        // The lease (extended by the record) runs out: the next host learns where the first one stopped.
        let later = until.addingTimeInterval(1)
        let taken = try await store.claimDue(now: later, owner: Self.other, lease: .seconds(60), limit: 1, id: nil)
        #expect(taken.map(\.interrupted) == [step])
        #expect(try await store.claim(operationID: "op-1")?.running == nil)

        // Released with the pass's last save, the claim and its record are gone.
        var operation = try #require(taken.first?.operation)
        operation.nextPassAt = later
        _ = try await store.save(operation, stepRuns: [], claim: Self.other, releasingClaim: true)
        let again = try await store.claimDue(now: later, owner: Self.me, lease: .seconds(60), limit: 1, id: nil)
        #expect(again.map(\.interrupted) == [nil])
    }

    /// Answers recorded apart are appended and read back per operation, without touching its version.
    @Test(arguments: Kind.allCases)
    func provisionerAnswersRecordedApartReadBack(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        let version = try #require(try await store.operation(id: "op-1")).version
        try await store.recordProvisionerAnswer(
            operationID: "op-1",
            attempt: 1,
            provisionerOperationID: "p-1",
            runtimeID: nil,
            at: Self.now
        )
        try await store.recordProvisionerAnswer(
            operationID: "op-1",
            attempt: 2,
            provisionerOperationID: "p-2",
            runtimeID: "r-2",
            at: Self.now
        )
        let answers = try await store.provisionerAnswers(operationID: "op-1")
        #expect(answers.map(\.provisionerOperationID) == ["p-1", "p-2"])
        #expect(answers.map(\.runtimeID) == [nil, "r-2"])
        #expect(answers.map(\.number) == [1, 2])
        #expect(try await store.provisionerAnswers(operationID: "other").isEmpty)
        #expect(try await store.operation(id: "op-1")?.version == version)
    }

    /// Claims take the earliest due operations that are free, however many held ones come first (the SQLite
    /// store reads them in pages).
    @Test(arguments: Kind.allCases)
    func claimsPassOverManyHeldOperationsToTheFreeOnes(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        for index in 0..<40 {
            var operation = try newOperation(String(format: "op-%02d", index))
            operation.nextPassAt = Self.now.addingTimeInterval(Double(index) - 100)
            try await store.create(operation)
        }
        // Another live host holds the 25 earliest.
        let held = try await store.claimDue(now: Self.now, owner: Self.other, lease: .seconds(600), limit: 25, id: nil)
        #expect(held.count == 25)
        let mine = try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 3, id: nil)
        #expect(mine.map(\.id) == ["op-25", "op-26", "op-27"])
        let rest = try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 100, id: nil)
        #expect(rest.map(\.id) == (28..<40).map { String(format: "op-%02d", $0) })
    }

    @Test(arguments: Kind.allCases)
    func claimsNeverChangeTheOperationsVersion(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        let version = try #require(try await store.operation(id: "op-1")).version
        _ = try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil)
        try await store.renewClaim(operationID: "op-1", owner: Self.me, until: Self.now.addingTimeInterval(600))
        #expect(try await store.claim(operationID: "op-1")?.expiresAt == Self.now.addingTimeInterval(600))
        try await store.releaseClaim(operationID: "op-1", owner: Self.me)
        #expect(try await store.claim(operationID: "op-1") == nil)
        #expect(try await store.operation(id: "op-1")?.version == version)
    }

    @Test(arguments: Kind.allCases)
    func writeForALostClaimIsRefusedAndNothingIsWritten(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        var mine = try #require(
            try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil).first?
                .operation
        )
        mine = try await store.save(mine, stepRuns: [], claim: Self.me, releasingClaim: false)
        // The lease runs out and another host takes the operation over.
        let later = Self.now.addingTimeInterval(120)
        _ = try await store.claimDue(now: later, owner: Self.other, lease: .seconds(60), limit: 1, id: nil)
        mine.fields["late"] = "true"
        let error = try await #require(throws: StorageError.self) {
            try await store.save(mine, stepRuns: [], claim: Self.me, releasingClaim: true)
        }
        #expect(error.code == .claimLost)
        #expect(error.message.contains("host-b:2:2 holds it now"))
        #expect(try await store.operation(id: "op-1")?.fields.isEmpty == true)
        let renewal = try await #require(throws: StorageError.self) {
            try await store.renewClaim(operationID: "op-1", owner: Self.me, until: later)
        }
        #expect(renewal.code == .claimLost)
        try await store.releaseClaim(operationID: "op-1", owner: Self.me)  // not the holder: nothing happens
        #expect(try await store.claim(operationID: "op-1")?.owner == Self.other)
    }

    @Test(arguments: Kind.allCases)
    func savingWithReleaseDropsTheClaimInTheSameWrite(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        try await store.create(try newOperation())
        var claimed = try #require(
            try await store.claimDue(now: Self.now, owner: Self.me, lease: .seconds(60), limit: 1, id: nil).first?
                .operation
        )
        claimed.state = .succeeded
        _ = try await store.save(claimed, stepRuns: [], claim: Self.me, releasingClaim: true)
        #expect(try await store.claim(operationID: "op-1") == nil)
        #expect(try await store.operation(id: "op-1")?.state == .succeeded)
    }

    @Test(arguments: Kind.allCases)
    func localProvisioningIsRecordedOncePerOperation(kind: Kind) async throws {
        let subject = try await Subject(kind)
        defer { _ = subject }
        let store = subject.store
        let first = try await store.recordLocalProvisioning(
            operationID: "op-1",
            request: "{}",
            provisionerOperationID: "p-1",
            runtimeID: "r-1",
            at: Self.now
        )
        let second = try await store.recordLocalProvisioning(
            operationID: "op-1",
            request: "{}",
            provisionerOperationID: "p-2",
            runtimeID: "r-2",
            at: Self.now
        )
        #expect(first == second)
        #expect(second == ("p-1", "r-1"))
        #expect(try await store.localProvisioningCount(operationID: "op-1") == 1)
        #expect(try await store.localProvisioningCount(operationID: "op-2") == 0)
    }
}

/// A PostgreSQL store on a new, empty database of the test server (`scripts/with-postgres` gives one; in CI a missing
/// server fails the test instead of skipping it).
func scratchPostgresStore() async throws -> PostgresOperationStore {
    let admin = try #require(
        ProcessInfo.processInfo.environment["STEPHOST_TEST_DATABASE_URL"],
        "no PostgreSQL server: run the tests through scripts/with-postgres (scripts/test does)"
    )
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let url = try await PostgresOperationStore.createScratchDatabase(adminURL: admin, logger: logger)
    return try await PostgresOperationStore(url: url, logger: logger)
}
