import Foundation
import Hummingbird
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostStorage

/// The Open Service Broker API (v2.13 and later): catalog, provisioning (asynchronous only), the instance, and its
/// last operation.
struct BrokerAPI: Sendable {
    let host: ProvisioningHost
    let catalog: BrokerCatalog
    let maximumBodyBytes: Int
    private let instances = KeyedLock()

    init(host: ProvisioningHost, catalog: BrokerCatalog, maximumBodyBytes: Int) {
        self.host = host
        self.catalog = catalog
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// The oldest OSB version this broker speaks.
    static let minimumVersion = (major: 2, minor: 13)

    func register(on router: Router<BasicRequestContext>) {
        let group = router.group("v2").add(middleware: BrokerVersionMiddleware())
        group.get("catalog") { _, _ in try catalogResponse() }
        group.put("service_instances/:instance_id") { request, context in
            try await provision(request, context)
        }
        group.get("service_instances/:instance_id") { _, context in
            try await fetchInstance(try instanceID(context))
        }
        group.get("service_instances/:instance_id/last_operation") { request, context in
            try await lastOperation(try instanceID(context), operation: request.uri.queryParameters.get("operation"))
        }
    }

    private func catalogResponse() throws -> Response {
        let services: [[String: Any]] = catalog.services.map { service in
            [
                "id": service.id, "name": service.name, "description": service.description, "bindable": false,
                "instances_retrievable": true, "plan_updateable": false,
                "plans": service.plans.map { ["id": $0.id, "name": $0.name, "description": $0.description] },
            ]
        }
        return try JSONBody.response(object: ["services": services])
    }

    /// OSB instance ids are GUIDs: letters, digits and `.`, `_`, `~`, `-` (URI characters that need no escaping),
    /// 1 to 256 of them. Anything else is refused before it reaches the database or a log line.
    private func instanceID(_ context: BasicRequestContext) throws -> String {
        let id = try context.parameters.require("instance_id")
        guard (1...256).contains(id.utf8.count),
            id.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == 0x2E || byte == 0x5F || byte == 0x7E || byte == 0x2D
            })
        else {
            throw APIError.badRequest(
                "the instance id must be 1 to 256 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-' (a GUID, for "
                    + "example)"
            )
        }
        return id
    }

    // MARK: - Provisioning

    private func provision(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try instanceID(context)
        guard request.uri.queryParameters.get("accepts_incomplete") == "true" else {
            throw APIError(
                .unprocessableContent,
                "AsyncRequired",
                "this broker provisions asynchronously only: add ?accepts_incomplete=true and poll last_operation"
            )
        }
        let body = try await Self.jsonObject(request, limit: maximumBodyBytes)
        var problems: [String] = []
        let serviceID = body["service_id"] as? String
        let planID = body["plan_id"] as? String
        if serviceID?.isEmpty ?? true { problems.append("service_id: required, a service id from GET /v2/catalog") }
        if planID?.isEmpty ?? true { problems.append("plan_id: required, a plan id from GET /v2/catalog") }
        if let serviceID, let planID, !serviceID.isEmpty, !planID.isEmpty,
            catalog.plan(service: serviceID, plan: planID) == nil
        {
            problems.append("service_id/plan_id: the catalog has no plan \(planID) of service \(serviceID)")
        }
        let parameters = body["parameters"] ?? [String: Any]()
        guard parameters is [String: Any] else {
            throw APIError.badRequest((problems + ["parameters: must be a JSON object"]).joined(separator: "; "))
        }
        if !problems.isEmpty { throw APIError.badRequest(problems.joined(separator: "; ")) }
        let canonical = try Self.canonical(parameters)
        let store = host.store
        return try await instances.withLock(id) {
            if let existing = try await store.brokerInstance(id: id) {
                return try await repeated(existing, serviceID: serviceID!, planID: planID!, parameters: canonical)
            }
            let parsed: ProvisioningParameters
            do {
                parsed = try ProvisioningParameters(json: canonical)
            } catch {
                throw APIError(.badRequest, "InvalidParameters", "\(error)")
            }
            let operation = host.engine.newOperation(parameters: parsed, instanceID: id)
            let instance = BrokerInstance(
                instanceID: id,
                serviceID: serviceID!,
                planID: planID!,
                parameters: canonical,
                operationID: operation.id,
                createdAt: operation.createdAt
            )
            if let existing = try await store.createInstance(instance, operation: operation) {
                // Another host sharing the database created it first.
                return try await repeated(existing, serviceID: serviceID!, planID: planID!, parameters: canonical)
            }
            context.logger.info(
                "provisioning",
                metadata: ["instance": "\(id)", "operation": "\(operation.id)", "plan": "\(planID!)"]
            )
            host.engine.wake()
            return try JSONBody.response(status: .accepted, object: ["operation": operation.id])
        }
    }

    /// A PUT for an instance that exists: the same operation when the request is identical (200 once it
    /// succeeded, 202 until then), 409 when it differs.
    private func repeated(
        _ existing: BrokerInstance,
        serviceID: String,
        planID: String,
        parameters: String
    ) async throws -> Response {
        guard existing.serviceID == serviceID, existing.planID == planID, existing.parameters == parameters else {
            var differences: [String] = []
            if existing.serviceID != serviceID { differences.append("service_id") }
            if existing.planID != planID { differences.append("plan_id") }
            if existing.parameters != parameters { differences.append("parameters") }
            throw APIError(
                .conflict,
                "Conflict",
                "instance \(existing.instanceID) exists with different \(differences.joined(separator: ", ")); "
                    + "use another instance id, or repeat the original request"
            )
        }
        let state = try await host.store.operation(id: existing.operationID)?.state
        return try JSONBody.response(
            status: state == .succeeded ? .ok : .accepted,
            object: ["operation": existing.operationID]
        )
    }

    // MARK: - Instance and last operation

    private func fetchInstance(_ id: String) async throws -> Response {
        guard let instance = try await host.store.brokerInstance(id: id),
            let operation = try await host.store.operation(id: instance.operationID)
        else { throw APIError.notFound("no service instance \(id)") }
        switch operation.state {
        case .pending, .inProgress:
            throw APIError(
                .unprocessableContent,
                "ConcurrencyError",
                "instance \(id) is being provisioned (operation \(operation.id)); poll last_operation"
            )
        case .failed:
            throw APIError.notFound("instance \(id) failed to provision: \(operation.description)")
        case .succeeded:
            let parameters =
                (try? JSONSerialization.jsonObject(with: Data(instance.parameters.utf8))) ?? [String: Any]()
            var object: [String: Any] = [
                "service_id": instance.serviceID, "plan_id": instance.planID, "parameters": parameters,
            ]
            if let runtime = operation.runtime.runtimeID { object["metadata"] = ["labels": ["runtime_id": runtime]] }
            return try JSONBody.response(object: object)
        }
    }

    private func lastOperation(_ id: String, operation requested: String?) async throws -> Response {
        guard let instance = try await host.store.brokerInstance(id: id) else {
            throw APIError.notFound("no service instance \(id)")
        }
        if let requested, requested != instance.operationID {
            throw APIError.notFound("instance \(id) has no operation \(requested)")
        }
        guard let operation = try await host.store.operation(id: instance.operationID) else {
            throw APIError.notFound("the operation of instance \(id) is gone")
        }
        let state =
            switch operation.state {
            case .pending, .inProgress: "in progress"
            case .succeeded: "succeeded"
            case .failed: "failed"
            }
        var response = try JSONBody.response(object: ["state": state, "description": operation.description])
        if !operation.state.isFinal { response.headers[.retryAfter] = "2" }
        return response
    }

    // MARK: - Request bodies

    /// The body as a JSON object: `application/json`, at most `limit` bytes, well-formed.
    static func jsonObject(_ request: Request, limit: Int) async throws -> [String: Any] {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == "application/json" else {
            throw APIError(
                .unsupportedMediaType,
                "UnsupportedMediaType",
                "the body must be JSON with Content-Type: application/json (got \(type.isEmpty ? "none" : type))"
            )
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "BodyTooLarge", "the request body is larger than \(limit) bytes")
        }
        let data = Data(buffer.readableBytesView)
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw APIError(.badRequest, "MalformedJSON", "the body is not well-formed JSON")
        }
        guard let object = value as? [String: Any] else {
            throw APIError(.badRequest, "MalformedJSON", "the body must be a JSON object")
        }
        return object
    }

    /// `value` as JSON with sorted keys: two requests with the same parameters in another key order are the same.
    static func canonical(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// OSB: every `/v2` request names the API version it speaks in `X-Broker-API-Version`; 412 when it is missing or
/// older than this broker speaks.
struct BrokerVersionMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let minimum = BrokerAPI.minimumVersion
        let wanted = "\(minimum.major).\(minimum.minor)"
        guard let header = request.headers.first(where: { $0.name.canonicalName == "x-broker-api-version" })?.value
        else {
            throw APIError(
                .preconditionFailed,
                "PreconditionFailed",
                "the X-Broker-API-Version header is missing; this broker speaks OSB \(wanted) and later 2.x"
            )
        }
        let parts = header.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let major = parts[0], let minor = parts[1], major == minimum.major,
            minor >= minimum.minor
        else {
            throw APIError(
                .preconditionFailed,
                "PreconditionFailed",
                "X-Broker-API-Version \(header.prefix(32)) is not supported; this broker speaks OSB \(wanted) and "
                    + "later 2.x"
            )
        }
        return try await next(request, context)
    }
}
