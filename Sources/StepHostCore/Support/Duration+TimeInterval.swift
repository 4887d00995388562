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
