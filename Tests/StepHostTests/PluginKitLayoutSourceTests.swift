import Foundation
import Testing

/// The kit must never let the Swift runtime size an ABI struct. The runtime keeps one metadata record per imported C
/// type name for the whole process, made by whichever image asks first; a host or another Swift plugin built against
/// another minor of stephost.h may have made it, with a size other than this kit's. Generic code over an ABI struct
/// (`MemoryLayout<Layout>`, a generic load, a typed allocation) would use that size. Which image registers first
/// cannot be arranged in a test process that has already used the types, so this reads the kit's sources for
/// the constructions that ask the runtime; `StructGrowthTests` covers the host's side by behaviour.
@Suite("The plugin kit sizes ABI structs itself")
struct PluginKitLayoutSourceTests {
    static let forbidden: [(pattern: String, why: String)] = [
        // Offsets are fine: a key path carries the field's offset as compiled, and fields never move.
        (#"MemoryLayout<Layout>\.(size|stride|alignment)"#, "the runtime's size of a generic ABI struct"),
        (#"as: Layout\.self"#, "a generic load, copied at the runtime's size"),
        (#"UnsafeMutablePointer<stephost_[a-z_]+>\.allocate"#, "a typed allocation at the runtime's size"),
        (#"withUnsafeTemporaryAllocation"#, "a generic temporary at the runtime's size"),
        (#"load\((fromByteOffset: [^)]*, )?as: stephost_"#, "a generic load of an ABI struct"),
    ]

    @Test func noKitSourceAsksTheRuntimeForAnABIStructsSize() throws {
        let directory = Paths.packageRoot.appendingPathComponent("Sources/StepHostPluginKit")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.hasSuffix(".swift")
        }
        #expect(files.count >= 5, "\(files)")
        var found: [String] = []
        for file in files.sorted() {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                for rule in Self.forbidden where code.range(of: rule.pattern, options: .regularExpression) != nil {
                    found.append("\(file):\(number + 1): \(rule.why): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }
}
