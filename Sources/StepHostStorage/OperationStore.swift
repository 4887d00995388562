public import Foundation
public import StepHostCore

/// Where operations live: SQLite for one host, later PostgreSQL for several.
///
/// Two kinds of record, never mixed:
/// - **Operation data** (fixed fields, parameters, custom fields, step history). Every write is optimistic:
///   it names the version it read and fails with ``StorageError/Code/conflict`` if someone else wrote since,
///   so nothing is ever silently overwritten.
/// - **Claims**: which host works on an operation, until when. Taking, renewing and releasing a claim never
///   changes the operation's `version`, so a host can renew its lease while a step runs without
///   conflicting with its own data writes. A data write made on behalf of a claim is refused with
///   ``StorageError/Code/claimLost`` once another host holds the operation.
///
/// Every implementation passes the store conformance suite in the tests.
public protocol OperationStore: Sendable {
    /// Stores a new operation, unclaimed.
    func create(_ operation: OperationRecord) async throws

    /// The operation with `id`, or `nil`.
    func operation(id: String) async throws -> OperationRecord?

    /// Operations, newest first, optionally only those in `state`. A stored operation that cannot be read is
    /// listed apart with the reason, never hiding the others.
    func operations(state: OperationState?) async throws -> OperationListing

    /// The ids of the unfinished (pending or in-progress) operations, oldest first, and of the unreadable ones
    /// last, without reading their rows (see the default in the extension).
    func unfinishedOperationIDs() async throws -> [String]

    /// The states of the operations with `ids` that exist, without reading their rows (see the default).
    func operationStates(ids: [String]) async throws -> [String: OperationState]

    /// Writes `operation` if the stored version is still `operation.version`, and appends `stepRuns` in the
    /// same transaction, dropping runs of passes older than ``StepHistory/keptPasses`` (but the first) and
    /// counting them in `droppedStepRuns`. Returns the operation with its new version and count.
    ///
    /// - Parameters:
    ///   - claim: the host this write is made for. When set, the write is refused with `.claimLost` unless
    ///     that host holds the operation's claim. `nil` writes regardless of claims (operator tools, tests).
    ///   - releasingClaim: drop the claim in the same transaction (the pass ended).
    ///   - durable: whether the write must be on disk (surviving power loss) before the call returns. A write
    ///     that need not be is still made before any later write of the store, and becomes durable with the
    ///     next durable one (a pass's start: if the machine dies, the pass is simply run again).
    func save(
        _ operation: OperationRecord,
        stepRuns: [StepRun],
        claim: ClaimOwner?,
        releasingClaim: Bool,
        durable: Bool
    ) async throws -> OperationRecord

    /// The step history of an operation, in order.
    func stepRuns(operationID: String) async throws -> [StepRun]

    /// Claims up to `limit` unfinished operations that are due at `now` and not held by a live host,
    /// for `owner` until `now + lease`, earliest due first. With `id`, considers only that operation.
    ///
    /// A claim is free when there is none, when its lease ran out, or when its owner is a process of this host
    /// that no longer runs. An operation `owner` holds already is not claimed again: that host is running a
    /// pass of it. A due operation that cannot be read is failed in place with the reason (it can never run),
    /// so it neither blocks the others nor stays due forever. When the replaced claim had a step recorded as running (``markRunning(operationID:owner:step:until:)``),
    /// its host died (or stopped) inside that step: the result says which.
    func claimDue(
        now: Date,
        owner: ClaimOwner,
        lease: Duration,
        limit: Int,
        id: String?
    ) async throws -> [ClaimedOperation]

    /// Records that `owner` is about to run `step` of the operation, and extends its claim until `until`, in
    /// one write to the claim (never to the operation's data). The record is replaced by the next step's and
    /// dropped with the claim. It must survive the death of the host process, not a power loss, so stores may
    /// write it without forcing it to disk.
    ///
    /// - Throws: `.claimLost` when `owner` does not hold the claim (any more).
    func markRunning(operationID: String, owner: ClaimOwner, step: RunningStep, until: Date) async throws

    /// Extends `owner`'s claim on the operation until `until`.
    ///
    /// - Throws: `.claimLost` when `owner` does not hold it (any more).
    func renewClaim(operationID: String, owner: ClaimOwner, until: Date) async throws

    /// Drops `owner`'s claim on the operation; does nothing if `owner` does not hold it.
    func releaseClaim(operationID: String, owner: ClaimOwner) async throws

    /// The claim on the operation, or `nil` when nobody holds it.
    func claim(operationID: String) async throws -> Claim?

    /// When the earliest unfinished operation (or only `id`) is next due, or `nil` if none is unfinished.
    func nextDue(id: String?) async throws -> Date?

    /// The last time this store found its database server gone and then answering again; `nil` if it never did
    /// (an embedded database is never away).
    var lastOutage: DatabaseOutage? { get }
}

/// A time the database server could not be reached, as one store saw it.
public struct DatabaseOutage: Sendable, Hashable {
    /// When a request first found the server gone or silent.
    public var lostAt: Date
    /// When it answered again.
    public var answeredAt: Date

    public init(lostAt: Date, answeredAt: Date) {
        self.lostAt = lostAt
        self.answeredAt = answeredAt
    }
}

extension OperationStore {
    public var lastOutage: DatabaseOutage? { nil }

    /// The states of the operations with `ids` that exist (an unknown stored state is left out). Stores override
    /// it to read the state column alone.
    public func operationStates(ids: [String]) async throws -> [String: OperationState] {
        var states: [String: OperationState] = [:]
        for id in ids {
            do {
                if let operation = try await operation(id: id) { states[id] = operation.state }
            } catch let error as StorageError where error.code == .corrupt {
                states[id] = .failed
            }
        }
        return states
    }

    /// The ids of the unfinished (pending or in-progress) operations, oldest first, and of the unreadable ones
    /// last. Stores override it to read the ids alone: a long queue must not be loaded whole to be counted.
    public func unfinishedOperationIDs() async throws -> [String] {
        let pending = try await operations(state: .pending)
        let running = try await operations(state: .inProgress)
        let unreadable = (pending.unreadable + running.unreadable).map(\.id).sorted()
        return (pending.operations + running.operations).sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            .map(\.id) + unreadable
    }

    /// A durable save; see ``save(_:stepRuns:claim:releasingClaim:durable:)``.
    public func save(
        _ operation: OperationRecord,
        stepRuns: [StepRun],
        claim: ClaimOwner?,
        releasingClaim: Bool
    ) async throws -> OperationRecord {
        try await save(operation, stepRuns: stepRuns, claim: claim, releasingClaim: releasingClaim, durable: true)
    }

    /// Writes `operation` regardless of claims (operator tools and tests); see
    /// ``save(_:stepRuns:claim:releasingClaim:)``.
    public func save(_ operation: OperationRecord, stepRuns: [StepRun] = []) async throws -> OperationRecord {
        try await save(operation, stepRuns: stepRuns, claim: nil, releasingClaim: false)
    }
}

/// How much step history a store keeps per operation: the runs of the first pass and of the most recent
/// passes. An operation that retries for a day (a poll every few seconds) would otherwise grow its history,
/// and the database, without bound. The runs dropped in between are counted in
/// `OperationRecord.droppedStepRuns`.
public enum StepHistory {
    /// The most recent passes whose step runs are kept, besides the first pass.
    public static let keptPasses = 20
}

/// Which host works on an operation, until when its lease holds, and which step it last started.
public struct Claim: Sendable, Hashable {
    public var operationID: String
    public var owner: ClaimOwner
    public var expiresAt: Date
    /// The step the owner recorded as running last, if any.
    public var running: RunningStep?

    public init(operationID: String, owner: ClaimOwner, expiresAt: Date, running: RunningStep? = nil) {
        self.operationID = operationID
        self.owner = owner
        self.expiresAt = expiresAt
        self.running = running
    }

    /// Whether another claim may replace this one at `now`: its lease ran out or its owner is gone. Not
    /// while it is held, not even by its own owner, which is running a pass of the operation.
    public func isFree(at now: Date) -> Bool {
        expiresAt < now || owner.isDeadLocalProcess
    }
}

/// Operations as listed: those that could be read, and those that could not, each with the reason.
public struct OperationListing: Sendable {
    public var operations: [OperationRecord]
    public var unreadable: [UnreadableOperation]

    public init(operations: [OperationRecord], unreadable: [UnreadableOperation] = []) {
        self.operations = operations
        self.unreadable = unreadable
    }
}

/// A stored operation that cannot be read (its stored data is damaged or was changed by hand): its id, the
/// state column as stored, and why it cannot be read.
public struct UnreadableOperation: Sendable, Hashable {
    public var id: String
    public var state: String
    public var reason: String

    public init(id: String, state: String, reason: String) {
        self.id = id
        self.state = state
        self.reason = reason
    }
}

/// An operation a host claimed, and the step a previous host died in, if the claim it replaced says so.
public struct ClaimedOperation: Sendable, Hashable {
    public var operation: OperationRecord
    /// The step the replaced claim's host had recorded as running: it never returned.
    public var interrupted: RunningStep?

    public init(_ operation: OperationRecord, interrupted: RunningStep? = nil) {
        self.operation = operation
        self.interrupted = interrupted
    }

    public var id: String { operation.id }

    /// Whether its pass must run with no other pass of this host beside it: a host died in it (or it carries a
    /// crash-loop trace), so a death during this pass can be blamed on it.
    public var runsAlone: Bool { interrupted != nil || operation.hostDeaths != nil }
}

/// Provisioner answers that could not be recorded with their operation (this host had lost its claim, another
/// writer had changed it): appended here instead, so no operation the provisioner created goes untracked.
/// Writing one never touches the operation's data or version.
public protocol ProvisionerAnswerLog: Sendable {
    /// Appends what the provisioner answered to an attempt of the operation.
    func recordProvisionerAnswer(
        operationID: String,
        attempt: Int,
        provisionerOperationID: String,
        runtimeID: String?,
        at: Date
    ) async throws

    /// The answers appended for an operation, oldest first.
    func provisionerAnswers(operationID: String) async throws -> [ProvisioningAttempt]
}

/// The embedded local provisioner's own records: the requests it received, one per operation.
///
/// Kept apart from ``OperationStore`` so that a store for operations need not carry them; the SQLite
/// store implements both.
public protocol LocalProvisioningRecords: Sendable {
    /// Records a request. Keyed by operation id: a second request for the same operation returns the first
    /// one's ids instead of recording again.
    func recordLocalProvisioning(
        operationID: String,
        request: String,
        provisionerOperationID: String,
        runtimeID: String,
        at: Date
    ) async throws -> (provisionerOperationID: String, runtimeID: String)

    /// How many requests were recorded for an operation.
    func localProvisioningCount(operationID: String) async throws -> Int
}

/// A store that can record the step a pass is about to run without a database write (``OperationStore/markRunning(operationID:owner:step:until:)``
/// writes one). The record must be readable by the next host to take the operation, after this host's process
/// died; the store's claim readers (`claimDue`, `claim(operationID:)`) find it as they find a `markRunning` one.
public protocol RunningStepRecorder: Sendable {
    /// Records that `owner` runs `step` of the operation now. `false` when it cannot: call `markRunning` then.
    func recordRunning(operationID: String, owner: ClaimOwner, step: RunningStep) -> Bool
    /// The pass ended (its last write is done): the record goes.
    func clearRunning(operationID: String, owner: ClaimOwner)
}

/// Where a host keeps its quarantined plugin builds (see ``QuarantineRecord``), so every later start knows them.
public protocol QuarantineStore: Sendable {
    /// Records a quarantined build; a build already recorded keeps its first record.
    func quarantine(_ record: QuarantineRecord) async throws
    /// Every quarantined build, oldest first.
    func quarantinedPlugins() async throws -> [QuarantineRecord]
    /// Clears every build of the plugin `plugin`; returns how many were cleared.
    func clearQuarantine(plugin: String) async throws -> Int
}

extension RunningStep {
    /// The running step a claim recorded, as a store read it back (`nil`: none). A record that cannot be read
    /// still says a host died in some step, so it is kept as an unknown step, never an error that would stop every
    /// claim.
    public static func recorded(_ json: String?, at now: Date) -> RunningStep? {
        guard let json else { return nil }
        return (try? RunningStep(json: json))
            ?? RunningStep(step: "(unreadable record)", plugin: nil, pluginFileHash: nil, pass: 0, startedAt: now)
    }
}

/// Why a due operation whose stored row cannot be read is failed in place by a claim: it can never run.
public func unreadableOperationMessage(_ error: any Error) -> String {
    "the stored operation cannot be read, so it cannot run: \(error)"
}
