import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostStorage

/// The database options every command that reads or writes operations shares: a SQLite file (the default), or a
/// PostgreSQL database that several hosts share.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The SQLite database file (default: $STEPHOST_DB, else the configuration file's database, else "
                + "./stephost.sqlite).",
            valueName: "file"
        )
    )
    var database: String?

    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "A PostgreSQL database instead of the SQLite file, for several hosts sharing the work: "
                + "postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=require[&sslrootcert=CA.pem]] (TLS verifies "
                + "the server's certificate and name; sslrootcert: the CAs to trust instead of the system's) (default: "
                + "$STEPHOST_DATABASE_URL, "
                + "else the configuration file's database-url). A password on the command line is visible to "
                + "other users of the machine: prefer the variable, the file or $PGPASSWORD.",
            valueName: "url"
        )
    )
    var databaseURL: String?

    func validate() throws {
        if database != nil && databaseURL != nil {
            throw ValidationError("give --db (a SQLite file) or --database-url (PostgreSQL), not both")
        }
        if let database, HostStores.isPostgresURL(database) {
            throw ValidationError("--db takes a SQLite file; give a PostgreSQL URL with --database-url")
        }
        if let databaseURL { try Self.check(databaseURL, from: "--database-url") }
    }

    /// Throws unless `url` is a PostgreSQL URL this host can use; the message never shows the password.
    private static func check(_ url: String, from source: String) throws {
        guard HostStores.isPostgresURL(url) else {
            throw ValidationError(
                "\(source) is not postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=disable|require"
                    + "[&sslrootcert=PATH]] (the value is not shown: it may hold a password)"
            )
        }
        if let problem = PostgresURLCheck.problem(url) { throw ValidationError("\(source): \(problem)") }
    }

    /// The PostgreSQL URL, if one is selected: `--database-url`, else `--db` (which selects the SQLite file), else
    /// `$STEPHOST_DATABASE_URL`, else `$STEPHOST_DB` (SQLite), else the configuration file's `database-url`, else
    /// its `database` (SQLite). A password missing from the URL is taken from `$PGPASSWORD`.
    func resolvedURL(_ file: ConfigurationFile) throws -> String? {
        if databaseURL != nil || database != nil { return databaseURL.map(Self.withPassword) }
        let environment = ProcessInfo.processInfo.environment
        let url = environment["STEPHOST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let path = environment["STEPHOST_DB"].flatMap { $0.isEmpty ? nil : $0 }
        if let url {
            if path != nil {
                throw ValidationError(
                    "both STEPHOST_DATABASE_URL and STEPHOST_DB are set; unset one, or choose with --db or --database-url"
                )
            }
            try Self.check(url, from: "STEPHOST_DATABASE_URL")
            return Self.withPassword(url)
        }
        if path != nil { return nil }
        return file.databaseURL.map(Self.withPassword)
    }

    /// `url` with `$PGPASSWORD` as its password when it has none.
    private static func withPassword(_ url: String) -> String {
        guard let password = ProcessInfo.processInfo.environment["PGPASSWORD"], !password.isEmpty,
            var components = URLComponents(string: url), components.password == nil
        else { return url }
        components.password = password
        return components.string ?? url
    }

    /// The database file: the flag, else the environment, else the configuration file, else `./stephost.sqlite`.
    func resolvedPath(_ file: ConfigurationFile) -> String {
        resolve(database, environment: "STEPHOST_DB", file: file.database, default: "stephost.sqlite")
    }

    /// Where the selected database is, for messages (never a password).
    func location(_ file: ConfigurationFile) -> String {
        if let url = try? resolvedURL(file) { return PostgresURLCheck.location(url) ?? "PostgreSQL" }
        return resolvedPath(file)
    }

    /// Opens the store, or prints why not and exits with the matching status.
    func open(_ access: HostStores.Access, _ file: ConfigurationFile) async throws -> any HostStore {
        let url = try resolvedURL(file)
        do {
            return try await HostStores.open(
                path: resolvedPath(file),
                url: url,
                access: access,
                logger: Logger(label: "stephost.database") { _ in SwiftLogNoOpLogHandler() }
            )
        } catch let error as StorageError {
            throw fail(error)
        }
    }
}

/// Prints a storage error and returns the exit status that goes with it.
func fail(_ error: StorageError) -> ExitCode {
    printError("stephost: \(error)")
    switch error.code {
    case .notFound: return ExitStatus.notFound
    case .newerSchema, .olderSchema: return ExitStatus.databaseSchema
    default: return ExitStatus.databaseUnusable
    }
}
