import Foundation
import Logging
import StepHostCore
import StepHostPostgres
import StepHostSQLite
import StepHostStorage
import Testing

/// What every `QuarantineStore` must do, on SQLite and on PostgreSQL (in CI always; locally when a server is
/// given through scripts/with-postgres).
@Suite("Quarantine store conformance")
struct QuarantineStoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }

        static var allCases: [Kind] {
            StoreConformanceTests.Kind.allCases.contains(.postgres) ? [.sqlite, .postgres] : [.sqlite]
        }
    }

    static func store(_ kind: Kind, in directory: TemporaryDirectory) async throws -> any QuarantineStore {
        switch kind {
        case .sqlite: return try SQLiteOperationStore(path: directory.file("db.sqlite").path)
        case .postgres: return try await scratchPostgresStore()
        }
    }

    /// A build is quarantined once (the first reason stays), another build of the plugin is a record of its own,
    /// the list is in order of time, and clearing the plugin clears every build of it and says how many.
    @Test(arguments: Kind.allCases)
    func buildsAreQuarantinedOnceListedInOrderAndClearedTogether(kind: Kind) async throws {
        let directory = try TemporaryDirectory("stephost-quarantine")
        let store = try await Self.store(kind, in: directory)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.quarantine(QuarantineRecord(plugin: "net", fileHash: "aa", reason: "first", since: now))
        try await store.quarantine(QuarantineRecord(plugin: "net", fileHash: "aa", reason: "again", since: now + 5))
        try await store.quarantine(QuarantineRecord(plugin: "net", fileHash: "bb", reason: "new build", since: now + 2))
        try await store.quarantine(QuarantineRecord(plugin: "audit", fileHash: "cc", reason: "x", since: now + 1))
        let listed = try await store.quarantinedPlugins()
        #expect(
            listed.map { "\($0.plugin) \($0.fileHash) \($0.reason)" } == [
                "net aa first", "audit cc x", "net bb new build",
            ]
        )
        #expect(listed.first?.since == now)
        #expect(try await store.clearQuarantine(plugin: "net") == 2)
        #expect(try await store.clearQuarantine(plugin: "net") == 0)
        #expect(try await store.quarantinedPlugins().map(\.plugin) == ["audit"])
    }
}
