import Foundation
import Glibc
import Synchronization
import Testing

/// An answer from ``LoopbackHTTP``.
struct HTTPAnswer: CustomStringConvertible {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object.
    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any], "not a JSON object: \(text)")
    }

    var description: String { "\(status) \(text.prefix(500))" }
}

/// A plain HTTP/1.1 client over a loopback TCP socket, one request per connection (`Connection: close`): real HTTP
/// with nothing added or hidden, so a test can send exactly the bytes it means (a wrong header, an oversized body).
enum LoopbackHTTP {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func send(
        port: Int,
        _ method: String,
        _ path: String,
        headers: [(String, String)] = [],
        body: Data? = nil,
        timeout: Int = 60,
        beforeLastByte: (() -> Void)? = nil
    ) throws -> HTTPAnswer {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var wait = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw Failure(description: "connect to port \(port): \(String(cString: strerror(errno)))")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var request = Data(head.utf8)
        if let body { request.append(body) }
        try request.withUnsafeBytes { bytes in
            var sent = 0
            // All but the last byte, then wait: requests from many threads then reach the server together.
            var holding = beforeLastByte != nil
            while sent < bytes.count {
                if holding && sent == bytes.count - 1 {
                    holding = false
                    beforeLastByte?()
                }
                let written = write(
                    socket,
                    bytes.baseAddress! + sent,
                    (holding ? bytes.count - 1 : bytes.count) - sent
                )
                // The server may answer and close before reading a body it refuses (413): what it said is read below.
                if written <= 0 {
                    if errno == EPIPE || errno == ECONNRESET { return }
                    throw Failure(description: "write: \(String(cString: strerror(errno)))")
                }
                sent += written
            }
        }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(socket, &buffer, buffer.count)
            if count == 0 { break }
            if count < 0 {
                if errno == ECONNRESET && !answer.isEmpty { break }
                throw Failure(description: "read: \(String(cString: strerror(errno)))")
            }
            answer.append(contentsOf: buffer[0..<count])
        }
        return try parse(answer)
    }

    private static func parse(_ data: Data) throws -> HTTPAnswer {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else {
            throw Failure(description: "no complete answer: \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ")
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else {
            throw Failure(description: "bad status line: \(lines[0])")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        var body = Data(data[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var decoded = Data()
            var rest = body[...]
            while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
                let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
                if size == 0 { break }
                let start = lineEnd.upperBound
                decoded.append(rest[start..<start + size])
                rest = rest[(start + size + 2)...]
            }
            body = decoded
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }
}

/// `stephost serve` in a child process on a free loopback port, with a plugin directory and a database of its own.
/// Its state is set once at start; `Process` is safe to ask from any thread.
final class ServedHost: @unchecked Sendable {
    static let username = "osb-platform"
    static let password = "correct horse battery staple"

    let directory: TemporaryDirectory
    let plugins: URL
    let databasePath: String
    /// The PostgreSQL database it serves instead of its SQLite file, if any.
    let databaseURL: String?
    let process = Process()
    let port: Int
    /// Where the server's standard error goes.
    let log: URL

    /// Starts the server (and waits until it listens) with the credentials above in its environment, unless
    /// `environment` says otherwise.
    init(
        _ directory: TemporaryDirectory,
        plugins: URL? = nil,
        arguments: [String] = [],
        environment: [String: String] = [:],
        logName: String = "serve.log",
        launcher: [String] = [],
        databaseURL: String? = nil
    ) throws {
        self.directory = directory
        self.plugins = plugins ?? directory.file("plugins")
        databasePath = directory.file("stephost.sqlite").path
        self.databaseURL = databaseURL
        log = directory.file(logName)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        // A launcher (`prlimit …`) execs the host in its own process: the pid stays the host's.
        process.executableURL = launcher.isEmpty ? Paths.stephost : URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            (launcher.isEmpty ? [] : launcher + [Paths.stephost.path])
            + ["serve", "--plugins-dir", self.plugins.path] + (databaseURL == nil ? ["--db", databasePath] : [])
            + ["--port", "0"] + arguments
        // A PostgreSQL URL goes through the environment, as an operator should pass it (never the command line).
        var own = ["STEPHOST_BROKER_USERNAME": Self.username, "STEPHOST_BROKER_PASSWORD": Self.password]
        if let databaseURL { own["STEPHOST_DATABASE_URL"] = databaseURL }
        process.environment = ProcessInfo.processInfo.environment.merging(
            own.merging(environment) { _, new in new }
        ) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        var line: [UInt8] = []
        let handle = output.fileHandleForReading
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { break }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression),
            let number = Int(text[range].split(separator: ":")[1])
        else {
            process.waitUntilExit()
            let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw LoopbackHTTP.Failure(
                description: "stephost serve did not start (status \(process.terminationStatus)): \(text) \(logged)"
            )
        }
        port = number
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// The host's own pid when a launcher forked it (`unshare --fork`): the launcher's only child.
    var hostPID: pid_t {
        let launcherPID = process.processIdentifier
        let children =
            (try? String(contentsOfFile: "/proc/\(launcherPID)/task/\(launcherPID)/children", encoding: .utf8)) ?? ""
        return children.split(separator: " ").first.flatMap { pid_t($0) } ?? launcherPID
    }

    static var authorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    /// A request with the credentials and the OSB version header (unless `authenticated` or `broker` is false).
    func request(
        _ method: String,
        _ path: String,
        json: Any? = nil,
        headers: [(String, String)] = [],
        authenticated: Bool = true,
        broker: Bool = true,
        beforeLastByte: (() -> Void)? = nil
    ) throws -> HTTPAnswer {
        var all = headers
        if authenticated { all.append(("Authorization", Self.authorization)) }
        if broker { all.append(("X-Broker-API-Version", "2.16")) }
        var body: Data?
        if let json {
            body = try JSONSerialization.data(withJSONObject: json)
            all.append(("Content-Type", "application/json"))
        }
        return try LoopbackHTTP.send(port: port, method, path, headers: all, body: body, beforeLastByte: beforeLastByte)
    }

    /// `PUT /v2/service_instances/{instance}?accepts_incomplete=true` with the built-in catalog's plan.
    func provision(
        _ instance: String,
        _ parameters: [String: Any],
        beforeLastByte: (() -> Void)? = nil
    ) throws -> HTTPAnswer {
        try request(
            "PUT",
            "/v2/service_instances/\(instance)?accepts_incomplete=true",
            json: [
                "service_id": "stephost-runtime", "plan_id": "stephost-runtime-default", "parameters": parameters,
            ],
            beforeLastByte: beforeLastByte
        )
    }

    /// The state `last_operation` reports.
    func lastState(_ instance: String) throws -> String? {
        let answer = try request("GET", "/v2/service_instances/\(instance)/last_operation")
        return try answer.json()["state"] as? String
    }

    /// Waits (bounded) until `last_operation` of `instance` reports a final state; returns it.
    func waitForFinal(_ instance: String, within seconds: Double = 120) throws -> String? {
        var state: String?
        _ = try eventually(within: seconds) {
            state = try lastState(instance)
            return state == "succeeded" || state == "failed"
        }
        return state
    }

    /// Sends `signal` and waits for the process to end; returns its status and how long it took to end.
    func stop(_ signal: Int32 = SIGTERM, within seconds: Double = 120) throws -> (status: Int32, seconds: Double) {
        let started = Date()
        kill(process.processIdentifier, signal)
        let ended = try eventually(within: seconds) { !process.isRunning }
        try #require(ended, "stephost serve did not stop within \(seconds) s of signal \(signal)")
        process.waitUntilExit()
        return (process.terminationStatus, Date().timeIntervalSince(started))
    }
}

/// Runs `body` for 0..<count on `width` threads of their own (not GCD's pool, which adds threads slowly while
/// others block); returns when all finished.
func concurrently(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let next = Mutex(0)
    let done = DispatchGroup()
    for _ in 0..<min(width, count) {
        done.enter()
        let thread = Thread {
            while true {
                let index = next.withLock { value -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < count else { break }
                body(index)
            }
            done.leave()
        }
        thread.start()
    }
    done.wait()
}
