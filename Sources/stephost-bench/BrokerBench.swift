import Dispatch
import Foundation
import Glibc
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostSQLite
import StepHostStorage
import Synchronization

/// Figure 8 of `scripts/bench`: provisioning through the Open Service Broker API of `stephost serve` against the
/// same work on the same engine without HTTP.
///
/// Both sides do the same thing with the same N, clients and workers: `clients` callers create N broker instances
/// (one PUT's work each) while the engine serves, as `stephost serve` runs it, and run them to `succeeded`. Both
/// time the creating (requests per second) and the whole from the first creation until a read-only connection to
/// the database sees all N succeeded (operations per second), polled the same way every 10 ms.
///
/// - `provision` does it in this process: the PUT handler's work after it has the body (decode the body, check
///   the plan, write the parameters canonically, look the instance up, `newOperation`, `createInstance`, `wake`)
///   on `clients` tasks, with `Engine.serve()` running beside them.
/// - `http-provision` is the client of a running `stephost serve`: `clients` keep-alive HTTP/1.1 connections send
///   the PUTs, and at the end it checks through `GET /operations?state=succeeded` that the server lists N.
extension StepHostBench {
    static let brokerServiceID = "stephost-runtime"
    static let brokerPlanID = "stephost-runtime-default"

    static func brokerInstanceID(_ index: Int) -> String { "bench-instance-\(index)" }

    /// The body of the PUT that creates instance `index`: the same parameters as every other figure.
    static func provisionBody(index: Int, bytes: Int) -> String {
        #"{"service_id":"\#(brokerServiceID)","plan_id":"\#(brokerPlanID)","parameters":"#
            + parametersJSON(index: index, bytes: bytes) + "}"
    }

    // MARK: - Without HTTP

    static func provision(
        plugins: String,
        count: Int,
        clients: Int,
        workers: Int,
        parameterBytes: Int,
        database: String?
    ) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = database ?? directory.appendingPathComponent("bench.sqlite").path
        let host = try await host(plugins: plugins, database: path, workers: workers)
        let reader = try SQLiteOperationStore(path: path, mode: .readOnly)
        let bodies = (0..<count).map { Data(provisionBody(index: $0, bytes: parameterBytes).utf8) }
        let serving = Task { try await host.engine.serve() }
        let tickets = Tickets()
        let cpuStart = processCPUSeconds()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    while true {
                        let index = tickets.take()
                        guard index < count else { return }
                        try await createInstance(host, id: brokerInstanceID(index), body: bodies[index])
                    }
                }
            }
            try await group.waitForAll()
        }
        let creating = seconds(since: start)
        let cpuCreating = processCPUSeconds() - cpuStart
        let finished = try await waitUntilSucceeded(reader, count: count, since: start)
        let cpu = processCPUSeconds() - cpuStart
        host.engine.beginShutdown()
        try await serving.value
        try reader.close()
        try host.store.close()
        emit([
            "operations": count, "clients": clients, "workers": workers, "creating_seconds": creating,
            "requests_per_second": Double(count) / creating, "seconds": finished,
            "ops_per_second": Double(count) / finished, "cpu_seconds_creating": cpuCreating, "cpu_seconds": cpu,
        ])
    }

    /// What the broker's PUT handler does once it has collected the body (BrokerAPI.provision), without the HTTP
    /// around it: the same decoding, checks, canonical parameters, lookup, insert and wake-up.
    static func createInstance(_ host: ProvisioningHost, id: String, body: Data) async throws {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any],
            let service = object["service_id"] as? String, let plan = object["plan_id"] as? String,
            BrokerCatalog.builtIn.plan(service: service, plan: plan) != nil,
            let parameters = object["parameters"] as? [String: Any]
        else { throw BenchFailure("instance \(id): the request body is not a valid provisioning request") }
        let canonical = String(
            decoding: try JSONSerialization.data(
                withJSONObject: parameters,
                options: [.sortedKeys, .withoutEscapingSlashes]
            ),
            as: UTF8.self
        )
        if try await host.store.brokerInstance(id: id) != nil { throw BenchFailure("instance \(id) exists") }
        let operation = host.engine.newOperation(
            parameters: try ProvisioningParameters(json: canonical),
            instanceID: id
        )
        let instance = BrokerInstance(
            instanceID: id,
            serviceID: service,
            planID: plan,
            parameters: canonical,
            operationID: operation.id,
            createdAt: operation.createdAt
        )
        if try await host.store.createInstance(instance, operation: operation) != nil {
            throw BenchFailure("instance \(id) exists")
        }
        host.engine.wake()
    }

    // MARK: - Through HTTP

    /// The client of a `stephost serve` listening on 127.0.0.1:`port` with its database at `database`.
    ///
    /// Why a client here and not in the Python script: on the 2-CPU machines the benchmark runs on, every CPU
    /// second the client spends is taken from the server. Python's http.client cost about 200 us of CPU per PUT
    /// (0.2 s for 1,000, measured), a third of a CPU at the rates seen, all behind one lock. This client is one
    /// blocking socket per connection on a thread of its own, with the requests built before the clock starts: a
    /// write(2) and one or two read(2)s per request, and a scan of a 200-byte header: about 70 us of CPU per PUT,
    /// thread wake-ups included, under 5% of one CPU at the rates seen. Its CPU time is reported
    /// (`client_cpu_seconds_creating`) so the table can show it is not the limit.
    ///
    /// With `serverPID`, the server's CPU time over the same span (from /proc) is reported too.
    static func httpProvision(
        port: Int,
        database: String,
        count: Int,
        clients: Int,
        parameterBytes: Int,
        serverPID: Int?
    ) async throws {
        let reader = try SQLiteOperationStore(path: database, mode: .readOnly)
        let requests = (0..<count).map { index in
            let body = provisionBody(index: index, bytes: parameterBytes)
            return Array(
                ("PUT /v2/service_instances/\(brokerInstanceID(index))?accepts_incomplete=true HTTP/1.1\r\n"
                    + "Host: 127.0.0.1:\(port)\r\nX-Broker-API-Version: 2.16\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)").utf8
            )
        }
        let serverStart = serverPID.map(processCPUSeconds(pid:))
        let run = try sendAll(port: port, clients: clients, requests: requests)
        let serverCreating = serverPID.map(processCPUSeconds(pid:))
        let finished = try await waitUntilSucceeded(reader, count: count, since: run.start)
        let cpu = processCPUSeconds() - run.cpuStart
        let serverEnd = serverPID.map(processCPUSeconds(pid:))
        try reader.close()
        let listed = try countSucceeded(port: port)
        guard listed == count else {
            throw BenchFailure("GET /operations?state=succeeded lists \(listed) operations, not \(count)")
        }
        var figures: [String: Any] = [
            "operations": count, "clients": clients, "creating_seconds": run.seconds,
            "requests_per_second": Double(count) / run.seconds, "seconds": finished,
            "ops_per_second": Double(count) / finished, "client_cpu_seconds_creating": run.cpuSeconds,
            "client_cpu_seconds": cpu, "listed_succeeded": listed,
        ]
        if let serverStart, let serverCreating, let serverEnd {
            figures["server_cpu_seconds_creating"] = serverCreating - serverStart
            figures["server_cpu_seconds"] = serverEnd - serverStart
        }
        emit(figures)
    }

    struct ClientRun {
        var start: ContinuousClock.Instant
        var seconds: Double
        var cpuStart: Double
        var cpuSeconds: Double
    }

    /// Sends every request once over `clients` connections, each taking the next unsent one; every answer must be
    /// 202. The connections are opened and used once (GET /v2/catalog) before the clock starts.
    static func sendAll(port: Int, clients: Int, requests: [[UInt8]]) throws -> ClientRun {
        let shared = ClientShared()
        let ready = DispatchGroup()
        let done = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        let warmUp = Array(
            "GET /v2/catalog HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Broker-API-Version: 2.16\r\n\r\n".utf8
        )
        for _ in 0..<clients {
            ready.enter()
            done.enter()
            Thread {
                defer { done.leave() }
                let connection: LoopbackConnection
                do {
                    connection = try LoopbackConnection(port: port)
                    let answer = try connection.exchange(warmUp)
                    guard answer.status == 200 else { throw BenchFailure("GET /v2/catalog: status \(answer.status)") }
                } catch {
                    shared.fail("\(error)")
                    ready.leave()
                    return
                }
                ready.leave()
                go.wait()
                while !shared.failed {
                    let index = shared.tickets.take()
                    guard index < requests.count else { break }
                    do {
                        let answer = try connection.exchange(requests[index])
                        guard answer.status == 202 else {
                            throw BenchFailure(
                                "PUT \(brokerInstanceID(index)): status \(answer.status): "
                                    + String(decoding: answer.body.prefix(300), as: UTF8.self)
                            )
                        }
                    } catch {
                        shared.fail("\(error)")
                    }
                }
            }.start()
        }
        ready.wait()
        let cpuStart = processCPUSeconds()
        let start = ContinuousClock.now
        for _ in 0..<clients { go.signal() }
        done.wait()
        let elapsed = seconds(since: start)
        let cpu = processCPUSeconds() - cpuStart
        if let failure = shared.firstFailure { throw BenchFailure(failure) }
        return ClientRun(start: start, seconds: elapsed, cpuStart: cpuStart, cpuSeconds: cpu)
    }

    /// The number of operations `GET /operations?state=succeeded` lists, page by page.
    static func countSucceeded(port: Int) throws -> Int {
        let connection = try LoopbackConnection(port: port)
        var cursor: String?
        var total = 0
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        repeat {
            let query = cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0)" } ?? ""
            let answer = try connection.exchange(
                Array("GET /operations?state=succeeded&limit=1000\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
            )
            guard answer.status == 200,
                let page = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
                let operations = page["operations"] as? [Any]
            else { throw BenchFailure("GET /operations: status \(answer.status)") }
            total += operations.count
            cursor = page["next"] as? String
        } while cursor != nil
        return total
    }

    // MARK: - Shared

    /// Polls `reader` every 10 ms until `count` operations succeeded; the seconds from `start` until then.
    static func waitUntilSucceeded(
        _ reader: SQLiteOperationStore,
        count: Int,
        since start: ContinuousClock.Instant,
        timeout: Double = 300
    ) async throws -> Double {
        while true {
            let counts = try await reader.operationCounts(now: Date())
            if let failed = counts.byState[.failed], failed > 0 {
                throw BenchFailure("\(failed) operations failed")
            }
            if counts.byState[.succeeded, default: 0] >= count { return seconds(since: start) }
            if seconds(since: start) > timeout {
                throw BenchFailure("\(counts.byState[.succeeded, default: 0]) of \(count) succeeded in \(timeout) s")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The CPU time of process `pid` so far (user and system, from /proc/PID/stat, in clock ticks); 0 when it
    /// cannot be read.
    static func processCPUSeconds(pid: Int) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        // After the command name: state is field 3, utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The CPU time of this process so far (all threads), in seconds.
    static func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Hands out 0, 1, 2 ... to concurrent callers.
final class Tickets: Sendable {
    private let next = Atomic<Int>(0)

    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// What the client threads share: the next request and the first failure.
final class ClientShared: Sendable {
    let tickets = Tickets()
    private let failure = Mutex<String?>(nil)

    var failed: Bool { failure.withLock { $0 != nil } }
    var firstFailure: String? { failure.withLock { $0 } }

    func fail(_ message: String) {
        failure.withLock { if $0 == nil { $0 = message } }
    }
}

/// One keep-alive HTTP/1.1 connection to 127.0.0.1, over a blocking socket, for one thread. Responses must carry
/// a Content-Length (Hummingbird's do for the bodies it is given whole).
final class LoopbackConnection {
    private let socket: Int32
    /// Bytes read and not yet consumed.
    private var pending: [UInt8] = []
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw BenchFailure("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let socket = socket
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            throw BenchFailure("connect to 127.0.0.1:\(port): \(reason)")
        }
    }

    deinit { Glibc.close(socket) }

    /// Sends one request and reads its response.
    func exchange(_ request: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        try request.withUnsafeBytes { bytes in
            var sent = 0
            while sent < bytes.count {
                let written = write(socket, bytes.baseAddress! + sent, bytes.count - sent)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw BenchFailure("write: \(String(cString: strerror(errno)))")
                }
                sent += written
            }
        }
        var scanned = 0
        var headerEnd: Int?
        while headerEnd == nil {
            if pending.count >= 4 {
                for index in max(0, scanned - 3)...(pending.count - 4)
                where pending[index] == 13 && pending[index + 1] == 10 && pending[index + 2] == 13
                    && pending[index + 3] == 10
                {
                    headerEnd = index
                    break
                }
                scanned = pending.count
            }
            if headerEnd == nil { try fill() }
        }
        let head = String(decoding: pending[..<headerEnd!], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let statusLine = lines.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw BenchFailure("not an HTTP response: \(head.prefix(100))")
        }
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" { throw BenchFailure("a chunked response: this client reads none") }
        }
        guard let length else { throw BenchFailure("a response without Content-Length") }
        let bodyStart = headerEnd! + 4
        while pending.count < bodyStart + length { try fill() }
        let body = Array(pending[bodyStart..<bodyStart + length])
        pending.removeFirst(bodyStart + length)
        return (status, body)
    }

    private func fill() throws {
        let count = scratch.withUnsafeMutableBytes { read(socket, $0.baseAddress!, $0.count) }
        if count < 0 {
            if errno == EINTR { return }
            throw BenchFailure("read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { throw BenchFailure("the server closed the connection") }
        pending.append(contentsOf: scratch[..<count])
    }
}
