import Foundation
import Glibc
import Synchronization
import Testing

/// A plugin directory in `directory` (mode 0755), optionally with the example plugins.
func servePlugins(_ directory: TemporaryDirectory, examples: Bool = false) throws -> URL {
    let plugins = directory.file("plugins")
    try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
    chmod(plugins.path, 0o755)
    if examples {
        for product in Paths.examplePlugins {
            let source = try Paths.examplePlugin(product)
            let target = plugins.appendingPathComponent(source.lastPathComponent)
            try FileManager.default.copyItem(at: source, to: target)
            chmod(target.path, 0o755)
        }
    }
    return plugins
}

/// Compiles the fixture plugin `name` (one step, `name`_step) with `mode` into `plugins`.
func addServeFixture(
    _ plugins: URL,
    _ name: String,
    mode: Int,
    weight: Int = 10,
    _ defines: [String: String] = [:]
) throws {
    try compileFixture(
        plugins.appendingPathComponent("\(name).so"),
        [
            "PLUGIN_NAME": cString(name), "STEP1_NAME": cString("\(name)_step"), "STEP1_WEIGHT": "\(weight)",
            "RUN_MODE": "\(mode)",
        ].merging(defines) { _, new in new }
    )
}

/// `stephost serve`'s Open Service Broker API over real HTTP, against a server the test starts.
@Suite("Serve: the broker API")
struct ServeBrokerTests {
    static var parameters: [String: Any] {
        [
            "name": "demo-runtime", "region": "europe-west4",
            "components": [["name": "istio", "namespace": "istio-system"], ["name": "monitoring"], ["name": "dns"]],
        ]
    }

    @Test func provisioningRunsEndToEndThroughTheExamplePlugins() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory, examples: true)
        let provisioner = try HTTPProvisionerTests.Provisioner(directory, ["--in-progress", "1"])
        let server = try ServedHost(
            directory,
            plugins: plugins,
            arguments: [
                "--provisioner", "http", "--provisioner-url", provisioner.url, "--poll-interval", "0.05",
                "--log-level", "info",
            ]
        )
        var answers: [HTTPAnswer] = []

        let created = try server.provision("inst-1", Self.parameters)
        answers.append(created)
        #expect(created.status == 202, "\(created)")
        let operation = try #require(try created.json()["operation"] as? String)
        #expect(try server.waitForFinal("inst-1") == "succeeded")

        // The same request again: the same operation, 200 now that it succeeded.
        let repeated = try server.provision("inst-1", Self.parameters)
        let repeatedOperation = try repeated.json()["operation"] as? String
        #expect(repeated.status == 200 && repeatedOperation == operation, "\(repeated)")
        // Other parameters for the same instance: 409.
        var changed = Self.parameters
        changed["region"] = "us-east1"
        let conflict = try server.provision("inst-1", changed)
        let conflictError = try conflict.json()["error"] as? String
        #expect(conflict.status == 409 && conflictError == "Conflict", "\(conflict)")

        let last = try server.request("GET", "/v2/service_instances/inst-1/last_operation?operation=\(operation)")
        answers.append(last)
        let lastState = try last.json()["state"] as? String
        #expect(last.status == 200 && lastState == "succeeded", "\(last)")
        #expect(try server.request("GET", "/v2/service_instances/inst-1/last_operation?operation=other").status == 404)

        let instance = try server.request("GET", "/v2/service_instances/inst-1")
        answers.append(instance)
        #expect(instance.status == 200, "\(instance)")
        #expect(try instance.json()["plan_id"] as? String == "stephost-runtime-default")
        let instanceName = (try instance.json()["parameters"] as? [String: Any])?["name"] as? String
        #expect(instanceName == "demo-runtime")

        // The operation as `operations show --json` shows it: every step of the example pipeline ran.
        let shown = try server.request("GET", "/operations/\(operation)")
        answers.append(shown)
        let steps = try #require(try shown.json()["steps"] as? [[String: Any]])
        let names = Set(steps.compactMap { $0["step"] as? String })
        #expect(names.isSuperset(of: ["allocate_subnet", "configure_dns", "create_runtime", "verify_monitoring"]))
        // A unique prefix finds it too.
        #expect(try server.request("GET", "/operations/\(operation.prefix(8))").status == 200)

        let listed = try server.request("GET", "/operations?instance=inst-1")
        answers.append(listed)
        let listedCount = (try listed.json()["operations"] as? [[String: Any]])?.count
        #expect(listedCount == 1)

        let pluginList = try server.request("GET", "/plugins")
        answers.append(pluginList)
        let document = try pluginList.json()
        let order = (document["steps"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(order.contains("create_runtime") && order.first == "allocate_subnet", "\(order)")
        for plugin in document["plugins"] as? [[String: Any]] ?? [] {
            #expect((plugin["file_sha256"] as? String)?.count == 64)
        }

        // create_runtime sent exactly one request for the operation.
        #expect(try provisioner.operationNames().filter { $0 == "ProvisionRuntime" }.count == 1)
        // The secret override the DNS step made never leaves the host.
        for answer in answers { #expect(!answer.text.contains("dns-key-inst-1")) }
        #expect(!server.logText.contains("dns-key-inst-1"))
        let final = try server.stop()
        #expect(final.status == 0, "\(server.logText)")
    }

    struct BadRequest: CustomTestStringConvertible, Sendable {
        var label: String
        var method = "PUT"
        var path = "/v2/service_instances/bad?accepts_incomplete=true"
        var headers: [String: String] = [:]
        var body: String? =
            #"{"service_id":"stephost-runtime","plan_id":"stephost-runtime-default","parameters":{"name":"x"}}"#
        var authenticated = true
        var broker = true
        var status: Int
        var error: String?
        var mentions: [String] = []
        var testDescription: String { label }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(
            label: "no accepts_incomplete",
            path: "/v2/service_instances/bad",
            status: 422,
            error: "AsyncRequired"
        ),
        BadRequest(
            label: "accepts_incomplete=false",
            path: "/v2/service_instances/bad?accepts_incomplete=false",
            status: 422,
            error: "AsyncRequired"
        ),
        BadRequest(label: "no broker API version", broker: false, status: 412, error: "PreconditionFailed"),
        BadRequest(
            label: "broker API version too old",
            headers: ["X-Broker-API-Version": "2.12"],
            broker: false,
            status: 412,
            error: "PreconditionFailed",
            mentions: ["2.13"]
        ),
        BadRequest(
            label: "broker API version not a version",
            headers: ["X-Broker-API-Version": "two"],
            broker: false,
            status: 412,
            error: "PreconditionFailed"
        ),
        BadRequest(label: "malformed JSON", body: #"{"service_id": "#, status: 400, error: "MalformedJSON"),
        BadRequest(label: "a JSON array", body: "[1, 2]", status: 400, error: "MalformedJSON"),
        BadRequest(
            label: "wrong content type",
            headers: ["Content-Type": "text/plain"],
            status: 415,
            error: "UnsupportedMediaType"
        ),
        BadRequest(
            label: "body over the limit",
            body: #"{"service_id":""# + String(repeating: "x", count: 300 * 1024) + #""}"#,
            status: 413,
            error: "BodyTooLarge"
        ),
        BadRequest(
            label: "no service or plan",
            body: #"{"parameters":{"name":"x"}}"#,
            status: 400,
            error: "BadRequest",
            mentions: ["service_id", "plan_id"]
        ),
        BadRequest(
            label: "unknown plan",
            body: #"{"service_id":"stephost-runtime","plan_id":"gold","parameters":{"name":"x"}}"#,
            status: 400,
            error: "BadRequest",
            mentions: ["gold"]
        ),
        BadRequest(
            label: "invalid parameters, every problem named",
            body: #"{"service_id":"stephost-runtime","plan_id":"stephost-runtime-default","parameters":{"region":5}}"#,
            status: 400,
            error: "InvalidParameters",
            mentions: ["name is required", "region must be"]
        ),
        BadRequest(
            label: "parameters not an object",
            body: #"{"service_id":"stephost-runtime","plan_id":"stephost-runtime-default","parameters":"x"}"#,
            status: 400,
            error: "BadRequest",
            mentions: ["parameters"]
        ),
        BadRequest(
            label: "an instance id with a control character",
            path: "/v2/service_instances/a%01b?accepts_incomplete=true",
            status: 400,
            error: "BadRequest"
        ),
        BadRequest(
            label: "unknown instance",
            method: "GET",
            path: "/v2/service_instances/nobody/last_operation",
            body: nil,
            status: 404,
            error: "NotFound"
        ),
        BadRequest(label: "unknown operation", method: "GET", path: "/operations/nope", body: nil, status: 404),
        BadRequest(label: "unknown path", method: "GET", path: "/v3/everything", body: nil, status: 404),
        BadRequest(label: "no credentials", authenticated: false, status: 401, error: "Unauthorized"),
        BadRequest(
            label: "wrong password",
            headers: ["Authorization": "Basic " + Data("osb-platform:wrong".utf8).base64EncodedString()],
            authenticated: false,
            status: 401,
            error: "Unauthorized"
        ),
        BadRequest(
            label: "wrong user",
            headers: [
                "Authorization": "Basic " + Data("someone:correct horse battery staple".utf8).base64EncodedString()
            ],
            authenticated: false,
            status: 401,
            error: "Unauthorized"
        ),
        BadRequest(
            label: "credentials that are not UTF-8",
            headers: ["Authorization": "Basic " + Data([0x6F, 0x73, 0x62, 0xFF, 0x3A, 0x78]).base64EncodedString()],
            authenticated: false,
            status: 401,
            error: "Unauthorized"
        ),
        BadRequest(
            label: "a Bearer token",
            headers: [
                "Authorization": "Bearer "
                    + Data("osb-platform:correct horse battery staple".utf8).base64EncodedString()
            ],
            authenticated: false,
            status: 401,
            error: "Unauthorized"
        ),
        BadRequest(
            label: "the status page without credentials",
            method: "GET",
            path: "/",
            body: nil,
            authenticated: false,
            status: 401
        ),
        BadRequest(
            label: "operations without credentials",
            method: "GET",
            path: "/operations",
            body: nil,
            authenticated: false,
            status: 401
        ),
        BadRequest(
            label: "headers over the limit",
            headers: ["X-Padding": String(repeating: "p", count: 20 * 1024)],
            status: 431,
            error: "HeadersTooLarge"
        ),
        BadRequest(label: "bad state filter", method: "GET", path: "/operations?state=bogus", body: nil, status: 400),
        BadRequest(label: "bad limit", method: "GET", path: "/operations?limit=0", body: nil, status: 400),
        BadRequest(label: "bad cursor", method: "GET", path: "/operations?cursor=nonsense", body: nil, status: 400),
    ]

    /// One server for every case: each bad request gets its status and a JSON error, and none writes anything.
    @Test func badRequestsGetAJSONErrorWithTheRightStatusAndWriteNothing() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let server = try ServedHost(directory, plugins: try servePlugins(directory))
        for bad in Self.badRequests {
            var headers = bad.headers.map { ($0.key, $0.value) }
            if bad.body != nil && bad.headers["Content-Type"] == nil {
                headers.append(("Content-Type", "application/json"))
            }
            if bad.authenticated { headers.append(("Authorization", ServedHost.authorization)) }
            if bad.broker { headers.append(("X-Broker-API-Version", "2.16")) }
            let answer = try LoopbackHTTP.send(
                port: server.port,
                bad.method,
                bad.path,
                headers: headers,
                body: bad.body.map { Data($0.utf8) }
            )
            #expect(answer.status == bad.status, "\(bad.label): \(answer)")
            let object = try? answer.json()
            #expect(object?["description"] is String, "\(bad.label): not a JSON error: \(answer)")
            if let error = bad.error { #expect(object?["error"] as? String == error, "\(bad.label): \(answer)") }
            for mention in bad.mentions {
                let description = object?["description"] as? String ?? ""
                #expect(description.contains(mention), "\(bad.label): \(answer)")
            }
            if bad.status == 401 { #expect(answer.headers["www-authenticate"]?.hasPrefix("Basic") == true) }
        }
        // The scheme is case-insensitive (RFC 7617).
        let lowercase = try server.request(
            "GET",
            "/v2/catalog",
            headers: [("Authorization", "basic " + ServedHost.authorization.dropFirst("Basic ".count))],
            authenticated: false
        )
        #expect(lowercase.status == 200, "\(lowercase)")
        // The probes and the metrics need no credentials.
        for path in ["/healthz", "/readyz", "/metrics"] {
            #expect(try server.request("GET", path, authenticated: false).status == 200, "\(path)")
        }
        let listed = try server.request("GET", "/operations")
        let written = (try listed.json()["operations"] as? [Any])?.count
        #expect(written == 0, "a bad request wrote: \(listed)")
        #expect(try server.stop().status == 0)
    }

    @Test func theServerRefusesToStartWithoutCredentials() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        let base = ["serve", "--plugins-dir", plugins.path, "--db", directory.file("db.sqlite").path, "--port", "0"]
        let noCredentials = ["STEPHOST_BROKER_USERNAME": "", "STEPHOST_BROKER_PASSWORD": ""]

        let refused = try runProcess(Paths.stephost, base, environment: noCredentials)
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("STEPHOST_BROKER_USERNAME") && refused.stderr.contains("--insecure-no-auth"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("db.sqlite").path), "refused, yet it wrote")

        let half = try runProcess(Paths.stephost, base, environment: ["STEPHOST_BROKER_USERNAME": "only-user"])
        #expect(half.status == 64 && half.stderr.contains("set together"), "\(half.stderr)")

        // A credentials file others can read is refused with the fix.
        let file = try directory.write("credentials", "file-user:file-password\n")
        let open = try runProcess(Paths.stephost, base + ["--credentials-file", file.path], environment: noCredentials)
        #expect(open.status == 64 && open.stderr.contains("chmod 600"), "\(open.stderr)")

        // Mode 600: its credentials, and only they, get in.
        chmod(file.path, 0o600)
        let fromFile = try ServedHost(
            directory,
            plugins: plugins,
            arguments: ["--credentials-file", file.path],
            environment: noCredentials,
            logName: "file.log"
        )
        let fileAuthorization = "Basic " + Data("file-user:file-password".utf8).base64EncodedString()
        let withFileCredentials = try fromFile.request(
            "GET",
            "/v2/catalog",
            headers: [("Authorization", fileAuthorization)],
            authenticated: false
        )
        #expect(withFileCredentials.status == 200)
        #expect(try fromFile.request("GET", "/v2/catalog").status == 401)
        #expect(try fromFile.stop().status == 0)

        // --insecure-no-auth: anyone gets in, and the log says so.
        let insecure = try ServedHost(
            directory,
            plugins: plugins,
            arguments: ["--insecure-no-auth"],
            environment: noCredentials,
            logName: "insecure.log"
        )
        #expect(try insecure.request("GET", "/v2/catalog", authenticated: false).status == 200)
        #expect(try insecure.stop().status == 0)
        #expect(insecure.logText.contains("WITHOUT authentication"))
    }

    /// Fifty identical PUTs for one instance at once, over fifty connections: one operation, and every answer
    /// names it.
    @Test func concurrentPutsForOneInstanceMakeOneOperation() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let server = try ServedHost(directory, plugins: try servePlugins(directory))
        let answers = Mutex<[HTTPAnswer]>([])
        // Every request is sent but its last byte; once all 50 are, the last bytes go together.
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        Thread {
            for _ in 0..<50 { ready.wait() }
            for _ in 0..<50 { go.signal() }
        }.start()
        concurrently(50, width: 50) { _ in
            let answer = try? server.provision("contended", ["name": "contended"]) {
                ready.signal()
                go.wait()
            }
            if let answer { answers.withLock { $0.append(answer) } }
        }
        let all = answers.withLock { $0 }
        #expect(all.count == 50 && all.allSatisfy { [200, 202].contains($0.status) }, "\(all.map(\.status))")
        let operations = Set(all.compactMap { try? $0.json()["operation"] as? String })
        #expect(operations.count == 1, "\(operations)")
        let listed = try server.request("GET", "/operations?instance=contended").json()["operations"] as? [Any]
        #expect(listed?.count == 1)
        #expect(try server.stop().status == 0)
    }
}
