import Foundation
import Glibc
import Testing

/// The configuration file as operators use it: found by --config, $STEPHOST_CONFIG or in the working directory,
/// overridden by flags, and refused before anything is written.
@Suite("Configuration file with the stephost command")
struct ConfigurationFileCommandTests {
    /// Runs stephost in `directory` with no configuration from the test's own environment.
    func stephost(
        _ arguments: [String],
        in directory: TemporaryDirectory,
        environment: [String: String] = [:]
    ) throws -> ProcessResult {
        let clean = ["STEPHOST_CONFIG": "", "STEPHOST_PLUGINS_DIR": "", "STEPHOST_DB": ""]
        return try runProcess(
            Paths.stephost,
            arguments,
            environment: clean.merging(environment) { _, new in new },
            in: directory.url
        )
    }

    /// The plugin directory and the plugin names `list-plugins --json` reports.
    func listed(_ result: ProcessResult) throws -> (directory: String, plugins: [String]) {
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            "\(result.stdout)\(result.stderr)"
        )
        let plugins = try #require(object["plugins"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        return (try #require(object["plugins_dir"] as? String), plugins.sorted())
    }

    /// A directory with the example plugins in `plugins/`.
    func directoryWithExamples() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("stephost-config")
        try FileManager.default.createDirectory(at: directory.file("plugins"), withIntermediateDirectories: false)
        chmod(directory.file("plugins").path, 0o755)
        for product in Paths.examplePlugins {
            let source = try Paths.examplePlugin(product)
            try FileManager.default.copyItem(
                at: source,
                to: directory.file("plugins").appendingPathComponent(source.lastPathComponent)
            )
        }
        return directory
    }

    @Test(arguments: ["stephost.yaml", "stephost.yml"])
    func theFileInTheWorkingDirectoryIsFound(_ name: String) throws {
        let directory = try directoryWithExamples()
        try FileManager.default.moveItem(at: directory.file("plugins"), to: directory.file("from-file"))
        try directory.write(name, "plugins:\n  directory: from-file\n  settings: { network: { disabled: true } }\n")
        let result = try stephost(["list-plugins", "--json"], in: directory)
        #expect(result.status == 0, "\(result.stderr)")
        let listed = try listed(result)
        #expect(listed.directory == directory.file("from-file").path)
        // disabled: true in the file leaves the plugin out, as --disable-plugin does.
        #expect(listed.plugins == ["audit", "monitoring"])
    }

    @Test func stephostConfigNamesTheFile() throws {
        let directory = try directoryWithExamples()
        let config = try directory.write(
            "elsewhere.yaml",
            "plugins: { settings: { monitoring: { disabled: true } } }\n"
        )
        // A file in the working directory is not read when $STEPHOST_CONFIG names another.
        try directory.write("stephost.yaml", "this is: [not valid\n")
        let result = try stephost(
            ["list-plugins", "--json"],
            in: directory,
            environment: ["STEPHOST_CONFIG": config.path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try listed(result).plugins == ["audit", "network"])
    }

    /// flag > environment variable > file > default.
    @Test func flagsOverrideTheEnvironmentWhichOverridesTheFile() throws {
        let directory = try directoryWithExamples()
        try directory.write("stephost.yaml", "plugins: { directory: /nonexistent/from-file }\nlog-level: critical\n")
        let fromFile = try stephost(["list-plugins", "--json"], in: directory)
        #expect(fromFile.status == 2)
        #expect(fromFile.stdout.contains("/nonexistent/from-file"), "\(fromFile.stdout)")

        let plugins = directory.file("plugins").path
        let fromEnvironment = try stephost(
            ["list-plugins", "--json"],
            in: directory,
            environment: ["STEPHOST_PLUGINS_DIR": plugins]
        )
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.stderr)")
        #expect(try listed(fromEnvironment).directory == plugins)

        let fromFlag = try stephost(
            ["list-plugins", "--json", "--plugins-dir", "plugins"],
            in: directory,
            environment: ["STEPHOST_PLUGINS_DIR": "/nonexistent/from-environment"]
        )
        #expect(fromFlag.status == 0, "\(fromFlag.stderr)")
        #expect(try listed(fromFlag).directory == plugins)
    }

    /// An engine setting from the file is used, and its flag wins over it.
    @Test func anEngineFlagOverridesTheFile() throws {
        let directory = try directoryWithExamples()
        try directory.write("stephost.yaml", "engine:\n  provisioner: http\n")
        let parameters = #"{"name":"x"}"#
        let fromFile = try stephost(["provision", "--parameters", parameters, "--detach"], in: directory)
        #expect(fromFile.status == 64)
        #expect(fromFile.stderr.contains("needs --provisioner-url (or engine.provisioner-url"), "\(fromFile.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("stephost.sqlite").path))

        let overridden = try stephost(
            ["provision", "--parameters", parameters, "--detach", "--provisioner", "local"],
            in: directory
        )
        #expect(overridden.status == 0, "\(overridden.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.file("stephost.sqlite").path))
    }

    @Test func theDatabaseComesFromTheFileForOperationsToo() throws {
        let directory = try directoryWithExamples()
        try directory.write("stephost.yaml", "database: state/ops.sqlite\n")
        try FileManager.default.createDirectory(at: directory.file("state"), withIntermediateDirectories: false)
        let created = try stephost(["provision", "--parameters", #"{"name":"x"}"#, "--detach"], in: directory)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.file("state/ops.sqlite").path))
        let listed = try stephost(["operations", "list"], in: directory)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("pending"), "\(listed.stdout)")
    }

    @Test(arguments: [
        ["provision", "--parameters", #"{"name":"x"}"#], ["run"], ["list-plugins"], ["operations", "list"],
    ])
    func anInvalidFileStopsTheCommandBeforeAnythingIsWritten(_ arguments: [String]) throws {
        let directory = try directoryWithExamples()
        try directory.write("stephost.yaml", "engine:\n  workers: 4\n  lease: forever\n")
        let before = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        let result = try stephost(arguments, in: directory)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(
            result.stderr.contains("stephost.yaml:3: engine.lease: \"forever\" is not a duration"),
            "\(result.stderr)"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == before)
    }

    @Test func aNamedFileThatIsMissingIsAnError() throws {
        let directory = try directoryWithExamples()
        let result = try stephost(["list-plugins", "--config", "missing.yaml"], in: directory)
        #expect(result.status == 66, "\(result.stderr)")
        #expect(result.stderr.contains("missing.yaml: the configuration file does not exist"), "\(result.stderr)")
        let fromEnvironment = try stephost(
            ["provision", "--parameters", #"{"name":"x"}"#],
            in: directory,
            environment: ["STEPHOST_CONFIG": "missing.yaml"]
        )
        #expect(fromEnvironment.status == 66, "\(fromEnvironment.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("stephost.sqlite").path))
    }
}
