import Foundation

/// JSON as text: custom fields are kept as one JSON value text per key, so the host never
/// re-interprets what a step wrote beyond checking that it is valid.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        // Most text needs no escape: copied whole, not scalar by scalar.
        if !text.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }) { return "\"" + text + "\"" }
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let control where control.value < 0x20:
                result +=
                    "\\u" + String(repeating: "0", count: 4 - String(control.value, radix: 16).count)
                    + String(control.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// A JSON object whose members are the given key and JSON value texts, keys sorted by their bytes.
    public static func object(_ members: [FieldKey: String]) -> String {
        "{" + members.sorted { $0.key < $1.key }.map { "\(quote($0.key.string)):\($0.value)" }.joined(separator: ",")
            + "}"
    }

    /// The members of a JSON object, each value as its JSON text, with the keys exactly as written (a later
    /// member with the same bytes replaces an earlier one).
    ///
    /// Read without Foundation's JSON reader, whose `String` keys would merge keys that differ in bytes but are
    /// canonically equivalent. The text must be valid JSON (the stores check it); a value is returned as it
    /// stands in the text.
    public static func members(of object: String) throws -> [FieldKey: String] {
        var reader = MemberReader(Array(object.utf8))
        return try reader.object()
    }

    /// Why a text is not the JSON object ``members(of:)`` expects.
    public struct NotAnObject: Error, CustomStringConvertible {
        public var offset: Int
        public var description: String { "not a JSON object (at byte \(offset))" }
    }

    private struct MemberReader {
        let bytes: [UInt8]
        var at = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func object() throws -> [FieldKey: String] {
            skipSpace()
            try expect(UInt8(ascii: "{"))
            var members: [FieldKey: String] = [:]
            skipSpace()
            if peek == UInt8(ascii: "}") {
                at += 1
                return try end(members)
            }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                let start = at
                try skipValue()
                members[FieldKey(key)] = String(decoding: bytes[start..<at], as: UTF8.self)
                skipSpace()
                if peek == UInt8(ascii: ",") {
                    at += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return try end(members)
            }
        }

        private mutating func end(_ members: [FieldKey: String]) throws -> [FieldKey: String] {
            skipSpace()
            guard at == bytes.count else { throw NotAnObject(offset: at) }
            return members
        }

        private var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        private mutating func expect(_ byte: UInt8) throws {
            guard peek == byte else { throw NotAnObject(offset: at) }
            at += 1
        }

        private mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { at += 1 }
        }

        /// A string literal, unescaped; surrogate pairs joined.
        private mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                run.removeAll(keepingCapacity: true)
            }
            while let byte = peek {
                at += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    flush()
                    guard let escaped = peek else { throw NotAnObject(offset: at) }
                    at += 1
                    switch escaped {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var value = try hex4()
                        if (0xD800..<0xDC00).contains(value), peek == UInt8(ascii: "\\"),
                            at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u")
                        {
                            at += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw NotAnObject(offset: at) }
                            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(value) else { throw NotAnObject(offset: at) }
                        scalars.append(scalar)
                    default: throw NotAnObject(offset: at)
                    }
                default:
                    run.append(byte)
                }
            }
            throw NotAnObject(offset: at)
        }

        private mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count,
                let value = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16)
            else { throw NotAnObject(offset: at) }
            at += 4
            return value
        }

        /// Moves past one JSON value: strings with their escapes, nested arrays and objects by depth.
        private mutating func skipValue() throws {
            var depth = 0
            while let byte = peek {
                switch byte {
                case UInt8(ascii: "\""):
                    _ = try string()
                    if depth == 0 { return }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return }
                    depth -= 1
                    if depth == 0 {
                        at += 1
                        return
                    }
                case UInt8(ascii: ","):
                    if depth == 0 { return }
                case 0x20, 0x0A, 0x0D, 0x09:
                    if depth == 0 { return }
                default: break
                }
                at += 1
            }
            if depth != 0 { throw NotAnObject(offset: at) }
        }
    }

    /// Any JSON value (from JSONSerialization) as compact text with sorted keys.
    public static func compact(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: value,
            options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]
        )
        return String(decoding: data, as: UTF8.self)
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hex, two digits each (a digest for people).
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// How the host's own records (provisioning attempts, running steps, host deaths) are stored as JSON: keys
/// sorted, dates in milliseconds since 1970. One place, so every store writes and reads them alike.
enum StoredJSON {
    static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func value<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try decoder.decode(type, from: Data(text.utf8))
    }
}
