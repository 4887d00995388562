public import Foundation
public import StepHostCore

/// Everything a running host asks of its database, beyond the engine's ``OperationStore``: the broker's
/// instances, paged listings, counts for metrics, a readiness write and the operator commands' lookups. The
/// SQLite store (one machine) and the PostgreSQL store (several hosts sharing the work) both implement it, and the
/// host, the service and the commands use nothing else.
public protocol HostStore: OperationStore, ProvisionerAnswerLog, LocalProvisioningRecords, QuarantineStore {
    /// Where the store is, for messages: a file path, or `user@host:port/database` (never a password).
    var location: String { get }

    /// The instance with `id`, if the broker created it.
    func brokerInstance(id: String) async throws -> BrokerInstance?

    /// Creates `operation` for `instance` atomically, unless the instance exists: then nothing is written and the
    /// existing instance is returned. So two requests for one instance create one operation, on any number of
    /// hosts.
    ///
    /// - Returns: `nil` when the operation was created, else the instance that already existed.
    func createInstance(_ instance: BrokerInstance, operation: OperationRecord) async throws -> BrokerInstance?

    /// Operations newest first, `limit` at a time: those in `state` (any when `nil`) and for `instanceID` (any when
    /// `nil`), after the page that `after` ended (a ``OperationPage/next`` this method returned).
    ///
    /// - Throws: ``InvalidCursor`` when `after` is not a cursor this method made; a ``StorageError``.
    func operations(
        state: OperationState?,
        instanceID: String?,
        limit: Int,
        after cursor: String?
    ) async throws
        -> OperationPage

    /// The number of operations in each state, and of unfinished ones due at `now`: one query, for metrics.
    func operationCounts(now: Date) async throws -> OperationCounts

    /// Throws unless the database takes writes now (for `/readyz`): records `owner`'s heartbeat, a real write.
    func checkWritable(owner: String, now: Date) async throws

    /// The ids that begin with `prefix` (compared without case), in order, at most `limit` of them.
    func operationIDs(prefix: String, limit: Int) async throws -> [String]

    /// The stored columns of an operation as text, for showing one that cannot be read; `nil` if there is none.
    func storedColumns(id: String) async throws -> [(column: String, value: String?)]?

    /// Releases the store's connections.
    func close() throws
}

/// A service instance created through the broker: the request that created it, and its operation.
public struct BrokerInstance: Sendable, Hashable {
    public var instanceID: String
    public var serviceID: String
    public var planID: String
    /// The provisioning parameters as canonical JSON (sorted keys), to tell an identical repeat from a change.
    public var parameters: String
    public var operationID: String
    public var createdAt: Date

    public init(
        instanceID: String,
        serviceID: String,
        planID: String,
        parameters: String,
        operationID: String,
        createdAt: Date
    ) {
        self.instanceID = instanceID
        self.serviceID = serviceID
        self.planID = planID
        self.parameters = parameters
        self.operationID = operationID
        self.createdAt = createdAt
    }
}

/// One page of operations, newest first, and where the next page starts.
public struct OperationPage: Sendable {
    public var operations: [OperationRecord]
    public var unreadable: [UnreadableOperation]
    /// Opaque: pass it back as `after` for the next page; `nil` on the last page.
    public var next: String?

    public init(operations: [OperationRecord] = [], unreadable: [UnreadableOperation] = [], next: String? = nil) {
        self.operations = operations
        self.unreadable = unreadable
        self.next = next
    }
}

/// A page cursor that ``HostStore/operations(state:instanceID:limit:after:)`` did not make.
public struct InvalidCursor: Error, Sendable {
    public init() {}
}

/// The page cursor both stores use: the last row's creation time in milliseconds and its id.
public enum PageCursor {
    public static func make(createdAt milliseconds: Int64, id: String) -> String { "\(milliseconds).\(id)" }

    public static func parse(_ cursor: String) -> (createdAt: Int64, id: String)? {
        guard let dot = cursor.firstIndex(of: "."), let created = Int64(cursor[..<dot]) else { return nil }
        let id = String(cursor[cursor.index(after: dot)...])
        guard !id.isEmpty, id.utf8.count <= 256 else { return nil }
        return (created, id)
    }
}

/// How many operations there are in each state, and how many of them are due now.
public struct OperationCounts: Sendable {
    public var byState: [OperationState: Int]
    /// Unfinished and due now (including those a host holds).
    public var due: Int

    public init(byState: [OperationState: Int] = [:], due: Int = 0) {
        self.byState = byState
        self.due = due
    }
}

extension HostStore {
    /// Operations newest first, `limit` at a time, of any instance.
    public func operations(state: OperationState?, limit: Int, after cursor: String?) async throws -> OperationPage {
        try await operations(state: state, instanceID: nil, limit: limit, after: cursor)
    }
}
