import Foundation
import Hummingbird
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostStorage

/// `/operations`, `/plugins`, `/healthz`, `/readyz` and `/metrics`.
struct AdminAPI: Sendable {
    let host: ProvisioningHost
    let metrics: HostMetrics
    /// The database file as it was when the server started.
    let databaseIdentity: DatabaseIdentity?

    func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in try JSONBody.response(object: ["status": "ok"]) }
        router.get("readyz") { _, _ in try await ready() }
        router.get("metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: await metrics.render(host)))
            )
        }
        router.get("plugins") { _, _ in
            let quarantined = (try? await host.store.quarantinedPlugins()) ?? []
            return JSONBody.response(try ListPluginsReport(selection: host.plugins, quarantined: quarantined).json())
        }
        router.get("operations") { request, _ in try await operations(request) }
        router.get("operations/:id") { _, context in try await operation(try context.parameters.require("id")) }
    }

    /// Ready: plugins loaded (they are, or the host would not have started), the database takes writes, and the
    /// engine takes work (not stopping, not refusing for stuck steps).
    private func ready() async throws -> Response {
        var problems: [String] = []
        let path = host.configuration.databasePath
        if host.configuration.databaseURL == nil, let databaseIdentity, DatabaseIdentity(path) != databaseIdentity {
            // The open connections still write, to a file no one will open again: every write would be lost.
            problems.append("the database file \(path) was removed or replaced while the host ran; restart the host")
        }
        do {
            try await host.store.checkWritable(owner: ClaimOwner.current.description, now: Date())
        } catch {
            problems.append("the database does not take writes: \(error)")
        }
        if host.engine.isShuttingDown { problems.append("the host is shutting down") }
        if let refusal = host.stuckSteps.refusal { problems.append(refusal) }
        let object: [String: Any] = [
            "status": problems.isEmpty ? "ready" : "not ready", "plugins": host.plugins.used.count,
            "problems": problems,
        ]
        return try JSONBody.response(status: problems.isEmpty ? .ok : .serviceUnavailable, object: object)
    }

    private func operations(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var state: OperationState?
        if let text = query.get("state"), !text.isEmpty {
            guard let known = OperationState(rawValue: text) else {
                throw APIError.badRequest(
                    "state must be one of \(OperationState.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            state = known
        }
        var limit = 100
        if let text = query.get("limit") {
            guard let number = Int(text), (1...1000).contains(number) else {
                throw APIError.badRequest("limit must be a whole number from 1 to 1000")
            }
            limit = number
        }
        let instance = query.get("instance").flatMap { $0.isEmpty ? nil : $0 }
        let page: OperationPage
        do {
            page = try await host.store.operations(
                state: state,
                instanceID: instance,
                limit: limit,
                after: query.get("cursor")
            )
        } catch is InvalidCursor {
            throw APIError.badRequest("cursor is not one this host made: pass `next` of the previous page")
        }
        var object: [String: Any] = [
            "operations": page.operations.map { OperationView.summary($0) },
            "unreadable": page.unreadable.map { ["id": $0.id, "state": $0.state, "unreadable": $0.reason] },
        ]
        object["next"] = page.next ?? NSNull()
        return try JSONBody.response(object: object)
    }

    private func operation(_ id: String) async throws -> Response {
        var resolved = id
        if try await host.store.operation(id: id) == nil {
            // A unique prefix of at least 4 characters, as `operations show` takes.
            let matches = id.count >= 4 ? try await host.store.operationIDs(prefix: id, limit: 2) : []
            guard matches.count == 1 else {
                throw APIError.notFound(
                    matches.isEmpty ? "no operation \(id)" : "the prefix \(id) matches more than one operation"
                )
            }
            resolved = matches[0]
        }
        guard let operation = try await host.store.operation(id: resolved) else {
            throw APIError.notFound("no operation \(id)")
        }
        let runs = try await host.store.stepRuns(operationID: resolved)
        let claim = try await host.store.claim(operationID: resolved)
        return JSONBody.response(
            try OperationView.render(
                OperationView.detail(operation, runs: runs, claim: claim),
                fields: operation.fields
            )
        )
    }
}

/// A file's device and inode: which file a path names now.
struct DatabaseIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
