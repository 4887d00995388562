import Foundation
import Glibc
import Logging
import StepHostCore
import StepHostPostgres
import StepHostStorage
import Synchronization
import Testing

/// Several `stephost serve` processes sharing one PostgreSQL database: real hosts, a real server (that one test
/// stops and starts), real HTTP, and a step that writes down which host ran it for which operation and when, so the
/// tests can check that no two hosts ever ran steps of one operation at the same time.
///
/// Hosts on one machine would tell a dead neighbour at once from its pid; a host on another machine can only wait
/// for its lease. Where the lease is what a test is about, a host runs in a PID namespace of its own (`unshare`),
/// where the others cannot see its pid, exactly as hosts on different machines (or in containers) cannot.
@Suite("Several hosts on one PostgreSQL database", .serialized)
struct MultiHostTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// One step run as the fixture wrote it down: the host's label, the operation, its pass, and when the step
    /// started and ended (CLOCK_MONOTONIC nanoseconds; no end if the host died inside it).
    struct Interval {
        let host: String
        let operation: String
        let pass: Int
        let start: Int64
        var end: Int64?
    }

    /// A PostgreSQL database of the test's own, a plugin directory with the interval-recording plugin, a
    /// provisioner stand-in, and the hosts the test starts.
    final class Cluster {
        let directory: TemporaryDirectory
        let plugins: URL
        let intervalFile: URL
        let databaseURL: String
        let store: PostgresOperationStore
        let provisioner: HTTPProvisionerTests.Provisioner
        private(set) var hosts: [(label: String, host: ServedHost)] = []
        /// Hosts the test killed on purpose.
        var killed: Set<String> = []

        /// The plugin's `steps` steps (1 or 2) each sleep `sleepMilliseconds`, for operations whose document holds
        /// `onlyWhen` (every operation when `nil`).
        init(sleepMilliseconds: Int, steps: Int = 2, onlyWhen: String? = nil) async throws {
            directory = try TemporaryDirectory("stephost-multihost")
            plugins = try servePlugins(directory)
            intervalFile = directory.file("intervals")
            var defines = ["SLEEP_MS": "\(sleepMilliseconds)", "INTERVAL_FILE": cString(intervalFile.path)]
            if steps == 2 {
                defines["STEP2_NAME"] = cString("interval_again")
                defines["STEP2_WEIGHT"] = "20"
            }
            if let onlyWhen { defines["ONLY_WHEN"] = cString(onlyWhen) }
            try addServeFixture(plugins, "interval", mode: 52, defines)
            let admin = try #require(
                ProcessInfo.processInfo.environment["STEPHOST_TEST_DATABASE_URL"],
                "no PostgreSQL server: run the tests through scripts/with-postgres (scripts/test does)"
            )
            databaseURL = try await PostgresOperationStore.createScratchDatabase(adminURL: admin, logger: logger)
            store = try await PostgresOperationStore(url: databaseURL, logger: logger)
            // Every provisionRuntime is logged with its Idempotency-Key (the operation's id); the stand-in answers a
            // repeated key with the first request's operation.
            provisioner = try HTTPProvisionerTests.Provisioner(directory, ["--in-progress", "0"])
        }

        deinit { store.close() }

        /// Starts `stephost serve` on the cluster's database, labelled `label` in the interval file.
        @discardableResult
        func startHost(
            _ label: String,
            workers: Int = 8,
            lease: Double = 30,
            ownPIDNamespace: Bool = false,
            extra: [String] = []
        ) throws -> ServedHost {
            let host = try ServedHost(
                directory,
                plugins: plugins,
                arguments: [
                    "--workers", "\(workers)", "--lease", "\(lease)", "--provisioner", "http", "--provisioner-url",
                    provisioner.url, "--poll-interval", "0.05", "--provisioner-idempotent",
                ] + extra,
                environment: ["INTERVAL_LABEL": label],
                logName: "\(label).log",
                launcher: ownPIDNamespace ? ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] : [],
                databaseURL: databaseURL
            )
            hosts.append((label, host))
            return host
        }

        /// PUTs instances `0..<count` (`instance-N`, runtime `runtime-N`) spread over `hosts`, 16 at a time.
        func provision(_ count: Int, through hosts: [ServedHost]) throws {
            let statuses = Mutex<[Int: Int]>([:])
            concurrently(count, width: 16) { index in
                let host = hosts[index % hosts.count]
                let status = (try? host.provision("instance-\(index)", ["name": "runtime-\(index)"]).status) ?? -1
                statuses.withLock { $0[index] = status }
            }
            let refused = statuses.withLock { $0.filter { $0.value != 202 } }
            try #require(refused.isEmpty, "PUTs not accepted: \(refused)")
        }

        /// Waits (bounded) until `count` operations reached a final state; returns how many are in each state. A
        /// database that does not answer for a while (a test stops it) only makes the wait longer.
        func waitUntilFinished(_ count: Int, within seconds: Double) async throws -> [OperationState: Int] {
            var counts: [OperationState: Int] = [:]
            _ = try await eventually(within: seconds) {
                // A host that ended by itself fails the test at once, with what it said.
                for (label, host) in hosts where !killed.contains(label) && !host.process.isRunning {
                    throw LoopbackHTTP.Failure(
                        description: "host \(label) ended (status \(host.process.terminationStatus)): "
                            + host.logText.suffix(3000)
                    )
                }
                guard let now = try? await store.operationCounts(now: Date()) else { return false }
                counts = now.byState
                return (counts[.succeeded] ?? 0) + (counts[.failed] ?? 0) >= count
            }
            return counts
        }

        /// The intervals the fixture wrote, in the file's order.
        func intervals() throws -> [Interval] {
            let text = (try? String(contentsOf: intervalFile, encoding: .utf8)) ?? ""
            var intervals: [Interval] = []
            var open: [String: Int] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ").map(String.init)
                try #require(parts.count == 5, "a malformed interval line: \(line)")
                let key = "\(parts[1]) \(parts[2])"
                let time = try #require(Int64(parts[4]))
                if parts[0] == "S" {
                    #expect(open[key] == nil, "host \(parts[1]) started a step of \(parts[2]) while it ran one")
                    open[key] = intervals.count
                    intervals.append(
                        Interval(host: parts[1], operation: parts[2], pass: Int(parts[3]) ?? 0, start: time)
                    )
                } else if let index = open.removeValue(forKey: key) {
                    intervals[index].end = time
                } else {
                    Issue.record("host \(parts[1]) ended a step of \(parts[2]) it had not started")
                }
            }
            return intervals
        }

        /// The ProvisionRuntime requests the stand-in received: each one's Idempotency-Key and runtime name.
        func provisionRequests() throws -> [(key: String, name: String)] {
            try provisioner.requests().compactMap { request in
                guard let body = request["body"] as? [String: Any],
                    body["operationName"] as? String == "ProvisionRuntime"
                else { return nil }
                let text = String(describing: body["variables"] ?? "")
                let name = text.range(of: #"runtime-\d+"#, options: .regularExpression).map { String(text[$0]) }
                return (request["idempotency_key"] as? String ?? "", name ?? "")
            }
        }
    }

    /// Where two hosts ran steps of one operation at the same time: for each operation, its intervals in order of
    /// start, each of which must start after every earlier one ended. An interval left open by a host that was
    /// killed ends when it was killed (`killed`); one left open by a live host never ends.
    static func overlaps(_ intervals: [Interval], killed: [String: Int64] = [:]) -> [String] {
        var found: [String] = []
        for (operation, runs) in Dictionary(grouping: intervals, by: \.operation) {
            var busyUntil = Int64.min
            var busyHost = ""
            for run in runs.sorted(by: { $0.start < $1.start }) {
                if run.start < busyUntil {
                    found.append(
                        "\(operation): \(run.host) started a step \((busyUntil - run.start) / 1_000_000) ms before "
                            + "\(busyHost)'s ended"
                    )
                }
                let end = run.end ?? killed[run.host] ?? .max
                if end > busyUntil {
                    busyUntil = end
                    busyHost = run.host
                }
            }
        }
        return found
    }

    /// CLOCK_MONOTONIC now, in nanoseconds: the clock the fixture writes.
    static func monotonicNow() -> Int64 {
        var now = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Three hosts, 300 instances PUT to all three: every operation succeeds, each pass ran each step once, no two
    /// hosts ran steps of one operation at the same time, every host did some of the work, and create_runtime sent
    /// one provisionRuntime per operation.
    @Test func threeHostsShareThreeHundredOperationsWithoutEverRunningOneTwiceAtOnce() async throws {
        let cluster = try await Cluster(sleepMilliseconds: 20)
        let hosts = try ["host-a", "host-b", "host-c"].map { try cluster.startHost($0) }
        let count = 300
        try cluster.provision(count, through: hosts)
        let counts = try await cluster.waitUntilFinished(count, within: 300)
        #expect(counts[.succeeded] == count, "\(counts)")

        let intervals = try cluster.intervals()
        #expect(intervals.allSatisfy { $0.end != nil }, "a step of a live host never ended")
        let overlaps = Self.overlaps(intervals)
        #expect(overlaps.isEmpty, "\(overlaps.count) overlaps, e.g. \(overlaps.prefix(5))")
        let workers = Dictionary(grouping: intervals, by: \.host).mapValues(\.count)
        #expect(workers.count == 3, "the hosts that ran steps: \(workers)")
        // Each pass ran both steps once: as many intervals per operation as two per pass it took.
        let perOperation = Dictionary(grouping: intervals, by: \.operation).mapValues(\.count)
        #expect(perOperation.count == count)
        var uneven: [String] = []
        for (id, runs) in perOperation {
            let passes = try #require(try await cluster.store.operation(id: id)).passes
            if runs != 2 * passes { uneven.append("\(id): \(runs) step runs in \(passes) passes") }
        }
        #expect(uneven.isEmpty, "\(uneven.prefix(5))")
        let requests = try cluster.provisionRequests()
        #expect(requests.count == count, "\(requests.count) provisionRuntime requests for \(count) operations")
        #expect(Set(requests.map(\.key)).count == count)
        #expect(Set(requests.map(\.name)).count == count)
        for host in hosts { #expect(try host.stop().status == 0) }
    }

    /// A host killed with SIGKILL in the middle of its steps (in a PID namespace of its own, so the others know it
    /// only by its lease): the operations it held are taken over once their leases ran out, not before, and all
    /// succeed; no step overlapped another of its operation, and every runtime was created once (a request the
    /// dead host may have sent is sent again with the same Idempotency-Key, which the provisioner deduplicates).
    @Test func operationsOfAKilledHostAreTakenOverAfterTheLeaseAndSucceed() async throws {
        // 150 operations of two passes of two 200 ms steps on 24 workers: about five seconds of work, so the victim
        // is busy when it is killed half a second in.
        let cluster = try await Cluster(sleepMilliseconds: 200)
        let lease = 4.0
        let victim = try cluster.startHost("victim", lease: lease, ownPIDNamespace: true)
        let survivors = try ["host-a", "host-b"].map { try cluster.startHost($0, lease: lease) }
        let count = 150
        try cluster.provision(count, through: [victim] + survivors)
        // Killed while it is inside steps of several operations (not between them, nor inside create_runtime).
        let working = try eventually(within: 120) {
            let victims = try cluster.intervals().filter { $0.host == "victim" }
            return victims.count >= 8 && victims.filter { $0.end == nil }.count >= 3
        }
        try #require(working, "the victim was never inside three steps at once")
        let pid = victim.hostPID
        try #require(pid != victim.process.processIdentifier, "unshare did not fork the host")
        cluster.killed.insert("victim")
        kill(pid, SIGKILL)
        let killedAt = Self.monotonicNow()
        let counts = try await cluster.waitUntilFinished(count, within: 300)
        #expect(counts[.succeeded] == count, "\(counts)")

        let intervals = try cluster.intervals()
        let cut = intervals.filter { $0.host == "victim" && $0.end == nil }
        let last = intervals.filter { $0.host == "victim" }.suffix(3).map { "\($0.start) \($0.end ?? -1)" }
        try #require(
            !cut.isEmpty,
            "the victim (pid \(pid)) was killed at \(killedAt) between steps: nothing to take over; its last: \(last)"
        )
        let overlaps = Self.overlaps(intervals, killed: ["victim": killedAt])
        #expect(overlaps.isEmpty, "\(overlaps.prefix(5))")
        // The survivors waited for the lease: it was last renewed at most a third of it before the kill.
        let earliest = killedAt + Int64(lease * 2 / 3 * 1e9) - 200_000_000
        for run in cut {
            let next = intervals.filter { $0.operation == run.operation && $0.host != "victim" && $0.start > run.start }
                .map(\.start).min()
            let taken = try #require(next, "operation \(run.operation) was never taken over")
            #expect(
                taken >= earliest,
                "operation \(run.operation) was taken over \(Double(taken - killedAt) / 1e9) s after the kill"
            )
        }
        let requests = try cluster.provisionRequests()
        #expect(Set(requests.map(\.key)).count == count)
        #expect(Set(requests.map(\.name)).count == count)
        let victimOperations = Set(intervals.filter { $0.host == "victim" }.map(\.operation))
        let repeated = Dictionary(grouping: requests, by: \.key).filter { $0.value.count > 1 }.keys
        #expect(Set(repeated).isSubset(of: victimOperations), "requests repeated for operations the victim never ran")
        for host in survivors { #expect(try host.stop().status == 0) }
    }

    /// The PostgreSQL server stops for six seconds, longer than the hosts' four-second lease, while three hosts run
    /// 150 operations. The hosts keep running, find the server again when it is back (one at least says so: a
    /// host whose requests were only waiting for a connection sees no error), and every operation succeeds, with no step overlapping another of its operation, one runtime created
    /// per operation, no host death recorded and no plugin quarantined: claims that ran out during the outage are
    /// taken over as interrupted passes, not as deaths.
    @Test func hostsRideOutADatabaseRestartAndLoseNothing() async throws {
        let control = try #require(
            ProcessInfo.processInfo.environment["STEPHOST_TEST_PG_CONTROL"],
            "no server control script: run the tests through scripts/with-postgres (scripts/test does)"
        )
        let cluster = try await Cluster(sleepMilliseconds: 50)
        let hosts = try ["host-a", "host-b", "host-c"].map { try cluster.startHost($0, lease: 4) }
        let count = 150
        try cluster.provision(count, through: hosts)
        _ = try await eventually(within: 120) {
            (try? await cluster.store.operationCounts(now: Date()).byState[.succeeded] ?? 0) ?? 0 >= 30
        }
        let serverLog = cluster.directory.file("control.log")
        let stop = try runToEnd(URL(fileURLWithPath: control), ["stop"], output: serverLog)
        try #require(
            stop == 0,
            "the server did not stop: \((try? String(contentsOf: serverLog, encoding: .utf8)) ?? "")"
        )
        try await Task.sleep(for: .seconds(6))
        let start = try runToEnd(URL(fileURLWithPath: control), ["start"], output: serverLog)
        try #require(
            start == 0,
            "the server did not start again: \((try? String(contentsOf: serverLog, encoding: .utf8)) ?? "")"
        )

        let counts = try await cluster.waitUntilFinished(count, within: 300)
        #expect(counts[.succeeded] == count, "\(counts)")
        for host in hosts {
            #expect(host.process.isRunning, "a host stopped with the database: \(host.logText.suffix(2000))")
            #expect(try host.request("GET", "/readyz", broker: false).status == 200)
        }
        // A host whose requests were all waiting for a connection when the server went away sees no error at all
        // (they are answered once it is back), so not every host need have noticed the outage; one did.
        #expect(hosts.contains { $0.logText.contains("the PostgreSQL server answers again") })
        let intervals = try cluster.intervals()
        let overlaps = Self.overlaps(intervals)
        #expect(overlaps.isEmpty, "\(overlaps.prefix(5))")
        let requests = try cluster.provisionRequests()
        #expect(Set(requests.map(\.key)).count == count)
        #expect(Set(requests.map(\.name)).count == count)
        let operations = try await cluster.store.operations(state: .succeeded).operations
        #expect(operations.allSatisfy { $0.hostDeaths == nil })
        #expect(try await cluster.store.quarantinedPlugins().isEmpty)
        #expect(!hosts.contains { $0.logText.contains("the host died") }, "a host counted a death")
        for host in hosts { #expect(try host.stop().status == 0) }
    }

    /// A server that stops answering but keeps its connections open (every server process paused, as behind a
    /// network partition): a request is given up after the request timeout (30 s), saying so, instead of waiting
    /// until TCP gives up hours later; while the server is away the next request fails at once; once it answers
    /// again, the store finds it and reports the outage.
    @Test func aServerThatStopsAnsweringIsGivenUpAfterTheRequestTimeout() async throws {
        let control = URL(
            fileURLWithPath: try #require(
                ProcessInfo.processInfo.environment["STEPHOST_TEST_PG_CONTROL"],
                "no server control script: run the tests through scripts/with-postgres (scripts/test does)"
            )
        )
        let admin = try #require(ProcessInfo.processInfo.environment["STEPHOST_TEST_DATABASE_URL"])
        let url = try await PostgresOperationStore.createScratchDatabase(adminURL: admin, logger: Self.logger)
        let store = try await PostgresOperationStore(url: url, logger: Self.logger)
        defer { store.close() }
        _ = try await store.operationCounts(now: Date())
        let directory = try TemporaryDirectory("stephost-partition")
        let log = directory.file("control.log")
        try #require(try runToEnd(control, ["pause"], output: log) == 0)
        var paused = true
        // Whatever happens, the server runs again for the tests after this one.
        defer { if paused { _ = try? runToEnd(control, ["resume"], output: log) } }

        let silent = await #expect(throws: StorageError.self) {
            try await within(120, "a request to a server that does not answer") {
                _ = try await store.operationCounts(now: Date())
            }
        }
        #expect(silent?.code == .disconnected)
        #expect(silent?.message.contains("did not answer within") == true, "\(String(describing: silent))")
        let meanwhile = await #expect(throws: StorageError.self) {
            try await within(5, "a request while the server is known to be away") {
                _ = try await store.operationCounts(now: Date())
            }
        }
        #expect(meanwhile?.code == .disconnected)

        try #require(try runToEnd(control, ["resume"], output: log) == 0)
        paused = false
        #expect(
            try await eventually(within: 60) { (try? await store.operationCounts(now: Date())) != nil },
            "the store did not answer again after the server did"
        )
        #expect(store.lastOutage != nil)
    }

    /// Forty instances, each PUT to two hosts at the same moment (both requests complete together, held at their
    /// last byte): one operation per instance, and both answers name it.
    @Test func theSamePutOnTwoHostsAtOnceCreatesOneOperation() async throws {
        let cluster = try await Cluster(sleepMilliseconds: 1, steps: 1)
        let hosts = try ["host-a", "host-b"].map { try cluster.startHost($0) }
        let count = 40
        for index in 0..<count {
            let barrier = Barrier(parties: 2)
            let answers = Mutex<[(Int, String?)]>([])
            concurrently(2, width: 2) { side in
                let answer = try? hosts[side].provision("same-\(index)", ["name": "runtime-\(index)"]) {
                    barrier.arriveAndWait()
                }
                let operation = (try? answer?.json())?["operation"] as? String
                answers.withLock { $0.append((answer?.status ?? -1, operation)) }
            }
            let both = answers.withLock { $0 }
            #expect(both.allSatisfy { $0.0 == 202 || $0.0 == 200 }, "instance \(index): \(both.map(\.0))")
            #expect(Set(both.map(\.1)).count == 1 && both.first?.1 != nil, "instance \(index): \(both.map(\.1))")
            let stored = try await cluster.store.operations(
                state: nil,
                instanceID: "same-\(index)",
                limit: 10,
                after: nil
            )
            #expect(stored.operations.count == 1, "instance \(index) has \(stored.operations.count) operations")
        }
        let counts = try await cluster.waitUntilFinished(count, within: 120)
        #expect(counts[.succeeded] == count, "\(counts)")
        for host in hosts { #expect(try host.stop().status == 0) }
    }

    /// A step that runs three times as long as the lease, on either of two hosts that cannot see each other's pids:
    /// the host running it renews its claim, so the other never takes the operation over while it runs.
    @Test func aStepLongerThanTheLeaseIsNotTakenOverWhileItsHostLives() async throws {
        let cluster = try await Cluster(sleepMilliseconds: 6000, steps: 1, onlyWhen: "long")
        let lease = 2.0
        let hosts = [
            try cluster.startHost("host-a", lease: lease, ownPIDNamespace: true),
            try cluster.startHost("host-b", lease: lease),
        ]
        #expect(try hosts[1].provision("long-instance", ["name": "long"]).status == 202)
        let counts = try await cluster.waitUntilFinished(1, within: 120)
        #expect(counts[.succeeded] == 1, "\(counts)")
        let intervals = try cluster.intervals()
        let operation = try #require(intervals.first?.operation)
        let stored = try #require(try await cluster.store.operation(id: operation))
        #expect(intervals.count == stored.passes, "\(intervals.count) step runs in \(stored.passes) passes")
        #expect(intervals.allSatisfy { ($0.end ?? 0) - $0.start >= Int64(lease * 3 * 1e9) })
        #expect(Self.overlaps(intervals).isEmpty, "\(Self.overlaps(intervals))")
        #expect(stored.hostDeaths == nil)
        for host in hosts { #expect(host.process.isRunning) }
        // The namespaced host is signalled itself (unshare does not pass SIGTERM on); unshare ends with it.
        kill(hosts[0].hostPID, SIGTERM)
        #expect(try eventually(within: 60) { !hosts[0].process.isRunning }, "host-a did not stop")
        #expect(try hosts[1].stop().status == 0)
    }
}

/// Lets `parties` threads go on together once all arrived.
final class Barrier: Sendable {
    private let parties: Int
    private let arrived = Mutex(0)
    private let go = DispatchSemaphore(value: 0)

    init(parties: Int) { self.parties = parties }

    func arriveAndWait() {
        let last = arrived.withLock { count -> Bool in
            count += 1
            return count == parties
        }
        if last {
            for _ in 0..<parties { go.signal() }
        }
        _ = go.wait(timeout: .now() + 30)
    }
}
