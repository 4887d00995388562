/// An error the plugin kit raises when the host refuses a call or the operation cannot be read.
public struct PluginKitError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for the operation's failure message.
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
