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

    public init(step: String, plugin: String?, pluginFileHash: String?, pass: Int, startedAt: Date) {
        self.step = step
        self.plugin = plugin
        self.pluginFileHash = pluginFileHash
        self.pass = pass
        self.startedAt = startedAt
    }

    /// "step X of plugin Y" or "built-in step X", for messages.
    public var described: String {
        plugin.map { "step \(step) of plugin \($0)" } ?? "built-in step \(step)"
    }

    /// Whether `other` is the same step of the same build of the same plugin.
    public func isSameStep(as other: RunningStep) -> Bool {
        step == other.step && plugin == other.plugin && pluginFileHash == other.pluginFileHash
    }

    static var coders: (JSONEncoder, JSONDecoder) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return (encoder, decoder)
    }

    /// The step as the stores keep it: JSON with dates in milliseconds since 1970.
    public func json() throws -> String {
        String(decoding: try Self.coders.0.encode(self), as: UTF8.self)
    }

    /// Reads what ``json()`` wrote.
    public init(json: String) throws {
        self = try Self.coders.1.decode(RunningStep.self, from: Data(json.utf8))
    }
}

/// How often hosts died while running the same step of an operation, in a row: the crash-loop trace.
public struct HostDeaths: Sendable, Hashable, Codable {
    /// The step the hosts died in, as recorded the last time.
    public var step: RunningStep
    /// How many times in a row a host died in that step (a death in another step starts again at 1).
    public var count: Int

    public init(step: RunningStep, count: Int) {
        self.step = step
        self.count = count
    }

    /// The trace after one more death in `step`.
    public static func after(_ previous: HostDeaths?, diedIn step: RunningStep) -> HostDeaths {
        guard let previous, previous.step.isSameStep(as: step) else { return HostDeaths(step: step, count: 1) }
        return HostDeaths(step: step, count: previous.count + 1)
    }

    /// "the host died while running step X of plugin Y, pass N" (with the count when above one).
    public var described: String {
        "the host died while running \(step.described), pass \(step.pass)"
            + (count > 1 ? " (\(count) times in a row)" : "")
    }

    /// The trace as the stores keep it.
    public func json() throws -> String {
        String(decoding: try RunningStep.coders.0.encode(self), as: UTF8.self)
    }

    /// Reads what ``json()`` wrote.
    public init(json: String) throws {
        self = try RunningStep.coders.1.decode(HostDeaths.self, from: Data(json.utf8))
    }
}
