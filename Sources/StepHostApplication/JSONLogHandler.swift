import Foundation
public import Logging
import StepHostCore

/// A swift-log handler that writes one JSON object per line to standard error: `timestamp` (UTC, to the
/// millisecond), `level`, `message`, and the metadata (`operation`, `step`, `plugin`, …) as string members.
///
/// Messages and metadata may carry plugin text: every control character (C0, DEL and C1 alike) is escaped, so a
/// line stays one line and cannot drive a terminal; a metadata key that would collide with the fixed members is
/// written with a `meta.` prefix.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: where each line goes (default: standard error, one write per line).
    public init(
        label: String,
        metadataProvider: Logger.MetadataProvider? = nil,
        write: (@Sendable (String) -> Void)? = nil
    ) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = "{\"timestamp\":\"\(Self.timestamp(Date()))\",\"level\":\"\(event.level.rawValue)\""
        line += ",\"message\":" + Self.quote("\(event.message)")
        line += ",\"logger\":" + Self.quote(label)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            let name = ["timestamp", "level", "message", "logger"].contains(key) ? "meta.\(key)" : key
            line += "," + Self.quote(name) + ":" + Self.quote("\(value)")
        }
        line += "}\n"
        // One write per line, so lines from several threads never interleave.
        write(line)
    }

    /// `text` as a JSON string literal with every control character escaped.
    static func quote(_ text: String) -> String {
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case let control where control.value < 0x20 || (0x7F...0x9F).contains(control.value):
                let hex = String(control.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        )
    }
}

/// How `--log-format` writes log lines.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's text lines.
    case text
    /// One JSON object per line (``JSONLogHandler``).
    case json
}
