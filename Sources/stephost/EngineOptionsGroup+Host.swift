import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader

/// The merge of the flags with the configuration file into the ``HostConfiguration``, and the host built from it.
extension EngineOptionsGroup {
    /// The host configuration these options, the shared ones and the configuration file describe: each setting
    /// from its flag, else its environment variable, else the file, else the default. Plugins are disabled by
    /// `--disable-plugin` and by the file's `disabled: true` alike.
    func configuration(
        _ global: GlobalOptions,
        _ database: DatabaseOptions,
        _ file: ConfigurationFile,
        access: HostConfiguration.DatabaseAccess
    ) throws -> HostConfiguration {
        let settings = file.engine
        var engine = EngineOptions()
        if let hours = deadlineHours ?? settings.deadlineHours { engine.deadline = .seconds(fractional: hours * 3600) }
        if let delay = defaultRetryDelay ?? settings.defaultRetryDelay {
            engine.defaultRetryDelay = .seconds(fractional: delay)
        }
        if let delay = minimumRetryDelay ?? settings.minimumRetryDelay {
            engine.minimumRetryDelay = .seconds(fractional: delay)
        }
        if let lease = lease ?? settings.lease { engine.lease = .seconds(fractional: lease) }
        if let workers = workers ?? settings.workers { engine.workers = workers }
        if let deaths = maxHostDeaths ?? settings.maxHostDeaths { engine.maximumHostDeaths = deaths }

        let kind = provisioner ?? settings.provisioner.flatMap { ProvisionerKind(rawValue: $0.rawValue) } ?? .local
        let backend: HostConfiguration.Provisioner
        switch kind {
        case .local:
            backend = .local
        case .http:
            // Both sources were checked already: the flag by validate(), the file's key when it was parsed.
            guard let text = provisionerURL ?? settings.provisionerURL, let url = URL(string: text) else {
                throw ValidationError(
                    "--provisioner http needs --provisioner-url (or engine.provisioner-url in the configuration "
                        + "file), for example http://127.0.0.1:8080/graphql"
                )
            }
            backend = .http(
                url: url,
                pollInterval: .seconds(fractional: pollInterval ?? settings.pollInterval ?? 15),
                idempotent: provisionerIdempotent ?? settings.provisionerIdempotent ?? false,
                timeout: .seconds(fractional: provisionerTimeout ?? settings.provisionerTimeout ?? 30)
            )
        }
        return HostConfiguration(
            pluginsDirectory: global.resolvedPluginsDirectory(file),
            disabledPlugins: Set(disabledPlugins).union(file.disabledPlugins),
            databasePath: database.resolvedPath(file),
            databaseURL: try database.resolvedURL(file),
            databaseAccess: access,
            provisioner: backend,
            engine: engine,
            isolation: file.isolation
        )
    }

    /// The grace period of a graceful stop: the flag, else the file's `engine.shutdown-grace`, else 30 seconds.
    func shutdownGrace(_ file: ConfigurationFile) -> Duration {
        .seconds(fractional: shutdownGrace ?? file.engine.shutdownGrace ?? 30)
    }

    /// Builds the host with progress output, or prints why not and returns the matching exit status.
    func makeHost(
        _ global: GlobalOptions,
        _ database: DatabaseOptions,
        _ file: ConfigurationFile,
        access: HostConfiguration.DatabaseAccess,
        showOperation: Bool,
        json: Bool = false,
        logger: Logger? = nil,
        events: (@Sendable (EngineEvent) -> Void)? = nil
    ) async throws -> ProvisioningHost {
        let configuration = try configuration(global, database, file, access: access)
        let printer = ProgressPrinter(showOperation: showOperation, json: json)
        do {
            return try await ProvisioningHost(
                configuration,
                logger: logger ?? global.makeLogger(file),
                events: events ?? { printer.handle($0) }
            )
        } catch {
            switch error {
            case .pluginDirectory(let error):
                printError("stephost: \(error)")
                throw ExitStatus.pluginDirectoryUnusable
            case .brokenPlugins(let broken):
                printError("stephost: refusing to run operations while plugins are broken:")
                for plugin in broken {
                    printError("  \(plugin.file)\(plugin.name.map { " (plugin '\($0)')" } ?? ""): \(plugin.error)")
                }
                printError(
                    "Fix them, remove them from the plugin directory, skip them knowingly with --disable-plugin NAME, "
                        + "or set disabled: true in their configuration file settings."
                )
                throw ExitStatus.brokenPlugins
            case .storage(let error):
                throw fail(error)
            }
        }
    }
}
