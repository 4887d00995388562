import Foundation
import Glibc
import Testing

/// Runs the real `stephost` executable as a child process.
@Suite("stephost list-plugins and plugin-header")
struct ListPluginsCommandTests {
    func stephost(
        _ arguments: [String],
        environment: [String: String] = [:],
        in directory: URL? = nil
    ) throws
        -> ProcessResult
    {
        try runProcess(Paths.stephost, arguments, environment: environment, in: directory)
    }

    @Test func tableShowsThePipelineWithCreateRuntimeInPlaceAndExitsZero() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        let result = try stephost(["list-plugins", "--plugins-dir", directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.first == ["Pipeline", "(plugins", "from", "\(directory.path)):"])
        #expect(lines[1] == ["#", "WEIGHT", "STEP", "PLUGIN", "VERSION", "SHA-256", "FILE"])
        #expect(lines[6] == ["5", "100", "create_runtime", "(built-in)", "-", "-", "-"])
        // The plugin file's SHA-256, its first 12 digits, as sha256sum computes it.
        let digest = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["sha256sum", directory.file("libExampleCPlugin.so").path]
        )
        let short = String(digest.stdout.prefix(12))
        #expect(short.count == 12)
        #expect(lines[3] == ["2", "30", "configure_monitoring", "monitoring", "2.0.0", short, "libExampleCPlugin.so"])
        #expect(lines.last == ["All", "3", "plugins", "loaded."])
    }

    @Test func jsonListsStepsInOrderAndBrokenPluginsAndExitsOne() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        try compileFixture(directory.file("bad.so"), ["PLUGIN_NAME": cString("bad"), "STEP1_WEIGHT": "100"])
        let result = try stephost(["list-plugins", "--json", "--plugins-dir", directory.path])
        #expect(result.status == 1)

        struct Document: Decodable {
            struct Step: Decodable {
                var position: Int
                var name: String
                var weight: Int
                var plugin: String?
                var builtin: Bool
            }
            struct Broken: Decodable {
                var file: String
                var plugin: String?
                var check: String
                var error: String
                var fix: String
            }
            var steps: [Step]
            var broken: [Broken]
        }
        let document = try JSONDecoder().decode(Document.self, from: Data(result.stdout.utf8))
        #expect(document.steps.map(\.position) == Array(1...7))
        #expect(document.steps.map(\.name)[3...4] == ["configure_dns", "create_runtime"])
        #expect(document.steps.filter(\.builtin).map(\.name) == ["create_runtime"])
        #expect(document.steps.first?.plugin == "network")
        #expect(document.broken.count == 1)
        #expect(document.broken.first?.file == directory.file("bad.so").path)
        #expect(document.broken.first?.plugin == "bad")
        #expect(document.broken.first?.check == "invalid-weight")
        #expect(
            document.broken.first?.error
                == "step 'fixture_step' has weight 100, the weight of the built-in create_runtime step"
        )
    }

    /// `--disable-plugin` previews the pipeline provision and run will use: a file disabled by name is not
    /// opened (its init would crash the host), a plugin disabled by its declared name is loaded and left out.
    @Test func disabledPluginsAreLeftOutAndShownAndAFileDisabledByNameIsNeverOpened() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        try compileFixture(directory.file("crasher.so"), ["PLUGIN_NAME": cString("crasher"), "INIT_ABORTS": ""])
        let result = try stephost([
            "list-plugins", "--json", "--plugins-dir", directory.path, "--disable-plugin", "crasher",
            "--disable-plugin", "network",
        ])
        #expect(result.status == 0, "\(result.stderr)")

        struct Document: Decodable {
            struct Step: Decodable { var name: String }
            struct Disabled: Decodable, Equatable {
                var file: String
                var plugin: String?
                var opened: Bool
            }
            var steps: [Step]
            var disabled: [Disabled]
        }
        let document = try JSONDecoder().decode(Document.self, from: Data(result.stdout.utf8))
        #expect(
            document.steps.map(\.name) == [
                "configure_monitoring", "open_audit_ticket", "create_runtime", "verify_monitoring",
                "close_audit_ticket",
            ]
        )
        #expect(
            document.disabled == [
                .init(file: directory.file("crasher.so").path, plugin: nil, opened: false),
                .init(file: directory.file("libExampleNetworkPlugin.so").path, plugin: "network", opened: true),
            ]
        )

        let table = try stephost(["list-plugins", "--plugins-dir", directory.path, "--disable-plugin", "crasher.so"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("Disabled with --disable-plugin (1); none of their steps are used:"))
        #expect(table.stdout.contains("  \(directory.file("crasher.so").path): not opened"))
    }

    /// A plugin that refuses the host's offer but declares its version and name (as the Swift kit does when it
    /// was built for another ABI major) is reported as `abi-version` under that name, with both versions, and
    /// `--disable-plugin NAME` leaves it out by that name.
    @Test func aVersionMismatchIsNamedAndCanBeDisabledByName() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExample("ExampleCPlugin")
        try compileFixture(
            directory.file("old-build.so"),
            [
                "PLUGIN_NAME": cString("legacy-kit"), "ABI_MAJOR": "2", "ABI_MINOR": "0",
                "INIT_FAILS_DECLARED": cString("plugin 'legacy-kit' was built for ABI 2.0"),
            ]
        )
        let broken = try stephost(["list-plugins", "--json", "--plugins-dir", directory.path])
        #expect(broken.status == 1, "\(broken.stderr)")
        struct Document: Decodable {
            struct Broken: Decodable {
                var plugin: String?
                var check: String
                var error: String
            }
            var broken: [Broken]
        }
        let report = try JSONDecoder().decode(Document.self, from: Data(broken.stdout.utf8)).broken
        #expect(report.count == 1)
        #expect(report.first?.plugin == "legacy-kit", "\(broken.stdout)")
        #expect(report.first?.check == "abi-version")
        #expect(report.first?.error.contains("it chose ABI 2.0; this host supports ABI 1.0 to 1.1") == true)

        let disabled = try stephost([
            "list-plugins", "--plugins-dir", directory.path, "--disable-plugin", "legacy-kit",
        ])
        #expect(disabled.status == 0, "\(disabled.stdout)\(disabled.stderr)")
        #expect(disabled.stdout.contains("Disabled with --disable-plugin (1); none of their steps are used:"))
        #expect(disabled.stdout.contains("legacy-kit"))
    }

    /// A plugin version is free-form text: a newline or an escape sequence in it cannot forge a table row.
    @Test func pluginVersionCannotForgeRowsOrDriveTheTerminal() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("forger.so"),
            ["PLUGIN_NAME": cString("forger"), "PLUGIN_VERSION": cString(#"1.0\n  9  999  forged_step\x1b[31m"#)]
        )
        let result = try stephost(["list-plugins", "--plugins-dir", directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains("\u{1B}"))
        #expect(!result.stdout.split(separator: "\n").contains { $0.hasPrefix("  9  999") })
        #expect(result.stdout.contains(#"1.0\n  9  999  forged_step\u{1B}[31m"#))
    }

    /// An error report followed by success loads the plugin, and the report is logged, not dropped.
    @Test func errorReportedByAnInitThatSucceedsIsLogged() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("chatty.so"),
            ["PLUGIN_NAME": cString("chatty"), "INIT_REPORTS_THEN_SUCCEEDS": cString("config file is old")]
        )
        let result = try stephost(["list-plugins", "--plugins-dir", directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("plugin reported an error during init but returned STEPHOST_STATUS_OK"))
        #expect(result.stderr.contains("config file is old"))
    }

    @Test func brokenPluginIsShownWithItsReasonAndFixInTheTable() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExample("ExampleCPlugin")
        try compileFixture(directory.file("old.so"), ["ABI_MAJOR": "2", "ABI_MINOR": "0"])
        let result = try stephost(["list-plugins", "--plugins-dir", directory.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("Broken plugins (1); none of their steps are used:"))
        #expect(
            result.stdout.contains(
                "  \(directory.file("old.so").path) (plugin 'fixture')\n    [abi-version] it chose ABI 2.0"
            )
        )
        #expect(result.stdout.contains("    fix: rebuild the plugin against this host's stephost.h"))
        #expect(result.stdout.contains("configure_monitoring"))
    }

    @Test func pluginDirectoryComesFromTheEnvironmentThenTheWorkingDirectory() throws {
        let fromEnvironment = try TemporaryDirectory()
        try fromEnvironment.copyExample("ExampleAuditPlugin")
        let working = try TemporaryDirectory()
        let plugins = working.file("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
        chmod(plugins.path, 0o755)
        try compileFixture(plugins.appendingPathComponent("local.so"), ["PLUGIN_NAME": cString("local")])

        let viaEnvironment = try stephost(
            ["list-plugins", "--json"],
            environment: ["STEPHOST_PLUGINS_DIR": fromEnvironment.path],
            in: working.url
        )
        #expect(viaEnvironment.stdout.contains(#""plugin" : "audit""#))
        #expect(!viaEnvironment.stdout.contains(#""plugin" : "local""#))

        let viaDefault = try stephost(
            ["list-plugins", "--json"],
            environment: ["STEPHOST_PLUGINS_DIR": ""],
            in: working.url
        )
        #expect(viaDefault.status == 0, "\(viaDefault.stderr)")
        #expect(viaDefault.stdout.contains(#""plugin" : "local""#))
    }

    @Test func unusablePluginDirectoryExitsTwoWithTheFix() throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o777)
        let result = try stephost(["list-plugins", "--plugins-dir", directory.path])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr
                == "stephost: plugin directory \(directory.path): refusing to load plugins from it: it is writable "
                + "by others (mode 0777). Fix: run `chmod go-w \(directory.path)`\n"
        )
    }

    @Test func pluginHeaderPrintsExactlyTheHeaderTheHostWasBuiltWith() throws {
        let result = try stephost(["plugin-header"])
        #expect(result.status == 0)
        #expect(Data(result.stdout.utf8) == (try Data(contentsOf: Paths.header)))
    }

    /// A team with only the installed host can build a C plugin that the host loads.
    @Test func cPluginBuiltFromThePrintedHeaderAloneLoads() throws {
        let team = try TemporaryDirectory("stephost-team")
        let header = try stephost(["plugin-header"])
        try header.stdout.write(to: team.file("stephost.h"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: Paths.fixtureSource, to: team.file("plugin.c"))
        let plugins = try TemporaryDirectory()
        try compileFixture(
            plugins.file("team.so"),
            ["PLUGIN_NAME": cString("team"), "STEP1_NAME": cString("team_step")],
            source: team.file("plugin.c"),
            includeDirectory: team.url
        )
        let result = try stephost(["list-plugins", "--plugins-dir", plugins.path])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("team_step"))
    }

    @Test func helpExplainsTheOrderAndTheExitStatus() throws {
        let result = try stephost(["list-plugins", "--help"])
        #expect(result.status == 0)
        // Help is wrapped to the terminal's width; compare the words.
        let words = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("--plugins-dir <directory>"))
        #expect(
            words.contains(
                "default: $STEPHOST_PLUGINS_DIR, else the configuration file's plugins.directory, else ./plugins"
            )
        )
        #expect(words.contains("--config <file>"))
        #expect(words.contains("then by plugin name, then in the order each plugin lists them"))
        #expect(words.contains("1 when any plugin is broken"))
    }
}
