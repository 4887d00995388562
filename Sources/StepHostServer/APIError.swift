import Foundation
import Hummingbird
import Logging
import StepHostCore

/// An error answer: JSON `{"error": …, "description": …}` with its status. OSB names its errors (`AsyncRequired`,
/// `ConcurrencyError`); the others use a short code.
struct APIError: Error, HTTPResponseError {
    let status: HTTPResponse.Status
    let error: String
    let description: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ error: String, _ description: String, headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONBody.response(
            status: status,
            "{\"error\":\(JSONText.quote(error)),\"description\":\(JSONText.quote(description))}"
        )
        response.headers.append(contentsOf: headers)
        return response
    }

    static func notFound(_ what: String) -> APIError { APIError(.notFound, "NotFound", what) }
    static func badRequest(_ what: String) -> APIError { APIError(.badRequest, "BadRequest", what) }
}

/// JSON answers.
enum JSONBody {
    static func response(status: HTTPResponse.Status = .ok, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }

    /// A Foundation JSON value (dictionaries, arrays, strings, numbers) as an answer.
    static func response(status: HTTPResponse.Status = .ok, object: Any) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

/// Turns every error into a JSON error answer: the router's own (no route: 404; a body over the limit: 413), a
/// handler's, and anything unexpected (500, with no detail that could carry a secret; the log has it).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let (code, text): (String, String) =
                switch error.status {
                case .notFound: ("NotFound", "no such resource: \(request.method) \(request.uri.path)")
                case .contentTooLarge: ("BodyTooLarge", "the request body is larger than the limit")
                case .methodNotAllowed: ("MethodNotAllowed", "\(request.method) is not allowed on \(request.uri.path)")
                default: ("\(error.status.code)", error.body ?? error.status.reasonPhrase)
                }
            throw APIError(error.status, code, text, headers: error.headers)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError(error.status, "BodyTooLarge", "the request body is larger than the limit")
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, "\(error.status.code)", error.status.reasonPhrase)
        } catch {
            context.logger.error(
                "request failed",
                metadata: ["path": "\(request.uri.path)", "error": "\(error)"]
            )
            throw APIError(.internalServerError, "InternalError", "the host failed to answer; its log says why")
        }
    }
}

/// Basic authentication on everything but the liveness and readiness probes (and `/metrics`, when asked).
struct BasicAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let credentials: BrokerCredentials?
    let open: Set<String>

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let credentials, !open.contains(request.uri.path) else { return try await next(request, context) }
        guard let header = request.headers[.authorization], let given = Self.basic(header),
            credentials.accepts(username: given.username, password: given.password)
        else {
            throw APIError(
                .unauthorized,
                "Unauthorized",
                request.headers[.authorization] == nil
                    ? "this endpoint needs HTTP basic authentication"
                    : "the username or password is wrong",
                headers: [.wwwAuthenticate: "Basic realm=\"stephost\", charset=\"UTF-8\""]
            )
        }
        return try await next(request, context)
    }

    /// The user and password of a `Basic` authorization (RFC 7617): the scheme in any case, then the base64 of
    /// `user:password`, which must be UTF-8 (bytes that are not would be replaced, and two different passwords
    /// could then compare equal).
    static func basic(_ header: String) -> (username: String, password: String)? {
        let parts = header.split(separator: " ")
        guard parts.count == 2, parts[0].lowercased() == "basic", let data = Data(base64Encoded: String(parts[1])),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// Refuses a request whose headers are larger than `limit` bytes in all (431), before any handler reads them.
struct HeaderLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var size = request.uri.description.utf8.count
        for field in request.headers {
            size += field.name.rawName.utf8.count + field.value.utf8.count + 4
            if size > limit {
                throw APIError(
                    .requestHeaderFieldsTooLarge,
                    "HeadersTooLarge",
                    "the request line and headers are larger than \(limit) bytes"
                )
            }
        }
        return try await next(request, context)
    }
}
