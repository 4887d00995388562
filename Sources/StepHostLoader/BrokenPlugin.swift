/// A plugin file that failed a check. None of its steps are used.
public struct BrokenPlugin: Error, Hashable, Sendable {
    /// The file's path in the plugin directory.
    public var file: String
    /// The plugin's name, when it got far enough to declare one.
    public var name: String?
    /// The check it failed and why.
    public var error: PluginLoadError

    public init(file: String, name: String? = nil, error: PluginLoadError) {
        self.file = file
        self.name = name
        self.error = error
    }
}
