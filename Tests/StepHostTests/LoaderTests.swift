import Foundation
import Glibc
import StepHostCore
import StepHostLoader
import Testing

@Suite("Loading and ordering plugins")
struct LoaderTests {
    @Test func examplePluginsLoadAndRunInWeightOrderAroundCreateRuntime() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        let catalog = try loadCatalog(directory)
        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        #expect(catalog.plugins.map(\.name) == ["audit", "monitoring", "network"])
        let pipeline = pipelineOrder(catalog)
        #expect(
            pipeline.map(\.name) == [
                "allocate_subnet", "configure_monitoring", "open_audit_ticket", "configure_dns", "create_runtime",
                "verify_monitoring", "close_audit_ticket",
            ]
        )
        #expect(pipeline.map(\.weight) == [20, 30, 50, 50, 100, 120, 150])
        #expect(pipeline[4].provenance == .builtIn)
        #expect(catalog.plugins.allSatisfy { $0.abiVersion == ABIVersion.current })
    }

    /// Two plugins at the same weight: the plugin name decides, never the file name or directory order.
    @Test(arguments: [("a.so", "z.so"), ("z.so", "a.so")])
    func equalWeightsAreOrderedByPluginNameWhateverTheFileNames(betaFile: String, alphaFile: String) throws {
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file(betaFile),
            ["PLUGIN_NAME": cString("beta"), "STEP1_NAME": cString("beta_step"), "STEP1_WEIGHT": "40"]
        )
        try compileFixture(
            directory.file(alphaFile),
            [
                "PLUGIN_NAME": cString("alpha"), "STEP1_NAME": cString("alpha_second"), "STEP1_WEIGHT": "40",
                "STEP2_NAME": cString("alpha_first"), "STEP2_WEIGHT": "40",
            ]
        )
        let catalog = try loadCatalog(directory)
        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        // Within a plugin, the plugin's own list order holds (alpha lists alpha_second first).
        #expect(
            pipelineOrder(catalog).map(\.name) == [
                "alpha_second", "alpha_first", "beta_step", "create_runtime",
            ]
        )
    }

    @Test func stepsAfterCreateRuntimeHaveWeightsAboveOneHundred() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("late.so"), ["STEP1_WEIGHT": "101", "STEP1_NAME": cString("late")])
        try compileFixture(
            directory.file("early.so"),
            ["PLUGIN_NAME": cString("early"), "STEP1_WEIGHT": "99", "STEP1_NAME": cString("early")]
        )
        let catalog = try loadCatalog(directory)
        #expect(pipelineOrder(catalog).map(\.name) == ["early", "create_runtime", "late"])
    }

    @Test func hiddenFilesAndFilesWithoutSoSuffixAreIgnored() throws {
        let directory = try TemporaryDirectory()
        try directory.copyExample("ExampleCPlugin")
        try directory.write(".hidden.so", "not a plugin")
        try directory.write("README.txt", "not a plugin")
        try directory.write("plugin.so.bak", "not a plugin")
        let catalog = try loadCatalog(directory)
        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        #expect(catalog.plugins.map(\.name) == ["monitoring"])
    }

    @Test func symlinkToAFileInsideTheDirectoryIsLoaded() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("real.impl"))
        #expect(symlink("real.impl", directory.file("linked.so").path) == 0)
        let catalog = try loadCatalog(directory)
        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        #expect(catalog.plugins.map(\.file) == [directory.file("linked.so").path])
    }

    @Test func missingDirectoryIsAnErrorThatSaysHowToFixIt() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.file("nope").path
        let error = try #require(throws: PluginDirectoryError.self) {
            try loadCatalog(path: missing)
        }
        #expect(error.directory == missing)
        #expect(error.message.contains("No such file or directory"))
        #expect(error.fix.contains("--plugins-dir"))
    }

    @Test(arguments: [
        (0o777 as mode_t, "is writable by others (mode 0777)"), (0o775, "is writable by its group (mode 0775)"),
    ])
    func writablePluginDirectoryIsRefusedAsAWhole(mode: mode_t, problem: String) throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples()
        #expect(chmod(directory.path, mode) == 0)
        let error = try #require(throws: PluginDirectoryError.self) { try loadCatalog(directory) }
        #expect(error.message == "refusing to load plugins from it: it \(problem)")
        #expect(error.fix == "run `chmod go-w \(directory.path)`")
    }
}
