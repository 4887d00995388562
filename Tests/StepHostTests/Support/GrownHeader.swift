import Foundation
import Glibc
import Testing

/// A copy of `stephost.h` as a later minor version could write it: every struct with one field appended and
/// `STEPHOST_ABI_CURRENT_MINOR` raised by one, in a directory of its own (with a module map, so Swift can import
/// it as `StepHostABI`). Plugins built against it are plugins of the next minor for a host built against the real header;
/// the public header itself carries no test hooks.
final class GrownHeader {
    /// The field appended to every struct: a `uint64_t`, so every struct grows by 8 bytes.
    static let field = "future_field"
    /// The structs of the real header, each of which the copy grows.
    static let structs = [
        "stephost_host_services", "stephost_host_offer", "stephost_call_services", "stephost_step_call",
        "stephost_step_descriptor", "stephost_plugin_descriptor",
    ]

    let directory: TemporaryDirectory
    var includeDirectory: URL { directory.url }

    init() throws {
        let original = try String(contentsOf: Paths.header, encoding: .utf8)
        var lines: [String] = []
        var grown: [String] = []
        var resized: [String] = []
        var minorRaised = false
        for line in original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            // Each struct is `typedef struct name { ... } name;`: the field goes before its closing line.
            if line.hasPrefix("} stephost_"), line.hasSuffix(";") {
                lines.append("    uint64_t \(Self.field);")
                grown.append(String(line.dropFirst(2).dropLast()))
            }
            let minorPrefix = "#define STEPHOST_ABI_CURRENT_MINOR "
            if line.hasPrefix(minorPrefix), let minor = Int(line.dropFirst(minorPrefix.count)) {
                lines.append("\(minorPrefix)\(minor + 1)")
                minorRaised = true
                continue
            }
            // Each struct grew by the 8 bytes of its new field: so does the size its layout check asserts.
            let sizePrefix = "STEPHOST_ASSERT_SIZE("
            if line.hasPrefix(sizePrefix), line.hasSuffix(");") {
                let parts = line.dropFirst(sizePrefix.count).dropLast(2).split(separator: ", ")
                if parts.count == 2, let size = Int(parts[1]) {
                    lines.append("\(sizePrefix)\(parts[0]), \(size + 8));")
                    resized.append(String(parts[0]))
                    continue
                }
            }
            lines.append(line)
        }
        try #require(resized == Self.structs, "stephost.h's layout checks changed shape: resized \(resized)")
        // A header whose layout changed would otherwise give a copy that grew nothing, and tests that prove
        // nothing.
        try #require(grown == Self.structs, "stephost.h changed shape: grew \(grown)")
        try #require(minorRaised, "stephost.h no longer defines STEPHOST_ABI_CURRENT_MINOR as a number")
        directory = try TemporaryDirectory("stephost-grown-header")
        try directory.write("stephost.h", lines.joined(separator: "\n"))
        try directory.write("module.modulemap", "module StepHostABI {\n    header \"stephost.h\"\n    export *\n}\n")
    }

    /// The Swift plugin kit and the example plugin `source` built against this header into `output` (mode
    /// 0755), the way SwiftPM builds the example plugins (``compileSwiftPlugin(_:sources:includeDirectory:)``).
    @discardableResult
    func compileSwiftPlugin(_ output: URL, source: URL) throws -> URL {
        try StepHostTests.compileSwiftPlugin(output, sources: [source], includeDirectory: includeDirectory)
    }
}
