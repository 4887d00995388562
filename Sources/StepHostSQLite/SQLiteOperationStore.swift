import Foundation
package import GRDB
import StepHostCore
public import StepHostStorage

/// The embedded operation store: one SQLite file in WAL mode, through GRDB and the system libsqlite3.
///
/// Commits use `synchronous=FULL`, so a committed step survives power loss, not only a crash of the host.
public final class SQLiteOperationStore: OperationStore, LocalProvisioningRecords {
    /// The schema versions this build knows, oldest first.
    static let migrations = ["v1", "v2", "v3", "v4"]

    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// How to open the database.
    public enum OpenMode: Sendable {
        /// Create the file if it is missing and bring the schema up to date.
        case create
        /// The file must exist; bring the schema up to date.
        case existing
        /// The file must exist with the current schema; never write to it.
        case readOnly
    }

    /// Opens the database at `path` (creating it with `.create`) and brings its schema up to date.
    ///
    /// - Throws: ``StorageError`` `.notFound` when the file is missing and may not be created,
    ///   `.unavailable` when it cannot be opened, `.corrupt` when it is not a stephost database,
    ///   `.newerSchema` when a newer stephost wrote it. Nothing is written in those cases: the file is
    ///   inspected read-only before anything changes it (even the switch to WAL mode).
    public init(path: String, mode: OpenMode = .create) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            throw StorageError(.unavailable, "the database \(path) is a directory; pass a file path with --db")
        }
        if !exists && mode != .create {
            throw StorageError(
                .notFound,
                "there is no database at \(path); run `stephost provision` first or pass --db / set STEPHOST_DB"
            )
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "stephost"
        configuration.readonly = mode == .readOnly
        // Hosts that open the same file at once take turns to set it up: the switch to WAL and GRDB's
        // migrator (which reads the applied migrations outside the transaction that applies them) are not
        // safe to run side by side. The lock is on the directory: closing a descriptor of the database file
        // itself would drop SQLite's own locks on it.
        let setUpLock = mode == .readOnly ? nil : try Self.lockDirectory(of: path)
        defer {
            if let setUpLock {
                flock(setUpLock, LOCK_UN)
                close(setUpLock)
            }
        }
        do {
            if FileManager.default.fileExists(atPath: path) {
                try Self.inspect(path: path, requireCurrent: mode == .readOnly)
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            if mode != .readOnly {
                // GRDB switches the writer to WAL and then to synchronous=NORMAL (safe against a crash of the
                // host, not against power loss) after any prepareDatabase hook has run. Set FULL on the
                // writer itself, once the pool is open: the pool keeps that one connection for its lifetime.
                try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
                try Self.migrator.migrate(pool)
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw Self.storageError(error, path: path)
        }
    }

    /// An exclusive flock on the directory that holds `path`, held while the database is set up.
    private static func lockDirectory(of path: String) throws -> Int32 {
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StorageError(
                .unavailable,
                "the directory of the database \(path) cannot be opened; check that it exists and its permissions",
                cause: String(cString: strerror(errno))
            )
        }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw StorageError(.unavailable, "the database \(path) cannot be locked for set-up", cause: reason)
            }
        }
        return descriptor
    }

    /// `PRAGMA synchronous` as the connection that writes runs it (2 is FULL), for tests that hold the
    /// documentation to what runs.
    package func writerSynchronousMode() async throws -> Int {
        try await pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Reads an existing file without changing it: is it a stephost database this build can use?
    private static func inspect(path: String, requireCurrent: Bool) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.read { db in
            // Any read fails with SQLITE_NOTADB on a file that is not SQLite.
            _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master")
            let known = Set(migrations)
            let applied = try db.tableExists("grdb_migrations") ? Set(try migrator.appliedIdentifiers(db)) : []
            if applied.isEmpty {
                // No stephost schema: an empty file is a new database; anything else is another application's.
                let tables = try String.fetchAll(
                    db,
                    sql:
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
                if !tables.isEmpty {
                    throw StorageError(
                        .corrupt,
                        "\(path) is an SQLite database of another application (tables: "
                            + "\(tables.prefix(5).joined(separator: ", "))\(tables.count > 5 ? ", …" : "")); stephost "
                            + "leaves it untouched: pass another --db"
                    )
                }
            }
            let unknown = applied.subtracting(known).sorted()
            if !unknown.isEmpty {
                throw StorageError(
                    .newerSchema,
                    "the database \(path) has schema migrations this stephost does not know "
                        + "(\(unknown.joined(separator: ", "))): a newer stephost wrote it; upgrade stephost"
                )
            }
            if requireCurrent && !applied.isEmpty && applied.isStrictSubset(of: known) {
                let missing = known.subtracting(applied).sorted().joined(separator: ", ")
                throw StorageError(
                    .olderSchema,
                    "the database \(path) was written by an earlier stephost and needs the schema upgrade "
                        + "\(missing); read-only commands do not change it. A command that writes to it upgrades it in "
                        + "place and keeps every operation: `stephost run --db \(path)` (which also processes its "
                        + "unfinished operations) or `stephost provision --db \(path)`"
                )
            }
            if requireCurrent && applied != known {
                throw StorageError(
                    .corrupt,
                    "\(path) is not a stephost database or is damaged; move it away or pass another --db",
                    cause: "its schema is missing or incomplete"
                )
            }
        }
    }

    /// The schema, one migration per version. `migrations` lists their identifiers.
    package static var migrator: DatabaseMigrator {
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
        // v2: claims get a table of their own, so taking or renewing one never touches the operation's
        // version; "attempt" becomes "pass", the word used everywhere else.
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    CREATE TABLE claims (
                        operation_id TEXT PRIMARY KEY NOT NULL REFERENCES operations (id),
                        owner TEXT NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    INSERT INTO claims (operation_id, owner, expires_at)
                        SELECT id, claimed_by, claimed_until FROM operations
                        WHERE claimed_by IS NOT NULL AND claimed_until IS NOT NULL
                            AND state IN ('pending', 'in_progress');
                    ALTER TABLE operations DROP COLUMN claimed_by;
                    ALTER TABLE operations DROP COLUMN claimed_until;
                    ALTER TABLE operations RENAME COLUMN attempt TO passes;
                    ALTER TABLE operations RENAME COLUMN next_attempt_at TO next_pass_at;
                    """
            )
        }
        // v3: the step history is capped; the operation counts what was dropped.
        migrator.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE operations ADD COLUMN dropped_step_runs INTEGER NOT NULL DEFAULT 0")
        }
        // v4: create_runtime records every attempt to send its request before sending it, and the answer after
        // (an operation from before records its one accepted request as attempt 1). A claim records the step its
        // host is running; an operation, the hosts that died in one of its steps.
        migrator.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    ALTER TABLE claims ADD COLUMN running_step TEXT CHECK (running_step IS NULL OR json_valid(running_step));
                    ALTER TABLE operations ADD COLUMN host_deaths TEXT CHECK (host_deaths IS NULL OR json_valid(host_deaths));
                    ALTER TABLE operations ADD COLUMN provisioning_attempts TEXT NOT NULL DEFAULT '[]'
                        CHECK (json_valid(provisioning_attempts));
                    UPDATE operations SET provisioning_attempts = json_array(json_object(
                        'number', 1, 'pass', 0, 'idempotencyKey', id, 'startedAt', updated_at,
                        'outcome', 'accepted', 'provisionerOperationID', provisioner_operation_id,
                        'runtimeID', runtime_id))
                    WHERE provisioner_operation_id IS NOT NULL;
                    """
            )
        }
        return migrator
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
