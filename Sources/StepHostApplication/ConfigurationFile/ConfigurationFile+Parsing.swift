import Logging
import StepHostLoader

/// The keys a configuration file may hold, and what each one's value is. Engine keys are spelled as their flags.
extension ConfigurationFile {
    static let topKeys = [
        "plugins", "database", "database-url", "engine", "log-level", "log-format", "server", "catalog",
    ]
    static let serverKeys = ["host", "port", "credentials-file", "idle-timeout"]
    static let catalogKeys = ["services"]
    static let serviceKeys = ["id", "description", "plans"]
    static let planKeys = ["id", "description"]
    static let pluginsKeys = [
        "directory", "isolation", "deadline", "limits", "quarantine", "max-stuck-threads", "init-timeout", "kill-grace",
        "settings",
    ]
    static let limitsKeys = ["address-space", "cpu-time", "open-files"]
    static let pluginSettingsKeys = ["isolation", "deadline", "limits", "disabled"]
    static let engineKeys = [
        "provisioner", "provisioner-url", "poll-interval", "provisioner-timeout", "provisioner-idempotent",
        "deadline-hours", "default-retry-delay", "minimum-retry-delay", "lease", "workers", "max-host-deaths",
        "shutdown-grace",
    ]

    /// Every key, each under its own name, for the example file's test.
    package static var allKeys: Set<String> {
        Set(
            topKeys + pluginsKeys + limitsKeys + pluginSettingsKeys + engineKeys + serverKeys + catalogKeys
                + serviceKeys
                + planKeys
        )
    }

    /// Parses the YAML `text` of the file named `file` (the name only labels errors; relative paths are kept as
    /// written). An empty file sets nothing.
    public static func parse(_ text: String, file: String) throws(ConfigurationFileError) -> ConfigurationFile {
        let reader = ConfigurationReader(file: file, text: text)
        guard let root = try reader.compose() else { return ConfigurationFile() }
        var result = ConfigurationFile()
        for entry in try reader.entries(of: root, at: nil, known: topKeys) {
            switch entry.key {
            case "plugins": result.plugins = try reader.plugins(entry)
            case "database": result.database = try reader.nonEmptyText(entry)
            case "database-url": result.databaseURL = try reader.postgresURL(entry)
            case "engine": result.engine = try reader.engine(entry)
            case "server": result.server = try reader.server(entry)
            case "catalog": result.catalog = try reader.catalog(entry)
            case "log-format": result.logFormat = try reader.choice(entry, LogFormat.self)
            default: result.logLevel = try reader.choice(entry, Logger.Level.self)
            }
        }
        if result.database != nil && result.databaseURL != nil {
            throw ConfigurationFileError(
                .invalidValue,
                file: file,
                key: "database-url",
                "the file sets both database (a SQLite file) and database-url (PostgreSQL); keep one"
            )
        }
        return result
    }
}

extension ConfigurationReader {
    fileprivate func plugins(_ parent: Entry) throws(ConfigurationFileError) -> ConfigurationFile.Plugins {
        var plugins = ConfigurationFile.Plugins()
        for entry in try entries(of: parent.value, at: parent.path, known: ConfigurationFile.pluginsKeys) {
            switch entry.key {
            case "directory": plugins.directory = try nonEmptyText(entry)
            case "isolation": plugins.isolation = try choice(entry, Isolation.self)
            case "deadline": plugins.deadline = try duration(entry, .stepDeadline)
            case "limits": plugins.limits = try limits(entry)
            case "quarantine": plugins.quarantine = try choice(entry, QuarantineAction.self)
            case "max-stuck-threads": plugins.maximumStuckThreads = try wholeNumber(entry, .maximumStuckThreads)
            case "init-timeout": plugins.initTimeout = try duration(entry, .initTimeout)
            case "kill-grace": plugins.killGrace = try duration(entry, .killGrace)
            default: plugins.settings = try settings(entry)
            }
        }
        return plugins
    }

    private func limits(_ parent: Entry) throws(ConfigurationFileError) -> ResourceLimits {
        var limits = ResourceLimits()
        for entry in try entries(of: parent.value, at: parent.path, known: ConfigurationFile.limitsKeys) {
            switch entry.key {
            case "address-space": limits.addressSpace = try bytes(entry)
            case "cpu-time": limits.cpuSeconds = try wholeSeconds(entry, .cpuSeconds)
            default: limits.openFiles = UInt64(try wholeNumber(entry, .openFiles))
            }
        }
        return limits
    }

    /// `settings:`, keyed by plugin name or file name: any key, but not a path.
    private func settings(_ parent: Entry) throws(ConfigurationFileError) -> [String: PluginPolicyOverride] {
        var settings: [String: PluginPolicyOverride] = [:]
        for plugin in try entries(of: parent.value, at: parent.path, known: nil) {
            guard !plugin.key.contains("/") else {
                throw failure(
                    .invalidValue,
                    at: plugin.keyNode,
                    plugin.path,
                    "settings are keyed by a plugin's name or its file name (x.so), not a path"
                )
            }
            var override = PluginPolicyOverride()
            for entry in try entries(of: plugin.value, at: plugin.path, known: ConfigurationFile.pluginSettingsKeys) {
                switch entry.key {
                case "isolation": override.isolation = try choice(entry, Isolation.self)
                case "deadline": override.deadline = try duration(entry, .stepDeadline)
                case "limits": override.limits = try limits(entry)
                default: override.disabled = try bool(entry)
                }
            }
            settings[plugin.key] = override
        }
        return settings
    }

    fileprivate func engine(_ parent: Entry) throws(ConfigurationFileError) -> ConfigurationFile.Engine {
        var engine = ConfigurationFile.Engine()
        for entry in try entries(of: parent.value, at: parent.path, known: ConfigurationFile.engineKeys) {
            switch entry.key {
            case "provisioner": engine.provisioner = try choice(entry, ConfigurationFile.Engine.Provisioner.self)
            case "provisioner-url":
                let url = try nonEmptyText(entry)
                if let problem = HostConfiguration.provisionerURLProblem(url) {
                    throw failure(.invalidValue, at: entry.value, entry.path, problem)
                }
                engine.provisionerURL = url
            case "poll-interval": engine.pollInterval = try seconds(entry, .pollInterval)
            case "provisioner-timeout": engine.provisionerTimeout = try seconds(entry, .provisionerTimeout)
            case "provisioner-idempotent": engine.provisionerIdempotent = try bool(entry)
            case "deadline-hours": engine.deadlineHours = try number(entry, .deadlineHours)
            case "default-retry-delay": engine.defaultRetryDelay = try seconds(entry, .defaultRetryDelay)
            case "minimum-retry-delay": engine.minimumRetryDelay = try seconds(entry, .minimumRetryDelay)
            case "lease": engine.lease = try seconds(entry, .lease)
            case "workers": engine.workers = try wholeNumber(entry, .workers)
            case "shutdown-grace": engine.shutdownGrace = try seconds(entry, .shutdownGrace)
            default: engine.maxHostDeaths = try wholeNumber(entry, .maximumHostDeaths)
            }
        }
        return engine
    }
}

extension ConfigurationReader {
    fileprivate func server(_ parent: Entry) throws(ConfigurationFileError) -> ConfigurationFile.Server {
        var server = ConfigurationFile.Server()
        for entry in try entries(of: parent.value, at: parent.path, known: ConfigurationFile.serverKeys) {
            switch entry.key {
            case "host": server.host = try nonEmptyText(entry)
            case "port": server.port = try wholeNumber(entry, .port)
            case "idle-timeout": server.idleTimeout = try seconds(entry, .idleTimeout)
            default: server.credentialsFile = try nonEmptyText(entry)
            }
        }
        return server
    }

    /// `catalog: services: NAME: {id, description, plans: NAME: {id, description}}`: keyed by name, so a name is
    /// never given twice.
    fileprivate func catalog(_ parent: Entry) throws(ConfigurationFileError) -> BrokerCatalog {
        var services: [BrokerCatalog.Service] = []
        for entry in try entries(of: parent.value, at: parent.path, known: ConfigurationFile.catalogKeys) {
            for service in try entries(of: entry.value, at: entry.path, known: nil) {
                var id: String?
                var description = service.key
                var plans: [BrokerCatalog.Plan] = []
                for field in try entries(of: service.value, at: service.path, known: ConfigurationFile.serviceKeys) {
                    switch field.key {
                    case "id": id = try nonEmptyText(field)
                    case "description": description = try nonEmptyText(field)
                    default:
                        for plan in try entries(of: field.value, at: field.path, known: nil) {
                            var planID: String?
                            var planDescription = plan.key
                            for item in try entries(of: plan.value, at: plan.path, known: ConfigurationFile.planKeys) {
                                if item.key == "id" {
                                    planID = try nonEmptyText(item)
                                } else {
                                    planDescription = try nonEmptyText(item)
                                }
                            }
                            guard let planID else {
                                throw failure(.invalidValue, at: plan.keyNode, plan.path, "a plan needs an id")
                            }
                            plans.append(.init(id: planID, name: plan.key, description: planDescription))
                        }
                    }
                }
                guard let id else {
                    throw failure(.invalidValue, at: service.keyNode, service.path, "a service needs an id")
                }
                guard !plans.isEmpty else {
                    throw failure(.invalidValue, at: service.keyNode, service.path, "a service needs at least one plan")
                }
                services.append(.init(id: id, name: service.key, description: description, plans: plans))
            }
        }
        guard !services.isEmpty else {
            throw failure(.invalidValue, at: parent.keyNode, parent.path, "the catalog needs at least one service")
        }
        return BrokerCatalog(services: services)
    }
}
