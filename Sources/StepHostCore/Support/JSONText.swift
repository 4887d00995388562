import Foundation

/// JSON as text: custom fields are kept as one JSON value text per key, so the host never
/// re-interprets what a step wrote beyond checking that it is valid.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
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

    /// A JSON object whose members are the given key and JSON value texts, keys sorted.
    public static func object(_ members: [String: String]) -> String {
        "{" + members.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
    }

    /// The members of a JSON object, each value as compact JSON text.
    public static func members(of object: String) throws -> [String: String] {
        guard let parsed = try JSONSerialization.jsonObject(with: Data(object.utf8)) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt)
        }
        var members: [String: String] = [:]
        for (key, value) in parsed {
            members[key] = try compact(value)
        }
        return members
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
