import Foundation

/// The rules a custom field value must meet, checked once when a step sets it, so that every reader (the
/// store's JSON check, the host's JSON reader, every plugin's) can read what was stored: one value can never
/// make an operation, or the database, unreadable.
public enum FieldValue {
    /// The most bytes one value may have.
    public static let maximumBytes = 64 * 1024
    /// The deepest nesting of arrays and objects in one value. Stored inside the fields object and the
    /// operation document, a value sits two levels deeper; every reader in the way accepts far more
    /// (Foundation's JSON reader 512 levels, SQLite's `json_valid` 1000).
    public static let maximumDepth = 64
    /// The most bytes all of an operation's custom fields may have together (keys and values).
    public static let maximumTotalBytes = 1024 * 1024

    /// What is wrong with `text` as a field value, or `nil` when it is one complete JSON value within the limits.
    ///
    /// UTF-8 only, without a byte-order mark (SQLite's `json_valid` refuses both a BOM and UTF-16 or UTF-32,
    /// which Foundation's reader would accept).
    public static func problem(_ text: String) -> String? {
        let bytes = text.utf8
        if bytes.count > maximumBytes {
            return "is \(bytes.count) bytes, more than \(maximumBytes)"
        }
        if text.unicodeScalars.first == "\u{FEFF}" {
            return "begins with a byte-order mark; JSON values are plain UTF-8"
        }
        // JSON has no raw control characters but tab, LF and CR (between tokens). This also refuses UTF-16 and
        // UTF-32, whose NUL bytes would pass as UTF-8 and which Foundation's reader would decode anyway.
        if let control = bytes.first(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) {
            return "holds the control byte 0x\(String(control, radix: 16, uppercase: true)); JSON values are UTF-8 "
                + "text (UTF-16 and UTF-32 are refused)"
        }
        let depth = nesting(bytes)
        if depth > maximumDepth {
            return "is nested \(depth) levels deep, more than \(maximumDepth)"
        }
        guard (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil else {
            return "is not valid UTF-8 JSON"
        }
        return nil
    }

    /// The deepest nesting of `[` and `{` outside strings (the value is not assumed to be valid JSON).
    static func nesting(_ bytes: String.UTF8View) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }
}
