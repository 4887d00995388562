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
public struct SecretScrubber: Sendable {
    private let secrets: [String]

    public init(_ secrets: [String]) {
        // Longest first, so a secret that contains another is removed whole.
        self.secrets = Set(secrets).sorted { $0.count > $1.count }
    }

    public func scrub(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return result
    }
}
