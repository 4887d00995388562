public import Foundation
public import Logging
import PostgresNIO
public import StepHostCore
public import StepHostStorage
import Synchronization

/// The operation store on PostgreSQL, for several hosts sharing the work (`--database-url`): the same protocols as the SQLite store, checked by the same conformance suite against a real server.
///
/// - Operations, the step history, claims, provisioner answers and the local provisioner's records are tables of
///   their own, as in SQLite. Custom fields and parameters are `json`, not `jsonb`: `json` keeps the text exactly
///   as written (the ABI hands a field back to later steps byte for byte; `jsonb` would reorder keys and rewrite
///   numbers and spacing), and still refuses anything that is not JSON.
/// - Claims are rows of `claims`; a host takes due operations with `SELECT … FOR UPDATE OF operations SKIP
///   LOCKED`, so two hosts claiming at once never take the same operation and never wait on each other.
/// - Every data write names the version it read (optimistic locking) and, when made for a claim, checks the claim
///   in the same transaction.
/// - The schema is applied at start-up under a transaction-scoped advisory lock, so hosts starting together do
///   not race.
public final class PostgresOperationStore: HostStore, Sendable {
    /// The connection pool requests go through, and the task that runs it.
    let client: PostgresClient
    private let runner: Task<Void, Never>
    /// One connection of its own, outside the pool: how the store looks for the server during an outage.
    private let probeConfiguration: PostgresConnection.Configuration
    let logger: Logger
    /// The outage now, if any, and the last one that ended (see ``lastOutage``).
    private let outages = Mutex<Outages>(Outages())
    private struct Outages {
        /// While the server cannot be reached: since when, and the task looking for it.
        var current: (since: Date, search: Task<Void, Never>)?
        var last: DatabaseOutage?
    }

    /// Where the store connects, without the password: for messages.
    public let location: String
    /// How long one request (a query, or a whole transaction) may go without an answer before it is given up as a
    /// lost connection.
    let requestTimeout: Duration = .seconds(30)
    /// The requests waiting for an answer, and their deadlines.
    let requests = RequestWatch()

    /// Connects to the database at `url` (`postgres://user:password@host:port/database[?sslmode=disable|require[&sslrootcert=PATH]]`)
    /// and applies the schema; `readOnly` applies nothing and refuses a schema that is not current.
    public init(url: String, logger: Logger, readOnly: Bool = false) async throws {
        let settings = try PostgresURL(url)
        // One connection first: a refused login or an unreachable server is an error now, with the server's reason,
        // instead of the pool retrying in the background while the first query waits.
        do {
            probeConfiguration = PostgresConnection.Configuration(
                host: settings.host,
                port: settings.port,
                username: settings.user,
                password: settings.password,
                database: settings.database,
                tls: settings.requireTLS ? .require(try .init(configuration: settings.tlsConfiguration())) : .disable
            )
            let probe = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
            try await probe.close()
        } catch {
            throw Self.storageError(error, location: settings.location)
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.database,
            tls: settings.requireTLS ? .require(settings.tlsConfiguration()) : .disable
        )
        configuration.options.maximumConnections = 16
        let client = PostgresClient(configuration: configuration)
        self.client = client
        runner = Task { await client.run() }
        self.logger = logger
        location = settings.location
        do {
            try await migrate(readOnly: readOnly)
        } catch {
            close()
            throw Self.storageError(error, location: settings.location)
        }
    }

    deinit { close() }

    /// Stops the connection pool, and the search for the server if it cannot be reached.
    public func close() {
        outages.withLock { $0.current?.search.cancel() }
        runner.cancel()
    }

    /// The last outage that ended: when a request first found the server gone, and when it answered again.
    public var lastOutage: DatabaseOutage? { outages.withLock { $0.last } }

    /// Whether the server is known not to answer now: requests then fail at once (``guarded(_:)``).
    var isUnreachable: Bool { outages.withLock { $0.current != nil } }

    /// Called when a request found the server gone or silent: from now on requests fail at once, instead of each
    /// waiting out the request timeout (30 s) behind a server that does not answer, and one task looks for the
    /// server every half second until it answers. The pool reconnects by itself; the search is what tells the host
    /// (and ``lastOutage``) when the server is back.
    func beginOutage() {
        outages.withLock { outages in
            guard outages.current == nil else { return }
            let search = Task<Void, Never> { [weak self] in
                guard let self else { return }
                await self.awaitServer()
            }
            outages.current = (Date(), search)
        }
    }

    /// Looks for the server every half second; once a connection of its own gets an answer, records the outage and
    /// lets requests through again.
    private func awaitServer() async {
        logger.warning(
            "the PostgreSQL server cannot be reached; requests fail until it answers (looking every 0.5 s)",
            metadata: ["database": "\(location)"]
        )
        while !Task.isCancelled {
            if await answers(
                timeout: .seconds(5),
                { [probeConfiguration, logger] in
                    let connection = try await PostgresConnection.connect(
                        configuration: probeConfiguration,
                        id: 0,
                        logger: logger
                    )
                    defer { Task { try? await connection.close() } }
                    _ = try await connection.query("SELECT 1", logger: logger).get()
                }
            ) {
                let since = outages.withLock { outages -> Date? in
                    let since = outages.current?.since
                    outages.current = nil
                    if let since { outages.last = DatabaseOutage(lostAt: since, answeredAt: Date()) }
                    return since
                }
                // At the outage warning's level: whoever sees that the server went away sees that it came back.
                logger.warning(
                    "the PostgreSQL server answers again",
                    metadata: [
                        "database": "\(location)",
                        "after": "\(String(format: "%.1f", Date().timeIntervalSince(since ?? Date()))) s",
                    ]
                )
                return
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Whether `request` ends without an error within `timeout`.
    private func answers(timeout: Duration, _ request: @escaping @Sendable () async throws -> Void) async -> Bool {
        do {
            try await Self.withTimeout(timeout, location: location, watch: requests, request)
            return true
        } catch {
            return false
        }
    }

    // MARK: - Schema

    /// The schema's versions, applied in order; each runs once, recorded in `stephost_migrations`.
    static let migrations: [(String, String)] = [
        (
            "pg1",
            """
            CREATE TABLE operations (
                id TEXT PRIMARY KEY,
                instance_id TEXT NOT NULL,
                type TEXT NOT NULL,
                state TEXT NOT NULL,
                description TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                version BIGINT NOT NULL,
                passes BIGINT NOT NULL,
                next_pass_at BIGINT,
                deadline BIGINT NOT NULL,
                runtime_id TEXT,
                provisioner_operation_id TEXT,
                last_error_step TEXT,
                last_error_plugin TEXT,
                last_error_message TEXT,
                fields JSON NOT NULL,
                dropped_step_runs BIGINT NOT NULL DEFAULT 0,
                provisioning_attempts TEXT NOT NULL,
                host_deaths TEXT,
                disabled_plugins TEXT,
                parameters JSON NOT NULL,
                provisioning_request TEXT
            );
            CREATE INDEX operations_queue ON operations (next_pass_at, id) WHERE state IN ('pending', 'in_progress');
            CREATE INDEX operations_created ON operations (created_at DESC, id);
            CREATE TABLE step_runs (
                id BIGSERIAL PRIMARY KEY,
                operation_id TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
                pass BIGINT NOT NULL,
                position BIGINT NOT NULL,
                step TEXT NOT NULL,
                plugin TEXT,
                plugin_file_hash TEXT,
                plugin_version TEXT,
                outcome TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                duration_ms DOUBLE PRECISION NOT NULL,
                message TEXT
            );
            CREATE INDEX step_runs_operation ON step_runs (operation_id, pass);
            CREATE TABLE claims (
                operation_id TEXT PRIMARY KEY REFERENCES operations (id) ON DELETE CASCADE,
                owner TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                running_step TEXT
            );
            CREATE TABLE provisioner_answers (
                id BIGSERIAL PRIMARY KEY,
                operation_id TEXT NOT NULL,
                attempt BIGINT NOT NULL,
                provisioner_operation_id TEXT NOT NULL,
                runtime_id TEXT,
                received_at BIGINT NOT NULL
            );
            CREATE TABLE local_provisioning (
                operation_id TEXT PRIMARY KEY,
                provisioner_operation_id TEXT NOT NULL,
                runtime_id TEXT NOT NULL,
                request TEXT NOT NULL,
                received_at BIGINT NOT NULL
            );
            """
        ),
        (
            "pg2",
            """
            CREATE TABLE plugin_quarantine (
                plugin TEXT NOT NULL,
                file_hash TEXT NOT NULL,
                reason TEXT NOT NULL,
                since BIGINT NOT NULL,
                PRIMARY KEY (plugin, file_hash)
            )
            """
        ),
        (
            "pg3",
            """
            CREATE TABLE broker_instances (
                instance_id TEXT PRIMARY KEY,
                service_id TEXT NOT NULL,
                plan_id TEXT NOT NULL,
                parameters TEXT NOT NULL,
                operation_id TEXT NOT NULL,
                created_at BIGINT NOT NULL
            );
            CREATE INDEX operations_instance ON operations (instance_id, created_at DESC, id);
            CREATE TABLE host_heartbeats (owner TEXT PRIMARY KEY, at BIGINT NOT NULL)
            """
        ),
    ]

    /// `user@host:port/database` of a PostgreSQL URL (never its password); `nil` if it is not one.
    public static func location(ofURL url: String) -> String? {
        (try? PostgresURL(url))?.location
    }

    /// What is wrong with `url` (never its password), or `nil` if this host can use it.
    public static func problem(inURL url: String) -> String? {
        do {
            _ = try PostgresURL(url)
            return nil
        } catch let error as StorageError {
            return error.message
        } catch {
            return "the database URL cannot be read"
        }
    }

    private func migrate(readOnly: Bool) async throws {
        if readOnly {
            var applied: Set<String> = []
            do {
                for try await id in try await client.query("SELECT id FROM stephost_migrations", logger: logger)
                    .decode(String.self)
                {
                    applied.insert(id)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
                throw StorageError(
                    .notFound,
                    "the PostgreSQL database \(location) has no stephost schema; start a host on it first"
                )
            }
            let known = Set(Self.migrations.map(\.0))
            if !applied.subtracting(known).isEmpty {
                throw StorageError(
                    .newerSchema,
                    "the database was written by a newer stephost; upgrade this one to read it"
                )
            }
            if !known.subtracting(applied).isEmpty {
                throw StorageError(
                    .olderSchema,
                    "the database's schema is older than this stephost's; start a host on it to bring it up to date"
                )
            }
            return
        }
        try await client.withTransaction(logger: logger) { connection in
            // One host at a time; released with the transaction.
            try await Self.execute(
                on: connection,
                "SELECT pg_advisory_xact_lock(\(Self.migrationLock))",
                logger: logger
            )
            try await Self.execute(
                on: connection,
                "CREATE TABLE IF NOT EXISTS stephost_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                logger: logger
            )
            var applied: Set<String> = []
            for try await id in try await connection.query("SELECT id FROM stephost_migrations", logger: logger)
                .decode(String.self)
            {
                applied.insert(id)
            }
            let known = Set(Self.migrations.map(\.0))
            let unknown = applied.subtracting(known)
            guard unknown.isEmpty else {
                throw StorageError(
                    .newerSchema,
                    "the database has schema migrations this stephost does not know (\(unknown.sorted().joined(separator: ", "))): "
                        + "it was written by a newer stephost; upgrade this host"
                )
            }
            for (id, sql) in Self.migrations where !applied.contains(id) {
                for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) })
                where !statement.isEmpty {
                    try await Self.execute(on: connection, PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await Self.execute(
                    on: connection,
                    "INSERT INTO stephost_migrations (id, applied_at) VALUES (\(id), \(Self.milliseconds(Date())))",
                    logger: logger
                )
            }
        }
    }

    /// The advisory lock key of schema changes ("stephost" in ASCII).
    static let migrationLock: Int64 = 0x7374_6570_686f_7374

    /// Runs `query` to its end (so its connection goes back to the pool) and returns how many rows it gave.
    @discardableResult
    func execute(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        var rows = 0
        for try await _ in try await client.query(query, logger: logger) { rows += 1 }
        return rows
    }

    /// ``execute(_:logger:)`` on one connection (inside a transaction).
    @discardableResult
    static func execute(on connection: PostgresConnection, _ query: PostgresQuery, logger: Logger) async throws -> Int {
        var rows = 0
        for try await _ in try await connection.query(query, logger: logger) { rows += 1 }
        return rows
    }

    // MARK: - Operations

    public func create(_ operation: OperationRecord) async throws {
        try await guarded { [self] in
            try await execute(Self.insert(operation), logger: logger)
        }
    }

    public func operation(id: String) async throws -> OperationRecord? {
        try await guarded { [self] in
            for try await row in try await client.query("SELECT * FROM operations WHERE id = \(id)", logger: logger) {
                return try Self.record(row.makeRandomAccess())
            }
            return nil
        }
    }

    public func operations(state: OperationState?) async throws -> OperationListing {
        try await guarded { [self] in
            let rows =
                if let state {
                    try await client.query(
                        "SELECT * FROM operations WHERE state = \(state.rawValue) ORDER BY created_at DESC, id",
                        logger: logger
                    )
                } else {
                    try await client.query("SELECT * FROM operations ORDER BY created_at DESC, id", logger: logger)
                }
            var listing = OperationListing(operations: [])
            for try await row in rows {
                let cells = row.makeRandomAccess()
                do {
                    listing.operations.append(try Self.record(cells))
                } catch {
                    listing.unreadable.append(
                        Self.unreadable(cells, error)
                    )
                }
            }
            return listing
        }
    }

    public func unfinishedOperationIDs() async throws -> [String] {
        try await guarded { [self] in
            var ids: [String] = []
            for try await id in try await client.query(
                "SELECT id FROM operations WHERE state IN ('pending', 'in_progress') ORDER BY created_at, id",
                logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }

    public func operationStates(ids: [String]) async throws -> [String: OperationState] {
        try await guarded { [self] in
            var states: [String: OperationState] = [:]
            for try await (id, state) in try await client.query(
                "SELECT id, state FROM operations WHERE id = ANY(\(ids))",
                logger: logger
            ).decode((String, String).self) {
                states[id] = OperationState(rawValue: state)
            }
            return states
        }
    }

    public func save(
        _ operation: OperationRecord,
        stepRuns: [StepRun],
        claim: ClaimOwner?,
        releasingClaim: Bool,
        durable: Bool
    ) async throws -> OperationRecord {
        try await guarded { [self] in
            try await retryingConflicts {
                try await client.withTransaction(logger: logger) { connection in
                    // The operation's row first (the UPDATE locks it), then its claim: the order every transaction here
                    // takes them in (a claim locks due rows before it writes their claims), so two hosts never wait on
                    // each other in a circle. A host claiming now skips this row instead of waiting for it. A claim
                    // found lost afterwards throws, and the update is rolled back with the transaction.
                    var saved = operation
                    saved.version = operation.version + 1
                    var updated = 0
                    for try await _ in try await connection.query(
                        Self.update(saved, basedOn: operation.version),
                        logger: logger
                    ) {
                        updated += 1
                    }
                    guard updated == 1 else {
                        var current: Int?
                        for try await version in try await connection.query(
                            "SELECT version FROM operations WHERE id = \(operation.id)",
                            logger: logger
                        ).decode(Int.self) {
                            current = version
                        }
                        guard let current else { throw StorageError.missing(operation.id) }
                        throw StorageError.conflict(operation.id, stored: current, basedOn: operation.version)
                    }
                    if let claim {
                        var holder: String?
                        for try await owner in try await connection.query(
                            "SELECT owner FROM claims WHERE operation_id = \(operation.id) FOR UPDATE",
                            logger: logger
                        ).decode(String.self) {
                            holder = owner
                        }
                        guard holder == claim.description else {
                            throw StorageError.claimLost(operationID: operation.id, owner: claim, holder: holder)
                        }
                    }
                    for run in stepRuns {
                        try await Self.execute(
                            on: connection,
                            """
                            INSERT INTO step_runs (operation_id, pass, position, step, plugin, plugin_file_hash,
                                plugin_version, outcome, started_at, duration_ms, message)
                            VALUES (\(run.operationID), \(run.pass), \(run.position), \(run.step), \(run.plugin),
                                \(run.pluginFileHash), \(run.pluginVersion), \(run.outcome.rawValue),
                                \(Self.milliseconds(run.startedAt)), \(run.durationMilliseconds), \(run.message))
                            """,
                            logger: logger
                        )
                    }
                    if let latest = stepRuns.map(\.pass).max(), latest - StepHistory.keptPasses > 1 {
                        // Keep the first pass and the most recent ones; count what goes.
                        var dropped = 0
                        for try await _ in try await connection.query(
                            """
                            DELETE FROM step_runs WHERE operation_id = \(operation.id) AND pass > 1
                                AND pass <= \(latest - StepHistory.keptPasses) RETURNING id
                            """,
                            logger: logger
                        ) {
                            dropped += 1
                        }
                        if dropped > 0 {
                            saved.droppedStepRuns += dropped
                            try await Self.execute(
                                on: connection,
                                "UPDATE operations SET dropped_step_runs = \(saved.droppedStepRuns) WHERE id = \(operation.id)",
                                logger: logger
                            )
                        }
                    }
                    if releasingClaim, let claim {
                        try await Self.execute(
                            on: connection,
                            "DELETE FROM claims WHERE operation_id = \(operation.id) AND owner = \(claim.description)",
                            logger: logger
                        )
                    }
                    return saved
                }
            }
        }
    }

    public func stepRuns(operationID: String) async throws -> [StepRun] {
        try await guarded { [self] in
            var runs: [StepRun] = []
            for try await row in try await client.query(
                "SELECT * FROM step_runs WHERE operation_id = \(operationID) ORDER BY id",
                logger: logger
            ) {
                let cells = row.makeRandomAccess()
                let outcome = try cells["outcome"].decode(String.self)
                guard let kind = StepOutcome.Kind(rawValue: outcome) else {
                    throw StorageError(
                        .corrupt,
                        "a step run of operation \(operationID) has the unknown outcome '\(outcome)'"
                    )
                }
                runs.append(
                    StepRun(
                        operationID: try cells["operation_id"].decode(String.self),
                        pass: try cells["pass"].decode(Int.self),
                        position: try cells["position"].decode(Int.self),
                        step: try cells["step"].decode(String.self),
                        plugin: try cells["plugin"].decode(String?.self),
                        pluginFileHash: try cells["plugin_file_hash"].decode(String?.self),
                        outcome: kind,
                        startedAt: Self.date(try cells["started_at"].decode(Int64.self)),
                        durationMilliseconds: try cells["duration_ms"].decode(Double.self),
                        message: try cells["message"].decode(String?.self),
                        pluginVersion: try cells["plugin_version"].decode(String?.self)
                    )
                )
            }
            return runs
        }
    }

    // MARK: - Claims

    public func claimDue(
        now: Date,
        owner: ClaimOwner,
        lease: Duration,
        limit: Int,
        id: String?
    ) async throws -> [ClaimedOperation] {
        try await guarded { [self] in
            try await retryingConflicts {
                try await client.withTransaction(logger: logger) { connection in
                    let expiresAt = Self.milliseconds(now.addingTimeInterval(lease.timeInterval))
                    let due = Self.milliseconds(now)
                    // Rows another host is claiming right now are skipped, not waited for; a page a little larger than
                    // the limit leaves room for the ones held by live hosts.
                    let page = limit + 8
                    func candidates(offset: Int) -> PostgresQuery {
                        if let id {
                            return """
                                SELECT operations.*, claims.owner AS claim_owner, claims.expires_at AS claim_expires_at,
                                    claims.running_step AS claim_running_step
                                FROM operations LEFT JOIN claims ON claims.operation_id = operations.id
                                WHERE operations.state IN ('pending', 'in_progress') AND operations.next_pass_at <= \(due)
                                    AND operations.id = \(id)
                                FOR UPDATE OF operations SKIP LOCKED
                                """
                        }
                        return """
                            SELECT operations.*, claims.owner AS claim_owner, claims.expires_at AS claim_expires_at,
                                claims.running_step AS claim_running_step
                            FROM operations LEFT JOIN claims ON claims.operation_id = operations.id
                            WHERE operations.state IN ('pending', 'in_progress') AND operations.next_pass_at <= \(due)
                            ORDER BY operations.next_pass_at, operations.id LIMIT \(page) OFFSET \(offset)
                            FOR UPDATE OF operations SKIP LOCKED
                            """
                    }
                    var claimed: [ClaimedOperation] = []
                    // Pages of due rows in claim order, until enough are claimed or none are left: those held by live
                    // hosts are passed over. An operation failed in place leaves the due rows, so the next page starts
                    // that much earlier.
                    var offset = 0
                    while claimed.count < limit {
                        var rows: [PostgresRandomAccessRow] = []
                        for try await row in try await connection.query(candidates(offset: offset), logger: logger) {
                            rows.append(row.makeRandomAccess())
                        }
                        offset += rows.count
                        for cells in rows where claimed.count < limit {
                            switch try await claim(
                                cells,
                                connection: connection,
                                now: now,
                                owner: owner,
                                until: expiresAt
                            )
                            {
                            case .claimed(let operation): claimed.append(operation)
                            case .held: break
                            case .failedInPlace: offset -= 1
                            }
                        }
                        if id != nil || rows.count < page { break }
                    }
                    return claimed
                }
            }
        }
    }

    /// What became of one due row in a claim.
    private enum Candidate {
        case claimed(ClaimedOperation)
        /// A live host holds it.
        case held
        /// Its row cannot be read, so it was failed in place (it can never run).
        case failedInPlace
    }

    /// Claims the candidate `cells` for `owner` unless a live host holds it; fails it in place when its row cannot
    /// be read (it can never run, so it must neither block the others nor stay due).
    private func claim(
        _ cells: PostgresRandomAccessRow,
        connection: PostgresConnection,
        now: Date,
        owner: ClaimOwner,
        until expiresAt: Int64
    ) async throws -> Candidate {
        let operation: OperationRecord
        do {
            operation = try Self.record(cells)
        } catch {
            let rowID = (try? cells["id"].decode(String.self)) ?? ""
            let message = unreadableOperationMessage(error)
            try await Self.execute(
                on: connection,
                """
                UPDATE operations SET state = 'failed', next_pass_at = NULL, version = version + 1,
                    updated_at = \(Self.milliseconds(now)), last_error_step = 'stephost', last_error_plugin = NULL,
                    last_error_message = \(message), description = \("failed at step stephost: \(message)")
                WHERE id = \(rowID)
                """,
                logger: logger
            )
            try await Self.execute(on: connection, "DELETE FROM claims WHERE operation_id = \(rowID)", logger: logger)
            return .failedInPlace
        }
        var interrupted: RunningStep?
        // The claim as this statement saw it may be older than the row it locked: a host whose claim committed
        // after the statement began is not in the join. So the claim is written only if it is still the one judged
        // free (none, or that owner with that expiry); otherwise another host took the operation meanwhile.
        let taken: Int
        if let holder = try cells["claim_owner"].decode(String?.self) {
            let expires = (try? cells["claim_expires_at"].decode(Int64?.self)) ?? nil
            let current = Claim(
                operationID: operation.id,
                owner: ClaimOwner(holder),
                expiresAt: expires.map(Self.date) ?? .distantPast
            )
            guard current.isFree(at: now) else { return .held }
            interrupted = Self.runningStep(try? cells["claim_running_step"].decode(String?.self), at: now)
            taken = try await Self.execute(
                on: connection,
                """
                UPDATE claims SET owner = \(owner.description), expires_at = \(expiresAt), running_step = NULL
                WHERE operation_id = \(operation.id) AND owner = \(holder)
                    AND expires_at IS NOT DISTINCT FROM \(expires)
                RETURNING owner
                """,
                logger: logger
            )
        } else {
            taken = try await Self.execute(
                on: connection,
                """
                INSERT INTO claims (operation_id, owner, expires_at, running_step)
                VALUES (\(operation.id), \(owner.description), \(expiresAt), NULL)
                ON CONFLICT (operation_id) DO NOTHING RETURNING owner
                """,
                logger: logger
            )
        }
        guard taken == 1 else { return .held }
        return .claimed(ClaimedOperation(operation, interrupted: interrupted))
    }

    public func markRunning(operationID: String, owner: ClaimOwner, step: RunningStep, until: Date) async throws {
        let running = try step.json()
        try await updateClaim(
            operationID: operationID,
            owner: owner,
            """
            UPDATE claims SET expires_at = \(Self.milliseconds(until)), running_step = \(running)
            WHERE operation_id = \(operationID) AND owner = \(owner.description) RETURNING owner
            """
        )
    }

    public func renewClaim(operationID: String, owner: ClaimOwner, until: Date) async throws {
        try await updateClaim(
            operationID: operationID,
            owner: owner,
            """
            UPDATE claims SET expires_at = \(Self.milliseconds(until))
            WHERE operation_id = \(operationID) AND owner = \(owner.description) RETURNING owner
            """
        )
    }

    /// Runs `update` (which returns a row per claim it changed) and throws `.claimLost` unless it changed one.
    private func updateClaim(operationID: String, owner: ClaimOwner, _ update: PostgresQuery) async throws {
        try await guarded { [self] in
            var changed = 0
            for try await _ in try await client.query(update, logger: logger) { changed += 1 }
            guard changed == 1 else {
                var holder: String?
                for try await name in try await client.query(
                    "SELECT owner FROM claims WHERE operation_id = \(operationID)",
                    logger: logger
                ).decode(String.self) {
                    holder = name
                }
                throw StorageError.claimLost(operationID: operationID, owner: owner, holder: holder)
            }
        }
    }

    public func releaseClaim(operationID: String, owner: ClaimOwner) async throws {
        try await guarded { [self] in
            try await execute(
                "DELETE FROM claims WHERE operation_id = \(operationID) AND owner = \(owner.description)",
                logger: logger
            )
        }
    }

    public func claim(operationID: String) async throws -> Claim? {
        try await guarded { [self] in
            for try await (owner, expires, running) in try await client.query(
                "SELECT owner, expires_at, running_step FROM claims WHERE operation_id = \(operationID)",
                logger: logger
            ).decode((String, Int64, String?).self) {
                return Claim(
                    operationID: operationID,
                    owner: ClaimOwner(owner),
                    expiresAt: Self.date(expires),
                    running: Self.runningStep(running, at: Date())
                )
            }
            return nil
        }
    }

    public func nextDue(id: String?) async throws -> Date? {
        try await guarded { [self] in
            let query: PostgresQuery =
                if let id {
                    "SELECT next_pass_at FROM operations WHERE id = \(id) AND state IN ('pending', 'in_progress')"
                } else {
                    "SELECT MIN(next_pass_at) FROM operations WHERE state IN ('pending', 'in_progress')"
                }
            for try await due in try await client.query(query, logger: logger).decode(Int64?.self) {
                return due.map(Self.date)
            }
            return nil
        }
    }

    // MARK: - Provisioner answers recorded apart

    public func recordProvisionerAnswer(
        operationID: String,
        attempt: Int,
        provisionerOperationID: String,
        runtimeID: String?,
        at date: Date
    ) async throws {
        try await guarded { [self] in
            try await execute(
                """
                INSERT INTO provisioner_answers (operation_id, attempt, provisioner_operation_id, runtime_id, received_at)
                VALUES (\(operationID), \(attempt), \(provisionerOperationID), \(runtimeID), \(Self.milliseconds(date)))
                """,
                logger: logger
            )
        }
    }

    public func provisionerAnswers(operationID: String) async throws -> [ProvisioningAttempt] {
        try await guarded { [self] in
            var answers: [ProvisioningAttempt] = []
            for try await (attempt, provisionerID, runtimeID, received) in try await client.query(
                """
                SELECT attempt, provisioner_operation_id, runtime_id, received_at FROM provisioner_answers
                WHERE operation_id = \(operationID) ORDER BY id
                """,
                logger: logger
            ).decode((Int, String, String?, Int64).self) {
                answers.append(
                    ProvisioningAttempt(
                        number: attempt,
                        pass: 0,
                        idempotencyKey: operationID,
                        startedAt: Self.date(received),
                        outcome: .accepted,
                        provisionerOperationID: provisionerID,
                        runtimeID: runtimeID,
                        message: "answer recorded apart: the operation could not take it"
                    )
                )
            }
            return answers
        }
    }

    // MARK: - The local provisioner's records

    public func recordLocalProvisioning(
        operationID: String,
        request: String,
        provisionerOperationID: String,
        runtimeID: String,
        at date: Date
    ) async throws -> (provisionerOperationID: String, runtimeID: String) {
        try await guarded { [self] in
            try await execute(
                """
                INSERT INTO local_provisioning (operation_id, provisioner_operation_id, runtime_id, request, received_at)
                VALUES (\(operationID), \(provisionerOperationID), \(runtimeID), \(request), \(Self.milliseconds(date)))
                ON CONFLICT (operation_id) DO NOTHING
                """,
                logger: logger
            )
            for try await (provisioner, runtime) in try await client.query(
                "SELECT provisioner_operation_id, runtime_id FROM local_provisioning WHERE operation_id = \(operationID)",
                logger: logger
            ).decode((String, String).self) {
                return (provisioner, runtime)
            }
            throw StorageError(
                .corrupt,
                "the local provisioning record of \(operationID) vanished after it was written"
            )
        }
    }

    public func localProvisioningCount(operationID: String) async throws -> Int {
        try await guarded { [self] in
            for try await count in try await client.query(
                "SELECT COUNT(*) FROM local_provisioning WHERE operation_id = \(operationID)",
                logger: logger
            ).decode(Int.self) {
                return count
            }
            return 0
        }
    }
}
