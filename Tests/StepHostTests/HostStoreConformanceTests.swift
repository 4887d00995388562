import Foundation
import Logging
import StepHostCore
import StepHostPostgres
import StepHostSQLite
import StepHostStorage
import Synchronization
import Testing

/// What the service and the operator commands ask of a store beyond the engine's protocol (`HostStore`), on SQLite
/// and on PostgreSQL: the broker's instances, pages, counts, id prefixes and stored columns.
@Suite("Host store conformance")
struct HostStoreConformanceTests {
    typealias Kind = QuarantineStoreConformanceTests.Kind

    static func store(_ kind: Kind, in directory: TemporaryDirectory) async throws -> any HostStore {
        switch kind {
        case .sqlite: return try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        case .postgres: return try await scratchPostgresStore()
        }
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func instance(_ id: String, operation: String) -> BrokerInstance {
        BrokerInstance(
            instanceID: id,
            serviceID: "svc",
            planID: "plan",
            parameters: #"{"name":"x"}"#,
            operationID: operation,
            createdAt: now
        )
    }

    /// Sixteen callers creating one instance at once, each with an operation of its own: exactly one creates it,
    /// every other gets that one back, and one operation exists.
    @Test(arguments: Kind.allCases)
    func concurrentCreatesOfOneInstanceMakeOneOperation(kind: Kind) async throws {
        let directory = try TemporaryDirectory("stephost-hoststore")
        let store = try await Self.store(kind, in: directory)
        defer { try? store.close() }
        let results = try await withThrowingTaskGroup(of: (String, BrokerInstance?).self) { group in
            for caller in 0..<16 {
                group.addTask {
                    var operation = try newOperation("op-\(caller)", now: Self.now)
                    operation.instanceID = "shared"
                    let instance = Self.instance("shared", operation: "op-\(caller)")
                    return ("op-\(caller)", try await store.createInstance(instance, operation: operation))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let created = results.filter { $0.1 == nil }.map(\.0)
        #expect(created.count == 1, "\(created.count) callers created the instance")
        let stored = try #require(try await store.brokerInstance(id: "shared"))
        #expect(stored.operationID == created.first)
        #expect(results.allSatisfy { $0.1 == nil || $0.1 == stored })
        let page = try await store.operations(state: nil, instanceID: "shared", limit: 100, after: nil)
        #expect(page.operations.map(\.id) == created)
        #expect(try await store.brokerInstance(id: "other") == nil)
    }

    /// Pages of 7 over 30 operations (some created in the same millisecond) give each once, newest first, with the
    /// state and instance filters applied; a cursor the store did not make is refused.
    @Test(arguments: Kind.allCases)
    func pagesGiveEveryOperationOnceNewestFirst(kind: Kind) async throws {
        let directory = try TemporaryDirectory("stephost-hoststore")
        let store = try await Self.store(kind, in: directory)
        defer { try? store.close() }
        var expected: [String] = []
        for index in 0..<30 {
            var operation = try newOperation(
                String(format: "op-%02d", index),
                now: Self.now.addingTimeInterval(Double(index / 3))
            )
            operation.instanceID = index % 2 == 0 ? "even" : "odd"
            try await store.create(operation)
            if operation.instanceID == "even" { expected.append(operation.id) }
        }
        // Newest first; within one millisecond by id.
        expected.sort { first, second in
            let (a, b) = (Int(first.dropFirst(3))! / 3, Int(second.dropFirst(3))! / 3)
            return a != b ? a > b : first < second
        }
        var paged: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await store.operations(state: .pending, instanceID: "even", limit: 7, after: cursor)
            paged += page.operations.map(\.id)
            cursor = page.next
            pages += 1
        } while cursor != nil && pages < 10
        #expect(paged == expected)
        #expect(pages == 3)
        let none = try await store.operations(state: .succeeded, instanceID: nil, limit: 7, after: nil)
        #expect(none.operations.isEmpty && none.next == nil)
        await #expect(throws: InvalidCursor.self) {
            _ = try await store.operations(state: nil, instanceID: nil, limit: 7, after: "not-a-cursor")
        }
    }

    /// Counts by state and of those due; ids by prefix without case, `%` and `_` taken literally; the stored
    /// columns as text, `nil` for an unknown id; the readiness write.
    @Test(arguments: Kind.allCases)
    func countsPrefixesColumnsAndTheReadinessWrite(kind: Kind) async throws {
        let directory = try TemporaryDirectory("stephost-hoststore")
        let store = try await Self.store(kind, in: directory)
        defer { try? store.close() }
        for id in ["abc-1", "ABD-2", "a_c-3", "xyz-4"] {
            var operation = try newOperation(id, now: Self.now)
            operation.fields = ["note": #""kept""#]
            try await store.create(operation)
        }
        var done = try #require(try await store.operation(id: "xyz-4"))
        done.state = .succeeded
        done.nextPassAt = nil
        _ = try await store.save(done)
        let counts = try await store.operationCounts(now: Self.now.addingTimeInterval(1))
        #expect(counts.byState[.pending] == 3)
        #expect(counts.byState[.succeeded] == 1)
        #expect(counts.due == 3)
        #expect(try await store.operationIDs(prefix: "ab", limit: 10) == ["ABD-2", "abc-1"])
        #expect(try await store.operationIDs(prefix: "a_", limit: 10) == ["a_c-3"])
        #expect(try await store.operationIDs(prefix: "a%", limit: 10) == [])
        #expect(try await store.operationIDs(prefix: "", limit: 2).count == 2)
        let columns = try #require(try await store.storedColumns(id: "abc-1"))
        let byName = Dictionary(columns.map { ($0.column, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(byName["id"] == "abc-1")
        #expect(byName["state"] == "pending")
        #expect(byName["fields"]??.contains("kept") == true, "\(byName["fields"] as Any)")
        #expect(byName["runtime_id"] == .some(nil))
        #expect(try await store.storedColumns(id: "nope") == nil)
        try await store.checkWritable(owner: "host-a:1:1", now: Self.now)
        try await store.checkWritable(owner: "host-a:1:1", now: Self.now.addingTimeInterval(1))
    }
}
