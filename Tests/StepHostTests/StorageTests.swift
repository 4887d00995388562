import Foundation
import GRDB
import StepHostStorage
import Testing

@Suite("SQLite operation store")
struct StorageTests {
    func newOperation(_ id: String = "op-1", now: Date = Date()) -> OperationRecord {
        OperationRecord(
            id: id,
            instanceID: "inst-1",
            description: "new",
            createdAt: now,
            deadline: now.addingTimeInterval(3600),
            parameters: #"{"name":"x"}"#
        )
    }

    @Test func staleWriteIsRefusedAndNeverOverwrites() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        try await store.create(newOperation())
        let read = try #require(try await store.operation(id: "op-1"))

        var first = read
        first.fields["winner"] = #""first""#
        let saved = try await store.save(first, stepRuns: [])
        #expect(saved.version == read.version + 1)

        var second = read  // based on the same, now stale, version
        second.fields["winner"] = #""second""#
        let error = try await #require(throws: StorageError.self) { try await store.save(second, stepRuns: []) }
        #expect(error.code == .conflict)
        #expect(
            error.message.contains(
                "stored version \(read.version + 1), this write was based on version \(read.version)"
            )
        )
        #expect(try await store.operation(id: "op-1")?.fields["winner"] == #""first""#)
    }

    @Test func customFieldsRoundTripAsJSONValues() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        var operation = newOperation()
        try await store.create(operation)
        operation.fields = ["list": "[1,2,3]", "nested": #"{"a":{"b":null}}"#, "text": #""quote \" and \\ slash""#]
        _ = try await store.save(operation, stepRuns: [])
        #expect(try await store.operation(id: "op-1")?.fields == operation.fields)
    }

    @Test func operationHeldByALiveHostIsNotClaimedButADeadLocalOwnersIs() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        let now = Date()
        for (id, owner) in [
            ("held", ClaimOwner.current.description), ("orphan", "\(ProcessInfo.processInfo.hostName):999999:1"),
        ] {
            var operation = newOperation(id, now: now)
            operation.claimedBy = owner
            operation.claimedUntil = now.addingTimeInterval(600)
            try await store.create(operation)
        }
        let other = ClaimOwner("\(ProcessInfo.processInfo.hostName):1:1")
        let claimed = try await store.claimDue(now: now, owner: other, lease: .seconds(60), limit: 10, id: nil)
        #expect(claimed.map(\.id) == ["orphan"])
        #expect(claimed.first?.claimedBy == other.description)
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
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2')")
        }
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path) }
        #expect(error.code == .newerSchema)
        #expect(error.message.contains("schema migrations this stephost does not know (v2)"))
    }

    @Test func missingDatabaseIsNotCreatedForReading() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("absent.sqlite").path
        let error = try #require(throws: StorageError.self) { try SQLiteOperationStore(path: path, mode: .readOnly) }
        #expect(error.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
