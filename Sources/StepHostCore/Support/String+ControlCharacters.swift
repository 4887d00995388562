extension String {
    /// The text with every character that could break a line or drive a terminal written as a visible escape:
    /// C0 and C1 control characters and DEL (`\n`, `\r`, `\t`, otherwise `\u{1B}`), the Unicode line and
    /// paragraph separators, and the bidirectional overrides and isolates that reorder what a terminal shows.
    ///
    /// For text a plugin supplied (a version, a message, a field key, a file name) on its way to a terminal
    /// or a log line: it stays on its own line and cannot forge one. JSON output needs none of this.
    package var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: Self.needsEscape) else { return self }
        var result = ""
        result.reserveCapacity(utf8.count + 8)
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where Self.needsEscape(scalar): result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
