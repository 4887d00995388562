import Foundation
import Glibc
import Testing

/// What an operator reads from a running `stephost serve`: `/metrics` as Prometheus text, and JSON log lines.
@Suite("Serve: metrics and logs")
struct ServeObservabilityTests {
    struct Sample {
        var family: String
        var type: String
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// `text` parsed by prometheus_client's parser (Tests/StepHostTests/Fixtures/parse_metrics.py).
    static func parse(_ text: String) throws -> [Sample] {
        let directory = try TemporaryDirectory("stephost-metrics")
        let input = try directory.write("metrics.txt", text)
        let parser = Paths.packageRoot.appendingPathComponent("Tests/StepHostTests/Fixtures/parse_metrics.py")
        let result = try runProcess(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "python3 \"$0\" < \"$1\"", parser.path, input.path]
        )
        try #require(result.status == 0, "the metrics are not Prometheus text: \(result.stderr)")
        return try result.stdout.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Sample(
                family: object["family"] as? String ?? "",
                type: object["type"] as? String ?? "",
                name: object["name"] as? String ?? "",
                labels: object["labels"] as? [String: String] ?? [:],
                value: (object["value"] as? NSNumber)?.doubleValue ?? .nan
            )
        }
    }

    /// After one provisioning through the example plugins (the C one in a runner), every series the issue names
    /// is there with the right type and a value that follows from what ran.
    @Test func metricsAreValidPrometheusTextWithTheExpectedSeries() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory, examples: true)
        let config = try directory.write(
            "stephost.yaml",
            "plugins:\n  settings:\n    libExampleCPlugin.so:\n      isolation: process\n"
        )
        let server = try ServedHost(directory, plugins: plugins, arguments: ["--config", config.path])
        #expect(try server.provision("metered", ServeBrokerTests.parameters).status == 202)
        #expect(try server.waitForFinal("metered") == "succeeded")
        let answer = try server.request("GET", "/metrics", authenticated: false, broker: false)
        #expect(answer.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = try Self.parse(answer.text)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { sample in
                sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value }
            }?.value
        }
        func type(_ family: String) -> String? { samples.first { $0.family == family }?.type }

        #expect(type("stephost_passes") == "counter" && value("stephost_passes_total").map { $0 >= 2 } == true)
        // The monitoring plugin asks for one retry after create_runtime.
        #expect(value("stephost_retries_total").map { $0 >= 1 } == true)
        #expect(type("stephost_step_duration_seconds") == "histogram")
        #expect(value("stephost_step_duration_seconds_count", ["step": "allocate_subnet", "plugin": "network"]) != nil)
        #expect(value("stephost_step_duration_seconds_count", ["step": "create_runtime", "plugin": "stephost"]) != nil)
        #expect(
            value(
                "stephost_step_outcomes_total",
                ["step": "verify_monitoring", "plugin": "monitoring", "outcome": "retry"]
            )
                == 1
        )
        #expect(value("stephost_operations", ["state": "succeeded"]) == 1)
        #expect(value("stephost_operations", ["state": "failed"]) == 0)
        #expect(value("stephost_operations_finished_total", ["state": "succeeded"]) == 1)
        #expect(value("stephost_operations_due") == 0 && value("stephost_operations_queued") == 0)
        #expect(value("stephost_workers_busy") == 0 && value("stephost_workers") == 4)
        #expect(value("stephost_plugin_load_errors") == 0 && value("stephost_plugins_loaded") == 3)
        #expect(type("stephost_commit_seconds") == "histogram" && (value("stephost_commit_seconds_count") ?? 0) > 0)
        #expect((value("stephost_runner_starts_total", ["plugin": "monitoring"]) ?? 0) >= 1)
        #expect(value("stephost_runner_restarts_total", ["plugin": "monitoring"]) == 0)
        // Requests, through Hummingbird's own middleware.
        #expect(samples.contains { $0.family.hasPrefix("hb_requests") })
        #expect(try server.stop().status == 0)
    }

    /// `--log-format json`: every line is one JSON object with a millisecond timestamp and the level; a step's log
    /// line names its operation, step and plugin; the DNS step's secret is in none of them.
    @Test func jsonLogLinesCarryTheOperationStepAndPlugin() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory, examples: true)
        let server = try ServedHost(
            directory,
            plugins: plugins,
            arguments: ["--log-format", "json", "--log-level", "info"]
        )
        let operation = try #require(try server.provision("logged", ServeBrokerTests.parameters).json()["operation"])
        #expect(try server.waitForFinal("logged") == "succeeded")
        #expect(try server.stop().status == 0)
        let lines = server.logText.split(separator: "\n")
        #expect(lines.count > 5)
        var stepLine: [String: Any]?
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            guard let object else { continue }
            let timestamp = object["timestamp"] as? String ?? ""
            #expect(
                timestamp.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil,
                "\(timestamp)"
            )
            #expect(
                ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(
                    object["level"] as? String
                )
            )
            if (object["message"] as? String)?.hasPrefix("allocated subnet") == true { stepLine = object }
        }
        let step = try #require(stepLine, "the network plugin's log line is missing")
        #expect(step["operation"] as? String == operation as? String)
        #expect(step["step"] as? String == "allocate_subnet" && step["plugin"] as? String == "network")
        #expect(!server.logText.contains("dns-key-logged"))
    }

    /// A plugin's text (HTML with a script, Mustache, quotes, a newline, a terminal escape) stays text everywhere
    /// the service shows it: escaped in the status page, valid JSON in answers and in every JSON log line.
    @Test func hostilePluginTextStaysText() throws {
        let directory = try TemporaryDirectory("stephost-serve")
        let plugins = try servePlugins(directory)
        try addServeFixture(plugins, "hostile", mode: 51)
        let server = try ServedHost(
            directory,
            plugins: plugins,
            arguments: ["--log-format", "json", "--log-level", "info"]
        )
        let operation = try #require(
            try server.provision("hostile", ["name": "hostile"]).json()["operation"] as? String
        )
        #expect(try server.waitForFinal("hostile") == "failed")
        let last = try server.request("GET", "/v2/service_instances/hostile/last_operation").json()
        #expect((last["description"] as? String)?.contains("<script>alert('stephost')</script>") == true)
        // A failed instance is gone for OSB (404), and says why.
        let fetched = try server.request("GET", "/v2/service_instances/hostile")
        #expect(fetched.status == 404 && fetched.text.contains("failed to provision"), "\(fetched)")
        #expect(last["description"] != nil && fetched.headers["retry-after"] == nil)
        let shown = try server.request("GET", "/operations/\(operation)")
        #expect((try? shown.json()) != nil, "not JSON: \(shown)")
        for path in ["/", "/ui/operations/\(operation)"] {
            let page = try server.request("GET", path, broker: false).text
            #expect(!page.contains("<script>alert"), "\(path) carries the plugin's script as HTML")
            #expect(!page.contains("\u{1b}"), "\(path) carries a terminal escape")
            #expect(page.contains("&lt;script&gt;alert("), "\(path) does not show the plugin's text")
        }
        #expect(try server.stop().status == 0)
        let lines = server.logText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        var seen = false
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "a log line that is not one JSON object: \(line)")
            if (object?["message"] as? String)?.contains("<script>alert('stephost')</script>") == true {
                seen = true
                #expect((object?["message"] as? String)?.contains("forged line") == true)
            }
            #expect(!line.contains("\u{1b}"), "a raw terminal escape in the log")
        }
        #expect(seen, "the plugin's log line is missing")
    }
}
