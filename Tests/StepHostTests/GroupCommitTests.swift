import Foundation
import GRDB
import StepHostCore
import StepHostSQLite
import StepHostStorage
import Testing

/// Group commit on a real SQLite file: saves that arrive together share one durable commit, and each is still
/// checked alone.
@Suite("SQLite group commit")
struct GroupCommitTests {
    /// Many passes saving at once share commits (fewer durable commits than saves), and every save is stored.
    @Test func concurrentSavesShareDurableCommits() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        let count = 64
        for index in 0..<count { try await store.create(try newOperation("op-\(index)")) }
        let before = store.durableCommits
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    var operation = try #require(try await store.operation(id: "op-\(index)"))
                    operation.fields[FieldKey("saved")] = "\(index)"
                    _ = try await store.save(operation)
                }
            }
            try await group.waitForAll()
        }
        let commits = store.durableCommits - before
        #expect(commits < count, "\(count) concurrent saves took \(commits) durable commits")
        for index in 0..<count {
            let stored = try #require(try await store.operation(id: "op-\(index)"))
            #expect(stored.fields[FieldKey("saved")] == "\(index)")
            #expect(stored.version == 2)
        }
    }

    /// A stale save, or one whose values the database refuses, in the middle of a batch fails alone: the saves
    /// beside it commit.
    @Test func aConflictInABatchFailsOnlyThatSave() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        let count = 32
        for index in 0..<count { try await store.create(try newOperation("op-\(index)")) }
        // Every third save is based on a version that is no longer stored.
        for index in stride(from: 0, to: count, by: 3) {
            var operation = try #require(try await store.operation(id: "op-\(index)"))
            operation.description = "moved on"
            _ = try await store.save(operation)
        }
        let results = try await withThrowingTaskGroup(of: (Int, StorageError?).self) { group in
            for index in 0..<count {
                group.addTask {
                    var operation = try newOperation("op-\(index)")
                    operation.version = 1
                    // Every fifth (not stale) writes a value that is not JSON, which the database refuses.
                    operation.fields[FieldKey("saved")] = index % 5 == 0 && index % 3 != 0 ? "not json" : #""yes""#
                    do {
                        _ = try await store.save(operation)
                        return (index, nil)
                    } catch let error as StorageError {
                        return (index, error)
                    }
                }
            }
            var results: [Int: StorageError?] = [:]
            for try await (index, error) in group { results[index] = error }
            return results
        }
        for index in 0..<count {
            let stored = try #require(try await store.operation(id: "op-\(index)"))
            if index % 3 == 0 {
                #expect(results[index]??.code == .conflict)
                #expect(stored.fields[FieldKey("saved")] == nil)
                #expect(stored.description == "moved on")
            } else if index % 5 == 0 {
                #expect(results[index]??.code == .refused)
                #expect(stored.fields[FieldKey("saved")] == nil)
            } else {
                #expect(results[index]! == nil)
                #expect(stored.fields[FieldKey("saved")] == #""yes""#)
            }
        }
    }

    /// The running-step record lives on this process's board, not in the database, and the store's claim reader
    /// finds it there; the board file goes with the record's process only.
    @Test func runningStepIsReadFromTheBoardBesideTheDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let store = try SQLiteOperationStore(path: path)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.create(try newOperation("op-1", now: now))
        let owner = ClaimOwner("host-a:1:1")
        _ = try await store.claimDue(now: now, owner: owner, lease: .seconds(60), limit: 1, id: nil)
        let step = RunningStep(step: "s", plugin: "p", pluginFileHash: "ab", pass: 1, startedAt: now, alone: true)
        #expect(store.recordRunning(operationID: "op-1", owner: owner, step: step))
        let boards = try FileManager.default.contentsOfDirectory(atPath: directory.url.path)
            .filter { $0.hasPrefix("db.sqlite-running-") }
        #expect(boards.count == 1)
        // Only its owner may read or write it (the README says 0600).
        let mode = try FileManager.default.attributesOfItem(atPath: directory.file(boards[0]).path)[.posixPermissions]
        #expect((mode as? NSNumber)?.intValue == 0o600)
        // Read back through a second store, as another host would.
        let reader = try SQLiteOperationStore(path: path, mode: .existing)
        #expect(try await reader.claim(operationID: "op-1")?.running == step)
        // The column stays empty: the record cost no database write.
        #expect(try await reader.storedClaimColumn(operationID: "op-1") == nil)
        // A host that reaches the database through a symbolic link finds the same board.
        let link = directory.file("link.sqlite").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        let linked = try SQLiteOperationStore(path: link, mode: .existing)
        #expect(try await linked.claim(operationID: "op-1")?.running == step)
        // A FIFO planted under a board's name is never opened for reading (which would block every host).
        #expect(mkfifo(path + "-running-999999-0", 0o600) == 0)
        #expect(try await reader.claim(operationID: "op-1")?.running == step)
        // A record torn by a death mid-write still says a step ran, as an unknown one, never an error.
        let board = try FileHandle(forWritingTo: directory.file(boards[0]))
        try board.seek(toOffset: UInt64(4096 + 4 + "op-1\n".utf8.count))
        try board.write(contentsOf: Data("{\"step\":".utf8))
        try board.close()
        #expect(try await reader.claim(operationID: "op-1")?.running?.step == "(unreadable record)")
        store.clearRunning(operationID: "op-1", owner: owner)
        #expect(try await reader.claim(operationID: "op-1")?.running == nil)
    }

    /// The board of a host on this machine that died goes once no claim names it; a live host's stays.
    @Test func boardsOfDeadHostsGoOnceNoClaimNamesThem() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let store = try SQLiteOperationStore(path: path)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.create(try newOperation("op-1", now: now))
        // This process's owner with a pid that runs no process: a dead host on this machine.
        var parts = ClaimOwner.current.description.split(separator: ":").map(String.init)
        parts[1] = "999999"
        let dead = ClaimOwner(parts.joined(separator: ":"))
        #expect(dead.isDeadLocalProcess)
        let step = RunningStep(step: "s", plugin: nil, pluginFileHash: nil, pass: 1, startedAt: now)
        #expect(store.recordRunning(operationID: "op-1", owner: dead, step: step))
        #expect(store.recordRunning(operationID: "op-1", owner: ClaimOwner("other-host:1:1"), step: step))
        func boards() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: directory.url.path)
                .filter { $0.hasPrefix("db.sqlite-running-") }.count
        }
        #expect(try boards() == 2)
        // While the dead host's claim stands, its board is what tells the next host which step it died in: kept.
        _ = try await store.claimDue(now: now, owner: dead, lease: .seconds(60), limit: 1, id: nil)
        _ = try SQLiteOperationStore(path: path, mode: .existing)
        #expect(try boards() == 2)
        // Once no claim names it, the next host to open the database for writing sweeps it.
        try await store.releaseClaim(operationID: "op-1", owner: dead)
        _ = try SQLiteOperationStore(path: path, mode: .existing)
        #expect(try boards() == 1)
    }
}

/// Schema v5: small operation rows, and claims that read only the rows they take.
@Suite("SQLite schema v5")
struct SchemaV5Tests {
    /// SQLite's own plan for a claim walks the queue index in claim order (it stops after a page) instead of
    /// sorting every due row; a claim of one operation by id finds it by its key.
    @Test func claimsWalkTheQueueIndexInOrder() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        let queue = try await store.claimQueryPlan(byID: false)
        #expect(queue.contains("USING INDEX operations_queue"), "\(queue)")
        #expect(!queue.contains("TEMP B-TREE"), "\(queue)")
        let one = try await store.claimQueryPlan(byID: true)
        #expect(one.contains("sqlite_autoindex_operations_1") || one.contains("PRIMARY KEY"), "\(one)")
    }

    /// A database of schema v4 keeps every operation's parameters and request across the upgrade; they now live
    /// beside the row, which no longer has them, and the step history keeps its runs and their order.
    @Test func upgradeFromV4KeepsParametersRequestsAndHistory() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db.sqlite").path
        let queue = try DatabaseQueue(path: path)
        try SQLiteOperationStore.migrator.migrate(queue, upTo: "v4")
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO operations (id, instance_id, type, state, description, created_at, updated_at, version,
                        passes, next_pass_at, deadline, parameters, fields, provisioning_request)
                    VALUES ('op-1', 'i', 'provision', 'succeeded', 'done', 1, 2, 3, 1, NULL, 9, '{"name":"kept"}',
                        '{"f":1}', '{"runtimeInput":{"name":"kept"}}');
                    INSERT INTO step_runs (operation_id, pass, position, step, outcome, started_at, duration_ms)
                    VALUES ('op-1', 1, 1, 'a', 'done', 1, 1.0), ('op-1', 1, 2, 'b', 'done', 2, 1.0);
                    """
            )
        }
        try queue.close()
        let store = try SQLiteOperationStore(path: path, mode: .existing)
        let operation = try #require(try await store.operation(id: "op-1"))
        #expect(operation.parameters.name == "kept")
        #expect(operation.runtime.provisioningRequest == #"{"runtimeInput":{"name":"kept"}}"#)
        #expect(operation.fields[FieldKey("f")] == "1")
        #expect(try await store.stepRuns(operationID: "op-1").map(\.step) == ["a", "b"])
        let columns = try await store.storedColumns(id: "op-1")?.map(\.column) ?? []
        #expect(columns.contains("parameters") && columns.contains("provisioning_request"))
        let reader = try DatabaseQueue(path: path)
        let rowColumns = try await reader.read { db in try db.columns(in: "operations").map(\.name) }
        #expect(!rowColumns.contains("parameters") && !rowColumns.contains("provisioning_request"))
        let autoincrement = try await reader.read { db in
            try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'step_runs'") ?? ""
        }
        #expect(!autoincrement.contains("AUTOINCREMENT"))
    }
}
