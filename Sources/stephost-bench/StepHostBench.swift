import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostPipeline
import StepHostSQLite
import StepHostStorage
import Synchronization

/// The measuring half of `scripts/bench`: runs real operations through the real engine, real plugins and a
/// real SQLite file (synchronous=FULL), and prints one JSON line of figures. The script builds the plugins and
/// the C baselines, runs this interleaved with them and prints the table.
///
///     stephost-bench run --plugins DIR --operations N --workers W [--parameters-bytes B] [--database PATH]
///                        [--isolation in-process|process]
///     stephost-bench enqueue (--database PATH | --database-url URL) --operations N [--parameters-bytes B]
///     stephost-bench scratch-database --admin-url URL
///     stephost-bench span (--database PATH | --database-url URL)
///     stephost-bench commit-latency (--database PATH | --database-url URL) [--count N]
///     stephost-bench document [--parameters-bytes B] [--fields F]
///     stephost-bench provision --plugins DIR --operations N --clients C --workers W [--parameters-bytes B]
///                              [--database PATH]
///     stephost-bench http-provision --port P --database PATH --operations N --clients C [--parameters-bytes B]
///                                   [--server-pid PID]
@main
struct StepHostBench {
    static let usage = """
        usage: stephost-bench run --plugins DIR --operations N --workers W [--parameters-bytes B] [--database PATH]
                                  [--isolation in-process|process]
               stephost-bench enqueue (--database PATH | --database-url URL) --operations N [--parameters-bytes B]
               stephost-bench scratch-database --admin-url URL
               stephost-bench span (--database PATH | --database-url URL)
               stephost-bench commit-latency (--database PATH | --database-url URL) [--count N]
               stephost-bench document [--parameters-bytes B] [--fields F]
               stephost-bench provision --plugins DIR --operations N --clients C --workers W [--parameters-bytes B]
                                        [--database PATH]
               stephost-bench http-provision --port P --database PATH --operations N --clients C
                                             [--parameters-bytes B] [--server-pid PID]

        run       creates N operations in a fresh SQLite file and runs them all; prints ops/s, durable commits,
                  commits per operation, the stored row size, bytes written per commit and RSS
        enqueue   creates N pending operations in PATH (or the PostgreSQL database at URL), for timing
                  `stephost run` on a long queue
        scratch-database
                  creates a new, empty database on the PostgreSQL server of URL and prints its URL
        span      the operations of the database and the span from the first step's start to the last write:
                  ops/s of hosts that ran its queue, without their start-up
        commit-latency
                  N durable saves of one operation, one after the other: median and 95th percentile, in ms
        document  prints the operation document a plugin receives for such an operation
        provision creates N broker instances from C concurrent callers, as the broker's PUT does but without HTTP,
                  while the engine serves them as `stephost serve` does; prints requests/s and the ops/s until
                  all N succeeded
        http-provision
                  the same through a running `stephost serve` on 127.0.0.1:P (whose database is PATH): N PUTs
                  over C keep-alive connections; prints the same figures, the client's CPU time and, with
                  --server-pid, the server's

        """

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else { fail(usage, status: 64) }
        arguments.removeFirst()
        let options: [String: String]
        do { options = try parse(arguments) } catch { fail("stephost-bench: \(error)\n\n\(usage)", status: 64) }
        let bytes = Int(options["parameters-bytes"] ?? "2048") ?? 2048
        do {
            switch command {
            case "run":
                guard let plugins = options["plugins"], let count = Int(options["operations"] ?? "") else {
                    fail("stephost-bench run needs --plugins and --operations\n\n\(usage)", status: 64)
                }
                guard let isolation = Isolation(rawValue: options["isolation"] ?? "in-process") else {
                    fail("stephost-bench run: --isolation is in-process or process\n\n\(usage)", status: 64)
                }
                try await run(
                    plugins: plugins,
                    count: count,
                    workers: Int(options["workers"] ?? "4") ?? 4,
                    parameterBytes: bytes,
                    database: options["database"],
                    isolation: isolation
                )
            case "enqueue":
                guard options["database"] != nil || options["database-url"] != nil,
                    let count = Int(options["operations"] ?? "")
                else {
                    fail(
                        "stephost-bench enqueue needs --database (or --database-url) and --operations\n\n\(usage)",
                        status: 64
                    )
                }
                try await enqueue(
                    database: options["database"] ?? "",
                    url: options["database-url"],
                    count: count,
                    parameterBytes: bytes
                )
            case "scratch-database":
                guard let admin = options["admin-url"] else {
                    fail("stephost-bench scratch-database needs --admin-url\n\n\(usage)", status: 64)
                }
                try await scratchDatabase(adminURL: admin)
            case "span":
                guard options["database"] != nil || options["database-url"] != nil else {
                    fail("stephost-bench span needs --database or --database-url\n\n\(usage)", status: 64)
                }
                try await span(database: options["database"] ?? "", url: options["database-url"])
            case "commit-latency":
                guard options["database"] != nil || options["database-url"] != nil else {
                    fail("stephost-bench commit-latency needs --database or --database-url\n\n\(usage)", status: 64)
                }
                try await commitLatency(
                    database: options["database"] ?? "",
                    url: options["database-url"],
                    count: Int(options["count"] ?? "200") ?? 200
                )
            case "provision":
                guard let plugins = options["plugins"], let count = Int(options["operations"] ?? ""),
                    let clients = Int(options["clients"] ?? ""), clients > 0
                else {
                    fail("stephost-bench provision needs --plugins, --operations and --clients\n\n\(usage)", status: 64)
                }
                try await provision(
                    plugins: plugins,
                    count: count,
                    clients: clients,
                    workers: Int(options["workers"] ?? "4") ?? 4,
                    parameterBytes: bytes,
                    database: options["database"]
                )
            case "http-provision":
                guard let port = Int(options["port"] ?? ""), let database = options["database"],
                    let count = Int(options["operations"] ?? ""), let clients = Int(options["clients"] ?? ""),
                    clients > 0
                else {
                    fail(
                        "stephost-bench http-provision needs --port, --database, --operations and --clients\n\n\(usage)",
                        status: 64
                    )
                }
                try await httpProvision(
                    port: port,
                    database: database,
                    count: count,
                    clients: clients,
                    parameterBytes: bytes,
                    serverPID: options["server-pid"].flatMap { Int($0) }
                )
            case "document":
                var operation = OperationRecord(
                    id: UUID().uuidString.lowercased(),
                    instanceID: UUID().uuidString.lowercased(),
                    description: "",
                    createdAt: Date(),
                    deadline: Date().addingTimeInterval(3600),
                    parameters: try parameters(index: 0, bytes: bytes)
                )
                for field in 0..<(Int(options["fields"] ?? "0") ?? 0) {
                    operation.fields[FieldKey("bench_\(field + 1)")] = "\(field + 1)"
                }
                FileHandle.standardOutput.write(Data(OperationDocument.json(operation, pass: 1)))
                print()
            case "-h", "--help", "help":
                print(usage, terminator: "")
            default:
                fail("stephost-bench: unknown command \(command)\n\n\(usage)", status: 64)
            }
        } catch {
            fail("stephost-bench: \(error)\n", status: 1)
        }
    }

    static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data(message.utf8))
        exit(status)
    }

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ arguments: [String]) throws -> [String: String] {
        var options: [String: String] = [:]
        var rest = arguments[...]
        while let name = rest.popFirst() {
            guard name.hasPrefix("--"), let value = rest.popFirst() else {
                throw UsageError(description: "expected --option VALUE, found \(name)")
            }
            options[String(name.dropFirst(2))] = value
        }
        return options
    }

    /// Parameters of about `bytes` bytes: a name and labels that pad the rest.
    static func parameters(index: Int, bytes: Int) throws -> ProvisioningParameters {
        try ProvisioningParameters(json: parametersJSON(index: index, bytes: bytes))
    }

    /// The text of ``parameters(index:bytes:)``, with sorted keys (as the broker stores them).
    static func parametersJSON(index: Int, bytes: Int) -> String {
        // Written by hand: Foundation's sorted-key writer would cost the benchmark's setup more than the host's work.
        var labels: [String] = []
        var size = 40
        while size < bytes {
            let number = String(labels.count)
            labels.append(
                "\"bench-label-\(String(repeating: "0", count: max(0, 3 - number.count)))\(number)\":"
                    + "\"\(String(repeating: "v", count: 48))\""
            )
            size += 68
        }
        return #"{"labels":{\#(labels.joined(separator: ","))},"name":"bench-\#(index)","region":"europe-west4"}"#
    }

    static func host(
        plugins: String,
        database: String,
        databaseURL: String? = nil,
        workers: Int,
        isolation: Isolation = .inProcess,
        events: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) async throws -> ProvisioningHost {
        var options = EngineOptions()
        options.workers = workers
        do {
            return try await ProvisioningHost(
                HostConfiguration(
                    pluginsDirectory: plugins,
                    databasePath: database,
                    databaseURL: databaseURL,
                    engine: options,
                    isolation: IsolationConfiguration(defaults: PluginPolicy(isolation: isolation))
                ),
                logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                events: events
            )
        } catch {
            fail("stephost-bench: the host cannot be built from \(plugins): \(error)\n", status: 1)
        }
    }

    static func enqueue(database: String, url: String? = nil, count: Int, parameterBytes: Int) async throws {
        let empty = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let host = try await host(plugins: empty.path, database: database, databaseURL: url, workers: 1)
        let start = ContinuousClock.now
        for index in 0..<count {
            _ = try await host.engine.createOperation(
                parameters: try parameters(index: index, bytes: parameterBytes),
                instanceID: "bench-\(index)"
            )
        }
        try host.store.close()
        emit(["operations": count, "seconds": seconds(since: start)])
    }

    static func run(
        plugins: String,
        count: Int,
        workers: Int,
        parameterBytes: Int,
        database: String?,
        isolation: Isolation
    ) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = database ?? directory.appendingPathComponent("bench.sqlite").path
        let steps = StepTimes()
        let host = try await host(
            plugins: plugins,
            database: path,
            workers: workers,
            isolation: isolation,
            events: steps.observe
        )
        var created: [String] = []
        for index in 0..<count {
            created.append(
                try await host.engine.createOperation(
                    parameters: try parameters(index: index, bytes: parameterBytes),
                    instanceID: "bench-\(index)"
                ).id
            )
        }
        let rssStart = residentKilobytes()
        let writtenStart = writtenBytes()
        let commitsStart = ((host.store as? SQLiteOperationStore)?.durableCommits ?? 0)
        let start = ContinuousClock.now
        let report = try await host.engine.runUntilIdle()
        let elapsed = seconds(since: start)
        let commits = ((host.store as? SQLiteOperationStore)?.durableCommits ?? 0) - commitsStart
        let written = writtenBytes() - writtenStart
        let rssEnd = residentKilobytes()
        let succeeded = report.operations.filter { $0.state == .succeeded }.count
        guard succeeded == count else {
            let failed = report.operations.first { $0.state != .succeeded }
            fail(
                "stephost-bench: \(count - succeeded) of \(count) operations did not succeed; "
                    + "\(failed.map { "\($0.id): \($0.state.rawValue)" } ?? "")\n",
                status: 1
            )
        }
        var stepRuns = 0
        for id in created { stepRuns += try await host.store.stepRuns(operationID: id).count }
        let row = try await host.store.storedColumns(id: created[0]) ?? []
        let rowBytes = row.reduce(0) { $0 + ($1.value?.utf8.count ?? 0) }
        emit([
            "operations": count, "workers": workers, "steps": host.pipeline.steps.count,
            "plugins": host.plugins.used.count, "seconds": elapsed, "ops_per_second": Double(count) / elapsed,
            "passes": report.passes, "step_runs": stepRuns, "commits": commits,
            "commits_per_operation": Double(commits) / Double(count), "row_bytes": rowBytes,
            "written_bytes_per_commit": commits > 0 ? written / commits : 0,
            "per_step_us": steps.medianMicroseconds, "rss_kb_start": rssStart, "rss_kb_end": residentKilobytes(),
            "rss_kb_before_report": rssEnd,
        ])
    }

    /// The host's time per step, from the steps that run before create_runtime: for each pass, the time from
    /// its start (its first write done) to the end of the last of those steps, over their number. Nothing in
    /// that span waits for the disk unless a step changed something.
    final class StepTimes: Sendable {
        private struct State {
            var started: [String: ContinuousClock.Instant] = [:]
            /// Per running pass: the time per step so far.
            var current: [String: Double] = [:]
            var perStep: [Double] = []
        }

        private let state = Mutex(State())

        func observe(_ event: EngineEvent) {
            let now = ContinuousClock.now
            switch event {
            case .passStarted(let id, _, _):
                state.withLock { $0.started[id] = now }
            case .stepFinished(let id, _, _, _, let run) where run.step == "create_runtime":
                state.withLock { state in
                    state.started[id] = nil
                    if let perStep = state.current.removeValue(forKey: id) { state.perStep.append(perStep) }
                }
            case .stepFinished(let id, _, let position, _, _):
                state.withLock { state in
                    guard let start = state.started[id] else { return }
                    let elapsed = now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    state.current[id] = seconds / Double(position)
                }
            default: break
            }
        }

        /// The median over passes, in microseconds; 0 without steps before create_runtime.
        var medianMicroseconds: Double {
            let sorted = state.withLock { $0.perStep }.sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2] * 1e6
        }
    }

    static func emit(_ figures: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])) ?? Data()
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// This process's resident set, from /proc/self/status.
    static func residentKilobytes() -> Int {
        procField("/proc/self/status", "VmRSS:")
    }

    /// Bytes this process has passed to write(2) and friends so far, from /proc/self/io.
    static func writtenBytes() -> Int {
        procField("/proc/self/io", "wchar:")
    }

    static func procField(_ file: String, _ name: String) -> Int {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).filter(\.isNumber)) ?? 0
        }
        return 0
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stephost-bench-\(UUID())")
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        return directory
    }
}
