import Foundation
import Glibc
import Testing

/// `stephost new-plugin` for each language, and the README's Swift plugin package as pasted: each project is
/// built outside the repository with its own tools, its own test runs, `check-plugin` finds it conformant, and
/// `provision` runs an operation through it to success.
@Suite("stephost new-plugin and the README's plugin package", .serialized)
struct NewPluginCommandTests {
    /// A clone of this repository in `directory`, tagged with the kit's version, for Swift projects to depend on
    /// by URL (a `file://` URL; SwiftPM treats it as it treats GitHub's). What is committed is what is cloned.
    static func kit(in directory: TemporaryDirectory) throws -> URL {
        // The clone's directory is named stephost: SwiftPM names the package after the URL's last component.
        let clone = directory.file("stephost")
        let cloned = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["git", "clone", "--quiet", "--no-local", Paths.packageRoot.path, clone.path]
        )
        try #require(cloned.status == 0, "git clone failed: \(cloned.stderr)")
        let version = try runProcess(Paths.stephost, ["--version"]).stdout
        let abi = try #require(version.firstMatch(of: /to (\d+)\.(\d+)\)/), "\(version)")
        let tagged = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["git", "-C", clone.path, "tag", "-f", "\(abi.1).\(abi.2).0"]
        )
        try #require(tagged.status == 0, "\(tagged.stderr)")
        return clone
    }

    /// Runs `command` in `directory`, requiring success.
    @discardableResult
    static func run(_ command: [String], in directory: URL, environment: [String: String] = [:]) throws -> String {
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            command,
            environment: environment,
            in: directory
        )
        try #require(result.status == 0, "\(command.joined(separator: " ")) failed: \(result.stdout)\(result.stderr)")
        return result.stdout + result.stderr
    }

    /// The built plugin is conformant and an operation provisioned through it succeeds with its step's work in
    /// the operation.
    static func checkAndProvision(_ library: URL, name: String, field: String) throws {
        let checked = try runProcess(Paths.stephost, ["check-plugin", "--json", library.path])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains(#""verdict" : "conformant""#))
        let plugins = try TemporaryDirectory("stephost-plugins")
        let installed = plugins.file("plugins")
        try FileManager.default.createDirectory(at: installed, withIntermediateDirectories: false)
        chmod(installed.path, 0o755)
        try FileManager.default.copyItem(at: library, to: installed.appendingPathComponent("\(name).so"))
        chmod(installed.appendingPathComponent("\(name).so").path, 0o644)
        let provisioned = try runProcess(
            Paths.stephost,
            [
                "provision", "--json", "--parameters", #"{"name":"from-\#(name)"}"#, "--plugins-dir", installed.path,
                "--db", plugins.file("stephost.sqlite").path,
            ]
        )
        #expect(provisioned.status == 0, "\(provisioned.stdout)\(provisioned.stderr)")
        #expect(provisioned.stdout.contains(#""state":"succeeded""#), "\(provisioned.stdout)")
        let id = try #require(provisioned.stdout.firstMatch(of: /"operation":"([0-9a-f-]+)"/)?.1)
        let operation = try runProcess(
            Paths.stephost,
            ["operations", "show", String(id), "--json", "--db", plugins.file("stephost.sqlite").path]
        )
        #expect(operation.stdout.contains("\"\(field)\""), "\(operation.stdout)")
    }

    @Test func aSwiftProjectBuildsTestsChecksAndProvisions() throws {
        let directory = try TemporaryDirectory("stephost-new-swift")
        let kit = try Self.kit(in: directory)
        let project = directory.file("billing-sync")
        try Self.run(
            [
                Paths.stephost.path, "new-plugin", "--language", "swift", "billing-sync", "--kit-url",
                "file://\(kit.path)",
            ],
            in: directory.url
        )
        let resolved = try Self.run(["swift", "package", "resolve"], in: project)
        // traits: [] leaves out every dependency of the host: the kit's repository is the only one resolved.
        let checkouts = try FileManager.default.contentsOfDirectory(
            atPath: project.appendingPathComponent(".build/checkouts").path
        )
        #expect(checkouts == ["stephost"], "\(resolved)")
        try Self.run(["swift", "build", "-c", "release"], in: project)
        let tested = try Self.run(["swift", "test"], in: project)
        #expect(tested.contains("Test run with 2 tests"), "\(tested)")
        let library = project.appendingPathComponent(".build/release/libbilling-sync.so")
        try Self.checkAndProvision(library, name: "billing-sync", field: "billing_sync_account")
    }

    @Test func aCProjectBuildsTestsChecksAndProvisions() throws {
        let directory = try TemporaryDirectory("stephost-new-c")
        let project = directory.file("ledger")
        try Self.run(
            [Paths.stephost.path, "new-plugin", "--language", "c", "ledger", "--weight", "120"],
            in: directory.url
        )
        try Self.run(["make"], in: project)
        let tested = try Self.run(["make", "test"], in: project)
        #expect(tested.contains("ok: ledger"), "\(tested)")
        try Self.checkAndProvision(project.appendingPathComponent("ledger.so"), name: "ledger", field: "ledger_account")
    }

    @Test(.enabled(if: cargoAvailable, "cargo is not installed"))
    func aRustProjectBuildsTestsChecksAndProvisions() throws {
        let directory = try TemporaryDirectory("stephost-new-rust")
        let project = directory.file("quota")
        try Self.run([Paths.stephost.path, "new-plugin", "--language", "rust", "quota"], in: directory.url)
        let target = ["CARGO_TARGET_DIR": directory.file("target").path]
        try Self.run(["cargo", "build", "--offline", "--release"], in: project, environment: target)
        let tested = try Self.run(["cargo", "test", "--offline"], in: project, environment: target)
        #expect(tested.contains("test result: ok"), "\(tested)")
        let library = directory.file("target/release/libstephost_quota.so")
        try Self.checkAndProvision(library, name: "quota", field: "rust_cost_center")
    }

    /// The README's Swift plugin package and step, exactly as pasted (only the URL points at the clone), build
    /// outside the repository into a plugin that check-plugin passes.
    @Test func theREADMEsSwiftPluginBuildsAsPasted() throws {
        let directory = try TemporaryDirectory("stephost-readme-plugin")
        let kit = try Self.kit(in: directory)
        let readme = try String(contentsOf: Paths.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        func block(after marker: String) throws -> String {
            let start = try #require(readme.range(of: "<!-- tested: \(marker) -->\n```swift\n"), "no \(marker)")
            let end = try #require(readme.range(of: "\n```", range: start.upperBound..<readme.endIndex))
            return String(readme[start.upperBound..<end.lowerBound]) + "\n"
        }
        let manifest = try block(after: "plugin-package")
        #expect(manifest.contains(#".package(url: "https://github.com/stephost/stephost", from: "1.1.0", traits: [])"#))
        let package = directory.file("network")
        try FileManager.default.createDirectory(
            at: package.appendingPathComponent("Sources/NetworkPlugin"),
            withIntermediateDirectories: true
        )
        try Data(
            manifest.replacingOccurrences(of: "https://github.com/stephost/stephost", with: "file://\(kit.path)").utf8
        ).write(to: package.appendingPathComponent("Package.swift"))
        try Data("{ global: stephost_plugin_init; local: *; };\n".utf8).write(
            to: package.appendingPathComponent("exports.map")
        )
        try Data(try block(after: "plugin-step").utf8).write(
            to: package.appendingPathComponent("Sources/NetworkPlugin/Plugin.swift")
        )
        try Self.run(["swift", "build"], in: package)
        let library = package.appendingPathComponent(".build/debug/libnetwork.so")
        let checked = try runProcess(Paths.stephost, ["check-plugin", library.path])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains("exports   stephost_plugin_init\n"), "\(checked.stdout)")
    }

    /// Bad input: a name that cannot be a plugin's, an existing directory, a weight of 100.
    @Test func badInputIsRefusedBeforeAnythingIsWritten() throws {
        let directory = try TemporaryDirectory("stephost-new-bad")
        for (arguments, text) in [
            (["--language", "c", "Bad Name"], "must be 1 to 64 characters"),
            (["--language", "c", "ok", "--weight", "100"], "not 100"),
            (["--language", "cobol", "ok"], "cobol"),
        ] {
            let result = try runProcess(Paths.stephost, ["new-plugin"] + arguments, in: directory.url)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(text), "\(result.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        try FileManager.default.createDirectory(at: directory.file("taken"), withIntermediateDirectories: false)
        let taken = try runProcess(Paths.stephost, ["new-plugin", "--language", "c", "taken"], in: directory.url)
        #expect(taken.status == 64)
        #expect(taken.stderr.contains("taken already exists"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("taken").path).isEmpty)
    }
}

let cargoAvailable: Bool = {
    (try? runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["cargo", "--version"]).status) == 0
}()
