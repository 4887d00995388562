import Foundation
import Glibc
import Logging
import StepHostApplication
import StepHostLoader
import Testing

/// The configuration file's parser: every key, and every kind of mistake named by its line and key.
@Suite("Configuration file")
struct ConfigurationFileTests {
    static let full = """
        plugins:
          directory: /srv/plugins
          isolation: process
          deadline: 10m
          limits:
            address-space: 2GiB
            cpu-time: 1h
            open-files: 512
          quarantine: refuse
          max-stuck-threads: 8
          init-timeout: 5s
          kill-grace: 500ms
          settings:
            network:
              isolation: in-process
              deadline: 30s
              limits: { address-space: 1GiB }
            legacy.so:
              disabled: true
        database: /var/lib/stephost/stephost.sqlite
        engine:
          provisioner: http
          provisioner-url: https://provisioner.example/graphql
          poll-interval: 2.5
          provisioner-timeout: 1m
          provisioner-idempotent: true
          deadline-hours: 48
          default-retry-delay: 20s
          minimum-retry-delay: 250ms
          lease: 10m
          workers: 16
          max-host-deaths: 5
        log-level: info
        """

    @Test func aFullFileParsesToEveryValue() throws {
        let file = try ConfigurationFile.parse(Self.full, file: "stephost.yaml")
        #expect(file.plugins.directory == "/srv/plugins")
        #expect(file.plugins.isolation == .process)
        #expect(file.plugins.deadline == .seconds(600))
        #expect(file.plugins.limits == ResourceLimits(addressSpace: 2 << 30, cpuSeconds: 3600, openFiles: 512))
        #expect(file.plugins.quarantine == .refuse)
        #expect(file.plugins.maximumStuckThreads == 8)
        #expect(file.plugins.initTimeout == .seconds(5))
        #expect(file.plugins.killGrace == .milliseconds(500))
        #expect(
            file.plugins.settings["network"]
                == PluginPolicyOverride(
                    isolation: .inProcess,
                    deadline: .seconds(30),
                    limits: ResourceLimits(addressSpace: 1 << 30)
                )
        )
        #expect(file.plugins.settings["legacy.so"] == PluginPolicyOverride(disabled: true))
        #expect(file.database == "/var/lib/stephost/stephost.sqlite")
        let engine = file.engine
        #expect(engine.provisioner == .http)
        #expect(engine.provisionerURL == "https://provisioner.example/graphql")
        #expect(engine.pollInterval == 2.5)
        #expect(engine.provisionerTimeout == 60)
        #expect(engine.provisionerIdempotent == true)
        #expect(engine.deadlineHours == 48)
        #expect(engine.defaultRetryDelay == 20)
        #expect(engine.minimumRetryDelay == 0.25)
        #expect(engine.lease == 600)
        #expect(engine.workers == 16)
        #expect(engine.maxHostDeaths == 5)
        #expect(file.logLevel == .info)

        // What the host is given: the defaults under the file's settings, and the disabled set.
        #expect(file.disabledPlugins == ["legacy.so"])
        let isolation = file.isolation
        #expect(isolation.quarantine == .refuse && isolation.maximumStuckThreads == 8)
        let network = isolation.policy(name: "network", fileName: "libExampleNetworkPlugin.so")
        #expect(network.isolation == .inProcess && network.deadline == .seconds(30))
        // Limits the plugin does not set come from the file's defaults, then the built-in ones.
        #expect(network.limits == ResourceLimits(addressSpace: 1 << 30, cpuSeconds: 3600, openFiles: 512))
        #expect(isolation.policy(name: "other", fileName: "legacy.so").disabled)
        #expect(isolation.policy(name: "other", fileName: "other.so").isolation == .process)
    }

    /// The annotated example in docs/ holds every key; parsing it keeps it from rotting.
    @Test func theExampleFileParsesWithEveryKey() throws {
        let path = Paths.packageRoot.appendingPathComponent("docs/stephost.example.yaml").path
        let file = try ConfigurationFile.load(path: path)
        let docs = Paths.packageRoot.appendingPathComponent("docs").path
        #expect(file.plugins.directory == "\(docs)/./plugins")
        #expect(file.database == "\(docs)/./stephost.sqlite")
        #expect(file.plugins.limits == ResourceLimits.defaults)
        #expect(file.isolation.defaults == PluginPolicy())
        #expect(file.plugins.settings.count == 2 && file.disabledPlugins == ["legacy-audit.so"])
        #expect(file.logLevel == .warning)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Every key the parser knows appears in the example.
        for key in ConfigurationFile.allKeys { #expect(text.contains("\(key):"), "the example lacks \(key)") }
    }

    @Test(arguments: ["", "# nothing set yet\n", "~\n", "---\n", "plugins:\nengine: ~\n"])
    func anEmptyFileSetsNothing(_ text: String) throws {
        #expect(try ConfigurationFile.parse(text, file: "stephost.yaml") == ConfigurationFile())
    }

    struct Mistake: CustomTestStringConvertible, Sendable {
        var label: String
        var yaml: String
        var code: ConfigurationFileError.Code
        var line: Int?
        var key: String?
        var message: String
        var testDescription: String { label }
    }

    static let mistakes: [Mistake] = [
        Mistake(
            label: "a catalog service without an id",
            yaml: "catalog:\n  services:\n    runtime:\n      description: x\n      plans:\n        a: { id: p }\n",
            code: .invalidValue,
            line: 3,
            key: "catalog.services.runtime",
            message: "a service needs an id"
        ),
        Mistake(
            label: "a catalog plan without an id",
            yaml: "catalog:\n  services:\n    runtime:\n      id: s\n      plans:\n        gold: { description: x }\n",
            code: .invalidValue,
            line: 6,
            key: "catalog.services.runtime.plans.gold",
            message: "a plan needs an id"
        ),
        Mistake(
            label: "a port out of range",
            yaml: "server:\n  port: 70000\n",
            code: .invalidValue,
            line: 2,
            key: "server.port",
            message: "70000"
        ),
        Mistake(
            label: "an unknown log format",
            yaml: "log-format: xml\n",
            code: .invalidValue,
            line: 1,
            key: "log-format",
            message: "xml"
        ),
        Mistake(
            label: "a duration that is not one",
            yaml: "plugins:\n  settings:\n    network:\n      isolation: process\n\n\n      deadline: 30 parsecs\n",
            code: .invalidValue,
            line: 7,
            key: "plugins.settings.network.deadline",
            message: #""30 parsecs" is not a duration (use 500ms, 30s, 10m, 2h"#
        ),
        Mistake(
            label: "an unknown key, with a suggestion",
            yaml: "plugins:\n  isolaton: process\n",
            code: .unknownKey,
            line: 2,
            key: "plugins.isolaton",
            message: "unknown key (did you mean isolation?); the keys under plugins are directory, isolation,"
        ),
        Mistake(
            label: "an unknown key at the top",
            yaml: "database: x\nworkers: 4\n",
            code: .unknownKey,
            line: 2,
            key: "workers",
            message: "the keys at the top are plugins, database, database-url, engine, log-level"
        ),
        Mistake(
            label: "a list where a mapping belongs",
            yaml: "log-level: info\nplugins:\n  - network\n",
            code: .wrongType,
            line: 3,
            key: "plugins",
            message: "expected a mapping with the keys directory, isolation,"
        ),
        Mistake(
            label: "a mapping where a value belongs",
            yaml: "engine:\n  workers:\n    count: 4\n",
            code: .wrongType,
            line: 3,
            key: "engine.workers",
            message: "expected a value; got a mapping"
        ),
        Mistake(
            label: "a file that is not a mapping",
            yaml: "just text\n",
            code: .wrongType,
            line: 1,
            key: nil,
            message: "expected a mapping with the keys plugins, database, database-url, engine, log-level"
        ),
        Mistake(
            label: "a repeated key",
            yaml: "plugins:\n  deadline: 1m\n  isolation: process\n  deadline: 2m\n",
            code: .duplicateKey,
            line: 4,
            key: "plugins.deadline",
            message: "appears twice in the same mapping (first on line 2)"
        ),
        Mistake(
            label: "a key repeated in another style, which YAML tells apart",
            yaml: "plugins:\n  settings:\n    1: { disabled: true }\n    \"1\": { disabled: false }\n",
            code: .duplicateKey,
            line: 4,
            key: "plugins.settings.1",
            message: "appears twice (first on line 3)"
        ),
        Mistake(
            label: "a YAML syntax error",
            yaml: "plugins:\n  directory: x\n  deadline: [1m\n",
            code: .syntax,
            line: 4,
            key: nil,
            message: "YAML syntax error"
        ),
        Mistake(
            label: "a number out of the flag's range",
            yaml: "engine:\n  workers: 0\n",
            code: .invalidValue,
            line: 2,
            key: "engine.workers",
            message: "must be a whole number from 1 to 256; got 0"
        ),
        Mistake(
            label: "a choice that is not one",
            yaml: "plugins:\n  isolation: container\n",
            code: .invalidValue,
            line: 2,
            key: "plugins.isolation",
            message: #""container" is not one of in-process | process"#
        ),
        Mistake(
            label: "yes for a boolean",
            yaml: "plugins:\n  settings:\n    x.so: { disabled: yes }\n",
            code: .invalidValue,
            line: 3,
            key: "plugins.settings.x.so.disabled",
            message: #""yes" is not true or false"#
        ),
        Mistake(
            label: "a size in decimal units",
            yaml: "plugins:\n  limits:\n    address-space: 4 GB\n",
            code: .invalidValue,
            line: 3,
            key: "plugins.limits.address-space",
            message: "is not a size"
        ),
        Mistake(
            label: "CPU time in fractions of a second",
            yaml: "plugins:\n  limits:\n    cpu-time: 1.5s\n",
            code: .invalidValue,
            line: 3,
            key: "plugins.limits.cpu-time",
            message: "must be whole seconds"
        ),
        Mistake(
            label: "a provisioner URL of another scheme",
            yaml: "engine:\n  provisioner-url: ftp://host/graphql\n",
            code: .invalidValue,
            line: 2,
            key: "engine.provisioner-url",
            message: "must be an http:// or https:// URL with a host"
        ),
        Mistake(
            label: "plugin settings keyed by a path",
            yaml: "plugins:\n  settings:\n    ./plugins/x.so: { disabled: true }\n",
            code: .invalidValue,
            line: 3,
            key: "plugins.settings../plugins/x.so",
            message: "not a path"
        ),
        // The URL may hold a password: the message never repeats it.
        Mistake(
            label: "a database URL that is not PostgreSQL's",
            yaml: "database-url: mysql://admin:hunter2@db/x\n",
            code: .invalidValue,
            line: 1,
            key: "database-url",
            message: "is not postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ),
        Mistake(
            label: "both a SQLite file and a PostgreSQL URL",
            yaml: "database: x.sqlite\ndatabase-url: postgres://u:hunter2@db/x\n",
            code: .invalidValue,
            line: nil,
            key: "database-url",
            message: "sets both database (a SQLite file) and database-url (PostgreSQL); keep one"
        ),
    ]

    @Test(arguments: mistakes)
    func aMistakeIsNamedByItsLineAndKey(_ mistake: Mistake) throws {
        let error = try #require(throws: ConfigurationFileError.self) {
            try ConfigurationFile.parse(mistake.yaml, file: "stephost.yaml")
        }
        #expect(error.code == mistake.code, "\(error)")
        #expect(error.line == mistake.line, "\(error)")
        #expect(error.key == mistake.key, "\(error)")
        #expect(error.message.contains(mistake.message), "\(error)")
        #expect(!error.description.contains("hunter2"), "\(error)")
        let prefix = "stephost.yaml" + (mistake.line.map { ":\($0)" } ?? "") + (mistake.key.map { ": \($0)" } ?? "")
        #expect(error.description.hasPrefix(prefix), "\(error)")
    }

    /// The file and the flag refuse a value in the same words: one shared range.
    @Test func theFileAndTheFlagShareTheirRanges() throws {
        let error = try #require(throws: ConfigurationFileError.self) {
            try ConfigurationFile.parse("engine:\n  lease: 0.5\n", file: "f")
        }
        #expect(error.message == SettingRange.lease.problem(0.5))
        let result = try runProcess(Paths.stephost, ["run", "--lease", "0.5", "--db", "/nonexistent/db"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--lease \(error.message)"), "\(result.stderr)")
    }
}
