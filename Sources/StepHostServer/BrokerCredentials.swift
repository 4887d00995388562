import Crypto
public import Foundation

/// The one username and password the broker accepts (HTTP basic authentication).
///
/// Compared in constant time: both the given and the expected pair are hashed with SHA-256 and the digests compared
/// byte by byte without an early exit, so neither the position of the first wrong byte nor the length of the
/// password shows in the time a refusal takes.
public struct BrokerCredentials: Sendable {
    public let username: String
    private let digest: [UInt8]

    public init(username: String, password: String) {
        self.username = username
        digest = Self.digest(username, password)
    }

    /// Whether `username` and `password` are the expected ones.
    public func accepts(username: String, password: String) -> Bool {
        let given = Self.digest(username, password)
        var difference: UInt8 = 0
        for index in 0..<digest.count { difference |= digest[index] ^ given[index] }
        return difference == 0
    }

    private static func digest(_ username: String, _ password: String) -> [UInt8] {
        // The length prefix keeps "a:b" + "c" apart from "a" + "b:c".
        Array(SHA256.hash(data: Data("\(username.utf8.count):\(username)\(password)".utf8)))
    }

    /// The credentials from `STEPHOST_BROKER_USERNAME` and `STEPHOST_BROKER_PASSWORD`, else from `file` (one line
    /// `username:password`; it must not be readable by group or others), else `nil`.
    ///
    /// - Throws: ``CredentialsError`` with what is wrong and how to fix it.
    public static func load(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(CredentialsError) -> BrokerCredentials? {
        let user = environment["STEPHOST_BROKER_USERNAME"] ?? ""
        let password = environment["STEPHOST_BROKER_PASSWORD"] ?? ""
        if !user.isEmpty || !password.isEmpty {
            guard !user.isEmpty, !password.isEmpty else {
                throw CredentialsError(
                    "STEPHOST_BROKER_USERNAME and STEPHOST_BROKER_PASSWORD must be set together; one of them is empty"
                )
            }
            guard !user.contains(":") else {
                throw CredentialsError(
                    "STEPHOST_BROKER_USERNAME must not contain ':' (basic authentication splits there)"
                )
            }
            return BrokerCredentials(username: user, password: password)
        }
        guard let file else { return nil }
        var info = stat()
        guard stat(file, &info) == 0 else {
            throw CredentialsError("cannot read the credentials file \(file): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw CredentialsError(
                "the credentials file \(file) is readable or writable by group or others (mode "
                    + "\(String(info.st_mode & 0o777, radix: 8))); run `chmod 600 \(file)`"
            )
        }
        guard info.st_size <= 4096, let data = FileManager.default.contents(atPath: file),
            let text = String(data: data, encoding: .utf8)
        else {
            throw CredentialsError("the credentials file \(file) must be one UTF-8 line `username:password`")
        }
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, line.index(after: colon) != line.endIndex
        else {
            throw CredentialsError(
                "the credentials file \(file) must hold one line `username:password` with neither part empty"
            )
        }
        return BrokerCredentials(
            username: String(line[..<colon]),
            password: String(line[line.index(after: colon)...])
        )
    }
}

/// Why the broker's credentials could not be loaded.
public struct CredentialsError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
