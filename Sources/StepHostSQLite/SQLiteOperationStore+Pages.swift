public import Foundation
import GRDB
public import StepHostCore
public import StepHostStorage

extension SQLiteOperationStore {
    /// Operations newest first, `limit` at a time: those in `state` (any when `nil`) and for `instanceID` (any when
    /// `nil`), after the page that `after` ended (a ``OperationPage/next`` this method returned).
    ///
    /// - Throws: ``InvalidCursor`` when `after` is not a cursor this method made; a ``StorageError``.
    public func operations(
        state: OperationState?,
        instanceID: String? = nil,
        limit: Int,
        after cursor: String?
    ) async throws -> OperationPage {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let state {
            conditions.append("state = ?")
            arguments += [state.rawValue]
        }
        if let instanceID {
            conditions.append("instance_id = ?")
            arguments += [instanceID]
        }
        if let cursor {
            guard let (created, id) = PageCursor.parse(cursor) else { throw InvalidCursor() }
            conditions.append("(created_at < ? OR (created_at = ? AND id > ?))")
            arguments += [created, created, id]
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let size = max(1, limit)
        arguments += [size + 1]
        let bound = arguments
        let sql = "\(Self.selectOperations)\(whereClause) ORDER BY created_at DESC, id LIMIT ?"
        return try await guarded {
            try await pool.read { db in
                let rows = try Row.fetchAll(db, sql: sql, arguments: bound)
                var page = OperationPage(operations: [], unreadable: [], next: nil)
                for row in rows.prefix(size) {
                    do {
                        page.operations.append(try Self.record(row))
                    } catch {
                        page.unreadable.append(Self.unreadable(row, error))
                    }
                }
                if rows.count > size, let last = rows.prefix(size).last {
                    let created: Int64 = last["created_at"]
                    let id: String = last["id"]
                    page.next = PageCursor.make(createdAt: created, id: id)
                }
                return page
            }
        }
    }

    /// The number of operations in each state, and of unfinished ones due at `now`: one query, for metrics.
    public func operationCounts(now: Date) async throws -> OperationCounts {
        let milliseconds = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        return try await guarded {
            try await pool.read { db in
                var counts = OperationCounts(byState: [:], due: 0)
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM operations GROUP BY state") {
                    let state: String = row["state"]
                    if let known = OperationState(rawValue: state) { counts.byState[known] = row["n"] }
                }
                counts.due =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM operations WHERE state IN ('pending', 'in_progress')
                                AND (next_pass_at IS NULL OR typeof(next_pass_at) != 'integer' OR next_pass_at <= ?)
                            """,
                        arguments: [milliseconds]
                    ) ?? 0
                return counts
            }
        }
    }
}

extension SQLiteOperationStore {
    /// Throws unless the database takes writes now (for `/readyz`): it records `owner`'s heartbeat, a real write
    /// that must reach the file (a write that changes nothing commits even on a file that can no longer be
    /// written), committed without waiting for the disk.
    public func checkWritable(owner: String, now: Date) async throws {
        let milliseconds = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        try await guarded {
            try await unsyncedWrite { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO host_heartbeats (owner, at) VALUES (?, ?)",
                    arguments: [owner, milliseconds]
                )
            }
        }
    }
}
