public import Foundation
import GRDB
public import StepHostCore
public import StepHostStorage

extension SQLiteOperationStore {
    public func create(_ operation: OperationRecord) async throws {
        try await guarded {
            try await durableWrite { db in try Self.insert(operation, db) }
        }
    }

    /// Inserts a new operation's row and its documents.
    static func insert(_ operation: OperationRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO operations (\(Self.columns.joined(separator: ", ")))
                VALUES (\(Array(repeating: "?", count: Self.columns.count).joined(separator: ", ")))
                """,
            arguments: StatementArguments(try Self.values(operation))
        )
        try db.execute(
            sql: """
                INSERT INTO operation_documents (operation_id, parameters, provisioning_request)
                VALUES (?, ?, ?)
                """,
            arguments: [operation.id, operation.parameters.json, operation.runtime.provisioningRequest]
        )
    }

    public func operation(id: String) async throws -> OperationRecord? {
        try await guarded {
            try await pool.read { db in
                try Row.fetchOne(db, sql: "\(Self.selectOperations) WHERE id = ?", arguments: [id]).map(Self.record)
            }
        }
    }

    public func operations(state: OperationState?) async throws -> OperationListing {
        try await guarded {
            try await pool.read { db in
                let rows: [Row]
                if let state {
                    rows = try Row.fetchAll(
                        db,
                        sql: "\(Self.selectOperations) WHERE state = ? ORDER BY created_at DESC, id",
                        arguments: [state.rawValue]
                    )
                } else {
                    rows = try Row.fetchAll(db, sql: "\(Self.selectOperations) ORDER BY created_at DESC, id")
                }
                var listing = OperationListing(operations: [])
                for row in rows {
                    do {
                        listing.operations.append(try Self.record(row))
                    } catch {
                        listing.unreadable.append(Self.unreadable(row, error))
                    }
                }
                return listing
            }
        }
    }

    /// The ids that begin with `prefix` (compared without case), in order, at most `limit` of them: for finding an
    /// operation by the first characters of its id, as git and docker do.
    public func operationIDs(prefix: String, limit: Int) async throws -> [String] {
        let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return try await guarded {
            try await pool.read { db in
                try String.fetchAll(
                    db,
                    sql: "SELECT id FROM operations WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
                    arguments: [escaped + "%", limit]
                )
            }
        }
    }

    /// The stored columns of an operation as text, for showing one that cannot be read; `nil` if there is none.
    public func storedColumns(id: String) async throws -> [(column: String, value: String?)]? {
        try await guarded {
            try await pool.read { db in
                guard let row = try Row.fetchOne(db, sql: "\(Self.selectOperations) WHERE id = ?", arguments: [id])
                else { return nil }
                return row.columnNames.map { column in
                    let value = row[column] as DatabaseValue
                    switch value.storage {
                    case .null: return (column, nil)
                    case .int64(let number): return (column, String(number))
                    case .double(let number): return (column, String(number))
                    case .string(let text): return (column, text)
                    case .blob(let data): return (column, "<\(data.count) bytes>")
                    }
                }
            }
        }
    }

    static func unreadable(_ row: Row, _ error: any Error) -> UnreadableOperation {
        UnreadableOperation(
            id: ((try? row.decode(String?.self, forColumn: "id")) ?? nil) ?? "?",
            state: ((try? row.decode(String?.self, forColumn: "state")) ?? nil) ?? "?",
            reason: "\(error)"
        )
    }

    public func save(
        _ operation: OperationRecord,
        stepRuns: [StepRun],
        claim: ClaimOwner?,
        releasingClaim: Bool,
        durable: Bool
    ) async throws -> OperationRecord {
        try await commitSave(
            SaveRequest(
                operation: operation,
                stepRuns: stepRuns,
                claim: claim,
                releasingClaim: releasingClaim,
                durable: durable
            )
        )
    }

    /// One save inside the batch's transaction (see ``commitSave(_:)``).
    static func write(_ request: SaveRequest, _ db: Database) throws -> OperationRecord {
        let operation = request.operation
        let stepRuns = request.stepRuns
        let claim = request.claim
        let releasingClaim = request.releasingClaim
        if let claim {
            let owner = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT owner FROM claims WHERE operation_id = ?"),
                arguments: [operation.id]
            )
            guard owner == claim.description else {
                throw StorageError.claimLost(operationID: operation.id, owner: claim, holder: owner)
            }
        }
        var saved = operation
        saved.version = operation.version + 1
        // Every column but the id, which is the WHERE key with the version this write was based on.
        var setArguments = StatementArguments(Array(try Self.values(saved).dropFirst()))
        _ = setArguments.append(contentsOf: [operation.id, operation.version])
        // Prepared once per connection (the SQL text never changes), not parsed for every save.
        try db.cachedStatement(sql: Self.saveSQL).execute(arguments: setArguments)
        guard db.changesCount == 1 else {
            let current = try Int.fetchOne(
                db,
                sql: "SELECT version FROM operations WHERE id = ?",
                arguments: [operation.id]
            )
            guard let current else { throw StorageError.missing(operation.id) }
            throw StorageError.conflict(operation.id, stored: current, basedOn: operation.version)
        }
        // The parameters and the request are written only when they changed (rarely: the request once).
        try db.cachedStatement(
            sql: """
                UPDATE operation_documents SET parameters = ?1, provisioning_request = ?2
                WHERE operation_id = ?3 AND (parameters IS NOT ?1 OR provisioning_request IS NOT ?2)
                """
        ).execute(arguments: [operation.parameters.json, operation.runtime.provisioningRequest, operation.id])
        let insertRun = try db.cachedStatement(
            sql: """
                INSERT INTO step_runs (operation_id, pass, position, step, plugin, plugin_file_hash,
                    outcome, started_at, duration_ms, message, plugin_version)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for run in stepRuns {
            try insertRun.execute(
                arguments: [
                    run.operationID, run.pass, run.position, run.step, run.plugin, run.pluginFileHash,
                    run.outcome.rawValue, Self.milliseconds(run.startedAt), run.durationMilliseconds,
                    run.message, run.pluginVersion,
                ]
            )
        }
        if let latest = stepRuns.map(\.pass).max(), latest - StepHistory.keptPasses > 1 {
            // Keep the first pass and the most recent ones; count what goes.
            try db.execute(
                sql: "DELETE FROM step_runs WHERE operation_id = ? AND pass > 1 AND pass <= ?",
                arguments: [operation.id, latest - StepHistory.keptPasses]
            )
            if db.changesCount > 0 {
                saved.droppedStepRuns += db.changesCount
                try db.execute(
                    sql: "UPDATE operations SET dropped_step_runs = ? WHERE id = ?",
                    arguments: [saved.droppedStepRuns, operation.id]
                )
            }
        }
        if releasingClaim, let claim {
            try db.cachedStatement(sql: "DELETE FROM claims WHERE operation_id = ? AND owner = ?")
                .execute(arguments: [operation.id, claim.description])
        }
        return saved
    }

    public func operationStates(ids: [String]) async throws -> [String: OperationState] {
        try await guarded {
            try await pool.read { db in
                var states: [String: OperationState] = [:]
                for start in stride(from: 0, to: ids.count, by: 500) {
                    let chunk = Array(ids[start..<min(start + 500, ids.count)])
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                    for row in try Row.fetchAll(
                        db,
                        sql: "SELECT id, state FROM operations WHERE id IN (\(marks))",
                        arguments: StatementArguments(chunk)
                    ) {
                        guard let id: String = try? column(row, "id"), let state: String = try? column(row, "state"),
                            let known = OperationState(rawValue: state)
                        else { continue }
                        states[id] = known
                    }
                }
                return states
            }
        }
    }

    public func unfinishedOperationIDs() async throws -> [String] {
        try await guarded {
            try await pool.read { db in
                // The ids alone, in the order the full listing gives (damaged values sort last): a queue of any
                // length costs a few bytes per operation here, not its whole row.
                // Through a cursor: no row is copied, only its id.
                try Array(
                    Row.fetchCursor(
                        db,
                        sql: """
                            SELECT id FROM operations WHERE state IN ('pending', 'in_progress')
                            ORDER BY typeof(created_at) != 'integer', created_at, id
                            """
                    ).map { row in ((try? row.decode(String?.self, forColumn: "id")) ?? nil) ?? "?" }
                )
            }
        }
    }

    public func stepRuns(operationID: String) async throws -> [StepRun] {
        try await guarded {
            try await pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM step_runs WHERE operation_id = ? ORDER BY id",
                    arguments: [operationID]
                ).map { row in
                    StepRun(
                        operationID: try column(row, "operation_id"),
                        pass: try column(row, "pass"),
                        position: try column(row, "position"),
                        step: try column(row, "step"),
                        plugin: try column(row, "plugin"),
                        pluginFileHash: try column(row, "plugin_file_hash"),
                        outcome: try Self.outcome(try column(row, "outcome")),
                        startedAt: Self.date(try column(row, "started_at")),
                        durationMilliseconds: try column(row, "duration_ms"),
                        message: try column(row, "message"),
                        pluginVersion: try column(row, "plugin_version")
                    )
                }
            }
        }
    }

    public func claimDue(
        now: Date,
        owner: ClaimOwner,
        lease: Duration,
        limit: Int,
        id: String?
    ) async throws -> [ClaimedOperation] {
        try await guarded {
            try await unsyncedWrite { db in
                let sql = Self.claimSQL(byID: id != nil)
                var arguments: StatementArguments = [Self.milliseconds(now)]
                if let id { _ = arguments.append(contentsOf: [id]) }
                let page = limit + 8
                let expiresAt = Self.milliseconds(now.addingTimeInterval(lease.timeInterval))
                var claimed: [ClaimedOperation] = []
                var offset = 0
                var rows: [Row] = []
                var fetched = 0
                func nextRow() throws -> Row? {
                    if rows.isEmpty {
                        // A short page was the last one.
                        guard offset == 0 || fetched == page else { return nil }
                        var paged = arguments
                        _ = paged.append(contentsOf: [page, offset])
                        rows = try Row.fetchAll(db, sql: sql, arguments: paged)
                        fetched = rows.count
                        offset += rows.count
                        rows.reverse()
                    }
                    return rows.popLast()
                }
                while claimed.count < limit, let row = try nextRow() {
                    let operation: OperationRecord
                    do {
                        operation = try Self.record(row)
                    } catch {
                        // It can never run: fail it with the reason, so it neither blocks the others nor stays due.
                        try Self.failUnreadable(db, row: row, error: error, now: now)
                        offset -= 1  // it left the due rows: the next page starts one earlier
                        continue
                    }
                    var interrupted: RunningStep?
                    if let holder: String = try? column(row, "claim_owner") {
                        // A claim whose expiry cannot be read holds nothing; a running record that cannot be read
                        // names an unknown step.
                        let expires: Int64? = try? column(row, "claim_expires_at")
                        let current = Claim(
                            operationID: operation.id,
                            owner: ClaimOwner(holder),
                            expiresAt: expires.map(Self.date) ?? .distantPast
                        )
                        guard current.isFree(at: now) else { continue }
                        interrupted = self.runningStep(
                            column: try? column(row, "claim_running_step"),
                            holder: holder,
                            operationID: operation.id,
                            at: now
                        )
                    }
                    try db.execute(
                        sql: """
                            INSERT INTO claims (operation_id, owner, expires_at, running_step) VALUES (?, ?, ?, NULL)
                            ON CONFLICT (operation_id) DO UPDATE SET owner = excluded.owner,
                                expires_at = excluded.expires_at, running_step = NULL
                            """,
                        arguments: [operation.id, owner.description, expiresAt]
                    )
                    claimed.append(ClaimedOperation(operation, interrupted: interrupted))
                }
                return claimed
            }
        }
    }

    public func markRunning(operationID: String, owner: ClaimOwner, step: RunningStep, until: Date) async throws {
        let running = try step.json()
        try await guarded {
            // This record only has to outlive the host process, not the machine: it is committed without
            // waiting for the disk (the next FULL commit syncs it along), which keeps a step's cost at one
            // synced commit.
            try await unsyncedWrite { db in
                try db.cachedStatement(
                    sql: "UPDATE claims SET expires_at = ?, running_step = ? WHERE operation_id = ? AND owner = ?"
                ).execute(arguments: [Self.milliseconds(until), running, operationID, owner.description])
                guard db.changesCount == 1 else {
                    let holder = try String.fetchOne(
                        db,
                        sql: "SELECT owner FROM claims WHERE operation_id = ?",
                        arguments: [operationID]
                    )
                    throw StorageError.claimLost(operationID: operationID, owner: owner, holder: holder)
                }
            }
        }
    }

    /// Fails an operation whose stored row cannot be read, in place, with the reason; drops its claim.
    /// Fails an operation whose stored row cannot be read, in place (by rowid: even its id may be damaged), with
    /// the reason; drops its claim.
    static func failUnreadable(_ db: Database, row: Row, error: any Error, now: Date) throws {
        let rowid: Int64 = try column(row, "stephost_rowid")
        let message = unreadableOperationMessage(error)
        try db.execute(
            sql: "DELETE FROM claims WHERE operation_id = (SELECT id FROM operations WHERE rowid = ?)",
            arguments: [rowid]
        )
        try db.execute(
            sql: """
                UPDATE operations SET state = 'failed', next_pass_at = NULL, version = version + 1, updated_at = ?,
                    last_error_step = 'stephost', last_error_plugin = NULL, last_error_message = ?,
                    description = ?
                WHERE rowid = ?
                """,
            arguments: [Self.milliseconds(now), message, "failed at step stephost: \(message)", rowid]
        )
    }

    /// The running step a claim recorded (``RunningStep/recorded(_:at:)``).
    static func runningStep(_ json: String?, at now: Date) -> RunningStep? { RunningStep.recorded(json, at: now) }

    public func renewClaim(operationID: String, owner: ClaimOwner, until: Date) async throws {
        try await guarded {
            try await durableWrite { db in
                try db.execute(
                    sql: "UPDATE claims SET expires_at = ? WHERE operation_id = ? AND owner = ?",
                    arguments: [Self.milliseconds(until), operationID, owner.description]
                )
                guard db.changesCount == 1 else {
                    let holder = try String.fetchOne(
                        db,
                        sql: "SELECT owner FROM claims WHERE operation_id = ?",
                        arguments: [operationID]
                    )
                    throw StorageError.claimLost(operationID: operationID, owner: owner, holder: holder)
                }
            }
        }
    }

    public func releaseClaim(operationID: String, owner: ClaimOwner) async throws {
        try await guarded {
            try await durableWrite { db in
                try db.execute(
                    sql: "DELETE FROM claims WHERE operation_id = ? AND owner = ?",
                    arguments: [operationID, owner.description]
                )
            }
        }
    }

    public func claim(operationID: String) async throws -> Claim? {
        try await guarded {
            try await pool.read { db in
                try Row.fetchOne(
                    db,
                    sql: "SELECT owner, expires_at, running_step FROM claims WHERE operation_id = ?",
                    arguments: [operationID]
                ).map { row in
                    Claim(
                        operationID: operationID,
                        owner: ClaimOwner(try column(row, "owner")),
                        expiresAt: ((try? column(row, "expires_at")) as Int64?).map(Self.date) ?? .distantPast,
                        running: self.runningStep(
                            column: try? column(row, "running_step"),
                            holder: try column(row, "owner"),
                            operationID: operationID,
                            at: Date()
                        )
                    )
                }
            }
        }
    }

    public func nextDue(id: String?) async throws -> Date? {
        try await guarded {
            try await pool.read { db in
                let due: Int64?
                if let id {
                    due = try Int64.fetchOne(
                        db,
                        sql: """
                            SELECT CASE typeof(next_pass_at) WHEN 'integer' THEN next_pass_at WHEN 'null' THEN NULL
                                ELSE 0 END
                            FROM operations WHERE id = ? AND state IN ('pending', 'in_progress')
                            """,
                        arguments: [id]
                    )
                } else {
                    due = try Int64.fetchOne(
                        db,
                        sql: """
                            SELECT MIN(CASE typeof(next_pass_at) WHEN 'integer' THEN next_pass_at WHEN 'null' THEN NULL
                                ELSE 0 END)
                            FROM operations WHERE state IN ('pending', 'in_progress')
                            """
                    )
                }
                return due.map(Self.date)
            }
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
        try await guarded {
            try await durableWrite { db in
                try db.execute(
                    sql: """
                        INSERT INTO provisioner_answers (operation_id, attempt, provisioner_operation_id, runtime_id,
                            received_at)
                        VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: [operationID, attempt, provisionerOperationID, runtimeID, Self.milliseconds(date)]
                )
            }
        }
    }

    public func provisionerAnswers(operationID: String) async throws -> [ProvisioningAttempt] {
        try await guarded {
            try await pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM provisioner_answers WHERE operation_id = ? ORDER BY rowid",
                    arguments: [operationID]
                ).map { row in
                    ProvisioningAttempt(
                        number: try column(row, "attempt"),
                        pass: 0,
                        idempotencyKey: operationID,
                        startedAt: Self.date(try column(row, "received_at")),
                        outcome: .accepted,
                        provisionerOperationID: try column(row, "provisioner_operation_id"),
                        runtimeID: try column(row, "runtime_id"),
                        message: "answer recorded apart: the operation could not take it"
                    )
                }
            }
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
        try await guarded {
            try await durableWrite { db in
                try db.execute(
                    sql: """
                        INSERT INTO local_provisioning (operation_id, provisioner_operation_id, runtime_id, request, received_at)
                        VALUES (?, ?, ?, ?, ?) ON CONFLICT (operation_id) DO NOTHING
                        """,
                    arguments: [operationID, provisionerOperationID, runtimeID, request, Self.milliseconds(date)]
                )
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT provisioner_operation_id, runtime_id FROM local_provisioning WHERE operation_id = ?",
                    arguments: [operationID]
                )!
                return (try column(row, "provisioner_operation_id"), try column(row, "runtime_id"))
            }
        }
    }

    public func localProvisioningCount(operationID: String) async throws -> Int {
        try await guarded {
            try await pool.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM local_provisioning WHERE operation_id = ?",
                    arguments: [operationID]
                ) ?? 0
            }
        }
    }

    // MARK: - Rows

    /// The save's UPDATE: every column but the id.
    static let saveSQL =
        "UPDATE operations SET \(columns.dropFirst().map { "\($0) = ?" }.joined(separator: ", ")) "
        + "WHERE id = ? AND version = ?"

    /// The claim's page of due operations: arguments now, [id,] limit, offset.
    ///
    /// Read in pages just larger than what is wanted, not every due row: with a long queue, a claim of a few
    /// operations reads a few rows (the ones held by live hosts are skipped and paged past). The queue index is in
    /// claim order, so a page is read in order and SQLite stops at its end; left to itself, the planner takes the
    /// state index and sorts every due row for each page. One operation asked for by id is found by its key.
    package static func claimSQL(byID: Bool) -> String {
        """
        SELECT operations.*, operation_documents.parameters, operation_documents.provisioning_request,
            operations.rowid AS stephost_rowid, claims.owner AS claim_owner, claims.expires_at AS claim_expires_at,
            claims.running_step AS claim_running_step
        FROM operations \(byID ? "" : "INDEXED BY operations_queue")
            LEFT JOIN operation_documents ON operation_documents.operation_id = operations.id
            LEFT JOIN claims ON claims.operation_id = operations.id
        WHERE operations.state IN ('pending', 'in_progress')
            AND (operations.next_pass_at <= ? OR typeof(operations.next_pass_at) NOT IN ('integer', 'null'))
            \(byID ? "AND operations.id = ?" : "")
        ORDER BY operations.next_pass_at, operations.id LIMIT ? OFFSET ?
        """
    }

    /// SQLite's plan for a claim (`EXPLAIN QUERY PLAN`), one step per line, for tests that hold the claim to
    /// reading only the rows it takes.
    package func claimQueryPlan(byID: Bool) async throws -> String {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "EXPLAIN QUERY PLAN " + Self.claimSQL(byID: byID),
                arguments: byID ? [0, "x", 1, 0] : [0, 1, 0]
            ).map { row in (try? column(row, "detail") as String) ?? "" }.joined(separator: "\n")
        }
    }

    /// Every stored column of an operation: its row and its documents.
    static let selectOperations = """
        SELECT operations.*, operation_documents.parameters, operation_documents.provisioning_request
        FROM operations LEFT JOIN operation_documents ON operation_documents.operation_id = operations.id
        """

    static let columns = [
        "id", "instance_id", "type", "state", "description", "created_at", "updated_at", "version", "passes",
        "next_pass_at", "deadline", "runtime_id", "provisioner_operation_id", "last_error_step",
        "last_error_plugin", "last_error_message", "fields", "dropped_step_runs", "provisioning_attempts",
        "host_deaths", "disabled_plugins",
    ]

    static func values(_ operation: OperationRecord) throws -> [(any DatabaseValueConvertible)?] {
        [
            operation.id, operation.instanceID, operation.type, operation.state.rawValue, operation.description,
            milliseconds(operation.createdAt), milliseconds(operation.updatedAt), operation.version, operation.passes,
            operation.nextPassAt.map(milliseconds), milliseconds(operation.deadline), operation.runtime.runtimeID,
            operation.runtime.provisionerOperationID, operation.lastError?.step, operation.lastError?.plugin,
            operation.lastError?.message, JSONText.object(operation.fields), operation.droppedStepRuns,
            try ProvisioningAttempt.json(operation.runtime.attempts), try operation.hostDeaths?.json(),
            operation.disabledPlugins.isEmpty
                ? nil : "[" + operation.disabledPlugins.map(JSONText.quote).joined(separator: ",") + "]",
        ]
    }

    static func record(_ row: Row) throws -> OperationRecord {
        do {
            return try decodeRecord(row)
        } catch let error as StorageError where !error.message.contains("operation ") {
            let id = ((try? row.decode(String?.self, forColumn: "id")) ?? nil) ?? "?"
            throw StorageError(.corrupt, "operation \(id) cannot be read: \(error.message)")
        }
    }

    private static func decodeRecord(_ row: Row) throws -> OperationRecord {
        let id: String = try column(row, "id")
        let state: String = try column(row, "state")
        guard let operationState = OperationState(rawValue: state) else {
            throw StorageError(.corrupt, "operation \(id) has the unknown state '\(state)'")
        }
        let parameters: ProvisioningParameters
        do {
            parameters = try ProvisioningParameters(storedJSON: try column(row, "parameters"))
        } catch {
            throw StorageError(.corrupt, "the stored parameters of operation \(id) are not valid", cause: "\(error)")
        }
        var operation = OperationRecord(
            id: id,
            instanceID: try column(row, "instance_id"),
            type: try column(row, "type"),
            state: operationState,
            description: try column(row, "description"),
            createdAt: date(try column(row, "created_at")),
            deadline: date(try column(row, "deadline")),
            parameters: parameters
        )
        operation.updatedAt = date(try column(row, "updated_at"))
        operation.version = try column(row, "version")
        operation.passes = try column(row, "passes")
        operation.nextPassAt = (try column(row, "next_pass_at") as Int64?).map(date)
        let attempts: [ProvisioningAttempt]
        do {
            attempts = try ProvisioningAttempt.attempts(json: try column(row, "provisioning_attempts"))
        } catch {
            throw StorageError(
                .corrupt,
                "the stored provisioning attempts of operation \(id) are not valid",
                cause: "\(error)"
            )
        }
        operation.runtime = RuntimeRecord(
            provisionerOperationID: try column(row, "provisioner_operation_id"),
            runtimeID: try column(row, "runtime_id"),
            provisioningRequest: try column(row, "provisioning_request"),
            attempts: attempts
        )
        if let step: String = try column(row, "last_error_step") {
            operation.lastError = LastError(
                step: step,
                plugin: try column(row, "last_error_plugin"),
                message: (try column(row, "last_error_message") as String?) ?? ""
            )
        }
        do {
            operation.fields = try JSONText.members(of: try column(row, "fields"))
        } catch {
            throw StorageError(.corrupt, "the stored custom fields of operation \(id) are not a JSON object")
        }
        operation.droppedStepRuns = try column(row, "dropped_step_runs")
        if let disabled: String = try column(row, "disabled_plugins") {
            guard let names = try? JSONSerialization.jsonObject(with: Data(disabled.utf8)) as? [String] else {
                throw StorageError(
                    .corrupt,
                    "the stored disabled plugins of operation \(id) are not a JSON array of names"
                )
            }
            operation.disabledPlugins = names
        }
        if let deaths: String = try column(row, "host_deaths") {
            do {
                operation.hostDeaths = try HostDeaths(json: deaths)
            } catch {
                throw StorageError(
                    .corrupt,
                    "the stored host deaths of operation \(id) are not valid",
                    cause: "\(error)"
                )
            }
        }
        return operation
    }

    static func outcome(_ name: String) throws -> StepOutcome.Kind {
        guard let kind = StepOutcome.Kind(rawValue: name) else {
            throw StorageError(.corrupt, "a step run has the unknown outcome '\(name)'")
        }
        return kind
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}

/// A column of a stored row, as `T`; a value of another type (stored by hand or by a bug) is reported as damage
/// of that row, never a crash.
func column<T: DatabaseValueConvertible>(_ row: Row, _ name: String) throws -> T {
    do {
        return try row.decode(T.self, forColumn: name)
    } catch {
        throw StorageError(
            .corrupt,
            "the stored \(name) (\(row[name] as DatabaseValue)) is not a value of type \(T.self)"
        )
    }
}
