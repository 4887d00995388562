import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostStorage
import Synchronization

/// The read-only status page: `GET /` (the pipeline and the operations, filterable by state) and
/// `GET /ui/operations/{id}` (one operation's timeline of passes and step runs). Server-rendered with Mustache
/// (every value HTML-escaped: plugin names, messages and descriptions are plugin text); the one script,
/// `/ui/status.js`, reloads the page's content while an operation on it is unfinished: the operation page as soon as
/// the operation changes (a long poll), the index every 2 seconds.
struct StatusPage: Sendable {
    let host: ProvisioningHost
    private let library: MustacheLibrary
    /// Long polls waiting now. A client that abandons its polls leaves them running until they end (at most 20 s
    /// each): past ``maximumLongPolls`` a poll is answered at once, so abandoned ones cost a bounded number of tasks.
    private let longPolls = LongPollCount()
    static let maximumLongPolls = 64

    init(host: ProvisioningHost) throws {
        self.host = host
        var library = MustacheLibrary()
        try library.register(Self.layout, named: "layout")
        try library.register(Self.header, named: "header")
        try library.register(Self.footer, named: "footer")
        try library.register(Self.index, named: "index")
        try library.register(Self.operation, named: "operation")
        self.library = library
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { request, _ in try await index(state: request.uri.queryParameters.get("state")) }
        router.get("ui/operations/:id") { request, context in
            try await operation(
                try context.parameters.require("id"),
                after: request.uri.queryParameters.get("after").flatMap { Int64($0) }
            )
        }
        router.get("ui/status.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Self.script))
            )
        }
    }

    private func html(_ name: String, _ object: [String: Any]) throws -> Response {
        guard let page = library.render(object, withTemplate: name) else {
            throw APIError(.internalServerError, "InternalError", "the status page template \(name) is missing")
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: page))
        )
    }

    // MARK: - The pipeline and the operations

    private func index(state filter: String?) async throws -> Response {
        var state: OperationState?
        if let filter, !filter.isEmpty {
            guard let known = OperationState(rawValue: filter) else {
                throw APIError.badRequest(
                    "state must be one of \(OperationState.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            state = known
        }
        let quarantined = (try? await host.store.quarantinedPlugins()) ?? []
        let report = ListPluginsReport(selection: host.plugins, quarantined: quarantined)
        let document = report.document
        let plugins = Dictionary(document.plugins.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let steps: [[String: Any]] = document.steps.map { step in
            let plugin = step.plugin.flatMap { plugins[$0] }
            return [
                "position": step.position, "weight": step.weight, "name": step.name,
                "plugin": step.plugin ?? "built-in", "version": (step.plugin_version ?? "-").escapingControlCharacters,
                "sha": plugin.map { String($0.file_sha256.prefix(12)) } ?? "-",
                "sha_full": plugin?.file_sha256 ?? "",
                "isolation": plugin?.isolation ?? "in-process (host)",
                "health": plugin?.quarantine.map { "quarantined: \($0.reason)".escapingControlCharacters } ?? "ok",
                "healthy": plugin?.quarantine == nil,
            ]
        }
        let page = try await host.store.operations(state: state, limit: 100, after: nil)
        let now = Date()
        let operations: [[String: Any]] = page.operations.map { operation in
            [
                "id": operation.id, "short": String(operation.id.prefix(8)), "instance": operation.instanceID,
                "state": operation.state.rawValue, "age": Self.age(now.timeIntervalSince(operation.createdAt)),
                "passes": operation.passes, "description": operation.description.escapingControlCharacters,
            ]
        }
        let running = page.operations.contains { !$0.state.isFinal }
        let filters: [[String: Any]] = ([nil] + OperationState.allCases.map(\.rawValue)).map { name in
            [
                "label": name ?? "all", "href": name.map { "/?state=\($0)" } ?? "/",
                "current": name == state?.rawValue,
            ]
        }
        var object: [String: Any] = [
            "title": "stephost", "running": running, "steps": steps, "operations": operations,
            "hasOperations": !operations.isEmpty, "filters": filters, "filter": state?.rawValue ?? "all",
            "broken": document.broken.map {
                ["file": $0.file.escapingControlCharacters, "error": $0.error.escapingControlCharacters]
            },
            "disabled": document.disabled.map {
                ["file": $0.file.escapingControlCharacters, "plugin": ($0.plugin ?? "-").escapingControlCharacters]
            },
            "hasBroken": !document.broken.isEmpty, "hasDisabled": !document.disabled.isEmpty,
            "pluginsDir": document.plugins_dir, "version": StepHostVersion.text,
            "generated": OperationView.timestamp(now),
        ]
        if let state { object["filterState"] = state.rawValue }
        return try html("index", object)
    }

    // MARK: - One operation's timeline

    /// With `after` (the version the page shows), the answer waits until the operation changed, up to 20 seconds:
    /// the page's refresh is a long poll, so it shows a change the moment it is saved and asks nothing meanwhile.
    private func operation(_ id: String, after version: Int64?) async throws -> Response {
        guard var operation = try await host.store.operation(id: id) else {
            throw APIError.notFound("no operation \(id)")
        }
        if let version, longPolls.enter(limit: Self.maximumLongPolls) {
            defer { longPolls.leave() }
            let deadline = ContinuousClock.now + .seconds(20)
            while Int64(operation.version) == version, !operation.state.isFinal, ContinuousClock.now < deadline,
                !host.engine.isShuttingDown
            {
                try await Task.sleep(for: .milliseconds(200))
                guard let latest = try await host.store.operation(id: id) else { break }
                operation = latest
            }
        }
        let runs = try await host.store.stepRuns(operationID: id)
        let claim = try await host.store.claim(operationID: id)
        let byPass = Dictionary(grouping: runs, by: \.pass)
        let passes: [[String: Any]] = byPass.keys.sorted().map { pass in
            let steps = byPass[pass]!.sorted { $0.position < $1.position }
            let total = max(steps.reduce(0) { $0 + $1.durationMilliseconds }, 0.001)
            return [
                "pass": pass,
                "total": String(format: "%.1f", total),
                "started": steps.first.map { OperationView.timestamp($0.startedAt) } ?? "-",
                "steps": steps.map { run -> [String: Any] in
                    [
                        "position": run.position, "step": run.step, "plugin": run.plugin ?? "built-in",
                        "outcome": run.outcome.rawValue, "ms": String(format: "%.1f", run.durationMilliseconds),
                        "width": String(format: "%.1f", max(0.5, run.durationMilliseconds / total * 100)),
                        "message": (run.message ?? "").escapingControlCharacters,
                    ]
                },
            ]
        }
        let retries = runs.filter { $0.outcome == .retry }.count
        var object: [String: Any] = [
            "title": "operation \(operation.id)", "id": operation.id, "instance": operation.instanceID,
            "operationVersion": operation.version,
            "state": operation.state.rawValue, "description": operation.description.escapingControlCharacters,
            "created": OperationView.timestamp(operation.createdAt),
            "updated": OperationView.timestamp(operation.updatedAt),
            "age": Self.age(Date().timeIntervalSince(operation.createdAt)), "passes": operation.passes,
            "retries": retries,
            // Only a time still ahead is a next pass; a due one is running now or about to.
            "nextPass": operation.nextPassAt.flatMap { $0 > Date() ? OperationView.timestamp($0) : nil } ?? "-",
            "running": !operation.state.isFinal, "timeline": passes, "hasTimeline": !passes.isEmpty,
            "dropped": operation.droppedStepRuns, "hasDropped": operation.droppedStepRuns > 0,
            "runtime": operation.runtime.runtimeID ?? "-", "version": StepHostVersion.text,
            "generated": OperationView.timestamp(Date()),
        ]
        if let claim, let running = claim.running, !operation.state.isFinal {
            object["runningStep"] =
                OperationView.runningLine(running, claim: claim, died: claim.isFree(at: Date()))
                .escapingControlCharacters
        }
        if let error = operation.lastError {
            object["lastError"] = [
                "step": error.step, "plugin": error.plugin ?? "built-in",
                "message": error.message.escapingControlCharacters,
            ]
        }
        return try html("operation", object)
    }

    /// "42s", "3m 12s", "2h 5m", "3d 4h".
    static func age(_ seconds: TimeInterval) -> String {
        let total = max(0, Int(seconds))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(total % 60)s" }
        if total < 86400 { return "\(total / 3600)h \(total % 3600 / 60)m" }
        return "\(total / 86400)d \(total % 86400 / 3600)h"
    }
}

/// How many long polls wait now.
final class LongPollCount: Sendable {
    private let count = Mutex(0)

    /// Counts one more unless `limit` wait already; `false` then.
    func enter(limit: Int) -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}
