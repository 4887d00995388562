import Foundation
import GRDB
public import StepHostCore
public import StepHostStorage

extension SQLiteOperationStore {
    /// The instance with `id`, if the broker created it.
    public func brokerInstance(id: String) async throws -> BrokerInstance? {
        try await guarded {
            try await pool.read { db in try Self.brokerInstance(id, db) }
        }
    }

    /// Creates `operation` for `instance` in one transaction, unless the instance exists: then nothing is written
    /// and the existing instance is returned. So two requests for one instance create one operation.
    ///
    /// - Returns: `nil` when the operation was created, else the instance that already existed.
    public func createInstance(_ instance: BrokerInstance, operation: OperationRecord) async throws -> BrokerInstance? {
        try await guarded {
            try await durableWrite { db in
                if let existing = try Self.brokerInstance(instance.instanceID, db) { return existing }
                try Self.insert(operation, db)
                try db.execute(
                    sql: """
                        INSERT INTO broker_instances
                            (instance_id, service_id, plan_id, parameters, operation_id, created_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        instance.instanceID, instance.serviceID, instance.planID, instance.parameters,
                        instance.operationID, Int64((instance.createdAt.timeIntervalSince1970 * 1000).rounded(.down)),
                    ]
                )
                return nil
            }
        }
    }

    private static func brokerInstance(_ id: String, _ db: Database) throws -> BrokerInstance? {
        try Row.fetchOne(db, sql: "SELECT * FROM broker_instances WHERE instance_id = ?", arguments: [id]).map {
            BrokerInstance(
                instanceID: $0["instance_id"],
                serviceID: $0["service_id"],
                planID: $0["plan_id"],
                parameters: $0["parameters"],
                operationID: $0["operation_id"],
                createdAt: date($0["created_at"])
            )
        }
    }
}
