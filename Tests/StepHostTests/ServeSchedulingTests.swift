import Foundation
import GRDB
import Glibc
import Synchronization
import Testing

/// How `stephost serve` runs operations as they come due: many at once, and none held up by another's retries or
/// slow steps.
@Suite("Serve: scheduling", .serialized)
struct ServeSchedulingTests {
    /// 200 instances provisioned at once through HTTP with 8 workers: every one succeeds, each is processed once
    /// (each pass ran each step once, no pass ran twice), and create_runtime sends one request each to the
    /// provisioner (it then polls in a later pass, so an operation takes two passes).
    @Test func twoHundredInstancesWithEightWorkersEachSucceedOnce() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        try addServeFixture(plugins, "noop", mode: 0)
        let provisioner = try HTTPProvisionerTests.Provisioner(directory, ["--in-progress", "0"])
        let server = try ServedHost(
            directory,
            plugins: plugins,
            arguments: [
                "--workers", "8", "--provisioner", "http", "--provisioner-url", provisioner.url, "--poll-interval",
                "0.05",
            ]
        )
        let count = 200
        let statuses = Mutex<[Int: Int]>([:])
        concurrently(count, width: 16) { index in
            let status = (try? server.provision("instance-\(index)", ["name": "runtime-\(index)"]).status) ?? -1
            statuses.withLock { $0[index] = status }
        }
        #expect(statuses.withLock { $0.values.allSatisfy { $0 == 202 } }, "\(statuses.withLock { $0 })")

        var succeeded: [[String: Any]] = []
        let finished = try eventually(within: 300) {
            succeeded =
                try server.request("GET", "/operations?state=succeeded&limit=1000").json()["operations"]
                as? [[String: Any]] ?? []
            return succeeded.count == count
        }
        #expect(finished, "\(succeeded.count) of \(count) succeeded")
        // Paged 64 at a time through `next`: every operation once, newest first.
        var paged: [String] = []
        var cursor: String?
        repeat {
            let path = "/operations?limit=64" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try server.request("GET", path).json()
            paged += (page["operations"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = page["next"] as? String
        } while cursor != nil && paged.count <= count
        #expect(paged.count == count && Set(paged).count == count, "paging gave \(paged.count) ids")
        let passes = Dictionary(
            uniqueKeysWithValues: succeeded.map { ($0["id"] as? String ?? "", $0["passes"] as? Int ?? 0) }
        )
        #expect(try server.stop().status == 0)

        // Each step ran once per operation, and the provisioner got one request per runtime.
        let queue = try DatabaseQueue(path: server.databasePath)
        let (runs, repeated) = try queue.read { db in
            (
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT operation_id, COUNT(*) AS n FROM step_runs WHERE step = 'noop_step' GROUP BY operation_id
                        """
                ),
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM (SELECT 1 FROM step_runs GROUP BY operation_id, pass, step HAVING COUNT(*) > 1)
                        """
                ) ?? -1
            )
        }
        #expect(runs.count == count)
        for row in runs {
            let id: String = row["operation_id"]
            #expect(
                row["n"] as Int == passes[id],
                "operation \(id): the step ran \(row["n"] as Int) times in \(passes[id] ?? 0) passes"
            )
        }
        #expect(repeated == 0, "a step ran twice in one pass of one operation")
        let requests = try provisioner.requests().filter {
            (($0["body"] as? [String: Any])?["operationName"] as? String) == "ProvisionRuntime"
        }
        #expect(requests.count == count)
        let names = Set(
            requests.compactMap { request -> String? in
                let text = String(describing: (request["body"] as? [String: Any])?["variables"] ?? "")
                return text.range(of: #"runtime-\d+"#, options: .regularExpression).map { String(text[$0]) }
            }
        )
        #expect(names.count == count, "one request per runtime: \(names.count) distinct names")
    }

    /// With one worker, an operation that keeps retrying holds no worker between its passes: the operations after
    /// it run to the end meanwhile.
    @Test func aRetryingOperationDoesNotBlockOthers() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        // Retries every 250 ms, for the operation named "retrier" only.
        try addServeFixture(plugins, "flaky", mode: 1, ["ONLY_WHEN": cString(#"\"retrier\""#)])
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--workers", "1"])
        #expect(try server.provision("retrying", ["name": "retrier"]).status == 202)
        _ = try eventually(within: 30) {
            let shown = try server.request("GET", "/operations?instance=retrying").json()["operations"]
            return ((shown as? [[String: Any]])?.first?["passes"] as? Int ?? 0) >= 2
        }
        for index in 0..<5 { #expect(try server.provision("calm-\(index)", ["name": "calm-\(index)"]).status == 202) }
        for index in 0..<5 { #expect(try server.waitForFinal("calm-\(index)", within: 60) == "succeeded") }
        // The retrier is still at it, and last_operation tells the platform when to ask again.
        let last = try server.request("GET", "/v2/service_instances/retrying/last_operation")
        #expect(try last.json()["state"] as? String == "in progress")
        #expect(last.headers["retry-after"] == "2", "\(last.headers)")
        #expect(try server.stop().status == 0)
    }

    /// A step that does not return holds its own worker only: operations created while it runs are claimed and
    /// finished by the free worker, without waiting for it.
    @Test func aSlowStepNeverDelaysAnUnrelatedOperation() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        let release = directory.file("release")
        try addServeFixture(
            plugins,
            "gate",
            mode: 50,
            ["ONLY_WHEN": cString(#"\"slowpoke\""#), "RELEASE_FILE": cString(release.path)]
        )
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--workers", "2"])
        let created = try server.provision("slow", ["name": "slowpoke"])
        let operation = try #require(try created.json()["operation"] as? String)
        let running = try eventually(within: 30) {
            try server.request("GET", "/operations/\(operation)").json()["running_step"] != nil
        }
        #expect(running, "the slow step never started")
        for index in 0..<4 { #expect(try server.provision("quick-\(index)", ["name": "quick-\(index)"]).status == 202) }
        for index in 0..<4 { #expect(try server.waitForFinal("quick-\(index)", within: 60) == "succeeded") }
        #expect(try server.lastState("slow") == "in progress", "the slow step was meant to be still running")
        // The instance cannot be fetched while it is being provisioned (OSB: 422 ConcurrencyError).
        let fetched = try server.request("GET", "/v2/service_instances/slow")
        #expect(fetched.status == 422 && (try? fetched.json()["error"] as? String) == "ConcurrencyError", "\(fetched)")
        try Data().write(to: release)
        #expect(try server.waitForFinal("slow", within: 60) == "succeeded")
        #expect(try server.stop().status == 0)
    }
}
