import Foundation
import Metrics
public import Prometheus
import StepHostApplication
import StepHostCore
public import StepHostEngine
import StepHostLoader
import StepHostStorage
import Synchronization

/// The host's metrics through swift-metrics, exported by swift-prometheus at `GET /metrics`.
///
/// Counters and histograms follow the engine's events as they happen; the gauges (operations by state, due,
/// workers busy) are read from the database and the engine when scraped, so they are right after a restart too.
public final class HostMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Makes the registry and bootstraps swift-metrics with it (once per process).
    public static func bootstrap() -> HostMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let steps: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(120), .seconds(600),
        ]
        factory.durationHistogramBuckets["stephost_step_duration_seconds"] = steps
        factory.durationHistogramBuckets["stephost_commit_seconds"] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .seconds(1),
        ]
        MetricsSystem.bootstrap(factory)
        return HostMetrics(registry: registry)
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The database file as the server found it when it started (see ``DatabaseIdentity``).
    private let identity = Mutex<DatabaseIdentity?>(nil)

    /// Remembers which file the database is now, so a scrape can tell when it was removed or replaced.
    func noteDatabase(_ path: String) { identity.withLock { $0 = DatabaseIdentity(path) } }

    private let passes = Counter(label: "stephost_passes_total")
    private let retries = Counter(label: "stephost_retries_total")

    /// Counts what the engine reports.
    public func record(_ event: EngineEvent) {
        switch event {
        case .passStarted:
            passes.increment()
        case .stepFinished(_, _, _, _, let run):
            let plugin = run.plugin ?? "stephost"
            Metrics.Timer(
                label: "stephost_step_duration_seconds",
                dimensions: [("step", run.step), ("plugin", plugin)]
            ).recordNanoseconds(Int64((run.durationMilliseconds * 1_000_000).rounded()))
            Counter(
                label: "stephost_step_outcomes_total",
                dimensions: [("step", run.step), ("plugin", plugin), ("outcome", run.outcome.rawValue)]
            ).increment()
        case .parked:
            retries.increment()
        case .finished(let operation):
            Counter(label: "stephost_operations_finished_total", dimensions: [("state", operation.state.rawValue)])
                .increment()
        case .waiting:
            break
        }
    }

    /// Sets the gauges from the database and the host, then renders every metric in Prometheus text format.
    func render(_ host: ProvisioningHost) async -> String {
        do {
            let counts = try await host.store.operationCounts(now: Date())
            for state in OperationState.allCases {
                Gauge(label: "stephost_operations", dimensions: [("state", state.rawValue)])
                    .record(counts.byState[state] ?? 0)
            }
            Gauge(label: "stephost_operations_due").record(counts.due)
            let unfinished = (counts.byState[.pending] ?? 0) + (counts.byState[.inProgress] ?? 0)
            Gauge(label: "stephost_operations_queued").record(max(0, counts.due - host.engine.busyWorkers))
            Gauge(label: "stephost_operations_unfinished").record(unfinished)
            let path = host.configuration.databasePath
            // A file can be removed or replaced under the host; a PostgreSQL database answered the query.
            let unchanged = host.configuration.databaseURL != nil || DatabaseIdentity(path) == identity.withLock { $0 }
            Gauge(label: "stephost_database_up").record(unchanged ? 1 : 0)
        } catch {
            Gauge(label: "stephost_database_up").record(0)
        }
        Gauge(label: "stephost_workers_busy").record(host.engine.busyWorkers)
        Gauge(label: "stephost_workers").record(host.configuration.engine.workers)
        Gauge(label: "stephost_plugins_loaded").record(host.plugins.used.count)
        Gauge(label: "stephost_plugin_load_errors").record(host.plugins.catalog.broken.count)
        return registry.emitToString()
    }
}
