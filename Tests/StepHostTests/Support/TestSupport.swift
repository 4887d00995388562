import Foundation
import Glibc
import Logging
import StepHostApplication
import StepHostCore
import StepHostLoader
import StepHostPipeline
import Testing

/// Paths of the package and of the products `swift build` made.
enum Paths {
    /// The package's root directory.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Where SwiftPM put this test binary, the `stephost` executable and the example plugins.
    static let binDirectory: URL = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The test binary lives in <bin>/stephostPackageTests.xctest on Linux.
        if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
        return directory
    }()

    static let header = packageRoot.appendingPathComponent("Sources/StepHostABI/include/stephost.h")
    static let includeDirectory = packageRoot.appendingPathComponent("Sources/StepHostABI/include")
    static let fixtureSource = packageRoot.appendingPathComponent("Tests/StepHostTests/Fixtures/fixture_plugin.c")
    static let stephost = binDirectory.appendingPathComponent("stephost")

    /// The shared object `swift build` made for an example plugin product.
    static func examplePlugin(_ product: String) throws -> URL {
        let url = binDirectory.appendingPathComponent("lib\(product).so")
        try #require(
            FileManager.default.fileExists(atPath: url.path),
            "\(url.path) is missing: run `swift build` before `swift test` (scripts/test does)"
        )
        return url
    }

    static let examplePlugins = ["ExampleNetworkPlugin", "ExampleAuditPlugin", "ExampleCPlugin"]
}

/// A fresh directory with mode 0755, removed when the test ends.
final class TemporaryDirectory {
    let url: URL
    var path: String { url.path }

    init(_ label: String = "stephost-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).resolvingSymlinksInPath().path
        var template = Array("\(base)/\(label).XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(created != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
        // The loader reports real paths; so do the tests.
        url = URL(fileURLWithPath: String(cString: created!)).resolvingSymlinksInPath()
        chmod(url.path, 0o755)
    }

    deinit {
        // Undo permission changes some tests make, then remove everything.
        chmod(url.path, 0o755)
        try? FileManager.default.removeItem(at: url)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Writes `contents` to `name` with mode 0644.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> URL {
        let target = file(name)
        try Data(contents.utf8).write(to: target)
        chmod(target.path, 0o644)
        return target
    }

    /// Copies an example plugin's .so here under `name` (default: its own file name).
    @discardableResult
    func copyExample(_ product: String, as name: String? = nil) throws -> URL {
        let source = try Paths.examplePlugin(product)
        let target = file(name ?? source.lastPathComponent)
        try FileManager.default.copyItem(at: source, to: target)
        chmod(target.path, 0o755)
        return target
    }

    /// Copies all example plugins here.
    func copyExamples() throws {
        for product in Paths.examplePlugins { try copyExample(product) }
    }
}

/// The result of a child process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a real child process to completion and captures its output.
func runProcess(
    _ executable: URL,
    _ arguments: [String],
    environment: [String: String] = [:],
    in directory: URL? = nil
)
    throws -> ProcessResult
{
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    if let directory { process.currentDirectoryURL = directory }
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    // Read both pipes before waiting, so a chatty child cannot block on a full pipe.
    let outData = stdout.fileHandleForReading.readDataToEndOfFile()
    let errData = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self)
    )
}

/// Runs `executable` to its end, waiting with `waitpid` itself, and returns its exit status; its standard output and
/// error go to `output`. For a script that leaves a daemon behind (a database server it starts): Foundation's
/// `Process` was seen never to notice the end of such a script (`waitUntilExit` hung with the script a zombie), and
/// reading its pipes would wait for the daemon, which inherits them.
func runToEnd(_ executable: URL, _ arguments: [String], output: URL) throws -> Int32 {
    let descriptor = open(output.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(descriptor) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, descriptor, 1)
    posix_spawn_file_actions_adddup2(&actions, descriptor, 2)
    let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable.path, &actions, nil, argv, environ)
    guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECHILD) }
    }
    // Exited: its status; killed: 128 + the signal, as a shell reports it.
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// A loopback TCP port nothing listens on now (bound, then closed): for a server that cannot be reached.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Compiles the fixture plugin with `defines` into `output` (mode 0755) with the system C compiler.
@discardableResult
func compileFixture(
    _ output: URL,
    _ defines: [String: String] = [:],
    source: URL = Paths.fixtureSource,
    includeDirectory: URL = Paths.includeDirectory
) throws -> URL {
    let flags = defines.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? "-D\($0.key)" : "-D\($0.key)=\($0.value)" }
    let result = try runProcess(
        URL(fileURLWithPath: "/usr/bin/cc"),
        ["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I", includeDirectory.path] + flags
            + [source.path, "-o", output.path]
    )
    try #require(result.status == 0, "cc failed for \(output.lastPathComponent): \(result.stderr)")
    chmod(output.path, 0o755)
    return output
}

/// The Swift plugin kit and the plugin `sources` built into `output` (mode 0755) against the header in
/// `includeDirectory` (which holds a module map that names it `StepHostABI`), the way SwiftPM builds the example
/// plugins: the kit as a static library linked into a shared object that exports only the entry point.
@discardableResult
func compileSwiftPlugin(
    _ output: URL,
    sources: [URL],
    includeDirectory: URL,
    moduleName: String = "GrownPlugin"
) throws -> URL {
    let build = try TemporaryDirectory("stephost-swift-kit")
    let language = [
        "-swift-version", "6", "-parse-as-library", "-I", includeDirectory.path,
        "-enable-upcoming-feature", "ExistentialAny", "-enable-upcoming-feature", "MemberImportVisibility",
        "-enable-upcoming-feature", "InternalImportsByDefault",
    ]
    let kitSources = try FileManager.default.contentsOfDirectory(
        atPath: Paths.packageRoot.appendingPathComponent("Sources/StepHostPluginKit").path
    ).filter { $0.hasSuffix(".swift") }.sorted().map {
        Paths.packageRoot.appendingPathComponent("Sources/StepHostPluginKit/\($0)").path
    }
    let kit = try runProcess(
        URL(fileURLWithPath: "/usr/bin/env"),
        ["swiftc"] + language + [
            "-module-name", "StepHostPluginKit", "-emit-library", "-static", "-emit-module",
            "-emit-module-path", build.file("StepHostPluginKit.swiftmodule").path,
            "-o", build.file("libStepHostPluginKit.a").path,
        ] + kitSources
    )
    try #require(kit.status == 0, "swiftc failed for the kit: \(kit.stderr)")
    let plugin = try runProcess(
        URL(fileURLWithPath: "/usr/bin/env"),
        ["swiftc"] + language + ["-module-name", moduleName, "-emit-library", "-I", build.path]
            + sources.map(\.path) + [
                build.file("libStepHostPluginKit.a").path,
                "-Xlinker", "--version-script=\(Paths.packageRoot.path)/Plugins/exports.map",
                "-o", output.path,
            ]
    )
    try #require(plugin.status == 0, "swiftc failed for \(output.lastPathComponent): \(plugin.stderr)")
    chmod(output.path, 0o755)
    return output
}

/// A C string literal for a -D option.
func cString(_ text: String) -> String { "\"\(text)\"" }

/// Loads `directory` with a logger that discards everything.
func loadCatalog(_ directory: TemporaryDirectory) throws -> PluginCatalog {
    try loadCatalog(path: directory.path)
}

/// Loads the directory at `path` with a logger that discards everything.
func loadCatalog(path: String) throws(PluginDirectoryError) -> PluginCatalog {
    try PluginLoader(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })).load(directory: path)
}

/// The steps of `catalog`'s plugins and the built-in steps, in the order the pipeline runs them.
func pipelineOrder(_ catalog: PluginCatalog) -> [StepIdentity] {
    Pipeline.order(catalog.plugins.flatMap(\.steps).map(\.identity) + ProvisioningHost.builtInSteps)
}
