import Foundation
import GRDB
import Glibc
import Testing

/// SIGTERM stops `stephost serve` and `stephost run` gracefully: running steps finish within the grace period,
/// nothing is lost, claims are released, and the next start finishes everything without waiting for a lease.
@Suite("Serve: graceful shutdown", .serialized)
struct ServeShutdownTests {
    struct Snapshot {
        var states: [String: Int]
        var claims: Int
        var localRequests: Int
        var stepRuns: Int
    }

    static func snapshot(_ path: String) throws -> Snapshot {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            var states: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM operations GROUP BY state") {
                states[row["state"]] = row["n"]
            }
            return Snapshot(
                states: states,
                claims: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM claims") ?? -1,
                localRequests: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM local_provisioning") ?? -1,
                stepRuns: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM step_runs") ?? -1
            )
        }
    }

    /// Eight operations whose first step takes 2 s, four workers: SIGTERM while they run. The running steps finish
    /// and their passes end there: the next step (a gate that would hold its pass past the grace period) never
    /// starts. The host exits 0 within the grace period with no claim left and nothing failed, and a restart (with
    /// a lease far longer than the test) finishes all eight, create_runtime once each.
    @Test func sigtermLetsRunningStepsFinishAndTheNextStartFinishesEverything() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        let release = directory.file("release")
        try addServeFixture(plugins, "sleepy", mode: 34, ["SLEEP_MS": "2000"])
        try addServeFixture(plugins, "gate", mode: 50, weight: 20, ["RELEASE_FILE": cString(release.path)])
        let arguments = ["--workers", "4", "--shutdown-grace", "30", "--lease", "3600", "--log-level", "notice"]
        let server = try ServedHost(directory, plugins: plugins, arguments: arguments)
        for index in 0..<8 {
            #expect(try server.provision("sleepy-\(index)", ["name": "sleepy-\(index)"]).status == 202)
        }
        let busy = try eventually(within: 30) {
            try server.request("GET", "/operations?state=in_progress").json()["operations"].map {
                ($0 as? [Any])?.isEmpty == false
            } ?? false
        }
        #expect(busy, "no operation started")
        let stopped = try server.stop(SIGTERM)
        #expect(stopped.status == 0, "\(server.logText)")
        #expect(stopped.seconds <= 30, "the shutdown took \(stopped.seconds) s, longer than the 30 s grace period")
        #expect(server.logText.contains("stopping: no new work"), "\(server.logText)")
        #expect(!server.logText.contains("cut off"), "steps of 2 s were cut off by a 30 s grace period")

        let after = try Self.snapshot(server.databasePath)
        #expect(after.claims == 0, "claims left behind: \(after.claims)")
        #expect(after.states["failed"] == nil, "\(after.states)")
        #expect(after.states.values.reduce(0, +) == 8)
        #expect(after.stepRuns > 0, "the steps that ran were not saved")
        let gateRuns = try DatabaseQueue(path: server.databasePath).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM step_runs WHERE step = 'gate_step'") ?? -1
        }
        #expect(gateRuns == 0, "a pass went on to its next step after SIGTERM")

        try Data().write(to: release)
        let restarted = try ServedHost(directory, plugins: plugins, arguments: arguments, logName: "restart.log")
        // Well inside the lease of an hour: the stopped host's operations were released, not left to expire.
        for index in 0..<8 { #expect(try restarted.waitForFinal("sleepy-\(index)", within: 90) == "succeeded") }
        #expect(try restarted.stop().status == 0)
        let final = try Self.snapshot(server.databasePath)
        #expect(final.states == ["succeeded": 8] && final.localRequests == 8 && final.claims == 0, "\(final)")
    }

    /// A step that outlasts the grace period: the host stops when it ends, releases the operation's claim, and the
    /// next start runs it at once instead of after the lease.
    @Test func aStepCutOffByTheGracePeriodIsResumedAtOnceByTheNextStart() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        let release = directory.file("release")
        try addServeFixture(plugins, "gate", mode: 50, ["RELEASE_FILE": cString(release.path)])
        let arguments = ["--shutdown-grace", "1", "--lease", "3600", "--log-level", "notice"]
        let server = try ServedHost(directory, plugins: plugins, arguments: arguments)
        let operation = try #require(try server.provision("gated", ["name": "gated"]).json()["operation"] as? String)
        let running = try eventually(within: 30) {
            try server.request("GET", "/operations/\(operation)").json()["running_step"] != nil
        }
        #expect(running)
        let stopped = try server.stop(SIGTERM)
        #expect(stopped.status == 0, "\(server.logText)")
        #expect(stopped.seconds < 30, "a 1 s grace period took \(stopped.seconds) s")
        #expect(server.logText.contains("cut off"), "\(server.logText)")
        #expect(try Self.snapshot(server.databasePath).claims == 0, "the cut-off operation kept its claim")

        try Data().write(to: release)
        let restarted = try ServedHost(directory, plugins: plugins, arguments: arguments, logName: "restart.log")
        #expect(try restarted.waitForFinal("gated", within: 60) == "succeeded")
        #expect(try restarted.stop().status == 0)
    }

    /// A second signal does not wait for the grace period.
    @Test func aSecondSignalStopsAtOnce() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        let release = directory.file("release")
        try addServeFixture(plugins, "gate", mode: 50, ["RELEASE_FILE": cString(release.path)])
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--shutdown-grace", "600"])
        let operation = try #require(try server.provision("gated", ["name": "gated"]).json()["operation"] as? String)
        _ = try eventually(within: 30) {
            try server.request("GET", "/operations/\(operation)").json()["running_step"] != nil
        }
        kill(server.process.processIdentifier, SIGTERM)
        usleep(300_000)
        let stopped = try server.stop(SIGINT, within: 60)
        #expect(stopped.status == 0, "\(server.logText)")
        #expect(try Self.snapshot(server.databasePath).claims == 0)
        try Data().write(to: release)
    }

    /// `stephost run` stops the same way: the running steps finish, the rest stays due, and the next run finishes it.
    @Test func runStopsGracefullyOnSIGTERM() throws {
        let directory = try TemporaryDirectory("stephost-run")
        let plugins = try servePlugins(directory)
        try addServeFixture(plugins, "sleepy", mode: 34, ["SLEEP_MS": "1500"])
        let database = directory.file("stephost.sqlite").path
        let common = ["--plugins-dir", plugins.path, "--db", database]
        for index in 0..<6 {
            let created = try runProcess(
                Paths.stephost,
                ["provision", "--detach", "--parameters", #"{"name":"run-\#(index)"}"#] + common
            )
            #expect(created.status == 0, "\(created.stderr)")
        }
        let run = try BackgroundProcess(Paths.stephost, ["run", "--workers", "2", "--lease", "3600"] + common)
        let claimed = try eventually(within: 30) { try Self.snapshot(database).claims > 0 }
        #expect(claimed)
        let started = Date()
        kill(run.process.processIdentifier, SIGTERM)
        run.process.waitUntilExit()
        #expect(run.process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(started) <= 30)
        let after = try Self.snapshot(database)
        #expect(after.claims == 0 && after.states["failed"] == nil, "\(after)")
        #expect(after.states["succeeded", default: 0] < 6, "the stop came too late to interrupt anything: \(after)")

        let rest = try runProcess(Paths.stephost, ["run", "--lease", "3600"] + common)
        #expect(rest.status == 0, "\(rest.stderr)")
        let final = try Self.snapshot(database)
        #expect(final.states == ["succeeded": 6] && final.localRequests == 6, "\(final)")
    }

    /// A step stuck in plugin code past its deadline with no stuck thread allowed: `serve` and `run` stop taking work
    /// and exit 75 with the reason, not the 70 that an in-process plugin's own exit() gets (the stuck thread is still
    /// in plugin code when the host exits).
    @Test func aStuckStepStopsTheHostWithStatus75() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        try addServeFixture(plugins, "hang", mode: 33)
        let config = try directory.write("stephost.yaml", "plugins:\n  deadline: 1s\n  max-stuck-threads: 0\n")
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--config", config.path])
        #expect(try server.provision("stuck", ["name": "stuck"]).status == 202)
        let ended = try eventually(within: 60) { !server.process.isRunning }
        #expect(ended, "the host kept taking work with a stuck step")
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 75, "\(server.logText)")
        #expect(server.logText.contains("stuck past their deadlines"), "\(server.logText)")

        // The stuck operation failed at its step's deadline; `run` gets a new one.
        let common = ["--config", config.path, "--plugins-dir", plugins.path, "--db", server.databasePath]
        let created = try runProcess(
            Paths.stephost,
            ["provision", "--detach", "--parameters", #"{"name":"stuck-again"}"#] + common
        )
        #expect(created.status == 0, "\(created.stderr)")
        let run = try runProcess(Paths.stephost, ["run"] + common)
        #expect(run.status == 75 && run.stderr.contains("stuck past their deadlines"), "\(run.status) \(run.stderr)")
    }
}
