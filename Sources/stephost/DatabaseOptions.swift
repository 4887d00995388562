import ArgumentParser
import Foundation
import StepHostApplication
import StepHostSQLite
import StepHostStorage

/// The database option every command that reads or writes operations shares.
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

    /// The database file: the flag, else the environment, else the configuration file, else `./stephost.sqlite`.
    func resolvedPath(_ file: ConfigurationFile) -> String {
        resolve(database, environment: "STEPHOST_DB", file: file.database, default: "stephost.sqlite")
    }

    /// Opens the store, or prints why not and exits with the matching status.
    func open(_ mode: SQLiteOperationStore.OpenMode, _ file: ConfigurationFile) throws -> SQLiteOperationStore {
        do {
            return try SQLiteOperationStore(path: resolvedPath(file), mode: mode)
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
