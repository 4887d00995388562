import Foundation

/// The values one numeric host setting accepts, shared by its command-line flag and its key in the configuration
/// file, so both refuse the same values in the same words. Checked before anything is opened or written: a
/// value `Duration` cannot hold (inf, nan, 1e300) would otherwise stop the host after the database was created.
public struct SettingRange: Sendable, Hashable {
    private enum Kind: Sendable, Hashable {
        case number(unit: String, bounds: ClosedRange<Double>, excludingLowerBound: Bool)
        case wholeNumber(ClosedRange<Int>)
    }

    private let kind: Kind

    /// A number of `unit` in `bounds`, fractions allowed; `excludingLowerBound` makes the range open below.
    public static func number(_ bounds: ClosedRange<Double>, unit: String, excludingLowerBound: Bool = false) -> Self {
        Self(kind: .number(unit: unit, bounds: bounds, excludingLowerBound: excludingLowerBound))
    }

    /// A whole number in `bounds`.
    public static func wholeNumber(_ bounds: ClosedRange<Int>) -> Self {
        Self(kind: .wholeNumber(bounds))
    }

    /// What the setting accepts, to follow "must be": "a number of seconds from 0.01 to 86400".
    public var requirement: String {
        switch kind {
        case .number(let unit, let bounds, let excludingLowerBound):
            let low =
                excludingLowerBound ? "above \(bounds.lowerBound.formatted())" : "from \(bounds.lowerBound.formatted())"
            return "a number of \(unit) \(low) to \(bounds.upperBound.formatted())"
        case .wholeNumber(let bounds):
            return "a whole number from \(bounds.lowerBound) to \(bounds.upperBound)"
        }
    }

    /// Why `value` is refused ("must be a number of ...; got 0.0"), or `nil` when it is in range.
    public func problem(_ value: Double) -> String? {
        guard case .number(_, let bounds, let excludingLowerBound) = kind else {
            guard let whole = Int(exactly: value) else { return "must be \(requirement); got \(value)" }
            return problem(whole)
        }
        guard value.isFinite, bounds.contains(value), !(excludingLowerBound && value == bounds.lowerBound) else {
            return "must be \(requirement); got \(value)"
        }
        return nil
    }

    /// Why `value` is refused ("must be a whole number from 1 to 256; got 0"), or `nil` when it is in range.
    public func problem(_ value: Int) -> String? {
        guard case .wholeNumber(let bounds) = kind else { return problem(Double(value)) }
        return bounds.contains(value) ? nil : "must be \(requirement); got \(value)"
    }
}

/// The ranges of the engine's settings: the `--poll-interval`… flags and the `engine:` keys of the file.
extension SettingRange {
    public static let pollInterval = number(0.01...86_400, unit: "seconds")
    public static let provisionerTimeout = number(0.1...3_600, unit: "seconds")
    public static let deadlineHours = number(0...8_760, unit: "hours", excludingLowerBound: true)
    public static let defaultRetryDelay = number(0...86_400, unit: "seconds")
    public static let minimumRetryDelay = number(0.01...3_600, unit: "seconds")
    public static let lease = number(1...86_400, unit: "seconds")
    public static let workers = wholeNumber(1...256)
    public static let maximumHostDeaths = wholeNumber(1...100)
    /// `stephost serve`: the port (0: any free one) and the grace period of a shutdown.
    public static let port = wholeNumber(0...65_535)
    public static let shutdownGrace = number(0...3_600, unit: "seconds")
    public static let idleTimeout = number(1...3_600, unit: "seconds")
}

/// The ranges of the isolation settings (`plugins:` in the file).
extension SettingRange {
    /// A step deadline: above 0, at most a year, as an operation's.
    public static let stepDeadline = number(0...31_536_000, unit: "seconds", excludingLowerBound: true)
    public static let initTimeout = number(0...3_600, unit: "seconds", excludingLowerBound: true)
    public static let killGrace = number(0...3_600, unit: "seconds")
    public static let maximumStuckThreads = wholeNumber(0...1_024)
    /// RLIMIT_CPU, whole seconds: at least one, at most a year.
    public static let cpuSeconds = wholeNumber(1...31_536_000)
    /// RLIMIT_NOFILE: a runner needs a few descriptors for its pipes and the plugin; Linux's default `nr_open`
    /// is the ceiling.
    public static let openFiles = wholeNumber(16...1_048_576)
}

extension HostConfiguration {
    /// Why `text` cannot be a Runtime Provisioner URL ("must be an http:// or https:// URL…", to follow the name of
    /// the flag or key), or `nil` when it can.
    public static func provisionerURLProblem(_ text: String) -> String? {
        guard let components = URLComponents(string: text),
            ["http", "https"].contains(components.scheme?.lowercased() ?? ""), !(components.host ?? "").isEmpty
        else {
            return "must be an http:// or https:// URL with a host, for example http://127.0.0.1:8080/graphql"
        }
        if let port = components.port, !(1...65_535).contains(port) {
            return "has the port \(port); a port is 1 to 65535"
        }
        return nil
    }
}
