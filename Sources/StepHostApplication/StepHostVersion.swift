import StepHostLoader

/// This build's version, as `stephost --version` and the status page show it.
public enum StepHostVersion {
    public static let current = "0.9.0"

    /// "stephost 0.9.0 (plugin ABI 1.0 to 1.1)".
    public static var text: String {
        "stephost \(current) (plugin ABI \(PluginLoader.supportedVersions.lowerBound) to "
            + "\(PluginLoader.supportedVersions.upperBound))"
    }
}
