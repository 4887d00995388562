import Foundation
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import ServiceLifecycle
public import StepHostApplication
import StepHostCore
import StepHostEngine
import UnixSignals

/// How `stephost serve` listens, authenticates and stops.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    /// 0: any free port (the one bound is reported when listening).
    public var port = 8080
    /// `nil` only when started with `--insecure-no-auth`.
    public var credentials: BrokerCredentials?
    public var shutdownGrace: Duration = .seconds(30)
    public var catalog: BrokerCatalog = .builtIn
    /// The largest request body (a provisioning request's parameters are at most 64 KiB).
    public var maximumBodyBytes = 256 * 1024
    /// The largest request line and headers together.
    public var maximumHeaderBytes = 16 * 1024
    /// Connections open at once; more wait in the kernel's backlog until one closes.
    public var maximumConnections = 512
    /// A connection with no request in progress (one that never sends one, or sends its headers a byte at a time)
    /// is closed after this long.
    public var idleTimeout: Duration = .seconds(30)
    /// Paths that need no credentials: the probes and the metrics.
    public var openPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    public init() {}
}

/// `stephost serve`: the engine, serving operations as they come due, and the HTTP API, run together by
/// swift-service-lifecycle until SIGTERM or SIGINT stops them gracefully.
public enum StepHostServer {
    /// Runs until stopped; returns once both the HTTP server and the engine ended.
    ///
    /// - Parameters:
    ///   - listening: told the address and port once the server listens (the port is the bound one when 0 was
    ///     asked for).
    ///   - exit: ends the process when the grace period runs out with steps still running.
    public static func run(
        host: ProvisioningHost,
        settings: ServerSettings,
        metrics: HostMetrics,
        logger: Logger,
        listening: @escaping @Sendable (String, Int) -> Void,
        exit: @escaping @Sendable () -> Never
    ) async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: HeaderLimitMiddleware(limit: settings.maximumHeaderBytes))
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: BasicAuthMiddleware(credentials: settings.credentials, open: settings.openPaths))
        BrokerAPI(host: host, catalog: settings.catalog, maximumBodyBytes: settings.maximumBodyBytes)
            .register(on: router)
        metrics.noteDatabase(host.configuration.databasePath)
        AdminAPI(host: host, metrics: metrics, databaseIdentity: DatabaseIdentity(host.configuration.databasePath))
            .register(on: router)
        try StatusPage(host: host).register(on: router)

        let http1 = HTTP1Channel.Configuration(
            idleTimeout: .nanoseconds(
                settings.idleTimeout.components.seconds * 1_000_000_000 + settings.idleTimeout.components.attoseconds
                    / 1_000_000_000
            ),
            // The parser's own cap, above the limit the middleware answers with a JSON error (431).
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: settings.maximumHeaderBytes * 4,
                maxHeaderListSize: settings.maximumHeaderBytes * 4,
                maxHeaderFieldCount: 200
            )
        )
        let application = Application(
            router: router,
            server: .http1(configuration: http1),
            configuration: .init(
                address: .hostname(settings.host, port: settings.port),
                serverName: "stephost",
                availableConnectionsDelegate: MaximumAvailableConnections(settings.maximumConnections)
            ),
            onServerRunning: { channel in
                listening(settings.host, channel.localAddress?.port ?? settings.port)
            },
            logger: logger
        )
        let stop = GracefulStop(engine: host.engine, grace: settings.shutdownGrace, logger: logger, exit: exit)
        let engine = EngineService(engine: host.engine, stop: stop)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: engine,
                        successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup
                    ),
                    .init(
                        service: application,
                        successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup
                    ),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        // The engine stops claiming at the first signal, while the HTTP server finishes the requests it has; a
        // second signal cuts the grace period short.
        let signals = Task {
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                stop.signalled("\(signal)")
            }
        }
        defer { signals.cancel() }
        try await group.run()
    }
}

/// The engine as a service: serves operations until the group shuts down.
struct EngineService: Service {
    let engine: Engine
    let stop: GracefulStop

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await engine.serve()
        } onGracefulShutdown: {
            engine.beginShutdown()
        }
        stop.finished()
        // A stop signal ends the engine's work at once (the HTTP server first finishes its requests): the service
        // ends when the group's graceful shutdown reaches it, as the group expects.
        try await gracefulShutdown()
    }
}
