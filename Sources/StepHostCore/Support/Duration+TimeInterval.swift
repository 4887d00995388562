package import Foundation

extension Duration {
    /// The duration in seconds, for `Date` arithmetic.
    package var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in milliseconds, rounded to microseconds, for step histories and messages.
    package var milliseconds: Double {
        (timeInterval * 1_000_000).rounded() / 1000
    }

    /// A duration of `seconds` (which may have a fractional part), as CLI options give it.
    package static func seconds(fractional seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
}

extension Duration {
    /// The duration for people: "250 ms", "30 s", "10 min", "2 h", "1 h 30 min"; what configuration files and
    /// messages show.
    public var humanText: String {
        let milliseconds = Int64(timeInterval * 1000)
        if milliseconds < 1000 || milliseconds % 1000 != 0 { return "\(milliseconds) ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 || seconds % 60 != 0 { return "\(seconds) s" }
        let minutes = seconds / 60
        if minutes < 60 { return "\(minutes) min" }
        return minutes % 60 == 0 ? "\(minutes / 60) h" : "\(minutes / 60) h \(minutes % 60) min"
    }
}
