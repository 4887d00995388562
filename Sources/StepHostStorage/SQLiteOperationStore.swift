import Foundation
import GRDB

/// The embedded operation store: one SQLite file in WAL mode, through GRDB and the system libsqlite3.
///
/// Commits use `synchronous=FULL`, so a committed step survives power loss, not only a crash of the host.
public final class SQLiteOperationStore: OperationStore {
    /// The schema versions this build knows, oldest first.
    static let migrations = ["v1"]

    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (and, unless `createIfMissing` is false, creates) the database at `path` and brings its schema up
    /// to date.
    ///
    /// - Throws: ``StorageError`` `.unavailable` when the file cannot be opened, `.corrupt` when it is not a
    ///   stephost database, `.newerSchema` when a newer stephost wrote it. Nothing is written in those cases.
    public init(path: String, createIfMissing: Bool = true) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            throw StorageError(.unavailable, "the database \(path) is a directory; pass a file path with --db")
        }
        if !exists && !createIfMissing {
            throw StorageError(
                .notFound,
                "there is no database at \(path); run `stephost provision` first or pass --db / set STEPHOST_DB"
            )
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "stephost"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrate(pool, path: path)
        } catch let error as StorageError {
            throw error
        } catch {
            throw Self.storageError(error, path: path)
        }
    }

    private static func migrate(_ pool: DatabasePool, path: String) throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE operations (
                        id TEXT PRIMARY KEY NOT NULL,
                        instance_id TEXT NOT NULL,
                        type TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'in_progress', 'succeeded', 'failed')),
                        description TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        version INTEGER NOT NULL,
                        attempt INTEGER NOT NULL,
                        next_attempt_at INTEGER,
                        deadline INTEGER NOT NULL,
                        runtime_id TEXT,
                        provisioner_operation_id TEXT,
                        last_error_step TEXT,
                        last_error_plugin TEXT,
                        last_error_message TEXT,
                        parameters TEXT NOT NULL CHECK (json_valid(parameters)),
                        fields TEXT NOT NULL CHECK (json_valid(fields)),
                        provisioning_request TEXT,
                        claimed_by TEXT,
                        claimed_until INTEGER
                    );
                    CREATE INDEX operations_due ON operations (state, next_attempt_at);
                    CREATE TABLE step_runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        operation_id TEXT NOT NULL REFERENCES operations (id),
                        pass INTEGER NOT NULL,
                        position INTEGER NOT NULL,
                        step TEXT NOT NULL,
                        plugin TEXT,
                        plugin_file_hash TEXT,
                        outcome TEXT NOT NULL,
                        started_at INTEGER NOT NULL,
                        duration_ms REAL NOT NULL,
                        message TEXT
                    );
                    CREATE INDEX step_runs_operation ON step_runs (operation_id, id);
                    CREATE TABLE local_provisioning (
                        operation_id TEXT PRIMARY KEY NOT NULL,
                        provisioner_operation_id TEXT NOT NULL,
                        runtime_id TEXT NOT NULL,
                        request TEXT NOT NULL,
                        received_at INTEGER NOT NULL
                    );
                    """
            )
        }
        let unknown = try pool.read { db in
            try migrator.hasBeenSuperseded(db)
                ? try migrator.appliedIdentifiers(db).subtracting(migrations).sorted() : []
        }
        if !unknown.isEmpty {
            let applied = unknown
            throw StorageError(
                .newerSchema,
                "the database \(path) has schema migrations this stephost does not know (\(applied.joined(separator: ", "))): "
                    + "a newer stephost wrote it; upgrade stephost"
            )
        }
        try migrator.migrate(pool)
    }

    static func storageError(_ error: any Error, path: String) -> StorageError {
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return StorageError(
                    .corrupt,
                    "\(path) is not a stephost database or is damaged; move it away or pass another --db",
                    cause: error.message
                )
            case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
                return StorageError(
                    .unavailable,
                    "the database \(path) cannot be opened for writing; check the file and its directory",
                    cause: error.message
                )
            default:
                return StorageError(.unavailable, "the database \(path) failed", cause: "\(error)")
            }
        }
        return StorageError(.unavailable, "the database \(path) failed", cause: "\(error)")
    }

    /// Runs a database call and maps GRDB's errors to ``StorageError``.
    func guarded<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StorageError {
            throw error
        } catch {
            throw Self.storageError(error, path: path)
        }
    }
}
