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
            case unavailable
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
        /// The database cannot be opened or written.
        public static let unavailable = Code(.unavailable)

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
