/// The key of a custom step field: the bytes a plugin sent, compared and ordered as bytes.
///
/// Swift's `String` equality is canonical equivalence, so "é" (U+00E9) and "e" + U+0301 would be one dictionary
/// key and two fields a plugin wrote as different byte sequences would merge. A `FieldKey` is equal to another
/// only when their UTF-8 bytes are, hashes those bytes and sorts by them; its `string` keeps the scalars exactly
/// as they came (Swift never normalizes a `String`'s contents).
public struct FieldKey: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The key's text, exactly as the plugin sent it.
    public let string: String

    public init(_ string: String) {
        self.string = string
    }

    public init(stringLiteral value: String) {
        self.string = value
    }

    public static func == (lhs: FieldKey, rhs: FieldKey) -> Bool {
        lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        for byte in string.utf8 { hasher.combine(byte) }
        hasher.combine(0xFF as UInt8)  // not a UTF-8 byte: ends the key
    }

    public static func < (lhs: FieldKey, rhs: FieldKey) -> Bool {
        lhs.string.utf8.lexicographicallyPrecedes(rhs.string.utf8)
    }

    public var description: String { string }
}
