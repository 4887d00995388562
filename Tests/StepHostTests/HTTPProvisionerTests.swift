import Foundation
import Testing

/// `create_runtime` against a Runtime Provisioner stand-in: a real HTTP server on loopback that parses,
/// validates and executes every request against the provisioner's GraphQL schema (graphql-core).
@Suite("create_runtime over HTTP")
struct HTTPProvisionerTests {
    static let server = Paths.packageRoot.appendingPathComponent("Tests/StepHostTests/Fixtures/provisioner_server.py")
    static let schema = Paths.packageRoot.appendingPathComponent(
        "Tests/StepHostTests/Fixtures/provisioner-schema.graphql"
    )

    /// The stand-in, started for one test.
    final class Provisioner {
        let process: BackgroundProcess
        let url: String
        let log: URL

        init(_ directory: TemporaryDirectory, _ arguments: [String] = []) throws {
            log = directory.file("provisioner.jsonl")
            process = try BackgroundProcess(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "python3", HTTPProvisionerTests.server.path, "--schema", HTTPProvisionerTests.schema.path, "--log",
                    log.path,
                ]
                    + arguments
            )
            let line = try #require(
                process.firstLine(),
                "the provisioner stand-in did not start (is graphql-core installed?)"
            )
            let address = try #require(line.split(separator: " ").last)
            url = "http://\(address)/graphql"
        }

        /// Every request the server received, in order.
        func requests() throws -> [[String: Any]] {
            guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
            return try text.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }

        func operationNames() throws -> [String] {
            try requests().map { ($0["body"] as? [String: Any])?["operationName"] as? String ?? "?" }
        }
    }

    func provision(
        _ harness: EngineHarness,
        _ provisioner: Provisioner,
        _ extra: [String] = []
    ) throws
        -> ProcessResult
    {
        try runProcess(Paths.stephost, provisionArguments(harness, provisioner) + extra)
    }

    func provisionArguments(_ harness: EngineHarness, _ provisioner: Provisioner) -> [String] {
        [
            "provision", "--parameters", ProvisionCommandTests.parameters, "--instance-id", "inst-1", "--db",
            harness.databasePath, "--plugins-dir", harness.plugins.path, "--provisioner", "http",
            "--provisioner-url", provisioner.url, "--poll-interval", "0.05",
        ]
    }

    /// `operations show --json` of the one operation in the harness's database.
    func shown(_ harness: EngineHarness, _ id: String) throws -> [String: Any] {
        let show = try runProcess(Paths.stephost, ["operations", "show", id, "--json", "--db", harness.databasePath])
        #expect(show.status == 0, "\(show.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
    }

    @Test func requestIsSentOnceAndValidThenPolledUntilSucceeded() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, ["--in-progress", "2"])
        let result = try provision(harness, provisioner)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")

        let requests = try provisioner.requests()
        #expect(requests.allSatisfy { $0["errors"] == nil }, "the schema refused a request: \(requests)")
        let names = try provisioner.operationNames()
        #expect(names.filter { $0 == "ProvisionRuntime" }.count == 1)
        // Every pass asks: InProgress, InProgress, Succeeded, then Succeeded again in the pass that
        // verify_monitoring's retry starts.
        #expect(names.filter { $0 == "RuntimeOperationStatus" }.count == 4)

        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        #expect(requests.allSatisfy { $0["idempotency_key"] as? String == id })
        let sent = try #require((requests.first?["body"] as? [String: Any])?["variables"] as? [String: Any])
        let config = try #require(sent["config"] as? [String: Any])
        let labels = (config["runtimeInput"] as? [String: Any])?["labels"] as? [String: String]
        #expect(labels?["stephost.io/operation-id"] == id)
        // The provisioner needs the real secret; only stephost's own records are redacted.
        let sentText = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        #expect(sentText.contains("s3cr3t-grafana-admin"))
        for file in try FileManager.default.contentsOfDirectory(atPath: harness.directory.path)
        where file.hasPrefix("stephost.sqlite") {
            let bytes = try Data(contentsOf: harness.directory.file(file))
            #expect(bytes.range(of: Data("s3cr3t-grafana-admin".utf8)) == nil)
        }
        #expect(!result.stdout.contains("s3cr3t") && !result.stderr.contains("s3cr3t"))
    }

    /// 5xx, 408 (request timeout) and 429 (too many requests) say "try again later", not "no".
    @Test(arguments: [503, 408, 429])
    func transientHTTPErrorsAreRetriedWithTheSameIdempotencyKey(status: Int) throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(
            harness.directory,
            ["--mode", "flaky", "--failures", "2", "--in-progress", "0", "--failure-status", "\(status)"]
        )
        let result = try provision(harness, provisioner)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let requests = try provisioner.requests()
        #expect(requests.prefix(2).allSatisfy { $0["http_status"] as? Int == status })
        #expect(
            try provisioner.operationNames().prefix(3) == ["ProvisionRuntime", "ProvisionRuntime", "ProvisionRuntime"]
        )
        #expect(Set(requests.compactMap { $0["idempotency_key"] as? String }).count == 1)
        #expect(result.stdout.contains("create_runtime         built-in     retry"))
    }

    @Test func graphQLErrorFailsTheOperationWithTheProvisionersMessage() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, ["--mode", "reject"])
        let result = try provision(harness, provisioner)
        #expect(result.status == 1)
        #expect(
            result.stdout.contains(
                "failed at step create_runtime: the provisioner refused provisionRuntime: runtime name already taken in the Director"
            )
        )
        #expect(try provisioner.operationNames() == ["ProvisionRuntime"])
    }

    @Test func failedProvisioningFailsTheOperation() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, ["--mode", "fail"])
        let result = try provision(harness, provisioner)
        #expect(result.status == 1)
        #expect(
            result.stdout.contains("the provisioner reports provisioning failed: shoot creation failed: quota exceeded")
        )
        #expect(try provisioner.operationNames() == ["ProvisionRuntime", "RuntimeOperationStatus"])
    }

    @Test func unreachableProvisionerIsRetriedUntilTheDeadline() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        // A port nothing listens on: connection refused is a network error, so a retry.
        let result = try runProcess(
            Paths.stephost,
            [
                "provision", "--parameters", #"{"name":"rt"}"#, "--db", harness.databasePath, "--plugins-dir",
                harness.plugins.path, "--provisioner", "http", "--provisioner-url",
                "http://stephost:s3cretpass@127.0.0.1:9/graphql", "--log-level", "info",
                "--poll-interval", "0.05", "--deadline-hours", "0.0003",
            ]
        )
        #expect(result.status == 1)
        #expect(result.stdout.contains("create_runtime         built-in     retry"))
        #expect(result.stdout.contains("failed at step stephost: the operation passed its deadline"))
        // The URL's password is never printed, in the retry warnings either.
        #expect(
            result.stderr.contains("the provisioner at http://<credentials>@127.0.0.1:9/graphql could not be reached")
        )
        #expect(!result.stdout.contains("s3cretpass") && !result.stderr.contains("s3cretpass"))
    }

    /// The provisioner executed the request but the answer never came (it came too late, or the connection
    /// closed first): the request may have been accepted, so it is not sent again and the operation fails
    /// saying where to look.
    @Test(arguments: [["--mode", "slow", "--delay", "120"], ["--mode", "drop"]])
    func requestWithoutAnAnswerIsNeverSentAgain(mode: [String]) throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, mode + ["--failures", "1"])
        let started = Date()
        let result = try provision(harness, provisioner, ["--provisioner-timeout", "1"])
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        if mode[1] == "slow" {
            // --provisioner-timeout bounds the whole exchange: a correctness bound, with a wide margin (the
            // default and URLSession's own timeouts are 30 s and 60 s, the provisioner answers after 120 s).
            #expect(result.stdout.contains("timed out"))
            #expect(Date().timeIntervalSince(started) < 30)
        }
        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        #expect(result.stdout.contains("may have been accepted"))
        #expect(result.stdout.contains("look for the runtime labelled stephost.io/operation-id=\(id)"))
        #expect(try provisioner.operationNames() == ["ProvisionRuntime"])

        let operation = try shown(harness, id)
        let attempts = try #require(operation["provisioning_attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["outcome"] as? String } == ["unknown"])
        #expect(attempts.first?["idempotency_key"] as? String == id)
    }

    /// Declared idempotent, the provisioner gets the request again with the same key after a lost answer, and
    /// every attempt stays recorded.
    @Test func idempotentProvisionerGetsTheRequestAgainWithTheSameKey() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(
            harness.directory,
            ["--mode", "drop", "--failures", "1", "--in-progress", "0"]
        )
        let result = try provision(harness, provisioner, ["--provisioner-idempotent"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let requests = try provisioner.requests()
        let sends = requests.filter {
            ($0["body"] as? [String: Any])?["operationName"] as? String == "ProvisionRuntime"
        }
        #expect(sends.count == 2)
        #expect(sends.allSatisfy { $0["idempotency_key"] as? String == id })

        let operation = try shown(harness, id)
        let attempts = try #require(operation["provisioning_attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["outcome"] as? String } == ["unknown", "accepted"])
        let accepted = try #require(attempts.last?["provisioner_operation_id"] as? String)
        #expect(operation["provisioner_operation_ids"] as? [String] == [accepted])
    }

    /// SIGKILL while the request is at the provisioner: the attempt was recorded before sending, so the next
    /// run knows the request may have been accepted and does not send it again.
    @Test func hostKilledWhileSendingDoesNotSendAgainAfterARestart() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, ["--mode", "slow", "--delay", "60", "--failures", "1"])
        let host = try BackgroundProcess(Paths.stephost, provisionArguments(harness, provisioner))
        #expect(try eventually { try provisioner.operationNames() == ["ProvisionRuntime"] })
        host.killNow()

        let run = try runProcess(
            Paths.stephost,
            [
                "run", "--db", harness.databasePath, "--plugins-dir", harness.plugins.path, "--provisioner", "http",
                "--provisioner-url", provisioner.url, "--poll-interval", "0.05",
            ]
        )
        #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("may have been accepted: the host stopped (or lost its claim) before the answer"))
        #expect(try provisioner.operationNames() == ["ProvisionRuntime"])
    }

    /// While polling, a field error the provisioner does not call permanent is asked again; one it calls
    /// permanent fails the operation, naming what the provisioner accepted.
    @Test func pollErrorsAreTransientUnlessThePermanentOnesSaySo() throws {
        let transient = try EngineHarness()
        try transient.addExamples()
        let flaky = try Provisioner(
            transient.directory,
            ["--mode", "poll-error", "--failures", "2", "--in-progress", "0"]
        )
        let recovered = try provision(transient, flaky)
        #expect(recovered.status == 0, "\(recovered.stdout)\n\(recovered.stderr)")
        #expect(try flaky.operationNames().filter { $0 == "ProvisionRuntime" }.count == 1)
        #expect(try flaky.operationNames().filter { $0 == "RuntimeOperationStatus" }.count >= 3)

        let permanent = try EngineHarness()
        try permanent.addExamples()
        let gone = try Provisioner(
            permanent.directory,
            ["--mode", "poll-error", "--failures", "5", "--poll-error-extensions", #"{"code": "NOT_FOUND"}"#]
        )
        let failed = try provision(permanent, gone)
        #expect(failed.status == 1)
        let id = try #require(failed.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let operation = try shown(permanent, id)
        let accepted = try #require(operation["provisioner_operation_id"] as? String)
        let runtime = try #require(operation["runtime_id"] as? String)
        let message = try #require((operation["last_error"] as? [String: Any])?["message"] as? String)
        #expect(message.contains("the status store is unavailable"))
        #expect(
            message.contains(
                "had accepted the request as operation \(accepted) for runtime \(runtime), which stays recorded"
            )
        )
        #expect(try gone.operationNames() == ["ProvisionRuntime", "RuntimeOperationStatus"])
    }

    /// An HTTP 500 may come after the provisioner acted: unlike 503, it is not a reason to send again.
    @Test func http500AfterSendingIsAnUnknownOutcome() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(
            harness.directory,
            ["--mode", "flaky", "--failures", "1", "--failure-status", "500"]
        )
        let result = try provision(harness, provisioner)
        #expect(result.status == 1)
        #expect(result.stdout.contains("may have been accepted: the provisioner answered HTTP 500"))
        #expect(try provisioner.operationNames() == ["ProvisionRuntime"])
    }
}

extension HTTPProvisionerTests {
    /// Answers at the edges: a redirect is not followed (a second POST for one attempt) and fails naming it; an
    /// answer that names an operation is taken, with GraphQL errors beside it or with HTTP 201; a status answer
    /// about another operation is not taken.
    @Test(arguments: ["redirect", "partial", "created", "wrong-id"])
    func answersAtTheEdges(mode: String) throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let provisioner = try Provisioner(harness.directory, ["--mode", mode, "--in-progress", "0"])
        let result = try provision(harness, provisioner)
        let id = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
        let operation = try shown(harness, id)
        let message = (operation["last_error"] as? [String: Any])?["message"] as? String ?? ""
        let sends = try provisioner.operationNames().filter { $0 == "ProvisionRuntime" }.count
        let requests = try provisioner.requests()
        #expect(sends == 1, "\(requests)")
        switch mode {
        case "redirect":
            #expect(result.status == 1)
            #expect(message.contains("answered a redirect (HTTP 307"), "\(message)")
        case "partial", "created":
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect((operation["provisioner_operation_ids"] as? [String])?.count == 1)
        default:
            #expect(result.status == 1)
            #expect(message.contains("about operation another-operation, not the one asked about"), "\(message)")
        }
    }
}
