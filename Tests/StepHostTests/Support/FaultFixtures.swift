import Foundation
import Glibc
import Synchronization
import Testing

// Builders for the isolation fault suite's fixture plugins: plugins that crash, exit, hang, flood their output or
// exhaust memory, in C (fixture_plugin.c's run modes 31 to 41 and load-time faults), C++, Rust and Swift. Each
// builder writes one plugin into a given file, with a given plugin name, step name and weight, like
// EngineHarness.addFixture. None of their faulty steps may run in the test process: they would take it down.

extension Paths {
    static let fixturesDirectory = packageRoot.appendingPathComponent("Tests/StepHostTests/Fixtures")
    static let cxxFixtureSource = fixturesDirectory.appendingPathComponent("fixture_throw.cpp")
    static let rustFixtureCrate = fixturesDirectory.appendingPathComponent("rust_panic")
    static let swiftTrapFixtureSource = fixturesDirectory.appendingPathComponent("fixture_swift_trap.swift")
}

/// A fixture_plugin.c run mode of the fault suite: what the step does when it runs.
enum FaultMode: Int, CaseIterable, Sendable {
    /// abort(): SIGABRT.
    case abort = 31
    /// exit(3).
    case exitThree = 32
    /// Never returns (pause() in a loop).
    case hang = 33
    /// Sleeps `SLEEP_MS` (3000 by default), then done: to pass a deadline.
    case sleep = 34
    /// Allocates and touches 64 MiB chunks until malloc fails under an address-space limit, then abort().
    case allocateWithoutBound = 35
    /// 4 MiB of binary garbage to stdout and 4 MiB to stderr, then done.
    case garbageOutput = 36
    /// set_field with a 100 MiB JSON string; done if the host accepted it, else fail with the status.
    case hugeField = 37
    /// Returns the unknown outcome 77.
    case invalidOutcome = 38
    /// Polls the ABI 1.1 is_cancelled every 10 ms for up to 60 s: fails with "cancelled", or done after 60 s.
    case pollsCancellation = 39
    /// raise(SIGKILL) on itself.
    case killsItself = 40
    /// Sets "hang_started", checkpoints, then never returns.
    case hangAfterCheckpoint = 41
}

/// A load-time fault of fixture_plugin.c (a -D option): the plugin misbehaves when it is opened or initialized.
enum LoadFault: String, CaseIterable, Sendable {
    /// A constructor writes through a null pointer (SIGSEGV) when the plugin is opened, before init.
    case constructorCrashes = "CTOR_CRASH"
    /// A constructor calls exit(0) when the plugin is opened.
    case constructorExitsZero = "CTOR_EXIT0"
    /// stephost_plugin_init never returns.
    case initHangs = "INIT_HANGS"
    /// stephost_plugin_init reads through a null pointer (SIGSEGV).
    case initCrashes = "INIT_CRASHES"
    /// stephost_plugin_init calls abort() (an older option of the fixture).
    case initAborts = "INIT_ABORTS"
}

/// A fixture could not be built for a reason outside the fixture: a missing tool.
struct FaultFixtureError: Error, CustomStringConvertible {
    var description: String
}

/// fixture_plugin.c in run mode `mode` as plugin `name` with one step (`step`, default `<name>_step`) of
/// `weight`, written to `output`. With `onlyWhen`, the mode applies only to operations whose JSON document holds
/// those bytes (ONLY_WHEN); the step of any other operation is done at once.
@discardableResult
func compileFaultFixture(
    _ output: URL,
    mode: FaultMode,
    name: String,
    step: String? = nil,
    weight: Int = 10,
    sleepMilliseconds: Int? = nil,
    onlyWhen: String? = nil
) throws -> URL {
    try compileRunModeFixture(
        output,
        mode: mode.rawValue,
        name: name,
        step: step,
        weight: weight,
        sleepMilliseconds: sleepMilliseconds,
        onlyWhen: onlyWhen
    )
}

/// fixture_plugin.c in any run mode, numbered as the source numbers them (``compileFaultFixture`` names the fault
/// suite's own).
@discardableResult
func compileRunModeFixture(
    _ output: URL,
    mode: Int,
    name: String,
    step: String? = nil,
    weight: Int = 10,
    sleepMilliseconds: Int? = nil,
    onlyWhen: String? = nil
) throws -> URL {
    var defines = [
        "PLUGIN_NAME": cString(name), "STEP1_NAME": cString(step ?? "\(name)_step"), "STEP1_WEIGHT": "\(weight)",
        "RUN_MODE": "\(mode)",
    ]
    if let sleepMilliseconds { defines["SLEEP_MS"] = "\(sleepMilliseconds)" }
    if let onlyWhen { defines["ONLY_WHEN"] = cLiteral(onlyWhen) }
    return try compileFixture(output, defines)
}

/// `text` as a C string literal, its quotes and backslashes escaped (a -D value may hold JSON).
func cLiteral(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// fixture_plugin.c with the load-time fault `fault` as plugin `name`, written to `output`. Never load it in the
/// test process.
@discardableResult
func compileLoadFaultFixture(_ output: URL, _ fault: LoadFault, name: String) throws -> URL {
    try compileFixture(
        output,
        ["PLUGIN_NAME": cString(name), "STEP1_NAME": cString("\(name)_step"), fault.rawValue: ""]
    )
}

/// fixture_throw.cpp (a step that throws a std::runtime_error out of its extern "C" run function) as plugin
/// `name`, written to `output` with g++. With `onlyWhen`, only operations whose JSON holds those bytes throw.
@discardableResult
func compileCxxFixture(
    _ output: URL,
    name: String,
    step: String? = nil,
    weight: Int = 10,
    onlyWhen: String? = nil
) throws -> URL {
    let result = try runProcess(
        URL(fileURLWithPath: "/usr/bin/env"),
        [
            "g++", "-shared", "-fPIC", "-std=c++17", "-fexceptions", "-O1", "-Wall", "-Werror", "-I",
            Paths.includeDirectory.path, "-DPLUGIN_NAME=\(cString(name))",
            "-DSTEP1_NAME=\(cString(step ?? "\(name)_step"))", "-DSTEP1_WEIGHT=\(weight)",
        ] + (onlyWhen.map { ["-DONLY_WHEN=\(cLiteral($0))"] } ?? []) + [
            Paths.cxxFixtureSource.path, "-o", output.path,
        ]
    )
    try #require(result.status == 0, "g++ failed for \(output.lastPathComponent): \(result.stderr)")
    chmod(output.path, 0o755)
    return output
}

/// Shared objects built once per test process, by configuration: cargo and swiftc are slow.
private enum BuiltFixtures {
    static let rust = Mutex<[String: Data]>([:])
    static let swiftTrap = Mutex<[String: Data]>([:])
}

/// Writes `bytes` to `output` with mode 0755.
private func install(_ bytes: Data, at output: URL) throws -> URL {
    try bytes.write(to: output)
    chmod(output.path, 0o755)
    return output
}

/// The cargo to build the Rust fixture with: rustup's, else the first on PATH.
private func cargoExecutable() throws -> URL {
    let rustup = "/root/.cargo/bin/cargo"
    if FileManager.default.isExecutableFile(atPath: rustup) { return URL(fileURLWithPath: rustup) }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/cargo"
        if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
    }
    throw FaultFixtureError(
        description: "cargo not found at \(rustup) or on PATH (\(path)): the Rust fault fixture "
            + "(Tests/StepHostTests/Fixtures/rust_panic) needs a Rust toolchain, 1.81 or later"
    )
}

/// The rust_panic crate (a cdylib whose step panics: Rust aborts the process, since a panic cannot unwind out of
/// an extern "C" function) as plugin `name`, written to `output`. The crate is built once per configuration and
/// test process (`cargo build --offline --release` in a temporary target directory); every call copies it. With
/// `onlyWhen`, only operations whose JSON holds those bytes panic.
@discardableResult
func buildRustFixture(
    _ output: URL,
    name: String = "rust_panic",
    step: String? = nil,
    weight: Int = 10,
    onlyWhen: String? = nil
) throws -> URL {
    let step = step ?? "\(name)_step"
    let key = "\(name)\n\(step)\n\(weight)\n\(onlyWhen ?? "")"
    let library = try BuiltFixtures.rust.withLock { built throws -> Data in
        if let library = built[key] { return library }
        let cargo = try cargoExecutable()
        let target = try TemporaryDirectory("stephost-rust-fixture")
        var environment = [
            "CARGO_TARGET_DIR": target.path, "STEPHOST_FIXTURE_PLUGIN_NAME": name,
            "STEPHOST_FIXTURE_STEP_NAME": step, "STEPHOST_FIXTURE_STEP_WEIGHT": "\(weight)",
        ]
        if let onlyWhen { environment["STEPHOST_FIXTURE_ONLY_WHEN"] = onlyWhen }
        let result = try runProcess(
            cargo,
            ["build", "--offline", "--release", "--locked", "--quiet"],
            environment: environment,
            in: Paths.rustFixtureCrate
        )
        try #require(result.status == 0, "cargo build failed for the Rust fixture: \(result.stderr)")
        let library = try Data(contentsOf: target.file("release/librust_panic.so"))
        built[key] = library
        return library
    }
    return try install(library, at: output)
}

/// fixture_swift_trap.swift (a plugin-kit step that hits fatalError: SIGILL) as plugin `name`, written to
/// `output`. Built with swiftc against the real stephost.h once per configuration and test process; every call
/// copies it. With `onlyWhenName`, only operations whose "name" parameter is that value trap.
@discardableResult
func compileSwiftTrapFixture(
    _ output: URL,
    name: String,
    step: String? = nil,
    weight: Int = 10,
    onlyWhenName: String? = nil
) throws -> URL {
    let step = step ?? "\(name)_step"
    let key = "\(name)\n\(step)\n\(weight)\n\(onlyWhenName ?? "")"
    let library = try BuiltFixtures.swiftTrap.withLock { built throws -> Data in
        if let library = built[key] { return library }
        let build = try TemporaryDirectory("stephost-swift-trap")
        // The real header under the module name the kit imports; SwiftPM generates the same map for the target.
        try build.write(
            "module.modulemap",
            "module StepHostABI {\n    header \"\(Paths.header.path)\"\n    export *\n}\n"
        )
        // Swift has no -D values: the names and the weight come in a generated source file.
        let configuration = try build.write(
            "FixtureConfiguration.swift",
            """
            let fixturePluginName = \(cString(name))
            let fixtureStepName = \(cString(step))
            let fixtureStepWeight = \(weight)
            let fixtureOnlyWhenName: String? = \(onlyWhenName.map(cString) ?? "nil")

            """
        )
        let library = build.file("libSwiftTrapFixture.so")
        try compileSwiftPlugin(
            library,
            sources: [Paths.swiftTrapFixtureSource, configuration],
            includeDirectory: build.url,
            moduleName: "SwiftTrapFixture"
        )
        let bytes = try Data(contentsOf: library)
        built[key] = bytes
        return bytes
    }
    return try install(library, at: output)
}

/// How a child process ended when it was given a bounded time.
struct BoundedProcessResult {
    /// The exit status, or the signal that ended it.
    var status: Int32
    /// Whether a signal ended it (a crash, or the kill at the deadline).
    var signaled: Bool
    /// Whether it was still running at the deadline and was killed with SIGKILL.
    var timedOut: Bool
    var stdout: String
    var stderr: String
}

/// Runs `executable` for at most `seconds`, then kills it with SIGKILL. Its output goes to files, so a child
/// that writes much and never exits cannot block on a pipe.
func runProcess(
    _ executable: URL,
    _ arguments: [String],
    environment: [String: String] = [:],
    timeout seconds: Double
) throws -> BoundedProcessResult {
    let outputs = try TemporaryDirectory("stephost-bounded-process")
    let stdoutFile = try outputs.write("stdout", "")
    let stderrFile = try outputs.write("stderr", "")
    let stdout = try FileHandle(forWritingTo: stdoutFile)
    let stderr = try FileHandle(forWritingTo: stderrFile)
    defer {
        try? stdout.close()
        try? stderr.close()
    }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    let ended = try eventually(within: seconds) { !process.isRunning }
    if !ended { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return BoundedProcessResult(
        status: process.terminationStatus,
        signaled: process.terminationReason == .uncaughtSignal,
        timedOut: !ended,
        stdout: String(decoding: try Data(contentsOf: stdoutFile), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: stderrFile), as: UTF8.self)
    )
}
