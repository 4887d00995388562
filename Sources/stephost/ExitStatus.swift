import ArgumentParser

/// The exit statuses of stephost's commands, one per kind of failure, so scripts can tell them apart.
enum ExitStatus {
    /// The operation failed (provision, run) or a plugin is broken (list-plugins).
    static let failed = ExitCode(1)
    /// check-plugin: every file loads and runs, but something should be fixed before it is deployed.
    static let checkWarnings = ExitCode(4)
    /// The plugin directory cannot be used.
    static let pluginDirectoryUnusable = ExitCode(2)
    /// A plugin is broken, so the engine refuses to start (fail closed).
    static let brokenPlugins = ExitCode(3)
    /// A flag's value is refused, or the configuration file is invalid (EX_USAGE, as ArgumentParser's own usage
    /// errors): both are checked before anything is opened or written.
    static let invalidConfiguration = ExitCode.validationFailure
    /// The parameters are malformed, not an object, too large or invalid (EX_DATAERR).
    static let invalidParameters = ExitCode(65)
    /// The stored operation cannot be read: its stored data is damaged (EX_DATAERR).
    static let unreadableOperation = ExitCode(65)
    /// The host stopped taking new work (too many in-process steps stuck past their deadlines): restart it
    /// (EX_TEMPFAIL).
    static let hostStopped = ExitCode(75)
    /// The operation, the database, the parameters file or a named configuration file does not exist
    /// (EX_NOINPUT).
    static let notFound = ExitCode(66)
    /// The database cannot be opened or is not a stephost database (EX_IOERR).
    static let databaseUnusable = ExitCode(74)
    /// The database has a schema of another stephost version (EX_CONFIG): a newer one (upgrade stephost), or
    /// an older one that only a command that writes upgrades.
    static let databaseSchema = ExitCode(78)
}
