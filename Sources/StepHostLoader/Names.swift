package import Logging
package import StepHostABI
package import StepHostCore

/// Reading text that a plugin hands the host: names checked strictly, messages decoded leniently.
enum Names {
    /// The longest plugin or step name.
    static let maximumLength = 64

    /// The name, if it is 1 to 64 bytes of `[A-Za-z0-9_.-]`; otherwise what is wrong with it.
    static func validate(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> Result<String, NameProblem> {
        guard length > 0 else { return .failure(NameProblem("is empty")) }
        guard let pointer else { return .failure(NameProblem("is a null pointer with length \(length)")) }
        guard length <= maximumLength else {
            return .failure(NameProblem("is \(length) bytes long, more than \(maximumLength)"))
        }
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            count: length
        )
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(NameProblem("is not valid UTF-8"))
        }
        if let bad = text.unicodeScalars.first(where: { !isNameScalar($0) }) {
            return .failure(
                NameProblem("'\(text)' contains '\(bad.escaped(asASCII: true))'; only [A-Za-z0-9_.-] is allowed")
            )
        }
        return .success(text)
    }

    /// The text, if it is valid UTF-8 of at most `limit` bytes. A null pointer with length 0 is "".
    static func text(_ pointer: UnsafePointer<CChar>?, _ length: Int, limit: Int) -> String? {
        guard length > 0 else { return "" }
        guard let pointer, length <= limit else { return nil }
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            count: length
        )
        return String(validating: bytes, as: UTF8.self)
    }

    /// A message for logs and reports: invalid UTF-8 is replaced, and anything past 4 KiB is cut.
    static func message(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String {
        guard let pointer, length > 0 else { return "" }
        let kept = min(length, 4096)
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            count: kept
        )
        let text = String(decoding: bytes, as: UTF8.self)
        return kept < length ? text + "… (\(length - kept) more bytes)" : text
    }

    private static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "-": return true
        default: return false
        }
    }
}

/// What is wrong with a plugin or step name.
struct NameProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Maps the ABI's log levels onto the step log levels and swift-log's.
package enum LogLevels {
    /// A level a plugin passed; unknown values are errors, so nothing a plugin says gets quieter.
    package static func step(_ level: stephost_log_level) -> StepLogLevel {
        switch level {
        case STEPHOST_LOG_DEBUG: .debug
        case STEPHOST_LOG_INFO: .info
        case STEPHOST_LOG_WARNING: .warning
        default: .error
        }
    }

    /// The swift-log level of a line a plugin logs at init.
    package static func swiftLog(_ level: stephost_log_level) -> Logger.Level {
        Logger.Level(rawValue: "\(step(level))") ?? .error
    }
}
