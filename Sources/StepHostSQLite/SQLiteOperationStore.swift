import Foundation
package import GRDB
public import StepHostCore
public import StepHostStorage
import StepHostSystem
import Synchronization

/// The embedded operation store: one SQLite file in WAL mode, through GRDB and the system libsqlite3.
///
/// Commits use `synchronous=FULL`, so a committed step survives power loss, not only a crash of the host.
public final class SQLiteOperationStore: HostStore, RunningStepRecorder {
    /// The schema versions this build knows, oldest first.
    static let migrations = ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"]

    let pool: DatabasePool
    /// Write transactions committed durably (synchronous=FULL) through this store, for the benchmark's
    /// commits-per-operation figure.
    private let commits = Atomic<Int>(0)
    /// This process's running-step boards, one per claim owner (one in practice).
    private let boards = Mutex<[String: RunningStepBoard]>([:])
    /// Saves waiting for the batch that commits next (group commit).
    let saveQueue = Mutex(SaveQueue())
    /// The database file.
    public let path: String
    /// The database file, for messages.
    public var location: String { path }
    /// For a read-only open: whether the file's `-wal` or `-shm` neighbour existed before it was opened, so
    /// ``close()`` knows whether they are this reader's to clean up.
    private let neighboursExisted: Bool

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
        // Refused here, not at the first write: whether SQLite's first write transaction fails on a read-only
        // mount depends on whether an earlier host left the `-wal` and `-shm` files there (with them, a transaction
        // that changes nothing commits), so a command that writes would fail or not by chance.
        if mode != .readOnly && exists && Self.isOnReadOnlyFileSystem(path) {
            throw Self.readOnlyFileSystem(path, cause: "the file system is mounted read-only")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "stephost"
        configuration.readonly = mode == .readOnly
        neighboursExisted = Self.neighbours(of: path).contains { FileManager.default.fileExists(atPath: $0) }
        // On a read-only file system nothing can change the file while it is read, and SQLite cannot create the
        // `-shm` it needs for WAL: read it as immutable (a URI; Debian's SQLite takes URIs as file names). Not
        // when a WAL with content was left there: SQLite reads that through the `-shm` left beside it.
        let walSize =
            ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber)?.intValue ?? 0
        let openedPath =
            mode == .readOnly && walSize == 0 && Self.isOnReadOnlyFileSystem(path) ? Self.immutableURI(path) : path
        // Hosts that open the same file at once take turns to set it up: the switch to WAL and GRDB's
        // migrator (which reads the applied migrations outside the transaction that applies them) are not
        // safe to run side by side. The lock is on the directory: closing a descriptor of the database file
        // itself would drop SQLite's own locks on it.
        let setUpLock = mode == .readOnly ? nil : try Self.lockDirectory(of: path)
        defer {
            if let setUpLock {
                flock(setUpLock, LOCK_UN)
                Glibc.close(setUpLock)
            }
        }
        // Under the lock, so another host's file is never taken for this one's.
        let createdHere = mode == .create && !FileManager.default.fileExists(atPath: path)
        do {
            if !createdHere && FileManager.default.fileExists(atPath: path) {
                let upgradePending = try Self.inspect(
                    path: path,
                    opening: openedPath,
                    requireCurrent: mode == .readOnly
                )
                // Changing the schema under a live host of an earlier release would break it mid-write.
                if upgradePending && mode != .readOnly { try Self.refuseWhileInUse(path) }
            }
            pool = try DatabasePool(path: openedPath, configuration: configuration)
            if mode != .readOnly {
                // GRDB switches the writer to WAL and then to synchronous=NORMAL (safe against a crash of the
                // host, not against power loss) after any prepareDatabase hook has run. Set FULL on the
                // writer itself, once the pool is open: the pool keeps that one connection for its lifetime.
                try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
                try Self.migrator.migrate(pool)
                // Boards of hosts that died and whose claims are gone hold nothing anyone will read.
                let owners = try pool.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT owner FROM claims") }
                RunningStepBoard.removeStale(database: path, claimOwners: Set(owners))
            }
        } catch {
            // A database this call was creating and could not set up (a full disk, a directory that refuses
            // it) is removed with its neighbours: no empty file is left for the next command to trip over.
            // (Judged before: the free space is measured with the files still there.)
            let failure = error as? StorageError ?? Self.storageError(error, path: path, readOnly: mode == .readOnly)
            if createdHere {
                for file in [path] + Self.neighbours(of: path) { unlink(file) }
            }
            throw failure
        }
    }

    /// Closes the database. A reader that made SQLite create the `-wal` and `-shm` files (a WAL database needs
    /// them even to read) removes them again when no other connection uses them: a read-only command leaves the
    /// directory as it found it.
    public func close() throws {
        try pool.close()
        guard !neighboursExisted,
            Self.neighbours(of: path).contains(where: { FileManager.default.fileExists(atPath: $0) }),
            access(path, W_OK) == 0, access((path as NSString).deletingLastPathComponent.nonEmpty ?? ".", W_OK) == 0
        else { return }
        // The last connection to close a WAL database removes both files, after a checkpoint that has nothing to
        // write; while another process has the database open, SQLite keeps them. Reading opens the WAL.
        var configuration = Configuration()
        configuration.busyMode = .timeout(1)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") }
        try queue.close()
    }

    static func neighbours(of path: String) -> [String] { [path + "-wal", path + "-shm"] }

    static func isOnReadOnlyFileSystem(_ path: String) -> Bool {
        var info = statvfs()
        return statvfs(path, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0
    }

    /// `path` as an SQLite URI that opens the file read-only and immutable.
    static func immutableURI(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        return "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute)
            + "?mode=ro&immutable=1"
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
                Glibc.close(descriptor)
                throw StorageError(.unavailable, "the database \(path) cannot be locked for set-up", cause: reason)
            }
        }
        return descriptor
    }

    /// The claim's `running_step` column as stored, for tests that check what a record wrote.
    package func storedClaimColumn(operationID: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(
                db,
                sql: "SELECT running_step FROM claims WHERE operation_id = ?",
                arguments: [operationID]
            )
        }
    }

    /// `PRAGMA synchronous` as the connection that writes runs it (2 is FULL), for tests that hold the
    /// documentation to what runs.
    package func writerSynchronousMode() async throws -> Int {
        try await pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Refuses a schema upgrade while another process has the database open: in WAL mode every connection
    /// holds a read lock on the `-shm` file's "dead man switch" byte (128 in SQLite's unix VFS) for as long as
    /// it is open. Called before this process opens the database itself, so probing the file drops no lock of
    /// its own.
    private static func refuseWhileInUse(_ path: String) throws {
        let holder = stephost_lock_holder(path + "-shm", 128)
        guard holder > 0 else { return }
        throw StorageError(
            .unavailable,
            "the database \(path) needs a schema upgrade, and another process (pid \(holder)) has it open: an "
                + "earlier stephost may be running on it. Stop it, then run this command again; nothing was changed"
        )
    }

    /// Reads an existing file without changing it: is it a stephost database this build can use? Returns
    /// whether a schema upgrade is pending (an earlier stephost wrote it).
    @discardableResult
    private static func inspect(path: String, opening openedPath: String, requireCurrent: Bool) throws -> Bool {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: openedPath, configuration: configuration)
        return try queue.read { db in
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
            return !applied.isEmpty && applied.isStrictSubset(of: known)
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
                    CREATE TABLE provisioner_answers (
                        operation_id TEXT NOT NULL REFERENCES operations (id),
                        attempt INTEGER NOT NULL,
                        provisioner_operation_id TEXT NOT NULL,
                        runtime_id TEXT,
                        received_at INTEGER NOT NULL
                    );
                    CREATE INDEX provisioner_answers_operation ON provisioner_answers (operation_id);
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
        // v5: a save writes small rows. The parameters and the provisioning request (kilobytes that rarely change)
        // move to a table of their own, written only when they change, so the operation's row fits one page
        // instead of spilling onto overflow pages that every save rewrote; the step history drops AUTOINCREMENT
        // (its counter table was one more page per commit; rows of the latest pass are never deleted, so ids are
        // not reused); and the queue gets an index in claim order, so a claim reads the rows it takes, not every
        // due row sorted.
        migrator.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    CREATE TABLE operation_documents (
                        operation_id TEXT PRIMARY KEY NOT NULL REFERENCES operations (id),
                        parameters TEXT NOT NULL CHECK (json_valid(parameters)),
                        provisioning_request TEXT
                    );
                    INSERT INTO operation_documents (operation_id, parameters, provisioning_request)
                        SELECT id, parameters, provisioning_request FROM operations;
                    ALTER TABLE operations DROP COLUMN parameters;
                    ALTER TABLE operations DROP COLUMN provisioning_request;
                    CREATE TABLE step_runs_v5 (
                        id INTEGER PRIMARY KEY,
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
                    INSERT INTO step_runs_v5 (id, operation_id, pass, position, step, plugin, plugin_file_hash,
                        outcome, started_at, duration_ms, message)
                        SELECT id, operation_id, pass, position, step, plugin, plugin_file_hash, outcome, started_at,
                            duration_ms, message FROM step_runs;
                    DROP TABLE step_runs;
                    ALTER TABLE step_runs_v5 RENAME TO step_runs;
                    CREATE INDEX step_runs_operation ON step_runs (operation_id, id);
                    CREATE INDEX operations_queue ON operations (next_pass_at, id)
                        WHERE state IN ('pending', 'in_progress');
                    """
            )
        }
        // v6: plugin builds quarantined after one of their in-process steps killed a host.
        migrator.registerMigration("v6") { db in
            try db.execute(
                sql: """
                    CREATE TABLE plugin_quarantine (
                        plugin TEXT NOT NULL,
                        file_hash TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        since INTEGER NOT NULL,
                        PRIMARY KEY (plugin, file_hash)
                    );
                    """
            )
        }
        // v7: service instances created through the broker (one each, with the request that created it), an index for
        // finding an instance's operations, and each host's last readiness write.
        migrator.registerMigration("v7") { db in
            try db.execute(
                sql: """
                    CREATE INDEX operations_instance ON operations (instance_id, created_at);
                    CREATE TABLE broker_instances (
                        instance_id TEXT PRIMARY KEY,
                        service_id TEXT NOT NULL,
                        plan_id TEXT NOT NULL,
                        parameters TEXT NOT NULL,
                        operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE host_heartbeats (
                        owner TEXT PRIMARY KEY,
                        at INTEGER NOT NULL
                    );
                    """
            )
        }
        // v8: each step run records the version its plugin declared, beside the file's hash (older rows have none).
        migrator.registerMigration("v8") { db in
            try db.execute(sql: "ALTER TABLE step_runs ADD COLUMN plugin_version TEXT")
        }
        // v9: each operation records the plugins that were disabled on a host that ran a pass of it (JSON array).
        migrator.registerMigration("v9") { db in
            try db.execute(sql: "ALTER TABLE operations ADD COLUMN disabled_plugins TEXT")
        }
        return migrator
    }

    static func readOnlyFileSystem(_ path: String, cause: String?) -> StorageError {
        StorageError(
            .unavailable,
            "the database \(path) is on a read-only file system: commands that write cannot use it there; "
                + "`stephost operations list|show` can read it",
            cause: cause
        )
    }

    static func storageError(_ error: any Error, path: String, readOnly: Bool = false) -> StorageError {
        if let error = error as? DatabaseError {
            if error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR,
                let free = freeBytes(near: path), free < 1 << 20
            {
                return StorageError(
                    .unavailable,
                    "the file system that holds the database \(path) is full (\(free) bytes free); free some space "
                        + "and run the command again: everything committed before is intact",
                    cause: error.message
                )
            }
            switch error.resultCode {
            case .SQLITE_CONSTRAINT, .SQLITE_TOOBIG, .SQLITE_MISMATCH, .SQLITE_RANGE:
                return StorageError(.refused, "the database \(path) refused the write", cause: "\(error)")
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return StorageError(
                    .corrupt,
                    "\(path) is not a stephost database or is damaged; move it away or pass another --db",
                    cause: error.message
                )
            case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
                if !readOnly && isOnReadOnlyFileSystem(path) { return readOnlyFileSystem(path, cause: error.message) }
                return StorageError(
                    .unavailable,
                    "the database \(path) cannot be opened for \(readOnly ? "reading" : "writing"); check the file, "
                        + "its directory and their permissions",
                    cause: error.message
                )
            default:
                return StorageError(.unavailable, "the database \(path) failed", cause: "\(error)")
            }
        }
        return StorageError(.unavailable, "the database \(path) failed", cause: "\(error)")
    }

    /// The bytes available to this process on the file system that holds `path` (or its directory).
    static func freeBytes(near path: String) -> Int? {
        var info = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        guard statvfs(path, &info) == 0 || statvfs(directory.isEmpty ? "." : directory, &info) == 0 else {
            return nil
        }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    public func recordRunning(operationID: String, owner: ClaimOwner, step: RunningStep) -> Bool {
        let board = boards.withLock { boards in
            if let board = boards[owner.description] { return board }
            let board = RunningStepBoard(database: path, owner: owner)
            boards[owner.description] = board
            return board
        }
        return board.record(operationID: operationID, step: step)
    }

    public func clearRunning(operationID: String, owner: ClaimOwner) {
        boards.withLock { $0[owner.description] }?.clear(operationID: operationID)
    }

    /// The step the claim of `holder` on `operationID` records as running: in the claim's column (written by
    /// ``markRunning(operationID:owner:step:until:)``), else on the holder's board.
    func runningStep(column json: String?, holder: String, operationID: String, at now: Date) -> RunningStep? {
        Self.runningStep(json, at: now)
            ?? RunningStepBoard.running(database: path, owner: holder, operationID: operationID, at: now)
    }

    /// The durable write transactions this store has committed since it was opened.
    public var durableCommits: Int { commits.load(ordering: .relaxed) }

    /// One write transaction, committed durably; counted in ``durableCommits``.
    func countDurableCommit() { commits.add(1, ordering: .relaxed) }

    func durableWrite<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result = try await pool.write(updates)
        commits.add(1, ordering: .relaxed)
        return result
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

extension String {
    /// `nil` for the empty string.
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
