import Foundation

/// Numbers, durations and sizes, each checked against its ``SettingRange``.
extension ConfigurationReader {
    static let durationHint = "use 500ms, 30s, 10m, 2h, or a number of seconds"

    /// A bare number in the unit of its flag (`engine.deadline-hours: 24`).
    func number(_ entry: Entry, _ range: SettingRange) throws(ConfigurationFileError) -> Double {
        let value = try text(entry)
        guard let number = Double(value) else {
            throw failure(
                .invalidValue,
                at: entry.value,
                entry.path,
                "must be \(range.requirement); got \(Self.quoted(value))"
            )
        }
        try check(range.problem(number), entry)
        return number
    }

    /// A whole number (`engine.workers: 4`).
    func wholeNumber(_ entry: Entry, _ range: SettingRange) throws(ConfigurationFileError) -> Int {
        let value = try text(entry)
        guard let number = Int(value) else {
            throw failure(
                .invalidValue,
                at: entry.value,
                entry.path,
                "must be \(range.requirement); got \(Self.quoted(value))"
            )
        }
        try check(range.problem(number), entry)
        return number
    }

    /// A duration in seconds: `500ms`, `30s`, `10m`, `2h`, or a bare number of seconds; fractions allowed.
    func seconds(_ entry: Entry, _ range: SettingRange) throws(ConfigurationFileError) -> Double {
        let value = try text(entry)
        guard let seconds = Self.seconds(value) else {
            throw failure(
                .invalidValue,
                at: entry.value,
                entry.path,
                "\(Self.quoted(value)) is not a duration (\(Self.durationHint))"
            )
        }
        try check(range.problem(seconds), entry)
        return seconds
    }

    /// A duration (`deadline: 10m`), checked against `range` in seconds.
    func duration(_ entry: Entry, _ range: SettingRange) throws(ConfigurationFileError) -> Duration {
        .seconds(try seconds(entry, range))
    }

    /// A duration of whole seconds (`cpu-time: 1h`).
    func wholeSeconds(_ entry: Entry, _ range: SettingRange) throws(ConfigurationFileError) -> UInt64 {
        let seconds = try seconds(entry, .number(0...Double(Int.max), unit: "seconds"))
        guard let whole = Int(exactly: seconds) else {
            throw failure(.invalidValue, at: entry.value, entry.path, "must be whole seconds; got \(seconds) seconds")
        }
        try check(range.problem(whole), entry)
        return UInt64(whole)
    }

    /// A size in bytes: a whole number with an optional `KiB`, `MiB`, `GiB` or `TiB` (`address-space: 4GiB`), at
    /// least 1 MiB.
    func bytes(_ entry: Entry) throws(ConfigurationFileError) -> UInt64 {
        let value = try text(entry)
        guard let bytes = Self.bytes(value) else {
            throw failure(
                .invalidValue,
                at: entry.value,
                entry.path,
                "\(Self.quoted(value)) is not a size (use a number of bytes, or 512MiB, 4GiB)"
            )
        }
        guard bytes >= 1 << 20 else {
            throw failure(.invalidValue, at: entry.value, entry.path, "must be at least 1MiB; got \(bytes) bytes")
        }
        return bytes
    }

    private func check(_ problem: String?, _ entry: Entry) throws(ConfigurationFileError) {
        if let problem { throw failure(.invalidValue, at: entry.value, entry.path, problem) }
    }

    /// `text` as seconds, or `nil` when it is not a duration.
    static func seconds(_ text: String) -> Double? {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600)]
        var number = Substring(text)
        var scale = 1.0
        // "ms" before "m" and "s": the longest suffix that matches.
        if let unit = units.first(where: { text.hasSuffix($0.suffix) }) {
            number = text.dropLast(unit.suffix.count)
            if number.last == " " { number = number.dropLast() }
            scale = unit.seconds
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number)
        else { return nil }
        return value * scale
    }

    /// `text` as bytes, or `nil` when it is not a size or does not fit 64 bits.
    static func bytes(_ text: String) -> UInt64? {
        let units: [(suffix: String, shift: UInt64)] = [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)]
        var number = Substring(text)
        var shift: UInt64 = 0
        if let unit = units.first(where: { text.hasSuffix($0.suffix) }) {
            number = text.dropLast(unit.suffix.count)
            if number.last == " " { number = number.dropLast() }
            shift = unit.shift
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(number) else {
            return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }
}
