public import StepHostCore
import Synchronization

/// The quarantined plugin builds a host knows of, by plugin name and file hash; shared by the steps, which
/// consult it on every run, and the engine, which adds to it when it finds that a host died in a step.
public final class QuarantineList: Sendable {
    private let entries: Mutex<[String: QuarantineRecord]>

    public init(_ plugins: [QuarantineRecord] = []) {
        entries = Mutex(Dictionary(plugins.map { (Self.key($0.plugin, $0.fileHash), $0) }) { first, _ in first })
    }

    private static func key(_ plugin: String, _ fileHash: String) -> String { plugin + "\u{0}" + fileHash }

    public func contains(_ plugin: PluginProvenance) -> Bool {
        entries.withLock { $0[Self.key(plugin.name, plugin.fileHash)] != nil }
    }

    public func entry(for plugin: String, fileHash: String) -> QuarantineRecord? {
        entries.withLock { $0[Self.key(plugin, fileHash)] }
    }

    /// Adds a build; `false` if it was already there.
    @discardableResult
    public func add(_ plugin: QuarantineRecord) -> Bool {
        entries.withLock { entries in
            let key = Self.key(plugin.plugin, plugin.fileHash)
            guard entries[key] == nil else { return false }
            entries[key] = plugin
            return true
        }
    }
}
