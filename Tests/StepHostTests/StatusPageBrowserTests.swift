import Foundation
import Glibc
import Testing

/// The status page in a real browser: Debian's Chromium, headless, loads the page with its credentials, runs its
/// script, and dumps the DOM it ended with; screenshots are kept in `.build/test-artifacts/`.
@Suite("Serve: the status page in headless Chromium", .serialized)
struct StatusPageBrowserTests {
    static func chromium() throws -> URL {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        try #require(Bool(false), "Chromium is missing: `scripts/bootstrap --test` installs Debian's chromium")
        fatalError()
    }

    static let artifacts = Paths.packageRoot.appendingPathComponent(".build/test-artifacts")

    /// The page at `path` as a user with the server's credentials sees it, loaded with `arguments` (`--dump-dom`
    /// or `--screenshot=`), after the page's scripts ran for up to `budget` ms of virtual time (virtual time stands
    /// still while a request is pending, so a long poll is waited for in real time).
    static func chromiumArguments(_ server: ServedHost, _ path: String, profile: URL, budget: Int) -> [String] {
        let password = ServedHost.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        return [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--window-size=1280,900", "--user-data-dir=\(profile.path)",
            "--virtual-time-budget=\(budget)",
            "http://\(ServedHost.username):\(password)@127.0.0.1:\(server.port)\(path)",
        ]
    }

    static func dom(_ server: ServedHost, _ path: String, budget: Int = 3000) throws -> String {
        let profile = try TemporaryDirectory("stephost-chromium")
        let result = try runProcess(
            try chromium(),
            ["--dump-dom"] + chromiumArguments(server, path, profile: profile.url, budget: budget)
        )
        try #require(result.status == 0 && result.stdout.contains("</html>"), "chromium failed: \(result.stderr)")
        return result.stdout
    }

    static func screenshot(_ server: ServedHost, _ path: String, _ name: String) throws {
        let profile = try TemporaryDirectory("stephost-chromium")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let file = artifacts.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: file)
        let result = try runProcess(
            try chromium(),
            ["--screenshot=\(file.path)"] + chromiumArguments(server, path, profile: profile.url, budget: 1000)
        )
        let png = try Data(contentsOf: file)
        #expect(result.status == 0 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
    }

    /// Every value of `attribute` in elements whose class is `rowClass`, in document order.
    static func attribute(_ attribute: String, of rowClass: String, in html: String) -> [String] {
        let pattern = #"<tr class="\#(rowClass)"[^>]*\b\#(attribute)="([^"]*)""#
        let expression = try! NSRegularExpression(pattern: pattern)
        return expression.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
            String(html[Range($0.range(at: 1), in: html)!])
        }
    }

    static func bodyAttribute(_ name: String, in html: String) -> String? {
        guard let body = html.range(of: #"<body[^>]*>"#, options: .regularExpression) else { return nil }
        let tag = String(html[body])
        guard let value = tag.range(of: #"\b\#(name)="([^"]*)""#, options: .regularExpression) else { return nil }
        return String(tag[value].split(separator: "\"")[1])
    }

    /// A server with the example plugins and a gate step that holds the operation named "waiting" until the test
    /// lets it go.
    final class Setup {
        let directory: TemporaryDirectory
        let release: URL
        let server: ServedHost

        init() throws {
            directory = try TemporaryDirectory("stephost-status")
            let plugins = try servePlugins(directory, examples: true)
            release = directory.file("release")
            try addServeFixture(
                plugins,
                "gate",
                mode: 50,
                weight: 60,
                ["ONLY_WHEN": cString(#"\"waiting\""#), "RELEASE_FILE": cString(release.path)]
            )
            server = try ServedHost(directory, plugins: plugins)
        }

        deinit { try? Data().write(to: release) }

        func operationID(_ instance: String) throws -> String {
            let listed = try server.request("GET", "/operations?instance=\(instance)").json()["operations"]
            return try #require((listed as? [[String: Any]])?.first?["id"] as? String)
        }
    }

    @Test func thePipelineTheOperationsAndATimelineShowAsTheyAre() throws {
        let setup = try Setup()
        let server = setup.server
        #expect(try server.provision("done-one", ServeBrokerTests.parameters).status == 202)
        #expect(try server.waitForFinal("done-one") == "succeeded")
        #expect(try server.provision("held", ["name": "waiting"]).status == 202)
        let done = try setup.operationID("done-one")
        let held = try setup.operationID("held")

        // The pipeline, in the order /plugins gives, with each plugin's health.
        let index = try Self.dom(server, "/")
        let document = try server.request("GET", "/plugins").json()
        let expected = (document["steps"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(Self.attribute("data-step", of: "step", in: index) == expected && expected.contains("gate_step"))
        for plugin in document["plugins"] as? [[String: Any]] ?? [] {
            let hash = try #require(plugin["file_sha256"] as? String)
            #expect(
                index.contains(#"title="\#(hash)">\#(hash.prefix(12))<"#),
                "no file hash for \(plugin["name"] ?? "?")"
            )
        }
        // Both operations with their states; the page refreshes itself while one runs.
        #expect(Set(Self.attribute("data-id", of: "operation", in: index)) == [done, held])
        #expect(Set(Self.attribute("data-state", of: "operation", in: index)) == ["succeeded", "in_progress"])
        #expect(Self.bodyAttribute("data-running", in: index) == "true")
        #expect(Int(Self.bodyAttribute("data-refreshes", in: index) ?? "") ?? 0 >= 1, "the index never refreshed")

        // The state filter.
        let filtered = try Self.dom(server, "/?state=succeeded")
        #expect(Self.attribute("data-id", of: "operation", in: filtered) == [done])

        // A finished operation's timeline: two passes (the monitoring plugin asked for one retry), every step of the
        // first with its outcome, no refreshing.
        let timeline = try Self.dom(server, "/ui/operations/\(done)")
        let steps = Self.attribute("data-step", of: "run", in: timeline)
        let outcomes = Self.attribute("data-outcome", of: "run", in: timeline)
        #expect(timeline.contains(#"data-pass="1""#) && timeline.contains(#"data-pass="2""#))
        #expect(steps.starts(with: expected.filter { $0 != "gate_step" }.prefix(3)), "\(steps)")
        #expect(zip(steps, outcomes).contains { $0 == ("verify_monitoring", "retry") })
        #expect(zip(steps, outcomes).contains { $0 == ("create_runtime", "done") })
        #expect(Self.bodyAttribute("data-running", in: timeline) == "false")
        #expect(Self.bodyAttribute("data-refreshes", in: timeline) == "0")
        #expect(!timeline.contains("are not kept"), "a note about dropped runs where none were dropped")

        try Self.screenshot(server, "/", "status-page-index.png")
        try Self.screenshot(server, "/ui/operations/\(done)", "status-page-operation.png")
        try Data().write(to: setup.release)
        #expect(try server.waitForFinal("held") == "succeeded")
        #expect(try server.stop().status == 0)
    }

    /// A running operation's page updates itself when the operation changes: loaded while its step waits, it shows
    /// the final state once the step is let go, without a reload.
    @Test func aRunningOperationsPageRefreshesItself() throws {
        let setup = try Setup()
        let server = setup.server
        #expect(try server.provision("held", ["name": "waiting"]).status == 202)
        let held = try setup.operationID("held")
        let running = try eventually(within: 30) {
            let step = try server.request("GET", "/operations/\(held)").json()["running_step"] as? [String: Any]
            return step?["step"] as? String == "gate_step"
        }
        #expect(running)
        let before = try server.request("GET", "/ui/operations/\(held)", broker: false)
        #expect(before.text.contains(#"data-running="true""#) && before.text.contains(#"id="state">in_progress"#))
        #expect(before.text.contains(#"<dd id="running-step">step gate_step of plugin gate"#), "\(before.text)")

        let profile = try TemporaryDirectory("stephost-chromium")
        let output = directoryFile(setup.directory, "dom.html")
        let browser = Process()
        browser.executableURL = try Self.chromium()
        browser.arguments =
            ["--dump-dom"]
            + Self.chromiumArguments(server, "/ui/operations/\(held)", profile: profile.url, budget: 60_000)
        browser.standardOutput = try FileHandle(forWritingTo: output)
        browser.standardError = FileHandle.nullDevice
        try browser.run()
        // Let the step go only once the browser has loaded the page (the server has answered it).
        let loaded = try eventually(within: 60) {
            let metrics = try server.request("GET", "/metrics", authenticated: false, broker: false).text
            return metrics.split(separator: "\n").contains {
                $0.hasPrefix("hb_requests{") && $0.contains(#"http_route="/ui/operations/{id}""#)
            }
        }
        #expect(loaded, "the browser never loaded the page")
        try Data().write(to: setup.release)
        let ended = try eventually(within: 90) { !browser.isRunning }
        #expect(ended, "chromium did not finish")
        if !ended { browser.terminate() }
        browser.waitUntilExit()
        let dom = try String(contentsOf: output, encoding: .utf8)
        #expect(dom.contains(#"id="state">succeeded"#), "the page did not show the final state: \(dom.suffix(2000))")
        #expect(Self.bodyAttribute("data-running", in: dom) == "false")
        #expect(Int(Self.bodyAttribute("data-refreshes", in: dom) ?? "") ?? 0 >= 1, "the page never refreshed")
        #expect(try server.stop().status == 0)
    }
}

/// An empty file `name` in `directory`, for a child's output.
private func directoryFile(_ directory: TemporaryDirectory, _ name: String) -> URL {
    let file = directory.file(name)
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    return file
}
