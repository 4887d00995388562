public import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to a Runtime Provisioner over HTTP: the `provisionRuntime` mutation and the
/// `runtimeOperationStatus` query of its GraphQL schema.
///
/// The operation id travels as the `Idempotency-Key` header (the schema has no field for it) and as the
/// `stephost.io/operation-id` label. Network errors and HTTP 5xx, 408 and 429 are transient; GraphQL errors and
/// other HTTP errors reject the request.
public struct HTTPProvisioner: ProvisionerBackend {
    public let url: URL
    public let pollInterval: Duration
    private let timeout: TimeInterval

    static let provisionMutation = """
        mutation ProvisionRuntime($config: ProvisionRuntimeInput!) {
          provisionRuntime(config: $config) { id operation state message runtimeID }
        }
        """
    static let statusQuery = """
        query RuntimeOperationStatus($id: String!) {
          runtimeOperationStatus(id: $id) { id operation state message runtimeID }
        }
        """

    /// The endpoint as messages show it: a user and password in the URL are never printed.
    public var displayURL: String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false),
            components.user != nil || components.password != nil
        else { return url.absoluteString }
        components.user = nil
        components.password = nil
        return (components.string ?? "").replacingOccurrences(of: "://", with: "://<credentials>@")
    }

    public init(url: URL, pollInterval: Duration = .seconds(15), timeout: TimeInterval = 30) {
        self.url = url
        self.pollInterval = pollInterval
        self.timeout = timeout
    }

    public func provision(
        _ request: ProvisioningRequest,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        struct Variables: Encodable { var config: ProvisioningRequest }
        return try await send(
            Body(
                query: Self.provisionMutation,
                operationName: "ProvisionRuntime",
                variables: Variables(config: request)
            ),
            field: "provisionRuntime",
            operationID: operationID
        )
    }

    public func status(
        provisionerOperationID: String,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        struct Variables: Encodable { var id: String }
        return try await send(
            Body(
                query: Self.statusQuery,
                operationName: "RuntimeOperationStatus",
                variables: Variables(id: provisionerOperationID)
            ),
            field: "runtimeOperationStatus",
            operationID: operationID
        )
    }

    /// A message with the URL's password, if any, taken out (URLSession errors may quote the URL).
    static func withoutCredentials(_ message: String, of url: URL) -> String {
        guard let password = URLComponents(url: url, resolvingAgainstBaseURL: false)?.password, !password.isEmpty
        else { return message }
        return message.replacingOccurrences(of: password, with: "<redacted>")
    }

    private struct Body<Variables: Encodable>: Encodable {
        var query: String
        var operationName: String
        var variables: Variables
    }

    private struct Response: Decodable {
        struct Status: Decodable {
            var id: String?
            var state: String?
            var message: String?
            var runtimeID: String?
        }
        struct GraphQLError: Decodable { var message: String }
        var data: [String: Status?]?
        var errors: [GraphQLError]?
    }

    private func send(
        _ body: some Encodable,
        field: String,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.setValue(operationID, forHTTPHeaderField: "Idempotency-Key")
        do {
            request.httpBody = try JSONEncoder().encode(body)
        } catch {
            throw ProvisionerError(.rejected, "the request cannot be encoded: \(error)")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ProvisionerError(
                .transient,
                "the provisioner at \(displayURL) did not answer: \(Self.withoutCredentials(error.localizedDescription, of: url))"
            )
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        // 5xx, 408 (request timeout) and 429 (too many requests) ask to try again later.
        if status >= 500 || status == 408 || status == 429 {
            throw ProvisionerError(.transient, "the provisioner answered HTTP \(status)")
        }
        guard let decoded = try? JSONDecoder().decode(Response.self, from: data) else {
            let kind: ProvisionerError.Kind = status == 200 ? .transient : .rejected
            throw ProvisionerError(kind, "the provisioner answered HTTP \(status) without a GraphQL response")
        }
        if let errors = decoded.errors, !errors.isEmpty {
            throw ProvisionerError(
                .rejected,
                "the provisioner refused \(field): " + errors.map(\.message).joined(separator: "; ")
            )
        }
        guard status == 200 else {
            throw ProvisionerError(.rejected, "the provisioner answered HTTP \(status)")
        }
        guard let result = decoded.data?[field] ?? nil, let id = result.id, let stateName = result.state,
            let state = ProvisionerOperation.State(rawValue: stateName)
        else {
            throw ProvisionerError(.rejected, "the provisioner's answer to \(field) has no operation id or known state")
        }
        return ProvisionerOperation(id: id, runtimeID: result.runtimeID, state: state, message: result.message)
    }
}
