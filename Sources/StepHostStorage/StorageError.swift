package import StepHostCore

/// An error from the operation store, with what to do about it.
///
/// Match on ``code``: `catch let error as StorageError where error.code == .conflict`.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case notFound = "not-found"
            case conflict
            case corrupt
            case newerSchema = "newer-schema"
            case olderSchema = "older-schema"
            case unavailable
            case claimLost = "claim-lost"
            case refused
            case disconnected
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No operation has the id.
        public static let notFound = Code(.notFound)
        /// Another writer changed the operation since it was read (optimistic locking).
        public static let conflict = Code(.conflict)
        /// The file is not a stephost database, or is damaged.
        public static let corrupt = Code(.corrupt)
        /// The database was written by a newer stephost.
        public static let newerSchema = Code(.newerSchema)
        /// The database was written by an earlier stephost; a command that writes upgrades it in place.
        public static let olderSchema = Code(.olderSchema)
        /// The database cannot be opened or written.
        public static let unavailable = Code(.unavailable)
        /// The write was made for a host that no longer holds the operation's claim.
        public static let claimLost = Code(.claimLost)
        /// The database refused this one write for what it holds (a constraint, a value too big): the operation's
        /// own trouble, unlike ``unavailable``, which is the database's.
        public static let refused = Code(.refused)
        /// The database server cannot be reached now (it restarts, the network fails): nothing was written, and the
        /// same request may succeed later. A host waits and tries again; it does not stop.
        public static let disconnected = Code(.disconnected)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    /// The underlying error's text, when there is one.
    public var cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        cause.map { "\(message) (\($0))" } ?? message
    }
}

extension StorageError {
    /// A write based on a version someone else has since replaced.
    package static func conflict(_ id: String, stored: Int, basedOn: Int) -> StorageError {
        StorageError(
            .conflict,
            "operation \(id) was changed by another writer (stored version \(stored), "
                + "this write was based on version \(basedOn)); nothing was overwritten"
        )
    }

    /// A write or renewal for a host that no longer holds the operation's claim.
    package static func claimLost(operationID: String, owner: ClaimOwner, holder: String?) -> StorageError {
        StorageError(
            .claimLost,
            "operation \(operationID) is no longer claimed by \(owner) ("
                + (holder.map { "\($0) holds it now" } ?? "nobody holds it") + "); nothing was written"
        )
    }

    /// A write of an operation that does not exist.
    package static func missing(_ id: String) -> StorageError {
        StorageError(.notFound, "operation \(id) does not exist")
    }
}
