import Logging
import Synchronization

/// A swift-log handler that keeps the messages it is given, for tests that read back what the host logged.
struct CapturingLogHandler: LogHandler {
    final class Lines: Sendable {
        private let messages = Mutex<[String]>([])
        var all: [String] { messages.withLock { $0 } }
        func append(_ message: String) { messages.withLock { $0.append(message) } }
    }

    let lines: Lines
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append("\(event.message)")
    }
}
