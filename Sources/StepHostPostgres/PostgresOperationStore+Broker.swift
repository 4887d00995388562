public import Foundation
import PostgresNIO
public import StepHostCore
public import StepHostStorage

/// The broker's instances, paged listings, counts and the operator commands' lookups: what the service and the
/// commands ask beyond the engine's protocol.
extension PostgresOperationStore {
    public func brokerInstance(id: String) async throws -> BrokerInstance? {
        try await guarded { [self] in
            for try await row in try await client.query(
                "SELECT * FROM broker_instances WHERE instance_id = \(id)",
                logger: logger
            ) {
                return try Self.brokerInstance(row.makeRandomAccess())
            }
            return nil
        }
    }

    /// The instance row is inserted first, with `ON CONFLICT DO NOTHING`: of two hosts inserting the same instance
    /// at once, the second waits on the first's uncommitted row and then inserts nothing, so exactly one operation
    /// is created however many hosts receive the request.
    public func createInstance(_ instance: BrokerInstance, operation: OperationRecord) async throws -> BrokerInstance? {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { connection in
                let inserted = try await Self.execute(
                    on: connection,
                    """
                    INSERT INTO broker_instances
                        (instance_id, service_id, plan_id, parameters, operation_id, created_at)
                    VALUES (\(instance.instanceID), \(instance.serviceID), \(instance.planID),
                        \(instance.parameters), \(instance.operationID), \(Self.milliseconds(instance.createdAt)))
                    ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id
                    """,
                    logger: logger
                )
                if inserted == 0 {
                    for try await row in try await connection.query(
                        "SELECT * FROM broker_instances WHERE instance_id = \(instance.instanceID)",
                        logger: logger
                    ) {
                        return try Self.brokerInstance(row.makeRandomAccess())
                    }
                    throw StorageError(
                        .corrupt,
                        "the instance \(instance.instanceID) was there and then was not; repeat the request"
                    )
                }
                try await Self.execute(on: connection, try Self.insert(operation), logger: logger)
                return nil
            }
        }
    }

    private static func brokerInstance(_ cells: PostgresRandomAccessRow) throws -> BrokerInstance {
        BrokerInstance(
            instanceID: try cells["instance_id"].decode(String.self),
            serviceID: try cells["service_id"].decode(String.self),
            planID: try cells["plan_id"].decode(String.self),
            parameters: try cells["parameters"].decode(String.self),
            operationID: try cells["operation_id"].decode(String.self),
            createdAt: date(try cells["created_at"].decode(Int64.self))
        )
    }

    public func operations(
        state: OperationState?,
        instanceID: String?,
        limit: Int,
        after cursor: String?
    ) async throws -> OperationPage {
        var position: (createdAt: Int64, id: String)?
        if let cursor {
            guard let parsed = PageCursor.parse(cursor) else { throw InvalidCursor() }
            position = parsed
        }
        let size = max(1, min(limit, 100_000))
        // NULL parameters match every row: one statement for every combination of filters.
        let query: PostgresQuery = """
            SELECT * FROM operations
            WHERE (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
                AND (\(instanceID)::text IS NULL OR instance_id = \(instanceID))
                AND (\(position?.createdAt)::bigint IS NULL OR created_at < \(position?.createdAt)
                    OR (created_at = \(position?.createdAt) AND id > \(position?.id)))
            ORDER BY created_at DESC, id LIMIT \(size + 1)
            """
        return try await guarded { [self] in
            var rows: [PostgresRandomAccessRow] = []
            for try await row in try await client.query(query, logger: logger) { rows.append(row.makeRandomAccess()) }
            var page = OperationPage()
            for cells in rows.prefix(size) {
                do {
                    page.operations.append(try Self.record(cells))
                } catch {
                    page.unreadable.append(
                        Self.unreadable(cells, error)
                    )
                }
            }
            if rows.count > size, let last = rows.prefix(size).last {
                page.next = PageCursor.make(
                    createdAt: try last["created_at"].decode(Int64.self),
                    id: try last["id"].decode(String.self)
                )
            }
            return page
        }
    }

    public func operationCounts(now: Date) async throws -> OperationCounts {
        try await guarded { [self] in
            var counts = OperationCounts()
            for try await (state, count) in try await client.query(
                "SELECT state, COUNT(*) FROM operations GROUP BY state",
                logger: logger
            ).decode((String, Int).self) {
                if let known = OperationState(rawValue: state) { counts.byState[known] = count }
            }
            for try await due in try await client.query(
                """
                SELECT COUNT(*) FROM operations WHERE state IN ('pending', 'in_progress')
                    AND (next_pass_at IS NULL OR next_pass_at <= \(Self.milliseconds(now)))
                """,
                logger: logger
            ).decode(Int.self) {
                counts.due = due
            }
            return counts
        }
    }

    public func checkWritable(owner: String, now: Date) async throws {
        try await guarded { [self] in
            try await execute(
                """
                INSERT INTO host_heartbeats (owner, at) VALUES (\(owner), \(Self.milliseconds(now)))
                ON CONFLICT (owner) DO UPDATE SET at = excluded.at
                """,
                logger: logger
            )
        }
    }

    public func operationIDs(prefix: String, limit: Int) async throws -> [String] {
        let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return try await guarded { [self] in
            var ids: [String] = []
            for try await id in try await client.query(
                "SELECT id FROM operations WHERE id ILIKE \(escaped + "%") ESCAPE '\\' ORDER BY id LIMIT \(limit)",
                logger: logger
            ).decode(String.self) {
                ids.append(id)
            }
            return ids
        }
    }

    /// Each column as PostgreSQL renders it as JSON (`to_json` of the row), so any column of any type reads back as
    /// text, whatever damage the row has.
    public func storedColumns(id: String) async throws -> [(column: String, value: String?)]? {
        try await guarded { [self] in
            var columns: [(column: String, value: String?)] = []
            var found = false
            for try await (column, value) in try await client.query(
                """
                SELECT key, CASE json_typeof(value) WHEN 'null' THEN NULL WHEN 'string' THEN value #>> '{}'
                    ELSE value::text END
                FROM operations, json_each(to_json(operations)) WITH ORDINALITY
                WHERE id = \(id) ORDER BY ordinality
                """,
                logger: logger
            ).decode((String, String?).self) {
                found = true
                columns.append((column, value))
            }
            return found ? columns : nil
        }
    }
}
