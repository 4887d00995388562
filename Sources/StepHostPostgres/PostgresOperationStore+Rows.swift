import Foundation
package import Logging
import PostgresNIO
import StepHostCore
import StepHostStorage
import Synchronization

extension PostgresOperationStore {
    /// Milliseconds since 1970, as every time is stored.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    /// The running step a claim recorded (``RunningStep/recorded(_:at:)``).
    static func runningStep(_ json: String??, at now: Date) -> RunningStep? {
        RunningStep.recorded(json ?? nil, at: now)
    }

    static func insert(_ operation: OperationRecord) throws -> PostgresQuery {
        let o = operation
        return """
            INSERT INTO operations (id, instance_id, type, state, description, created_at, updated_at, version, passes,
                next_pass_at, deadline, runtime_id, provisioner_operation_id, last_error_step, last_error_plugin,
                last_error_message, fields, dropped_step_runs, provisioning_attempts, host_deaths, disabled_plugins,
                parameters, provisioning_request)
            VALUES (\(o.id), \(o.instanceID), \(o.type), \(o.state.rawValue), \(o.description),
                \(milliseconds(o.createdAt)), \(milliseconds(o.updatedAt)), \(o.version), \(o.passes),
                \(o.nextPassAt.map(milliseconds)), \(milliseconds(o.deadline)), \(o.runtime.runtimeID),
                \(o.runtime.provisionerOperationID), \(o.lastError?.step), \(o.lastError?.plugin),
                \(o.lastError?.message), \(JSONText.object(o.fields))::json, \(o.droppedStepRuns),
                \(try ProvisioningAttempt.json(o.runtime.attempts)), \(try o.hostDeaths?.json()),
                \(disabled(o)), \(o.parameters.json)::json, \(o.runtime.provisioningRequest))
            """
    }

    /// The save's UPDATE of every column but the id, when the stored version is still `basedOn`; returns the id.
    static func update(_ saved: OperationRecord, basedOn version: Int) throws -> PostgresQuery {
        let o = saved
        return """
            UPDATE operations SET instance_id = \(o.instanceID), type = \(o.type), state = \(o.state.rawValue),
                description = \(o.description), created_at = \(milliseconds(o.createdAt)),
                updated_at = \(milliseconds(o.updatedAt)), version = \(o.version), passes = \(o.passes),
                next_pass_at = \(o.nextPassAt.map(milliseconds)), deadline = \(milliseconds(o.deadline)),
                runtime_id = \(o.runtime.runtimeID), provisioner_operation_id = \(o.runtime.provisionerOperationID),
                last_error_step = \(o.lastError?.step), last_error_plugin = \(o.lastError?.plugin),
                last_error_message = \(o.lastError?.message), fields = \(JSONText.object(o.fields))::json,
                dropped_step_runs = \(o.droppedStepRuns),
                provisioning_attempts = \(try ProvisioningAttempt.json(o.runtime.attempts)),
                host_deaths = \(try o.hostDeaths?.json()), disabled_plugins = \(disabled(o)),
                parameters = \(o.parameters.json)::json, provisioning_request = \(o.runtime.provisioningRequest)
            WHERE id = \(o.id) AND version = \(version) RETURNING id
            """
    }

    private static func disabled(_ operation: OperationRecord) -> String? {
        operation.disabledPlugins.isEmpty
            ? nil : "[" + operation.disabledPlugins.map(JSONText.quote).joined(separator: ",") + "]"
    }

    /// An operation from its row; `.corrupt` with the reason when a stored value cannot be read.
    /// A row that ``record(_:)`` could not read, named by what of it can be read, with why.
    static func unreadable(_ cells: PostgresRandomAccessRow, _ error: any Error) -> UnreadableOperation {
        UnreadableOperation(
            id: (try? cells["id"].decode(String.self)) ?? "?",
            state: (try? cells["state"].decode(String.self)) ?? "?",
            reason: "\(error)"
        )
    }

    static func record(_ cells: PostgresRandomAccessRow) throws -> OperationRecord {
        let id = try cells["id"].decode(String.self)
        do {
            let state = try cells["state"].decode(String.self)
            guard let operationState = OperationState(rawValue: state) else {
                throw StorageError(.corrupt, "operation \(id) has the unknown state '\(state)'")
            }
            let parameters: ProvisioningParameters
            do {
                parameters = try ProvisioningParameters(storedJSON: try cells["parameters"].decode(String.self))
            } catch {
                throw StorageError(
                    .corrupt,
                    "the stored parameters of operation \(id) are not valid",
                    cause: "\(error)"
                )
            }
            var operation = OperationRecord(
                id: id,
                instanceID: try cells["instance_id"].decode(String.self),
                type: try cells["type"].decode(String.self),
                state: operationState,
                description: try cells["description"].decode(String.self),
                createdAt: date(try cells["created_at"].decode(Int64.self)),
                deadline: date(try cells["deadline"].decode(Int64.self)),
                parameters: parameters
            )
            operation.updatedAt = date(try cells["updated_at"].decode(Int64.self))
            operation.version = try cells["version"].decode(Int.self)
            operation.passes = try cells["passes"].decode(Int.self)
            operation.nextPassAt = try cells["next_pass_at"].decode(Int64?.self).map(date)
            operation.runtime = RuntimeRecord(
                provisionerOperationID: try cells["provisioner_operation_id"].decode(String?.self),
                runtimeID: try cells["runtime_id"].decode(String?.self),
                provisioningRequest: try cells["provisioning_request"].decode(String?.self),
                attempts: try ProvisioningAttempt.attempts(json: try cells["provisioning_attempts"].decode(String.self))
            )
            if let step = try cells["last_error_step"].decode(String?.self) {
                operation.lastError = LastError(
                    step: step,
                    plugin: try cells["last_error_plugin"].decode(String?.self),
                    message: try cells["last_error_message"].decode(String?.self) ?? ""
                )
            }
            operation.fields = try JSONText.members(of: try cells["fields"].decode(String.self))
            operation.droppedStepRuns = try cells["dropped_step_runs"].decode(Int.self)
            if let deaths = try cells["host_deaths"].decode(String?.self) {
                operation.hostDeaths = try HostDeaths(json: deaths)
            }
            if let disabled = try cells["disabled_plugins"].decode(String?.self) {
                guard let names = try? JSONSerialization.jsonObject(with: Data(disabled.utf8)) as? [String] else {
                    throw StorageError(.corrupt, "the stored disabled plugins of operation \(id) are not a JSON array")
                }
                operation.disabledPlugins = names
            }
            return operation
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.corrupt, "operation \(id) cannot be read", cause: "\(error)")
        }
    }

    /// Runs `body`, turning what PostgreSQL or the connection throws into a ``StorageError`` that names the server
    /// without its password.
    ///
    /// A request that has no answer within ``requestTimeout`` is given up with `.disconnected`: a connection whose
    /// server vanished without closing it (a network partition, a dropped failover) would otherwise hold its caller
    /// until TCP gave up, hours later. The request itself is cancelled and left to end on its own.
    @discardableResult
    func guarded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        // While the server is known to be away, a request fails at once: the host gives its pass up or waits, and
        // nothing queues up behind connections that cannot be made.
        if isUnreachable {
            throw StorageError(
                .disconnected,
                "the PostgreSQL server \(location) cannot be reached now; the host tries again"
            )
        }
        do {
            return try await Self.withTimeout(requestTimeout, location: location, watch: requests, body)
        } catch {
            let failure = Self.storageError(error, location: location)
            if failure.code == .disconnected { beginOutage() }
            throw failure
        }
    }

    /// `body`'s result, or `.disconnected` once `timeout` passed without one. The deadline is an entry in
    /// `watch`, not a timer of its own: a sleeping task per request would stay in memory for the whole timeout even
    /// after its request ended (thousands of them, at a host's rate of requests).
    static func withTimeout<T: Sendable>(
        _ timeout: Duration,
        location: String,
        watch: RequestWatch,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.start(continuation)
            let id = watch.add(due: .now + timeout) {
                outcome.finish(
                    .failure(
                        StorageError(
                            .disconnected,
                            "the PostgreSQL server \(location) did not answer within \(timeout); the host tries again"
                        )
                    )
                )
            }
            Task {
                let result: Result<T, any Error>
                do {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                watch.remove(id)
                outcome.finish(result)
            }
        }
    }

    /// The first of a request's answer and its timeout, handed to the one waiting.
    private final class Outcome<T: Sendable>: Sendable {
        private let state = Mutex<(CheckedContinuation<T, any Error>?, Bool)>((nil, false))

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Bool in
                state.0 = continuation
                return state.1
            }
            precondition(!early, "an outcome finished before it started")
        }

        /// Resumes the waiter unless it was resumed already; whether this call did.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
                guard !state.1 else { return nil }
                state.1 = true
                defer { state.0 = nil }
                return state.0
            }
            continuation?.resume(with: result)
            return continuation != nil
        }
    }

    /// Runs the transaction `body` again (up to five times in all) when PostgreSQL aborted it for a deadlock or a
    /// serialization failure (SQLSTATE 40P01, 40001): nothing of it was written, and the server's advice is to repeat
    /// it. Anything else is thrown at once.
    func retryingConflicts<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch {
                let state = Self.sqlState(error)
                guard attempt < 5, state == "40P01" || state == "40001" else { throw error }
                logger.debug("transaction repeated", metadata: ["sqlstate": "\(state ?? "")", "attempt": "\(attempt)"])
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 * attempt))))
            }
        }
    }

    /// The SQLSTATE of what the server answered, inside a transaction error or not.
    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PostgresTransactionError {
            return (error.closureError ?? error.beginError ?? error.commitError).flatMap(sqlState)
        }
        return (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// Whether `error` says the server or the connection went away (not that a statement was wrong): SQLSTATE class
    /// 08 (connection exceptions), 57P01–57P03 (the server shuts down or starts), 53300 (too many connections), or
    /// a connection that failed or closed.
    static func isDisconnection(_ error: PSQLError) -> Bool {
        if let state = error.serverInfo?[.sqlState] {
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(state)
        }
        return [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown]
            .contains(error.code)
    }

    static func storageError(_ error: any Error, location: String) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? PostgresTransactionError {
            // What went wrong inside the transaction (a conflict, a lost claim) is the error; then whatever broke
            // the transaction itself.
            if let inner = error.closureError ?? error.beginError ?? error.commitError {
                return storageError(inner, location: location)
            }
        }
        if let error = error as? PSQLError, let tls = error.underlying as? NIOSSLError {
            // A refused certificate would otherwise read as a server that cannot be reached: say what TLS said. (It
            // stays a disconnection: a running host keeps trying, in case the certificate is being replaced.)
            let unverified = "\(tls)".contains("CERTIFICATE_VERIFY_FAILED")
            return StorageError(
                .disconnected,
                "TLS with the PostgreSQL server \(location) failed"
                    + (unverified
                        ? ": its certificate could not be verified against the trusted authorities; give the one that "
                            + "signed it with sslrootcert=PATH in the URL"
                        : ""),
                cause: "\(tls)"
            )
        }
        if let error = error as? PSQLError, Self.isDisconnection(error) {
            return StorageError(
                .disconnected,
                "the PostgreSQL server \(location) cannot be reached now; the host tries again",
                cause: error.serverInfo?[.message] ?? "\(error.code)"
            )
        }
        if let error = error as? PSQLError {
            // PSQLError's description leaves out the server's message unless asked; the server's own text names
            // what went wrong and never holds the password.
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            let code = error.serverInfo?[.sqlState] ?? ""
            return StorageError(
                .unavailable,
                "the PostgreSQL database \(location) failed: \(message)",
                cause: code.isEmpty ? nil : "SQLSTATE \(code)"
            )
        }
        return StorageError(.unavailable, "the PostgreSQL database \(location) failed", cause: "\(error)")
    }
}

/// A `postgres://` URL taken apart; the password is kept out of ``location``.
struct PostgresURL {
    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String
    var requireTLS: Bool
    /// `sslrootcert`: a PEM file of the certificate authorities to trust instead of the system's (a private CA).
    var rootCertificates: String?

    init(_ text: String) throws {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql",
            let host = url.host, !host.isEmpty
        else {
            throw StorageError(
                .unavailable,
                "the database URL is not postgres://USER:PASSWORD@HOST:PORT/DATABASE (its password is not shown)"
            )
        }
        self.host = host
        port = url.port ?? 5432
        user = url.user ?? "postgres"
        password = url.password
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        database = path.isEmpty ? user : path
        let mode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        guard ["disable", "require"].contains(mode) else {
            throw StorageError(.unavailable, "sslmode=\(mode) is not supported; use sslmode=disable or sslmode=require")
        }
        requireTLS = mode == "require"
        rootCertificates = url.queryItems?.first { $0.name == "sslrootcert" }?.value
        if let rootCertificates {
            guard requireTLS else {
                throw StorageError(.unavailable, "sslrootcert is given without sslmode=require; add sslmode=require")
            }
            guard FileManager.default.isReadableFile(atPath: rootCertificates) else {
                throw StorageError(
                    .unavailable,
                    "sslrootcert=\(rootCertificates) cannot be read; give a PEM file of the CA certificates to trust"
                )
            }
        }
        let known: Set = ["sslmode", "sslrootcert"]
        if let unknown = url.queryItems?.first(where: { !known.contains($0.name) }) {
            throw StorageError(
                .unavailable,
                "the database URL parameter \(unknown.name) is not supported; stephost reads sslmode and sslrootcert"
            )
        }
    }

    /// The TLS client configuration: full verification of the server's certificate and name, against the system's
    /// trust roots or those of ``rootCertificates``.
    func tlsConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let rootCertificates { configuration.trustRoots = .file(rootCertificates) }
        return configuration
    }

    /// `user@host:port/database`.
    var location: String { "\(user)@\(host):\(port)/\(database)" }
}

extension PostgresOperationStore {
    /// Creates a new, empty database on the server of `adminURL` (a role that may create databases) and returns
    /// its URL: for tests, which each want a database of their own.
    package static func createScratchDatabase(adminURL: String, logger: Logger) async throws -> String {
        let settings = try PostgresURL(adminURL)
        let client = PostgresClient(
            configuration: PostgresClient.Configuration(
                host: settings.host,
                port: settings.port,
                username: settings.user,
                password: settings.password,
                database: settings.database,
                tls: .disable
            )
        )
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        let name = "stephost_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        do {
            for try await _ in try await client.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"),
                logger: logger
            ) {}
        } catch {
            throw storageError(error, location: settings.location)
        }
        var url = URLComponents(string: adminURL)!
        url.path = "/\(name)"
        return url.string!
    }
}

extension PostgresOperationStore {
    /// Records migration `id` as applied without running anything: for tests of a database a newer stephost wrote.
    /// Whether the pool's connection is encrypted, as the server sees it (`pg_stat_ssl`).
    package func connectionUsesTLSForTesting() async throws -> Bool {
        try await guarded { [self] in
            var encrypted = false
            for try await ssl in try await client.query(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                logger: logger
            ).decode(Bool.self) {
                encrypted = ssl
            }
            return encrypted
        }
    }

    package func insertMigrationForTesting(_ id: String) async throws {
        try await guarded { [self] in
            try await execute(
                "INSERT INTO stephost_migrations (id, applied_at) VALUES (\(id), \(Self.milliseconds(Date())))",
                logger: logger
            )
        }
    }
}

/// The requests of one store still waiting for an answer, each with its deadline; one task looks every second and
/// gives up those past it.
final class RequestWatch: Sendable {
    private struct Waiting {
        var due: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private let state = Mutex<(next: UInt64, waiting: [UInt64: Waiting])>((0, [:]))
    private let ticker = Mutex<Task<Void, Never>?>(nil)

    init() {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard let self else { return }
                self.expireDue()
            }
        }
        ticker.withLock { $0 = task }
    }

    deinit { ticker.withLock { $0?.cancel() } }

    /// Registers a request that must be answered by `due`; `expire` runs (once) if it is not removed by then.
    func add(due: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.waiting[state.next] = Waiting(due: due, expire: expire)
            return state.next
        }
    }

    func remove(_ id: UInt64) {
        _ = state.withLock { $0.waiting.removeValue(forKey: id) }
    }

    private func expireDue() {
        let now = ContinuousClock.now
        let late = state.withLock { state -> [Waiting] in
            let ids = state.waiting.filter { $0.value.due <= now }.map(\.key)
            return ids.compactMap { state.waiting.removeValue(forKey: $0) }
        }
        for request in late { request.expire() }
    }
}
