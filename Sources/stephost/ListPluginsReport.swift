import Foundation
import StepHostApplication
import StepHostCore
import StepHostLoader

/// Renders the pipeline, the broken plugins and the disabled ones as a table for people or as JSON for
/// programs.
struct ListPluginsReport {
    let selection: PluginSelection
    /// Quarantined plugin builds from the database, when there is one to read.
    var quarantined: [QuarantineRecord] = []
    /// Why the quarantined builds could not be read, if they could not.
    var quarantineNote: String?
    var catalog: PluginCatalog { selection.catalog }

    /// The quarantine record of a loaded plugin's build, if it has one.
    func quarantine(of plugin: LoadedPlugin) -> QuarantineRecord? {
        quarantined.first { $0.plugin == plugin.name && $0.fileHash == plugin.fileHash }
    }

    /// Where a plugin's steps run now: its isolation, or `process` once it is quarantined (with the quarantine
    /// action `process`).
    func isolation(of plugin: LoadedPlugin) -> String {
        guard quarantine(of: plugin) != nil, plugin.isolation == .inProcess else { return "\(plugin.isolation)" }
        return selection.isolation.quarantine == .process ? "process (quarantined)" : "refused (quarantined)"
    }

    /// The JSON document: `steps` in order, `plugins` (used), `broken`, `disabled`.
    struct Document: Encodable {
        struct Step: Encodable {
            var position: Int
            var name: String
            var weight: Int
            var plugin: String?
            var plugin_version: String?
            var file: String?
            var builtin: Bool
        }
        struct Plugin: Encodable {
            var name: String
            var version: String
            var file: String
            var abi_version: String
            var steps: [String]
            var isolation: String
            var deadline_seconds: Double
            var quarantine: Quarantine?
        }
        struct Quarantine: Encodable {
            var reason: String
            var since: String
        }
        struct Broken: Encodable {
            var file: String
            var plugin: String?
            var check: String
            var error: String
            var fix: String
        }
        struct Disabled: Encodable {
            var file: String
            var plugin: String?
            /// False for a file disabled by its file name: it was never opened.
            var opened: Bool
        }
        var plugins_dir: String
        var steps: [Step]
        var plugins: [Plugin]
        var broken: [Broken]
        var disabled: [Disabled]
        var quarantine_note: String?
    }

    /// Disabled plugins: the files never opened, those loaded and then left out, and broken ones disabled.
    var disabled: [Document.Disabled] {
        let skipped = catalog.skipped.map { Document.Disabled(file: $0, plugin: nil, opened: false) }
        let loaded = selection.disabled.map { Document.Disabled(file: $0.file, plugin: $0.name, opened: true) }
        let broken = catalog.broken.filter { report in !selection.broken.contains { $0.file == report.file } }
            .map { Document.Disabled(file: $0.file, plugin: $0.name, opened: true) }
        return (skipped + loaded + broken).sorted { $0.file < $1.file }
    }

    var document: Document {
        Document(
            plugins_dir: catalog.directory,
            steps: selection.order.enumerated().map { offset, step in
                Document.Step(
                    position: offset + 1,
                    name: step.name,
                    weight: step.weight,
                    plugin: step.plugin?.name,
                    plugin_version: step.plugin?.version,
                    file: step.plugin?.file,
                    builtin: step.plugin == nil
                )
            },
            plugins: selection.used.map {
                Document.Plugin(
                    name: $0.name,
                    version: $0.version,
                    file: $0.file,
                    abi_version: $0.abiVersion.description,
                    steps: $0.steps.map(\.name),
                    isolation: isolation(of: $0),
                    deadline_seconds: selection.policy(of: $0).deadline.timeInterval,
                    quarantine: quarantine(of: $0).map {
                        Document.Quarantine(reason: $0.reason, since: ISO8601DateFormatter().string(from: $0.since))
                    }
                )
            },
            broken: selection.broken.map {
                Document.Broken(
                    file: $0.file,
                    plugin: $0.name,
                    check: $0.error.code.description,
                    error: $0.error.message,
                    fix: $0.error.fix
                )
            },
            disabled: disabled,
            quarantine_note: quarantineNote
        )
    }

    func json() throws -> String {
        try Self.encode(document)
    }

    static func directoryErrorJSON(_ error: PluginDirectoryError) throws -> String {
        struct DirectoryError: Encodable {
            var plugins_dir: String
            var error: String
            var fix: String
        }
        return try encode(DirectoryError(plugins_dir: error.directory, error: error.message, fix: error.fix))
    }

    private static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func table() -> String {
        var rows = [["#", "WEIGHT", "STEP", "PLUGIN", "VERSION", "FILE"]]
        for (offset, step) in selection.order.enumerated() {
            rows.append([
                "\(offset + 1)",
                "\(step.weight)",
                step.name,
                step.plugin?.name ?? "(built-in)",
                step.plugin?.version ?? "-",
                step.plugin.map { ($0.file as NSString).lastPathComponent } ?? "-",
            ])
        }
        var lines = ["Pipeline (plugins from \(catalog.directory)):"]
        lines += TextTable.lines(rows).map { "  " + $0 }
        if !selection.used.isEmpty {
            lines.append("")
            lines.append("Plugins:")
            var plugins = [["PLUGIN", "ISOLATION", "DEADLINE", "ABI", "FILE"]]
            for plugin in selection.used {
                plugins.append([
                    plugin.name, isolation(of: plugin), selection.policy(of: plugin).deadline.humanText,
                    plugin.abiVersion.description, (plugin.file as NSString).lastPathComponent,
                ])
            }
            lines += TextTable.lines(plugins).map { "  " + $0 }
            for plugin in selection.used {
                guard let entry = quarantine(of: plugin) else { continue }
                lines.append(
                    "  \(plugin.name) is quarantined since \(ISO8601DateFormatter().string(from: entry.since)): \(entry.reason)"
                )
                lines.append("    clear: stephost plugins clear-quarantine \(plugin.name)")
            }
        }
        if let quarantineNote { lines.append("  (\(quarantineNote))") }
        if selection.broken.isEmpty {
            lines.append("All \(selection.used.count) plugins loaded.")
        } else {
            lines.append("")
            lines.append("Broken plugins (\(selection.broken.count)); none of their steps are used:")
            for broken in selection.broken {
                let name = broken.name.map { " (plugin '\($0)')" } ?? ""
                lines.append("  \(broken.file)\(name)")
                lines.append("    [\(broken.error.code)] \(broken.error.message)")
                lines.append("    fix: \(broken.error.fix)")
            }
        }
        let disabled = disabled
        if !disabled.isEmpty {
            lines.append("")
            lines.append("Disabled with --disable-plugin (\(disabled.count)); none of their steps are used:")
            for entry in disabled {
                let name = entry.plugin.map { " (plugin '\($0)')" } ?? ""
                lines.append("  \(entry.file)\(name)\(entry.opened ? "" : ": not opened")")
            }
        }
        // Versions, file names and init messages come from plugins: one table row stays one line.
        return lines.map(\.escapingControlCharacters).joined(separator: "\n")
    }
}
