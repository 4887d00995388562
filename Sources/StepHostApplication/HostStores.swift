public import Logging
import StepHostPostgres
import StepHostSQLite
public import StepHostStorage

/// Opens the database a host or a command names: the SQLite file, or PostgreSQL when a `postgres://` URL is given.
public enum HostStores {
    /// How a store is opened.
    public enum Access: Sendable {
        /// Create the SQLite file if it is missing; bring the schema up to date.
        case create
        /// The SQLite file must exist; bring the schema up to date.
        case existing
        /// Read only: the schema must be current, and nothing is written (not even a migration).
        case readOnly
    }

    /// Opens the store at `url` (PostgreSQL) if given, else the SQLite file at `path`.
    ///
    /// - Throws: ``StorageError`` (never holding the URL's password).
    public static func open(path: String, url: String?, access: Access, logger: Logger) async throws -> any HostStore {
        if let url {
            return try await PostgresOperationStore(url: url, logger: logger, readOnly: access == .readOnly)
        }
        let mode: SQLiteOperationStore.OpenMode =
            switch access {
            case .create: .create
            case .existing: .existing
            case .readOnly: .readOnly
            }
        do {
            return try SQLiteOperationStore(path: path, mode: mode)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, "the database \(path) failed", cause: "\(error)")
        }
    }

    /// Whether `text` names a PostgreSQL database (`postgres://` or `postgresql://`).
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }
}

/// Reads a PostgreSQL URL without connecting.
public enum PostgresURLCheck {
    /// `user@host:port/database` of `url` (never its password); `nil` if it is not a usable PostgreSQL URL.
    public static func location(_ url: String) -> String? {
        PostgresOperationStore.location(ofURL: url)
    }

    /// What is wrong with `url` (never its password), or `nil` if it is a usable PostgreSQL URL.
    public static func problem(_ url: String) -> String? {
        PostgresOperationStore.problem(inURL: url)
    }
}
