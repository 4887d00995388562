import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostCore

/// Options every command that loads plugins shares.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("plugins-dir"),
        help: ArgumentHelp(
            "The plugin directory (default: $STEPHOST_PLUGINS_DIR, else the configuration file's plugins.directory, "
                + "else ./plugins).",
            valueName: "directory"
        )
    )
    var pluginsDirectory: String?

    // Optional, so that an unset flag leaves the configuration file's level in force.
    @Option(help: "Log level on standard error (default: the configuration file's log-level, else warning).")
    var logLevel: LogLevelOption?

    @Option(
        help: ArgumentHelp(
            "Log lines as text, or as JSON objects, one per line, with timestamp, level, message, operation, step and "
                + "plugin (default: the configuration file's log-format, else text).",
            valueName: "text|json"
        )
    )
    var logFormat: LogFormatOption?

    /// The plugin directory: the flag, else the environment, else the configuration file, else `./plugins`.
    func resolvedPluginsDirectory(_ file: ConfigurationFile) -> String {
        resolve(pluginsDirectory, environment: "STEPHOST_PLUGINS_DIR", file: file.plugins.directory, default: "plugins")
    }

    /// Sends log lines to standard error at the chosen level: the flag, else the configuration file's, else
    /// warning. Called once, by the executable only.
    func makeLogger(_ file: ConfigurationFile) -> Logger {
        let level = logLevel.flatMap { Logger.Level(rawValue: $0.rawValue) } ?? file.logLevel ?? .warning
        let format = logFormat.flatMap { LogFormat(rawValue: $0.rawValue) } ?? file.logFormat ?? .text
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: "stephost")
    }
}

/// The log levels `--log-level` accepts (swift-log's).
enum LogLevelOption: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical
}

/// The formats `--log-format` accepts.
enum LogFormatOption: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

/// A setting from its flag, else from a non-empty environment variable, else from the configuration file, else
/// the default.
func resolve(_ flag: String?, environment variable: String, file: String?, default fallback: String) -> String {
    if let flag { return flag }
    if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
    return file ?? fallback
}

/// Writes one line to standard error. Messages may carry plugin text (an init error, a step's failure), so
/// control characters are escaped: the message stays one line and cannot drive the terminal.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message.escapingControlCharacters + "\n").utf8))
}
