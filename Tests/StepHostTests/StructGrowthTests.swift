import Foundation
import StepHostABI
import StepHostCore
import StepHostLoader
import Testing

/// Structs grow by appending fields in a minor version: plugins built against a newer header load in this host,
/// and the host reads each struct only as far as both sides know it. (A host built against a newer header
/// cannot be built here; `StructLayoutTests` covers that side with a struct type of its own.)
@Suite("Struct growth across minor versions")
struct StructGrowthTests {
    static let operation = Array(
        #"{"id":"op-12345678-abcd","instance_id":"inst-1","type":"provision","pass":1,"attempt":1,"parameters":{},"fields":{}}"#
            .utf8
    )

    /// A C plugin built against a header whose structs each have one more field. It chose 1.0 (what this host
    /// offers), declares its step descriptors at their larger size with garbage in the new field, and writes
    /// the descriptor as far as the host's capacity. The host ignores what it does not know.
    @Test func cPluginBuiltAgainstANewerMinorLoadsAndRuns() throws {
        let header = try GrownHeader()
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("newer.so"),
            [
                "PLUGIN_NAME": cString("newer"), "ABI_MINOR": "0", "FUTURE_FIELD": GrownHeader.field,
                "STEP2_NAME": cString("newer_second"), "STEP2_WEIGHT": "120",
            ],
            includeDirectory: header.includeDirectory
        )

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugin = try #require(catalog.plugins.first)
        #expect(plugin.name == "newer")
        #expect(plugin.abiVersion == ABIVersion(major: 1, minor: 0))
        #expect(plugin.steps.map(\.name) == ["fixture_step", "newer_second"])
        #expect(plugin.steps.map(\.weight) == [10, 120])
        for step in plugin.steps {
            let result = step.run(operationJSON: Self.operation) { _ in true }
            #expect(result.outcome == .done)
            #expect(result.changes.fields.map(\.json) == ["\"\(step.name)\""])
        }
    }

    /// The C example plugin, unchanged, rebuilt against the newer header: it negotiates the host's minor and fits its
    /// descriptor into the host's capacity.
    @Test func cExamplePluginBuiltAgainstANewerMinorLoadsAndRuns() throws {
        let header = try GrownHeader()
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("monitoring.so"),
            source: Paths.packageRoot.appendingPathComponent("Plugins/ExampleCPlugin/monitoring_plugin.c"),
            includeDirectory: header.includeDirectory
        )

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugin = try #require(catalog.plugins.first)
        #expect(plugin.name == "monitoring")
        #expect(plugin.abiVersion == ABIVersion.current)
        let configure = plugin.steps[0].run(operationJSON: Self.operation) { _ in true }
        #expect(configure.outcome == .done)
        #expect(configure.componentOverrides.map(\.override.key) == ["retention", "grafana.adminPassword"])
    }

    /// The other half of the descriptor rule: a plugin that declares more than the capacity the host gave it
    /// has written past the host's allocation, and is refused.
    @Test func pluginThatDeclaresItsDescriptorBeyondTheHostsCapacityIsRefused() throws {
        let header = try GrownHeader()
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("careless.so"),
            [
                "PLUGIN_NAME": cString("careless"), "ABI_MINOR": "0", "FUTURE_FIELD": GrownHeader.field,
                "DESCRIPTOR_SIZE": "sizeof(stephost_plugin_descriptor)",
            ],
            includeDirectory: header.includeDirectory
        )

        let catalog = try loadCatalog(directory)

        #expect(catalog.plugins.isEmpty)
        let report = try #require(catalog.broken.first)
        #expect(report.name == "careless")
        #expect(report.error.code == .invalidDescriptor)
        #expect(
            report.error.message == "its plugin descriptor struct_size is 64 bytes, more than the 56 the host allocated"
        )
    }

    /// The Swift kit built against the newer header (so it knows every struct 8 bytes larger than this host
    /// writes them) negotiates 1.0, fits the descriptor into the host's capacity, and reads the host's smaller
    /// call structs, with the example `audit` plugin's unchanged source on top.
    @Test func swiftPluginBuiltAgainstANewerMinorLoadsAndRuns() throws {
        let header = try GrownHeader()
        let directory = try TemporaryDirectory()
        try header.compileSwiftPlugin(
            directory.file("audit.so"),
            source: Paths.packageRoot.appendingPathComponent("Plugins/ExampleAuditPlugin/AuditPlugin.swift")
        )

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugin = try #require(catalog.plugins.first)
        #expect(plugin.name == "audit")
        #expect(plugin.abiVersion == ABIVersion.current)
        #expect(plugin.steps.map(\.name) == ["open_audit_ticket", "close_audit_ticket"])

        let open = plugin.steps[0].run(operationJSON: Self.operation) { _ in true }
        #expect(open.outcome == .done)
        #expect(open.changes.fields.map(\.key) == ["audit_ticket"])
        #expect(open.labels.map(\.key) == ["stephost.io/audit-ticket"])

        let fields = Array(
            #"{"id":"op-1","instance_id":"i","type":"provision","pass":1,"parameters":{},"fields":{"audit_ticket":"AUD-1"}}"#
                .utf8
        )
        let close = plugin.steps[1].run(operationJSON: fields) { _ in true }
        #expect(close.outcome == .done)
        #expect(close.changes.fields.map(\.key) == ["audit_closed"])
        #expect(close.logs.map(\.message) == ["closed audit ticket AUD-1"])

        // The plugin carried its own, larger, layouts of the ABI structs; the runtime keeps one per name for the
        // whole process, and the host registered its own before it opened the plugin: generic code in this
        // process still sees the host's sizes (else StructLayout would copy 8 bytes past every host value).
        #expect(ABIMetadata.runtimeSize(stephost_host_offer.self) == MemoryLayout<stephost_host_offer>.size)
        #expect(
            ABIMetadata.runtimeSize(stephost_plugin_descriptor.self) == MemoryLayout<stephost_plugin_descriptor>.size
        )
        #expect(ABIMetadata.runtimeSize(stephost_call_services.self) == MemoryLayout<stephost_call_services>.size)
    }
}
