import Foundation
import GRDB
import Glibc
import Testing

/// The database file and its neighbours as an operator meets them: read-only commands, a read-only mount, a
/// full disk. Mounts are made in a private user and mount namespace (`unshare -rm`), so the tests need no
/// privileges and change nothing outside.
@Suite("The database file and its neighbours")
struct DatabaseFileTests {
    func stephost(_ harness: EngineHarness, _ arguments: [String], db: String? = nil) throws -> ProcessResult {
        try runProcess(
            Paths.stephost,
            arguments + ["--db", db ?? harness.databasePath],
            environment: ["STEPHOST_PLUGINS_DIR": harness.plugins.path]
        )
    }

    /// Runs `script` with `sh` in a new user and mount namespace, with `$STEPHOST` set to the host binary.
    func inNamespace(_ script: String) throws -> ProcessResult {
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/unshare"),
            ["-rm", "sh", "-c", script],
            environment: ["STEPHOST": Paths.stephost.path]
        )
        try #require(
            !result.stderr.contains("unshare failed") && !result.stderr.contains("Operation not permitted"),
            "user namespaces are needed for the mount tests: \(result.stderr)"
        )
        return result
    }

    func neighbours(_ harness: EngineHarness) -> [String] {
        ["-wal", "-shm"].filter { FileManager.default.fileExists(atPath: harness.databasePath + $0) }
    }

    /// A WAL database needs `-wal` and `-shm` even to be read; a read-only command removes the ones it made, and
    /// never changes the database file.
    @Test func readOnlyCommandsLeaveTheDirectoryAsTheyFoundIt() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let created = try stephost(harness, ["provision", "--parameters", #"{"name":"ro"}"#])
        #expect(created.status == 0, "\(created.stderr)")
        let id = try #require(created.stdout.split(separator: " ").dropFirst().first.map(String.init))
        #expect(neighbours(harness).isEmpty)
        let before = try Data(contentsOf: URL(fileURLWithPath: harness.databasePath))

        for command in [["operations", "list"], ["operations", "list", "--json"], ["operations", "show", id]] {
            let result = try stephost(harness, command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(neighbours(harness).isEmpty, "\(command) left \(neighbours(harness))")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: harness.databasePath)) == before)
    }

    /// On a read-only mount (a backup, a snapshot) the read-only commands work.
    @Test func readOnlyCommandsWorkOnAReadOnlyMount() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let created = try stephost(harness, ["provision", "--parameters", #"{"name":"ro-mount"}"#])
        let id = try #require(created.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let directory = harness.directory.path
        let result = try inNamespace(
            """
            mount --bind \(directory) \(directory) && mount -o remount,bind,ro \(directory) || exit 90
            touch \(directory)/probe 2>/dev/null && exit 91
            "$STEPHOST" operations list --db \(harness.databasePath) || exit 92
            "$STEPHOST" operations show \(id) --db \(harness.databasePath) --json || exit 93
            "$STEPHOST" run --db \(harness.databasePath) --plugins-dir \(harness.plugins.path)
            echo "run status $?"
            """
        )
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("run status 74"))
        #expect(result.stderr.contains("is on a read-only file system: commands that write cannot use it there"))
        #expect(result.stdout.contains("succeeded"))
        #expect(result.stdout.contains(#""id" : "\#(id)""#))
    }

    /// A database that cannot be created on a full disk: the message says so, and no empty file is left.
    @Test func fullDiskWhileCreatingSaysSoAndLeavesNothing() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let full = harness.directory.file("full").path
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        let result = try inNamespace(
            """
            mount -t tmpfs -o size=12k tmpfs \(full) || exit 90
            "$STEPHOST" provision --parameters '{"name":"full"}' --plugins-dir \(harness.plugins.path) \
                --db \(full)/db.sqlite
            echo "status $?"
            ls -A \(full)
            """
        )
        #expect(result.stdout.contains("status 74"), "\(result.stdout)\n\(result.stderr)")
        #expect(result.stderr.contains("the file system that holds the database \(full)/db.sqlite is full"))
        #expect(!result.stdout.contains("db.sqlite"), "files left behind: \(result.stdout)")
    }

    /// The disk fills up under a database in use: `run` stops with that reason and loses nothing; once there is
    /// space again, the next `run` finishes the operation.
    @Test func fullDiskUnderARunningDatabaseLosesNothing() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let full = harness.directory.file("full").path
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        let db = "\(full)/db.sqlite"
        let plugins = harness.plugins.path
        let result = try inNamespace(
            """
            mount -t tmpfs -o size=2m tmpfs \(full) || exit 90
            "$STEPHOST" provision --detach --parameters '{"name":"full"}' --plugins-dir \(plugins) --db \(db) || exit 91
            dd if=/dev/zero of=\(full)/filler bs=4k 2>/dev/null
            "$STEPHOST" run --plugins-dir \(plugins) --db \(db)
            echo "full status $?"
            rm \(full)/filler
            "$STEPHOST" run --plugins-dir \(plugins) --db \(db)
            echo "freed status $?"
            """
        )
        #expect(result.stdout.contains("full status 74"), "\(result.stdout)\n\(result.stderr)")
        #expect(result.stderr.contains("the file system that holds the database \(db) is full"))
        #expect(result.stdout.contains("freed status 0"), "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("1 succeeded, 0 failed"))
    }
}

extension DatabaseFileTests {
    /// A database of an earlier release that another process (a host of that release) still has open is not
    /// upgraded under it: the command refuses and changes nothing; once that process is gone, it upgrades.
    @Test func schemaUpgradeWaitsUntilNoOtherProcessHasTheDatabaseOpen() async throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        try await makeFirstSchemaDatabase(harness.databasePath)
        // An "old host": a process that keeps the database open in WAL mode, as a stephost of schema v1 did.
        let holder = try BackgroundProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", "-c",
                """
                import sqlite3, sys, time
                db = sqlite3.connect(sys.argv[1])
                db.execute("PRAGMA journal_mode=WAL").fetchall()
                db.execute("SELECT COUNT(*) FROM operations").fetchall()
                print("open", flush=True)
                time.sleep(120)
                """,
                harness.databasePath,
            ]
        )
        #expect(holder.firstLine() == "open")
        let before = try Data(contentsOf: URL(fileURLWithPath: harness.databasePath))

        // provision --detach writes, so it upgrades; it does not wait for the old host's claimed operation.
        let detach = ["provision", "--detach", "--parameters", #"{"name":"new"}"#]
        let refused = try stephost(harness, detach)
        #expect(refused.status == 74, "\(refused.stdout)\(refused.stderr)")
        #expect(
            refused.stderr.contains(
                "needs a schema upgrade, and another process (pid \(holder.process.processIdentifier)) has it open"
            )
        )
        #expect(try Data(contentsOf: URL(fileURLWithPath: harness.databasePath)) == before)

        holder.killNow()
        let upgraded = try stephost(harness, detach)
        #expect(upgraded.status == 0, "\(upgraded.stdout)\(upgraded.stderr)")
    }
}

extension DatabaseFileTests {
    /// A host in another PID namespace on the same machine (a container sharing the host name) is alive although
    /// its pid means nothing here: its claim holds until its lease runs out, so no second host runs the same
    /// operation beside it.
    @Test func hostInAnotherPIDNamespaceKeepsItsClaim() throws {
        let harness = try EngineHarness()
        try harness.addFixture("slow", mode: 8, weight: 10)  // blocks 60 s on its first pass
        let host = try BackgroundProcess(
            URL(fileURLWithPath: "/usr/bin/unshare"),
            [
                "-rpf", "--mount-proc", "--kill-child", Paths.stephost.path, "provision", "--parameters",
                #"{"name":"ns"}"#,
                "--plugins-dir", harness.plugins.path, "--db", harness.databasePath,
            ]
        )
        let reader = try DatabaseQueue(path: harness.databasePath)
        try #require(
            try eventually {
                (try? reader.read { db in try String.fetchOne(db, sql: "SELECT fields FROM operations") })?
                    .contains("slow_started") == true
            },
            "the host in its own PID namespace did not start the step"
        )
        let other = try stephost(harness, ["run", "--once"])
        #expect(other.status == 0, "\(other.stdout)\(other.stderr)")
        #expect(other.stdout.contains("1 still waiting"), "\(other.stdout)")
        let passes = try reader.read { db in try Int.fetchOne(db, sql: "SELECT passes FROM operations") }
        #expect(passes == 1)
        host.killNow()
    }
}

extension DatabaseFileTests {
    /// The running-step record written before every step is not synced to disk (only the operation's own
    /// commits are): read back from the syscalls, a provision through eight no-op steps makes exactly as many
    /// fsync/fdatasync calls as one through a single no-op step.
    @Test func runningStepRecordsAddNoDiskSync() throws {
        func syncs(steps: Int) throws -> Int {
            let harness = try EngineHarness()
            for index in 0..<steps {
                try harness.addFixture("noop\(index)", mode: 30, weight: 10 + index)
            }
            let trace = harness.directory.file("strace.out").path
            let result = try runProcess(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace, Paths.stephost.path,
                    "provision", "--parameters", #"{"name":"sync"}"#, "--plugins-dir", harness.plugins.path, "--db",
                    harness.databasePath,
                ]
            )
            try #require(result.status == 0, "strace or the host failed: \(result.stderr)")
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            return lines.filter { $0.contains("fsync(") || $0.contains("fdatasync(") }.count
        }
        let one = try syncs(steps: 1)
        let eight = try syncs(steps: 8)
        #expect(one > 0)
        #expect(eight == one, "7 more running-step records added \(eight - one) syncs")
    }

    /// The README's count of durable commits per operation, read back from the syscalls: one more operation
    /// through `run --workers 1` (no batching) with no-op steps and create_runtime costs exactly four disk syncs
    /// (create_runtime's intent, the local provisioner's record, the answer, the operation's end). Taking the
    /// claim and starting the pass add none, and neither do the no-op steps.
    @Test func anOperationOfNoOpStepsCostsFourDiskSyncs() throws {
        func syncs(operations: Int) throws -> (count: Int, files: [String: Int]) {
            let harness = try EngineHarness()
            for index in 0..<3 { try harness.addFixture("noop\(index)", mode: 30, weight: 10 + index) }
            for index in 0..<operations {
                let created = try runProcess(
                    Paths.stephost,
                    [
                        "provision", "--detach", "--parameters", #"{"name":"sync-\#(index)"}"#, "--plugins-dir",
                        harness.plugins.path, "--db", harness.databasePath,
                    ]
                )
                try #require(created.status == 0, "provision --detach failed: \(created.stderr)")
            }
            let trace = harness.directory.file("strace.out").path
            let result = try runProcess(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", trace, Paths.stephost.path, "run",
                    "--workers", "1", "--plugins-dir", harness.plugins.path, "--db", harness.databasePath,
                ]
            )
            try #require(result.status == 0, "strace or the host failed: \(result.stderr)")
            // The host's running-step board goes with the host when it exits.
            let left = try FileManager.default.contentsOfDirectory(atPath: harness.directory.url.path)
                .filter { $0.contains("-running-") }
            #expect(left.isEmpty, "board files left behind: \(left)")
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
                .filter { $0.contains("fsync(") || $0.contains("fdatasync(") }
            // Which files were synced (strace -y names each descriptor's path), for the failure message.
            var files: [String: Int] = [:]
            for line in lines {
                let name = line.split(separator: "<").dropFirst().first.map { String($0.prefix { $0 != ">" }) }
                files[
                    (name.map { ($0 as NSString).lastPathComponent } ?? "?")
                        + (line.contains("fdatasync") ? " (fdatasync)" : ""),
                    default: 0
                ] += 1
            }
            return (lines.count, files)
        }
        // A clean-clone run on a machine loaded by other builds once counted one sync fewer for the four more
        // operations (15; the cause was not found, and it did not repeat in 16 runs on an idle machine). A change that costs syncs per
        // operation shows in every attempt, so up to three attempts are made, and one must count exactly 16.
        var differences: [Int] = []
        var seen: [String] = []
        for _ in 0..<3 {
            let one = try syncs(operations: 1)
            let five = try syncs(operations: 5)
            differences.append(five.count - one.count)
            seen.append(
                "1 operation: \(one.files.sorted { $0.key < $1.key }), 5: \(five.files.sorted { $0.key < $1.key })"
            )
            if five.count - one.count == 4 * 4 { break }
        }
        #expect(differences.last == 4 * 4, "4 more operations took \(differences) more syncs, not 16; synced: \(seen)")
    }
}
