import ArgumentParser
import Foundation
import Glibc
import StepHostApplication

/// `--config FILE`, shared by every command that loads plugins or opens the database.
///
/// Precedence, setting by setting: a flag, else its environment variable (`STEPHOST_PLUGINS_DIR`, `STEPHOST_DB`),
/// else the configuration file, else the built-in default.
struct ConfigFileOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "The configuration file (default: $STEPHOST_CONFIG, else ./stephost.yaml or ./stephost.yml when "
                + "present). Flags and environment variables override it.",
            valueName: "file"
        )
    )
    var path: String?

    /// The names of the file used when neither `--config` nor `$STEPHOST_CONFIG` names one, in the working
    /// directory, first found wins.
    static let implicitNames = ["stephost.yaml", "stephost.yml"]

    /// The file to read: `--config`, else `$STEPHOST_CONFIG`, else `./stephost.yaml` or `./stephost.yml` when
    /// present, else none.
    var location: String? {
        if let path { return path }
        if let value = ProcessInfo.processInfo.environment["STEPHOST_CONFIG"], !value.isEmpty { return value }
        // "Present" is anything under the name, even a dangling link or a directory: then the error says why it
        // cannot be used, rather than the file being silently skipped.
        return Self.implicitNames.first { name in
            var status = stat()
            return lstat(name, &status) == 0
        }
    }

    /// The configuration file's settings (none without a file), or prints why it cannot be used and exits before
    /// anything is opened or written: 66 when a named file is missing, 64 when the file is invalid.
    func load() throws -> ConfigurationFile {
        guard let location else { return ConfigurationFile() }
        do {
            return try ConfigurationFile.load(path: location)
        } catch {
            printError("stephost: invalid configuration: \(error)")
            throw error.code == .notFound ? ExitStatus.notFound : ExitStatus.invalidConfiguration
        }
    }
}
