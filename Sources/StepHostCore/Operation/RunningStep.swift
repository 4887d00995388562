public import Foundation

/// The step a host is running for an operation, recorded with its claim just before the step is called: if the
/// host dies inside the step, the next host to take the operation knows which step it died in.
public struct RunningStep: Sendable, Hashable, Codable {
    public var step: String
    /// The plugin that declares the step, or `nil` for a built-in step.
    public var plugin: String?
    /// SHA-256 of the plugin's file, in hex.
    public var pluginFileHash: String?
    public var pass: Int
    public var startedAt: Date
    /// Whether no other pass could run on the host during this one (it was started alone, or the host runs one
    /// pass at a time): a death then is this operation's own (its step, or a kill from outside), not possibly
    /// another operation's crash. `nil` counts as alone.
    public var alone: Bool?

    public init(
        step: String,
        plugin: String?,
        pluginFileHash: String?,
        pass: Int,
        startedAt: Date,
        alone: Bool? = nil
    ) {
        self.step = step
        self.plugin = plugin
        self.pluginFileHash = pluginFileHash
        self.pass = pass
        self.startedAt = startedAt
        self.alone = alone
    }

    /// "step X of plugin Y" or "built-in step X", for messages.
    public var described: String {
        plugin.map { "step \(step) of plugin \($0)" } ?? "built-in step \(step)"
    }

    /// The step as the stores keep it: JSON with dates in milliseconds since 1970.
    public func json() throws -> String {
        // Written by hand (it is written before every step): the same object JSONEncoder writes, keys sorted,
        // absent members left out.
        var text = "{"
        if let alone { text += "\"alone\":\(alone)," }
        text += "\"pass\":\(pass),"
        if let plugin { text += "\"plugin\":\(JSONText.quote(plugin))," }
        if let pluginFileHash { text += "\"pluginFileHash\":\(JSONText.quote(pluginFileHash))," }
        text += "\"startedAt\":\(startedAt.timeIntervalSince1970 * 1000),\"step\":\(JSONText.quote(step))}"
        return text
    }

    /// Reads what ``json()`` wrote.
    public init(json: String) throws {
        self = try StoredJSON.value(RunningStep.self, from: json)
    }
}

/// How often hosts died while running an operation's steps since one of its passes last ended: the crash-loop
/// trace.
///
/// A death while the host ran only this operation's pass (``RunningStep/alone``) counts: the operation's own step
/// took the host down, or someone killed the host while it worked on this operation alone. A death while other
/// passes ran too is only suspected (any of them may have crashed the host): the next pass of the operation runs
/// alone, so its next death, if any, is its own. The trace ends when a pass parks or finishes the operation.
public struct HostDeaths: Sendable, Hashable, Codable {
    /// The step the last host died in.
    public var step: RunningStep
    /// Deaths while the operation ran alone, in a row.
    public var count: Int
    /// Deaths while other operations ran too, in the same span.
    public var suspected: Int

    public init(step: RunningStep, count: Int, suspected: Int = 0) {
        self.step = step
        self.count = count
        self.suspected = suspected
    }

    /// The trace after one more death in `step`.
    public static func after(_ previous: HostDeaths?, diedIn step: RunningStep) -> HostDeaths {
        var deaths = previous ?? HostDeaths(step: step, count: 0)
        deaths.step = step
        if step.alone == false { deaths.suspected += 1 } else { deaths.count += 1 }
        return deaths
    }

    /// "the host died while running step X of plugin Y, pass N" with the counts.
    public var described: String {
        var counts: [String] = []
        if count > 0 { counts.append("\(count) time\(count == 1 ? "" : "s") in a row while it ran alone") }
        if suspected > 0 {
            counts.append("\(suspected) time\(suspected == 1 ? "" : "s") while other operations ran too")
        }
        return "the host died while running \(step.described), pass \(step.pass)"
            + (counts.isEmpty ? "" : " (\(counts.joined(separator: "; ")))")
    }

    /// The trace as the stores keep it.
    public func json() throws -> String {
        try StoredJSON.text(self)
    }

    /// Reads what ``json()`` wrote.
    public init(json: String) throws {
        self = try StoredJSON.value(HostDeaths.self, from: json)
    }
}
