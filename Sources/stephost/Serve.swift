import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostServer
import StepHostStorage

/// `stephost serve`: the long-running host, an Open Service Broker API with metrics and a status page.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run as a service: an Open Service Broker API that provisions through the steps, with metrics and a status page.",
        discussion: """
            Loads the plugins (refusing to start while one is broken, as provision and run do), resumes the \
            operations that are due, then serves HTTP and runs operations as they come due, up to --workers at a \
            time. Endpoints: PUT /v2/service_instances/ID?accepts_incomplete=true, GET \
            /v2/service_instances/ID/last_operation, GET /v2/service_instances/ID, GET /v2/catalog, GET /operations, \
            GET /operations/ID, GET /plugins, GET / (the status page), GET /metrics, GET /healthz, GET /readyz. \
            Everything but /metrics and the probes needs HTTP basic authentication: set STEPHOST_BROKER_USERNAME \
            and STEPHOST_BROKER_PASSWORD, or --credentials-file FILE (one line user:password, mode 600); without \
            credentials the server refuses to start unless given --insecure-no-auth. SIGTERM or SIGINT stops it \
            gracefully: no new requests or claims, running steps get --shutdown-grace seconds to finish, then \
            their operations are released for the next start and it exits 0. Exit status: 0 after a stop, 3 when \
            a plugin is broken, 64 for invalid options or missing credentials, 74 or 78 when the database cannot be \
            used, 75 when the host stopped taking work (too many stuck steps).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptionsGroup
    @OptionGroup var config: ConfigFileOptions

    @Option(help: "The address to listen on (default: the configuration file's server.host, else 127.0.0.1).")
    var host: String?

    @Option(help: "The port to listen on; 0 picks a free one (default: server.port, else 8080).")
    var port: Int?

    @Option(
        help: ArgumentHelp(
            "A file with one line username:password for basic authentication, readable by its owner only "
                + "(default: server.credentials-file; STEPHOST_BROKER_USERNAME/PASSWORD take precedence).",
            valueName: "file"
        )
    )
    var credentialsFile: String?

    @Option(
        help: ArgumentHelp(
            "Seconds a connection with no request in progress stays open, 1 to 3600 (default: server.idle-timeout, "
                + "else 30).",
            valueName: "seconds"
        )
    )
    var idleTimeout: Double?

    @Flag(
        help: "Serve without authentication. Only for a trusted loopback setup: anyone who can connect can provision."
    )
    var insecureNoAuth = false

    func validate() throws {
        if let port, let problem = SettingRange.port.problem(port) { throw ValidationError("--port \(problem)") }
        if let idleTimeout, let problem = SettingRange.idleTimeout.problem(idleTimeout) {
            throw ValidationError("--idle-timeout \(problem)")
        }
    }

    func run() async throws {
        let file = try config.load()
        let logger = global.makeLogger(file)
        var settings = ServerSettings()
        settings.host = host ?? file.server.host ?? "127.0.0.1"
        settings.port = port ?? file.server.port ?? 8080
        settings.shutdownGrace = engine.shutdownGrace(file)
        settings.catalog = file.catalog ?? .builtIn
        settings.idleTimeout = .seconds(fractional: idleTimeout ?? file.server.idleTimeout ?? 30)
        do {
            settings.credentials = try BrokerCredentials.load(file: credentialsFile ?? file.server.credentialsFile)
        } catch {
            printError("stephost: \(error)")
            throw ExitStatus.invalidConfiguration
        }
        if settings.credentials == nil && !insecureNoAuth {
            printError(
                "stephost: refusing to serve without credentials: set STEPHOST_BROKER_USERNAME and "
                    + "STEPHOST_BROKER_PASSWORD, or give --credentials-file FILE (one line user:password, mode 600); "
                    + "--insecure-no-auth serves without them (trusted loopback only)"
            )
            throw ExitStatus.invalidConfiguration
        }
        if settings.credentials == nil {
            logger.warning(
                "serving WITHOUT authentication (--insecure-no-auth)",
                metadata: ["host": "\(settings.host)"]
            )
        }
        Self.raiseOpenFileLimit(logger)
        let metrics = HostMetrics.bootstrap()
        let provisioning = try await engine.makeHost(
            global,
            database,
            file,
            access: .create,
            showOperation: false,
            logger: logger,
            events: { metrics.record($0) }
        )
        let plugins = provisioning.plugins.used.count
        let path = provisioning.configuration.databaseLocation
        do {
            try await StepHostServer.run(
                host: provisioning,
                settings: settings,
                metrics: metrics,
                logger: logger,
                listening: { address, port in
                    // One line on standard output, so a supervisor or a test learns the bound port.
                    print(
                        "stephost serve: listening on http://\(address):\(port) (\(plugins) plugins, database \(path))"
                    )
                    fflush(nil)
                },
                exit: {
                    fflush(nil)
                    _exit(0)
                }
            )
        } catch let error as StorageError {
            throw fail(error)
        } catch let error as EngineStopped {
            printError("stephost: \(error)")
            throw ExitStatus.hostStopped
        }
        print("stephost serve: stopped")
    }

    /// A server holds a descriptor per connection: the soft limit on open files is raised to the hard one (often
    /// 1024 against 524288), so the connection limit, not the descriptor limit, is what a flood of clients meets.
    private static func raiseOpenFileLimit(_ logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("raised the open-file limit", metadata: ["from": "\(before)", "to": "\(limit.rlim_max)"])
        }
    }
}
