import Foundation
import GRDB
import StepHostCore
import StepHostSQLite
import StepHostStorage
import Testing

/// One operation, as tests create it.
func newOperation(
    _ id: String = "op-1",
    now: Date = Date(timeIntervalSince1970: 1_800_000_000)
) throws -> OperationRecord {
    OperationRecord(
        id: id,
        instanceID: "inst-1",
        description: "new",
        createdAt: now,
        deadline: now.addingTimeInterval(3600),
        parameters: try ProvisioningParameters(json: #"{"name":"x"}"#)
    )
}

/// A database as the first release (schema v1) left it, written by the v1 migration itself: a parked
/// operation claimed by a host that is gone, a failed one, their step history and one local provisioning
/// record.
func makeFirstSchemaDatabase(_ path: String) async throws {
    let created = Int64(1_800_000_000_000)
    let queue = try DatabaseQueue(path: path)
    try SQLiteOperationStore.migrator.migrate(queue, upTo: "v1")
    try await queue.write { db in
        try db.execute(
            sql: """
                INSERT INTO operations (id, instance_id, type, state, description, created_at, updated_at, version,
                    attempt, next_attempt_at, deadline, runtime_id, provisioner_operation_id, last_error_step,
                    last_error_plugin, last_error_message, parameters, fields, provisioning_request, claimed_by,
                    claimed_until)
                VALUES
                ('op-parked', 'inst-1', 'provision', 'in_progress', 'waiting for pass 3', ?, ?, 7, 2, ?, ?,
                    'rt-1', 'local-1', NULL, NULL, NULL, '{"name":"old-one"}', '{"subnet":"10.0.0.0/22"}',
                    '{"runtimeInput":{}}', 'old-host:42:1', ?),
                ('op-failed', 'inst-2', 'provision', 'failed', 'failed at step x: boom', ?, ?, 3, 1, NULL, ?,
                    NULL, NULL, 'x', 'team', 'boom', '{"name":"old-two"}', '{}', NULL, NULL, NULL)
                """,
            arguments: [
                created, created, created + 5000, created + 86_400_000, created + 300_000, created - 1, created,
                created + 86_400_000,
            ]
        )
        try db.execute(
            sql: """
                INSERT INTO step_runs (operation_id, pass, position, step, plugin, plugin_file_hash, outcome,
                    started_at, duration_ms, message)
                VALUES ('op-parked', 1, 1, 'allocate', 'network', 'abc', 'done', ?, 1.5, NULL),
                       ('op-parked', 2, 1, 'verify', 'monitoring', 'def', 'retry', ?, 0.5, 'after 500 ms')
                """,
            arguments: [created, created + 1000]
        )
        try db.execute(
            sql: """
                INSERT INTO local_provisioning (operation_id, provisioner_operation_id, runtime_id, request, received_at)
                VALUES ('op-parked', 'local-1', 'rt-1', '{}', ?)
                """,
            arguments: [created]
        )
    }

}

/// What the SQLite store does beyond the conformance suite: the file, its schema and its migrations.
@Suite("SQLite operation store")
struct StorageTests {
    /// The README promises synchronous=FULL: read it back from the connection that writes, after GRDB's WAL
    /// setup, which sets NORMAL on it.
    @Test func writerConnectionCommitsWithSynchronousFull() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        #expect(try await SQLiteOperationStore(path: path).writerSynchronousMode() == 2)
        // And on a file that exists already (a second open takes the same path through GRDB).
        let store = try SQLiteOperationStore(path: path, mode: .existing)
        #expect(try await store.writerSynchronousMode() == 2)
        // The running-step record is written with synchronous=OFF; the writer is back at FULL after it, also
        // when the write is refused.
        let now = Date()
        try await store.create(
            OperationRecord(
                id: "op-1",
                instanceID: "i",
                description: "d",
                createdAt: now,
                deadline: now.addingTimeInterval(60),
                parameters: try ProvisioningParameters(json: #"{"name":"x"}"#)
            )
        )
        let owner = ClaimOwner("host-a:1:1")
        _ = try await store.claimDue(now: now, owner: owner, lease: .seconds(60), limit: 1, id: nil)
        let step = RunningStep(step: "s", plugin: nil, pluginFileHash: nil, pass: 1, startedAt: now)
        try await store.markRunning(operationID: "op-1", owner: owner, step: step, until: now.addingTimeInterval(60))
        #expect(try await store.writerSynchronousMode() == 2)
        await #expect(throws: StorageError.self) {
            try await store.markRunning(operationID: "op-1", owner: ClaimOwner("b:2:2"), step: step, until: now)
        }
        #expect(try await store.writerSynchronousMode() == 2)
    }

    @Test func corruptFileIsReportedAndLeftUntouched() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let garbage = Data(String(repeating: "this is not an SQLite database\n", count: 200).utf8)
        try garbage.write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path) }
        #expect(error.code == .corrupt)
        #expect(error.message == "\(path) is not a stephost database or is damaged; move it away or pass another --db")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test func databaseFromANewerStephostIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        _ = try SQLiteOperationStore(path: path)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v10')")
        }
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path) }
        #expect(error.code == .newerSchema)
        #expect(error.message.contains("schema migrations this stephost does not know (v10)"))
    }

    @Test func missingDatabaseIsNotCreatedForReading() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("absent.sqlite").path
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path, mode: .readOnly) }
        #expect(error.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func databaseOfTheFirstSchemaIsNotUpgradedByAReader() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v1.sqlite").path
        try await makeFirstSchemaDatabase(path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path, mode: .readOnly) }
        #expect(error.code == .olderSchema)
        #expect(error.message.contains("was written by an earlier stephost and needs the schema upgrade v2"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    /// An issue-3 database (schema v1, written by the v1 migration itself) opens after the migration with its
    /// operations, step history, local provisioning records and claims intact.
    @Test func databaseOfTheFirstSchemaOpensWithItsOperationsIntact() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("v1.sqlite").path
        try await makeFirstSchemaDatabase(path)

        let store = try SQLiteOperationStore(path: path, mode: .existing)
        let parked = try #require(try await store.operation(id: "op-parked"))
        #expect(parked.state == .inProgress)
        #expect(parked.version == 7)
        #expect(parked.passes == 2)
        #expect(parked.nextPassAt == Date(timeIntervalSince1970: 1_800_000_005))
        #expect(parked.fields == ["subnet": #""10.0.0.0/22""#])
        #expect(parked.parameters.name == "old-one")
        #expect(
            parked.runtime
                == RuntimeRecord(
                    provisionerOperationID: "local-1",
                    runtimeID: "rt-1",
                    provisioningRequest: #"{"runtimeInput":{}}"#,
                    // The one request an earlier stephost sent becomes the first recorded attempt.
                    attempts: [
                        ProvisioningAttempt(
                            number: 1,
                            pass: 0,
                            idempotencyKey: "op-parked",
                            startedAt: parked.updatedAt,
                            outcome: .accepted,
                            provisionerOperationID: "local-1",
                            runtimeID: "rt-1"
                        )
                    ]
                )
        )
        let claim = try #require(try await store.claim(operationID: "op-parked"))
        #expect(claim.owner == ClaimOwner("old-host:42:1"))
        #expect(claim.expiresAt == Date(timeIntervalSince1970: 1_800_000_300))
        let failed = try #require(try await store.operation(id: "op-failed"))
        #expect(failed.lastError == LastError(step: "x", plugin: "team", message: "boom"))
        #expect(try await store.claim(operationID: "op-failed") == nil)
        #expect(try await store.stepRuns(operationID: "op-parked").map(\.outcome) == [.done, .retry])
        #expect(try await store.localProvisioningCount(operationID: "op-parked") == 1)

        // And it works on: the migrated operation is claimed and written like any other.
        let later = Date(timeIntervalSince1970: 1_800_001_000)
        let owner = ClaimOwner("new-host:1:1")
        let claimed = try await store.claimDue(now: later, owner: owner, lease: .seconds(60), limit: 5, id: nil)
        #expect(claimed.map(\.id) == ["op-parked"])
        var next = claimed[0].operation
        next.passes += 1
        #expect(try await store.save(next, stepRuns: [], claim: owner, releasingClaim: true).version == 8)
        let columns = try await DatabaseQueue(path: path).read { db in try db.columns(in: "operations").map(\.name) }
        #expect(columns.contains("passes") && columns.contains("next_pass_at"))
        #expect(!columns.contains("attempt") && !columns.contains("claimed_by"))
    }
}

extension StorageTests {
    /// Claims read due rows in pages; rows that cannot be read are failed in place as they are met, which moves
    /// the rows behind them up: the next page must not skip any.
    @Test func claimsPageOverUnreadableRowsWithoutSkippingAny() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let store = try SQLiteOperationStore(path: path)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<20 {
            var operation = try newOperation(String(format: "op-%02d", index))
            operation.nextPassAt = now.addingTimeInterval(Double(index) - 100)
            try await store.create(operation)
        }
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE operations SET created_at = 'damaged' WHERE id < 'op-10'")
        }
        // One wanted: a page of 9 rows, all damaged, then the next page.
        let claimed = try await store.claimDue(
            now: now,
            owner: ClaimOwner("h:1:1"),
            lease: .seconds(60),
            limit: 1,
            id: nil
        )
        #expect(claimed.map(\.id) == ["op-10"])
    }
}
