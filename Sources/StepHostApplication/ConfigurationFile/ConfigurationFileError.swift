/// Why a configuration file was refused: the file, the line and the key when there is one, and what to write
/// instead. Its description is one line an operator can act on:
/// `stephost.yaml:7: plugins.settings.network.deadline: "30 parsecs" is not a duration (use 500ms, 30s, 10m, 2h)`.
public struct ConfigurationFileError: Error, Sendable, CustomStringConvertible {
    /// The kind of problem; new kinds may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case notFound, unreadable, notRegularFile, tooLarge, notText, syntax, tooComplex
            case duplicateKey, unknownKey, wrongType, invalidValue
        }

        private let value: Value

        /// The file does not exist.
        public static let notFound = Code(value: .notFound)
        /// The file cannot be opened or read.
        public static let unreadable = Code(value: .unreadable)
        /// The path names a directory, a FIFO, a device: not a regular file.
        public static let notRegularFile = Code(value: .notRegularFile)
        /// The file is larger than ``ConfigurationFile/maximumSize``.
        public static let tooLarge = Code(value: .tooLarge)
        /// The file is not UTF-8 text.
        public static let notText = Code(value: .notText)
        /// The file is not valid YAML.
        public static let syntax = Code(value: .syntax)
        /// Too many nodes or aliases: a small file that expands without bound (an alias bomb).
        public static let tooComplex = Code(value: .tooComplex)
        /// A key appears twice in one mapping.
        public static let duplicateKey = Code(value: .duplicateKey)
        /// A key stephost does not know.
        public static let unknownKey = Code(value: .unknownKey)
        /// A mapping where a value belongs, a list where a mapping belongs, and so on.
        public static let wrongType = Code(value: .wrongType)
        /// A value of the right type out of range or malformed: a duration, a size, a number, a choice.
        public static let invalidValue = Code(value: .invalidValue)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// The file as it was named.
    public var file: String
    /// The line, counted from 1, when the problem has one.
    public var line: Int?
    /// The key's path from the top of the file (`plugins.settings.network.deadline`), when there is one.
    public var key: String?
    /// What is wrong and what to write instead.
    public var message: String

    public init(_ code: Code, file: String, line: Int? = nil, key: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key.map { "\($0): " } ?? "")\(message)"
    }
}
