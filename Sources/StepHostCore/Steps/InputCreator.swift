import Foundation

/// What the steps of one pass contribute to the provisioning request: component overrides, global
/// overrides and labels (KEB's input creator).
///
/// Built anew by every pass and never persisted: a repeated pass rebuilds it, which is why steps must
/// be idempotent. A later write of the same key replaces the earlier value in place.
public struct InputCreator: Sendable {
    /// Component names in the order their first override arrived.
    public private(set) var components: [String] = []
    /// Overrides per component, in the order their keys first arrived.
    public private(set) var componentOverrides: [String: [Override]] = [:]
    public private(set) var globalOverrides: [Override] = []
    public private(set) var labels: [(key: String, value: String)] = []

    public init() {}

    /// Adds what one step reported.
    public mutating func apply(_ result: StepResult) {
        for entry in result.componentOverrides { add(entry) }
        for override in result.globalOverrides { Self.upsert(override, into: &globalOverrides) }
        for label in result.labels { setLabel(label.key, label.value) }
    }

    public mutating func add(_ entry: ComponentOverride) {
        if componentOverrides[entry.component] == nil { components.append(entry.component) }
        Self.upsert(entry.override, into: &componentOverrides[entry.component, default: []])
    }

    public mutating func setLabel(_ key: String, _ value: String) {
        if let index = labels.firstIndex(where: { $0.key == key }) {
            labels[index].value = value
        } else {
            labels.append((key, value))
        }
    }

    /// Every secret value, to remove from anything the host writes.
    public var secretValues: [String] {
        (componentOverrides.values.flatMap { $0 } + globalOverrides).filter(\.secret).map(\.value).filter {
            !$0.isEmpty
        }
    }

    private static func upsert(_ override: Override, into list: inout [Override]) {
        if let index = list.firstIndex(where: { $0.key == override.key }) {
            list[index] = override
        } else {
            list.append(override)
        }
    }
}

/// Removes secret values from text the host is about to write (logs, messages, errors).
///
/// Matching is on UTF-8 bytes, not on Swift's characters: a secret followed by a combining mark is one
/// grapheme with it, and would not be found by a character search. Redact first, then cut text to size
/// (``String/cut(toUTF8:)``): cutting first can leave a secret's prefix behind.
public struct SecretScrubber: Sendable {
    private let secrets: [[UInt8]]

    public init(_ secrets: [String]) {
        // Longest first, so a secret that contains another is removed whole.
        self.secrets = Set(secrets.filter { !$0.isEmpty }).map { Array($0.utf8) }.sorted { $0.count > $1.count }
    }

    public func scrub(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var bytes = Array(text.utf8)
        var changed = false
        for secret in secrets {
            var result: [UInt8] = []
            var index = 0
            var found = false
            while index < bytes.count {
                if bytes.count - index >= secret.count && bytes[index] == secret[0]
                    && bytes[index..<(index + secret.count)].elementsEqual(secret)
                {
                    result += Self.redacted
                    index += secret.count
                    found = true
                } else {
                    result.append(bytes[index])
                    index += 1
                }
            }
            if found {
                bytes = result
                changed = true
            }
        }
        // A secret is whole UTF-8 sequences, and so is what surrounds it: the bytes stay valid UTF-8.
        return changed ? String(decoding: bytes, as: UTF8.self) : text
    }

    private static let redacted = Array("<redacted>".utf8)
}

extension String {
    /// The text cut to at most `limit` UTF-8 bytes (at a character boundary), saying how much was left out.
    package func cut(toUTF8 limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var end = utf8.index(utf8.startIndex, offsetBy: limit)
        while end > utf8.startIndex && !unicodeScalars.indices.contains(end) {
            end = utf8.index(before: end)
        }
        let kept = self[..<end]
        return String(kept) + "… (\(utf8.count - kept.utf8.count) more bytes)"
    }
}
