import Foundation
import Logging
import StepHostCore
import StepHostPostgres
import StepHostStorage
import Testing

/// What the PostgreSQL store must do beyond the conformance suite, against the real server `scripts/with-postgres`
/// starts (in CI always: a missing server fails these tests, it never skips them).
@Suite(
    "The PostgreSQL store",
    .enabled(
        if: ProcessInfo.processInfo.environment["STEPHOST_TEST_DATABASE_URL"] != nil
            || ProcessInfo.processInfo.environment["CI"] == "true",
        "no PostgreSQL server: run through scripts/with-postgres"
    )
)
struct PostgresStoreTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func adminURL() throws -> String {
        try #require(
            ProcessInfo.processInfo.environment["STEPHOST_TEST_DATABASE_URL"],
            "no PostgreSQL server: run the tests through scripts/with-postgres (scripts/test does)"
        )
    }

    static func scratch() async throws -> String {
        try await PostgresOperationStore.createScratchDatabase(adminURL: try adminURL(), logger: logger)
    }

    /// Hosts starting together on a new database: the schema is applied once, under the advisory lock, and every
    /// host comes up.
    @Test func hostsStartingTogetherApplyTheSchemaOnce() async throws {
        let url = try await Self.scratch()
        let stores = try await withThrowingTaskGroup(of: PostgresOperationStore.self) { group in
            for _ in 0..<6 { group.addTask { try await PostgresOperationStore(url: url, logger: Self.logger) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stores.count == 6)
        try await stores[0].create(try newOperation("op-1"))
        #expect(try await stores[5].operation(id: "op-1")?.id == "op-1")
        for store in stores { store.close() }
    }

    /// Two hosts claiming the same queue at once never take the same operation: each due operation is claimed
    /// exactly once (SKIP LOCKED, and the claim row per operation).
    @Test func twoHostsClaimingAtOnceNeverShareAnOperation() async throws {
        let url = try await Self.scratch()
        let first = try await PostgresOperationStore(url: url, logger: Self.logger)
        let second = try await PostgresOperationStore(url: url, logger: Self.logger)
        defer {
            first.close()
            second.close()
        }
        let now = Date()
        for index in 0..<60 {
            var operation = try newOperation(String(format: "op-%02d", index), now: now)
            operation.nextPassAt = now.addingTimeInterval(-1)
            try await first.create(operation)
        }
        let owners = [ClaimOwner("host-a:1:1"), ClaimOwner("host-b:2:2")]
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for (store, owner) in [(first, owners[0]), (second, owners[1])] {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimDue(
                            now: now,
                            owner: owner,
                            lease: .seconds(300),
                            limit: 3,
                            id: nil
                        )
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let all = claims.flatMap { $0 }
        #expect(all.count == 60, "\(claims.map(\.count))")
        #expect(Set(all).count == 60, "an operation was claimed twice")
        #expect(claims.allSatisfy { !$0.isEmpty }, "both hosts took work: \(claims.map(\.count))")
    }

    /// The password never appears in an error: not for a refused login, not for a URL that cannot be read.
    @Test func thePasswordNeverAppearsInAnError() async throws {
        var url = try #require(URLComponents(string: try Self.adminURL()))
        url.password = "wrong-Secret-4711"
        let error = await #expect(throws: StorageError.self) {
            try await PostgresOperationStore(url: url.string!, logger: Self.logger)
        }
        let text = "\(String(describing: error))"
        #expect(!text.contains("wrong-Secret-4711"), "\(text)")
        #expect(text.contains("stephost@127.0.0.1"), "\(text)")
        #expect(text.contains("password authentication failed"), "the server's reason is kept: \(text)")
        let malformed = await #expect(throws: StorageError.self) {
            try await PostgresOperationStore(url: "mysql://user:hunter2-secret@x/y", logger: Self.logger)
        }
        #expect(!"\(String(describing: malformed))".contains("hunter2-secret"))
    }

    /// Choosing the store on the command line: conflicting choices and URLs that are not PostgreSQL's are refused
    /// with exit 64 and a message that names the fix and never the password; a password missing from the URL is
    /// taken from `$PGPASSWORD`, so the same command then reads the database.
    @Test func theStoreIsChosenOnceAndThePasswordMayComeFromTheEnvironment() async throws {
        let url = try await Self.scratch()
        let store = try await PostgresOperationStore(url: url, logger: Self.logger)
        store.close()
        var components = try #require(URLComponents(string: url))
        let password = try #require(components.password)
        let directory = try TemporaryDirectory("stephost-choice")
        let sqlite = directory.file("x.sqlite").path
        let clean = ["STEPHOST_DATABASE_URL": "", "STEPHOST_DB": "", "PGPASSWORD": ""]
        func stephost(_ arguments: [String], _ environment: [String: String] = [:]) throws -> ProcessResult {
            try runProcess(
                Paths.stephost,
                ["operations", "list"] + arguments,
                environment: clean.merging(environment) { _, new in new },
                in: directory.url
            )
        }
        let refusals: [([String], [String: String], String)] = [
            (
                ["--db", sqlite, "--database-url", url], [:],
                "give --db (a SQLite file) or --database-url (PostgreSQL), not both"
            ),
            (["--db", url], [:], "--db takes a SQLite file; give a PostgreSQL URL with --database-url"),
            (["--database-url", "mysql://admin:\(password)@db/x"], [:], "--database-url is not postgres://"),
            (
                [], ["STEPHOST_DATABASE_URL": url, "STEPHOST_DB": sqlite],
                "both STEPHOST_DATABASE_URL and STEPHOST_DB are set"
            ),
            (
                [], ["STEPHOST_DATABASE_URL": "postgres://nobody:\(password)@"],
                "STEPHOST_DATABASE_URL: the database URL is not postgres://"
            ),
            (
                ["--database-url", url + "?sslrootcert=/nonexistent.pem"], [:],
                "sslrootcert is given without sslmode=require"
            ),
            (
                ["--database-url", url + "?sslmode=require&sslrootcert=/nonexistent.pem"], [:],
                "sslrootcert=/nonexistent.pem cannot be read"
            ),
            (
                ["--database-url", url + "?application_name=x"], [:],
                "the database URL parameter application_name is not supported"
            ),
        ]
        for (arguments, environment, message) in refusals {
            let result = try stephost(arguments, environment)
            #expect(result.status == 64, "\(arguments) \(environment.keys.sorted()): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!(result.stdout + result.stderr).contains(password), "the password was shown: \(result.stderr)")
        }
        // A server that cannot be reached (nothing listens on the port) stops the command with exit 74, saying so
        // and naming the database without its password.
        var closed = components
        closed.port = try freeLoopbackPort()
        let unreachable = try stephost(["--database-url", try #require(closed.string)])
        #expect(unreachable.status == 74, "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("cannot be reached"), "\(unreachable.stderr)")
        #expect(unreachable.stderr.contains("stephost@127.0.0.1:\(closed.port!)"), "\(unreachable.stderr)")
        #expect(!unreachable.stderr.contains(password), "\(unreachable.stderr)")
        // The flag wins over the environment, which is not then looked at.
        let chosen = try stephost(["--database-url", url], ["STEPHOST_DB": sqlite])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(!FileManager.default.fileExists(atPath: sqlite), "the SQLite file was created")
        components.password = nil
        let withoutPassword = try #require(components.string)
        let filled = try stephost(["--database-url", withoutPassword], ["PGPASSWORD": password])
        #expect(filled.status == 0, "\(filled.stderr)")
        let refused = try stephost(["--database-url", withoutPassword], ["PGPASSWORD": "wrong-\(password)"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("password authentication failed"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(password), "\(refused.stderr)")
    }

    /// TLS with `sslmode=require`: the connection is encrypted (the server says so of its own backend), and the
    /// server's certificate is verified: accepted against the authority given with `sslrootcert` (the private one
    /// `scripts/with-postgres` made), refused against the system's trust roots, which do not know it, with a message
    /// that says so. The command line takes the same URL.
    @Test func tlsIsUsedAndTheServerIsVerified() async throws {
        let authority = try #require(
            ProcessInfo.processInfo.environment["STEPHOST_TEST_PG_CA"],
            "no test certificate authority: run the tests through scripts/with-postgres (scripts/test does)"
        )
        let plain = try await Self.scratch()
        let password = try #require(URLComponents(string: plain)?.password)
        let secure = plain + "?sslmode=require&sslrootcert=" + authority
        let store = try await PostgresOperationStore(url: secure, logger: Self.logger)
        #expect(try await store.connectionUsesTLSForTesting())
        store.close()
        let unencrypted = try await PostgresOperationStore(url: plain, logger: Self.logger)
        #expect(try await !unencrypted.connectionUsesTLSForTesting())
        unencrypted.close()

        // The system's trust roots do not know the test authority: refused, and the message says why and what to do.
        let error = await #expect(throws: StorageError.self) {
            try await PostgresOperationStore(url: plain + "?sslmode=require", logger: Self.logger)
        }
        let text = "\(String(describing: error))"
        #expect(text.contains("its certificate could not be verified"), "\(text)")
        #expect(text.contains("sslrootcert=PATH"), "\(text)")
        #expect(!text.contains(password), "\(text)")
        let listed = try runProcess(
            Paths.stephost,
            ["operations", "list", "--database-url", secure],
            environment: ["STEPHOST_DATABASE_URL": "", "STEPHOST_DB": ""]
        )
        #expect(listed.status == 0, "\(listed.stderr)")
    }

    /// A database a newer stephost migrated is refused, naming the migrations this host does not know.
    @Test func aDatabaseOfANewerStephostIsRefused() async throws {
        let url = try await Self.scratch()
        let store = try await PostgresOperationStore(url: url, logger: Self.logger)
        try await store.insertMigrationForTesting("pg99")
        store.close()
        let error = await #expect(throws: StorageError.self) {
            try await PostgresOperationStore(url: url, logger: Self.logger)
        }
        #expect(error?.code == .newerSchema)
        #expect(error?.message.contains("(pg99)") == true, "\(String(describing: error))")
    }
}
