public import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Talks to a Runtime Provisioner over HTTP: the `provisionRuntime` mutation and the
/// `runtimeOperationStatus` query of its GraphQL schema.
///
/// The operation id travels as the `Idempotency-Key` header (the schema has no field for it) and as the
/// `stephost.io/operation-id` label.
///
/// How a failure is classified (see ``ProvisionerError/Kind``):
/// - transient (nothing happened, ask again later): the connection could not be made; HTTP 408, 429, 503;
/// - unknown (a `provisionRuntime` may have been accepted): a timeout, a connection lost after sending, another
///   5xx, an answer that cannot be read. For the status query these are transient: asking again is harmless;
/// - rejected: GraphQL errors on `provisionRuntime`, other 4xx. On the status query a GraphQL *request* error
///   (one without a `path`: the query itself was refused) and a field error whose `extensions` say
///   `"temporary": false` or carry a permanent `code` (`NOT_FOUND`, `BAD_USER_INPUT`, `FORBIDDEN`,
///   `UNAUTHENTICATED`) are permanent; any other field error is transient.
public struct HTTPProvisioner: ProvisionerBackend {
    public let url: URL
    public let pollInterval: Duration
    public let isIdempotent: Bool
    private let timeout: TimeInterval
    private let session: URLSession

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

    /// - Parameters:
    ///   - idempotent: the operator declares that the provisioner returns the first request's operation for a
    ///     repeated `provisionRuntime` with the same `Idempotency-Key` header (or `stephost.io/operation-id`
    ///     label); only then is a request whose outcome is unknown sent again.
    ///   - timeout: the most one request may take, from sending to the whole answer.
    public init(url: URL, pollInterval: Duration = .seconds(15), idempotent: Bool = false, timeout: TimeInterval = 30) {
        self.url = url
        self.pollInterval = pollInterval
        self.isIdempotent = idempotent
        self.timeout = timeout
        let configuration = URLSessionConfiguration.ephemeral
        // Both limits: the request's (between bytes) and the resource's (the whole exchange). The shared session
        // keeps its own 60 s defaults whatever a request asks.
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        // Redirects are not followed: a redirected POST would reach another endpoint (or become a GET) as a
        // second request for one recorded attempt.
        session = URLSession(configuration: configuration, delegate: RefuseRedirects(), delegateQueue: nil)
    }

    /// Hands a redirect back as the answer instead of following it.
    private final class RefuseRedirects: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession,
            task: URLSessionTask,
            willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest,
            completionHandler: @escaping @Sendable (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
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
            operationID: operationID,
            isQuery: false
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
            operationID: operationID,
            isQuery: true
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
        struct GraphQLError: Decodable {
            struct Extensions: Decodable {
                var temporary: Bool?
                var code: String?
            }
            var message: String
            /// Present on field errors (a resolver failed), absent on request errors (the query was refused).
            var path: [PathElement]?
            var extensions: Extensions?
        }
        /// A `path` element: a field name or a list index.
        enum PathElement: Decodable {
            case name(String)
            case index(Int)
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let index = try? container.decode(Int.self) {
                    self = .index(index)
                } else {
                    self = .name(try container.decode(String.self))
                }
            }
        }
        var data: [String: Status?]?
        var errors: [GraphQLError]?
    }

    /// A network error in words (Foundation on Linux describes most of them only by number).
    private func describe(_ error: any Error) -> String {
        let words: String? =
            switch (error as? URLError)?.code {
            case .timedOut?: "no complete answer within the timeout of \(timeout.formatted()) s (timed out)"
            case .networkConnectionLost?: "the connection was closed before the answer"
            case .cannotConnectToHost?: "the connection was refused"
            case .cannotFindHost?, .dnsLookupFailed?: "its host name cannot be resolved"
            case .badServerResponse?: "the answer is not valid HTTP"
            default: nil
            }
        return words ?? Self.withoutCredentials(error.localizedDescription, of: url)
    }

    /// Field-error codes that asking again will not change.
    static let permanentCodes: Set<String> = ["NOT_FOUND", "BAD_USER_INPUT", "FORBIDDEN", "UNAUTHENTICATED"]

    /// URL errors raised before the request could have reached the provisioner.
    static let notSentErrors: Set<URLError.Code> = [
        .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet, .badURL, .unsupportedURL,
        .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
        .serverCertificateHasUnknownRoot, .serverCertificateNotYetValid, .clientCertificateRejected,
        .clientCertificateRequired, .cannotLoadFromNetwork,
    ]

    private func send(
        _ body: some Encodable,
        field: String,
        operationID: String,
        isQuery: Bool
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        // What an answer that leaves the outcome open means: for a query, nothing (ask again); for the mutation,
        // that a runtime may have been created.
        let open: ProvisionerError.Kind = isQuery ? .transient : .unknown
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
            // Detached: a cancelled caller (a shutdown, a failing sibling pass) must not cancel a request that is
            // already on its way: its answer is what create_runtime records. (Cancelling a URLSession task from a
            // task group can also deadlock swift-corelibs-foundation, issue #5412.) The timeout still bounds it.
            let session = session
            let exchange = Task.detached { try await session.data(for: request) }
            (data, response) = try await exchange.value
        } catch {
            let reason = describe(error)
            if let code = (error as? URLError)?.code, Self.notSentErrors.contains(code) {
                throw ProvisionerError(.transient, "the provisioner at \(displayURL) could not be reached: \(reason)")
            }
            throw ProvisionerError(open, "the provisioner at \(displayURL) did not answer: \(reason)")
        }
        let http = response as? HTTPURLResponse
        let status = http?.statusCode ?? 0
        // 408 (request timeout), 429 (too many requests) and 503 (unavailable) say the request was not processed.
        if status == 408 || status == 429 || status == 503 {
            throw ProvisionerError(.transient, "the provisioner answered HTTP \(status)")
        }
        if status >= 500 {
            throw ProvisionerError(open, "the provisioner answered HTTP \(status)")
        }
        if (300..<400).contains(status) {
            let location = http?.value(forHTTPHeaderField: "Location").map { " to \($0)" } ?? ""
            throw ProvisionerError(
                .rejected,
                "the provisioner answered a redirect (HTTP \(status)\(location)), which stephost does not follow; set "
                    + "--provisioner-url to the endpoint itself"
            )
        }
        let success = (200..<300).contains(status)
        guard let decoded = try? JSONDecoder().decode(Response.self, from: data) else {
            throw ProvisionerError(
                success ? open : .rejected,
                "the provisioner answered HTTP \(status) without a GraphQL response"
            )
        }
        let errors = decoded.errors ?? []
        let errorText = errors.map(\.message).joined(separator: "; ")
        // An answer that names an operation is taken, errors or not: what the provisioner created is recorded.
        if success, let result = decoded.data?[field] ?? nil, let id = result.id, !id.isEmpty,
            let stateName = result.state, let state = ProvisionerOperation.State(rawValue: stateName)
        {
            let message =
                errors.isEmpty
                ? result.message
                : [result.message, "errors: \(errorText)"].compactMap { $0 }
                    .joined(separator: "; ")
            return ProvisionerOperation(id: id, runtimeID: result.runtimeID, state: state, message: message)
        }
        if !errors.isEmpty {
            let message = "the provisioner refused \(field): " + errorText
            let permanent =
                !isQuery
                || errors.contains { error in
                    error.path == nil || error.extensions?.temporary == false
                        || error.extensions?.code.map(Self.permanentCodes.contains) == true
                }
            throw ProvisionerError(permanent ? .rejected : .transient, message)
        }
        guard success else {
            throw ProvisionerError(.rejected, "the provisioner answered HTTP \(status)")
        }
        throw ProvisionerError(
            isQuery ? .rejected : .unknown,
            "the provisioner's answer to \(field) (HTTP \(status)) has no operation id or known state"
        )
    }
}
