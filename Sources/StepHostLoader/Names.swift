package import Logging
package import StepHostABI
package import StepHostCore

/// Reading text that a plugin hands the host: names checked strictly, messages decoded leniently.
enum Names {
    /// The longest plugin or step name.
    static let maximumLength = 64

    /// The name, if it is 1 to 64 bytes of `[A-Za-z0-9_.-]`; otherwise what is wrong with it.
    static func validate(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> Result<String, NameProblem> {
        guard length != 0 else { return .failure(NameProblem("is empty")) }
        let text: String
        switch read(pointer, length, limit: maximumLength) {
        case .success(let valid): text = valid
        case .failure(let problem): return .failure(problem)
        }
        if let bad = text.unicodeScalars.first(where: { !isNameScalar($0) }) {
            return .failure(
                NameProblem("'\(text)' contains '\(bad.escaped(asASCII: true))'; only [A-Za-z0-9_.-] is allowed")
            )
        }
        return .success(text)
    }

    /// A length a plugin passed. C's `size_t` arrives as `Int`; a value of 2^63 or more arrives negative
    /// and is read back here as the unsigned number the plugin meant, so it is too large, never "empty".
    static func size(_ length: Int) -> UInt { UInt(bitPattern: length) }

    /// The text, if it is valid UTF-8 of at most `limit` bytes; otherwise what is wrong with it. A length of 0
    /// is "" whatever the pointer.
    static func read(_ pointer: UnsafePointer<CChar>?, _ length: Int, limit: Int) -> Result<String, NameProblem> {
        let size = size(length)
        guard size > 0 else { return .success("") }
        guard size <= UInt(limit) else { return .failure(NameProblem("is \(size) bytes long, more than \(limit)")) }
        guard let pointer else { return .failure(NameProblem("is a null pointer with length \(size)")) }
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            count: Int(size)
        )
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(NameProblem("is not valid UTF-8"))
        }
        return .success(text)
    }

    /// The text, if it is valid UTF-8 of at most `limit` bytes. A null pointer with length 0 is "".
    static func text(_ pointer: UnsafePointer<CChar>?, _ length: Int, limit: Int) -> String? {
        try? read(pointer, length, limit: limit).get()
    }

    /// The most of a message the host reads (the engine cuts it to 4 KiB after removing secrets from it); a
    /// longer one is cut here and says how much was left out.
    static let maximumMessageLength = 64 * 1024
    /// A message length beyond this is not a message but a broken length: nothing of it is read.
    static let implausibleMessageLength: UInt = 1 << 30

    /// A message for logs and reports: invalid UTF-8 is replaced, and anything past 64 KiB is cut.
    static func message(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String {
        let size = size(length)
        guard let pointer, size > 0 else { return "" }
        guard size <= implausibleMessageLength else {
            return "(a message the plugin said is \(size) bytes long; not read)"
        }
        let kept = min(Int(size), maximumMessageLength)
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            count: kept
        )
        let text = String(decoding: bytes, as: UTF8.self)
        return kept < Int(size) ? text + "… (\(Int(size) - kept) more bytes)" : text
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
