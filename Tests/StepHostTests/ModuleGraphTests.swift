import Foundation
import Testing

/// The layers of DESIGN.md, checked on the source itself: every module depends on and imports only modules
/// of a lower layer, so no module reaches one above it.
@Suite("Module graph")
struct ModuleGraphTests {
    /// Each module's layer, bottom up.
    static let layers: [String: Int] = [
        "StepHostCore": 0,
        "StepHostABI": 1, "StepHostABIText": 1, "StepHostTemplates": 1, "StepHostSystem": 1,
        "StepHostPluginKit": 2,
        "StepHostLoader": 3,
        "StepHostPipeline": 4,
        "StepHostStorage": 5,
        "StepHostSQLite": 6, "StepHostPostgres": 6, "StepHostRuntime": 6,
        "StepHostEngine": 7,
        "StepHostApplication": 8,
        "StepHostServer": 9,
        "stephost": 10, "stephost-bench": 10,
    ]

    /// `import X` lines of every Swift file of a module (any access level), X one of ours.
    static func imports(of module: String) throws -> Set<String> {
        let directory = Paths.packageRoot.appendingPathComponent("Sources/\(module)")
        let files = try #require(FileManager.default.enumerator(atPath: directory.path)).compactMap { $0 as? String }
        var found: Set<String> = []
        for file in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                    words[..<index].allSatisfy({ ["public", "package", "internal", "@testable"].contains($0) })
                else { continue }
                let name = words[index + 1]
                if layers[name] != nil { found.insert(name) }
            }
        }
        return found
    }

    @Test func everyModuleImportsOnlyLowerLayers() throws {
        let modules = try FileManager.default.contentsOfDirectory(
            atPath: Paths.packageRoot.appendingPathComponent("Sources").path
        )
        #expect(Set(modules) == Set(Self.layers.keys), "a module was added or removed: give it a layer here")
        for module in modules {
            let layer = try #require(Self.layers[module])
            for imported in try Self.imports(of: module) {
                #expect(Self.layers[imported]! < layer, "\(module) (layer \(layer)) imports \(imported)")
            }
        }
    }

    @Test func coreDependsOnFoundationOnly() throws {
        #expect(try Self.imports(of: "StepHostCore").isEmpty)
        let directory = Paths.packageRoot.appendingPathComponent("Sources/StepHostCore")
        for file in try #require(FileManager.default.enumerator(atPath: directory.path)).compactMap({ $0 as? String })
        where file.hasSuffix(".swift") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let modules = text.split(separator: "\n").compactMap { line -> String? in
                let words = line.split(separator: " ")
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count else { return nil }
                return String(words[index + 1])
            }
            #expect(
                modules.allSatisfy { ["Foundation", "Glibc", "Synchronization"].contains($0) },
                "\(file): \(modules)"
            )
        }
    }

    /// What Package.swift declares, read back through SwiftPM itself.
    @Test func declaredDependenciesPointDown() throws {
        // A scratch path of its own: the running `swift test` holds the package's .build lock.
        let scratch = try TemporaryDirectory("stephost-manifest")
        let result = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["swift", "package", "--scratch-path", scratch.path, "dump-package"],
            in: Paths.packageRoot
        )
        try #require(result.status == 0, "\(result.stderr)")
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        )
        let targets = try #require(manifest["targets"] as? [[String: Any]])
        var checked = 0
        for target in targets {
            guard let name = target["name"] as? String, let layer = Self.layers[name] else { continue }
            checked += 1
            for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
                // {"byName": ["StepHostCore", null]} for our modules; products of other packages are skipped.
                guard let byName = dependency["byName"] as? [Any], let other = byName.first as? String,
                    let otherLayer = Self.layers[other]
                else { continue }
                #expect(otherLayer < layer, "Package.swift: \(name) (layer \(layer)) depends on \(other)")
            }
        }
        #expect(checked == Self.layers.count)
    }
}
