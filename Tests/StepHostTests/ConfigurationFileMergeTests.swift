import ArgumentParser
import StepHostApplication
import StepHostEngine
import StepHostLoader
import Testing

@testable import stephost

/// The merge itself, on the parsed command: what reaches ``HostConfiguration`` from the flags and the file.
@Suite("Configuration file merged into the host configuration")
struct ConfigurationFileMergeTests {
    static let file = """
        plugins:
          isolation: process
          settings: { network: { deadline: 30s }, legacy.so: { disabled: true } }
        engine: { workers: 2, lease: 10m, deadline-hours: 12, provisioner-idempotent: true }
        """

    func configuration(_ arguments: [String]) throws -> HostConfiguration {
        let command = try #require(try StepHostCommand.parseAsRoot(arguments) as? Provision)
        let file = try ConfigurationFile.parse(Self.file, file: "stephost.yaml")
        return try command.engine.configuration(command.global, command.database, file, access: .create)
    }

    @Test func theFileFillsWhatNoFlagSets() throws {
        let configuration = try configuration(["provision", "--parameters", "{}", "--disable-plugin", "other"])
        #expect(configuration.engine.workers == 2)
        #expect(configuration.engine.lease == .seconds(600))
        #expect(configuration.engine.deadline == .seconds(12 * 3600))
        #expect(configuration.disabledPlugins == ["other", "legacy.so"])
        #expect(configuration.isolation.defaults.isolation == .process)
        #expect(configuration.isolation.plugins["network"]?.deadline == .seconds(30))
    }

    @Test func aFlagOverridesTheFile() throws {
        let configuration = try configuration([
            "provision", "--parameters", "{}", "--workers", "8", "--lease", "60", "--provisioner", "http",
            "--provisioner-url", "http://127.0.0.1:1/graphql", "--no-provisioner-idempotent",
        ])
        #expect(configuration.engine.workers == 8)
        #expect(configuration.engine.lease == .seconds(60))
        #expect(configuration.engine.deadline == .seconds(12 * 3600))
        guard case .http(_, _, let idempotent, _) = configuration.provisioner else {
            Issue.record("expected the http provisioner")
            return
        }
        #expect(!idempotent)
    }
}
