public import Foundation

/// A plugin build taken out of the host's process because one of its in-process steps killed a host: its steps
/// run isolated from then on (or the plugin is refused) until its file changes or an operator clears it.
public struct QuarantineRecord: Sendable, Hashable {
    public var plugin: String
    /// SHA-256 of the file it was loaded from: a new build of the plugin is not quarantined.
    public var fileHash: String
    /// The step it died in and how the host learned of it.
    public var reason: String
    public var since: Date

    public init(plugin: String, fileHash: String, reason: String, since: Date) {
        self.plugin = plugin
        self.fileHash = fileHash
        self.reason = reason
        self.since = since
    }
}
