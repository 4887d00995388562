public import Foundation
import GRDB

extension SQLiteOperationStore {
    public func create(_ operation: OperationRecord) async throws {
        try await guarded {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO operations (\(Self.columns.joined(separator: ", ")))
                        VALUES (\(Array(repeating: "?", count: Self.columns.count).joined(separator: ", ")))
                        """,
                    arguments: Self.arguments(operation)
                )
            }
        }
    }

    public func operation(id: String) async throws -> OperationRecord? {
        try await guarded {
            try await pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM operations WHERE id = ?", arguments: [id]).map(Self.record)
            }
        }
    }

    public func operations(state: OperationState?) async throws -> [OperationRecord] {
        try await guarded {
            try await pool.read { db in
                let rows: [Row]
                if let state {
                    rows = try Row.fetchAll(
                        db,
                        sql: "SELECT * FROM operations WHERE state = ? ORDER BY created_at DESC, id",
                        arguments: [state.rawValue]
                    )
                } else {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM operations ORDER BY created_at DESC, id")
                }
                return try rows.map(Self.record)
            }
        }
    }

    public func save(_ operation: OperationRecord, stepRuns: [StepRun]) async throws -> OperationRecord {
        try await guarded {
            try await pool.write { db in
                var saved = operation
                saved.version = operation.version + 1
                let assignments = Self.columns.dropFirst().map { "\($0) = ?" }.joined(separator: ", ")
                // Every column but the id, which is the WHERE key with the version this write was based on.
                var setArguments = StatementArguments(Array(Self.values(saved).dropFirst()))
                _ = setArguments.append(contentsOf: [operation.id, operation.version])
                try db.execute(
                    sql: "UPDATE operations SET \(assignments) WHERE id = ? AND version = ?",
                    arguments: setArguments
                )
                guard db.changesCount == 1 else {
                    let current = try Int.fetchOne(
                        db,
                        sql: "SELECT version FROM operations WHERE id = ?",
                        arguments: [operation.id]
                    )
                    guard let current else {
                        throw StorageError(.notFound, "operation \(operation.id) does not exist")
                    }
                    throw StorageError(
                        .conflict,
                        "operation \(operation.id) was changed by another writer (stored version \(current), "
                            + "this write was based on version \(operation.version)); nothing was overwritten"
                    )
                }
                for run in stepRuns {
                    try db.execute(
                        sql: """
                            INSERT INTO step_runs (operation_id, pass, position, step, plugin, plugin_file_hash,
                                outcome, started_at, duration_ms, message)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            run.operationID, run.pass, run.position, run.step, run.plugin, run.pluginFileHash,
                            run.outcome, Self.milliseconds(run.startedAt), run.durationMilliseconds, run.message,
                        ]
                    )
                }
                return saved
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
                )
                .map { row in
                    StepRun(
                        operationID: row["operation_id"],
                        pass: row["pass"],
                        position: row["position"],
                        step: row["step"],
                        plugin: row["plugin"],
                        pluginFileHash: row["plugin_file_hash"],
                        outcome: row["outcome"],
                        startedAt: Self.date(row["started_at"]),
                        durationMilliseconds: row["duration_ms"],
                        message: row["message"]
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
    ) async throws
        -> [OperationRecord]
    {
        try await guarded {
            try await pool.write { db in
                var sql = """
                    SELECT * FROM operations
                    WHERE state IN ('pending', 'in_progress') AND next_attempt_at <= ?
                    """
                var arguments: StatementArguments = [Self.milliseconds(now)]
                if let id {
                    sql += " AND id = ?"
                    _ = arguments.append(contentsOf: [id])
                }
                sql += " ORDER BY next_attempt_at, id"
                var claimed: [OperationRecord] = []
                for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
                    guard claimed.count < limit else { break }
                    var operation = try Self.record(row)
                    let free =
                        operation.claimedBy == nil || operation.claimedBy == owner.description
                        || (operation.claimedUntil ?? .distantPast) < now
                        || ClaimOwner(operation.claimedBy ?? "").isDeadLocalProcess
                    guard free else { continue }
                    operation.claimedBy = owner.description
                    operation.claimedUntil = now.addingTimeInterval(lease.timeInterval)
                    operation.version += 1
                    try db.execute(
                        sql:
                            "UPDATE operations SET claimed_by = ?, claimed_until = ?, version = ? WHERE id = ? AND version = ?",
                        arguments: [
                            owner.description, Self.milliseconds(operation.claimedUntil!), operation.version,
                            operation.id,
                            operation.version - 1,
                        ]
                    )
                    claimed.append(operation)
                }
                return claimed
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
                        sql:
                            "SELECT next_attempt_at FROM operations WHERE id = ? AND state IN ('pending', 'in_progress')",
                        arguments: [id]
                    )
                } else {
                    due = try Int64.fetchOne(
                        db,
                        sql: "SELECT MIN(next_attempt_at) FROM operations WHERE state IN ('pending', 'in_progress')"
                    )
                }
                return due.map(Self.date)
            }
        }
    }

    public func recordLocalProvisioning(
        operationID: String,
        request: String,
        provisionerOperationID: String,
        runtimeID: String,
        at date: Date
    ) async throws -> (provisionerOperationID: String, runtimeID: String) {
        try await guarded {
            try await pool.write { db in
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
                return (row["provisioner_operation_id"], row["runtime_id"])
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

    static let columns = [
        "id", "instance_id", "type", "state", "description", "created_at", "updated_at", "version", "attempt",
        "next_attempt_at", "deadline", "runtime_id", "provisioner_operation_id", "last_error_step",
        "last_error_plugin", "last_error_message", "parameters", "fields", "provisioning_request", "claimed_by",
        "claimed_until",
    ]

    static func values(_ operation: OperationRecord) -> [(any DatabaseValueConvertible)?] {
        [
            operation.id, operation.instanceID, operation.type, operation.state.rawValue, operation.description,
            milliseconds(operation.createdAt), milliseconds(operation.updatedAt), operation.version, operation.attempt,
            operation.nextAttemptAt.map(milliseconds), milliseconds(operation.deadline), operation.runtimeID,
            operation.provisionerOperationID, operation.lastError?.step, operation.lastError?.plugin,
            operation.lastError?.message, operation.parameters, JSONText.object(operation.fields),
            operation.provisioningRequest, operation.claimedBy, operation.claimedUntil.map(milliseconds),
        ]
    }

    static func arguments(_ operation: OperationRecord) -> StatementArguments {
        StatementArguments(values(operation))
    }

    static func record(_ row: Row) throws -> OperationRecord {
        var operation = OperationRecord(
            id: row["id"],
            instanceID: row["instance_id"],
            type: row["type"],
            state: OperationState(rawValue: row["state"]) ?? .failed,
            description: row["description"],
            createdAt: date(row["created_at"]),
            deadline: date(row["deadline"]),
            parameters: row["parameters"]
        )
        operation.updatedAt = date(row["updated_at"])
        operation.version = row["version"]
        operation.attempt = row["attempt"]
        operation.nextAttemptAt = (row["next_attempt_at"] as Int64?).map(date)
        operation.runtimeID = row["runtime_id"]
        operation.provisionerOperationID = row["provisioner_operation_id"]
        if let step: String = row["last_error_step"] {
            operation.lastError = LastError(
                step: step,
                plugin: row["last_error_plugin"],
                message: row["last_error_message"] ?? ""
            )
        }
        operation.fields = try JSONText.members(of: row["fields"])
        operation.provisioningRequest = row["provisioning_request"]
        operation.claimedBy = row["claimed_by"]
        operation.claimedUntil = (row["claimed_until"] as Int64?).map(date)
        return operation
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
