import ArgumentParser
import Foundation
import Logging
import StepHostCore

/// Options every command that loads plugins shares.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("plugins-dir"),
        help: ArgumentHelp(
            "The plugin directory (default: $STEPHOST_PLUGINS_DIR, else ./plugins).",
            valueName: "directory"
        )
    )
    var pluginsDirectory: String?

    @Option(help: "Log level on standard error.")
    var logLevel: LogLevelOption = .warning

    /// The plugin directory: the flag, else the environment, else `./plugins`.
    var resolvedPluginsDirectory: String {
        resolve(pluginsDirectory, environment: "STEPHOST_PLUGINS_DIR", default: "plugins")
    }

    /// Sends log lines to standard error at the chosen level. Called once, by the executable only.
    func makeLogger() -> Logger {
        let level = Logger.Level(rawValue: logLevel.rawValue) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "stephost")
    }
}

/// The log levels `--log-level` accepts (swift-log's).
enum LogLevelOption: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical
}

/// A setting from its flag, else from a non-empty environment variable, else the default.
func resolve(_ flag: String?, environment variable: String, default fallback: String) -> String {
    if let flag { return flag }
    if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
    return fallback
}

/// Writes one line to standard error.
/// Writes one line to standard error. Messages may carry plugin text (an init error, a step's failure), so
/// control characters are escaped: the message stays one line and cannot drive the terminal.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message.escapingControlCharacters + "\n").utf8))
}
