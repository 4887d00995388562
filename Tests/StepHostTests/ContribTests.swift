import Foundation
import Glibc
import Testing

/// The systemd unit in contrib/: systemd itself accepts it, and its command line starts a real `stephost serve`.
@Suite("contrib: the systemd unit")
struct ContribTests {
    static let unit = Paths.packageRoot.appendingPathComponent("contrib/stephost.service")
    static let config = Paths.packageRoot.appendingPathComponent("contrib/stephost.yaml")

    /// `systemd-analyze verify` finds nothing to say about it (it reports an unknown key or a bad value on standard
    /// error and still exits 0, so both are checked).
    @Test func systemdAcceptsTheUnit() throws {
        let directory = try TemporaryDirectory("stephost-unit")
        // The binary must exist where ExecStart names it: point it at the one just built.
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/stephost", with: Paths.stephost.path)
        let copy = try directory.write("stephost.service", text)
        let verify = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["systemd-analyze", "verify", copy.path])
        #expect(verify.status == 0 && verify.stderr.isEmpty, "\(verify.stderr)")
        for line in ["Restart=on-failure", "User=stephost", "KillSignal=SIGTERM", "NoNewPrivileges=yes"] {
            #expect(text.contains("\n\(line)\n"), "the unit lacks \(line)")
        }
    }

    /// The unit's ExecStart, with its paths moved into a temporary directory, starts a server that answers with
    /// the credentials systemd would hand it, and stops with status 0 on the SIGTERM systemd sends.
    @Test func theUnitsCommandLineServes() throws {
        let directory = try TemporaryDirectory("stephost-unit")
        let plugins = try servePlugins(directory, examples: true)
        let credentials = directory.file("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: false)
        let broker = credentials.appendingPathComponent("broker")
        try Data("platform:s3cret-unit\n".utf8).write(to: broker)
        chmod(broker.path, 0o400)  // as LoadCredential= leaves it
        let config = try directory.write(
            "stephost.yaml",
            try String(contentsOf: Self.config, encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/lib/stephost/plugins", with: plugins.path)
                .replacingOccurrences(of: "port: 8080", with: "port: 0")
        )
        let unit = try String(contentsOf: Self.unit, encoding: .utf8)
        let execStart = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let words = execStart.dropFirst("ExecStart=".count).split(separator: " ").map {
            $0.replacingOccurrences(of: "/etc/stephost/stephost.yaml", with: config.path)
                .replacingOccurrences(of: "/var/lib/stephost", with: directory.path)
                .replacingOccurrences(of: "${CREDENTIALS_DIRECTORY}", with: credentials.path)
        }
        #expect(words.first == "/usr/local/bin/stephost" && words.dropFirst().first == "serve")
        let process = Process()
        process.executableURL = Paths.stephost
        process.arguments = Array(words.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging([
            "STEPHOST_BROKER_USERNAME": "", "STEPHOST_BROKER_PASSWORD": "",
        ]) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let line = String(
            decoding: output.fileHandleForReading.availableDataUntilNewline(),
            as: UTF8.self
        )
        let port = try #require(
            line.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression).flatMap {
                Int(line[$0].split(separator: ":")[1])
            },
            "the unit's command line did not start a server: \(line)"
        )
        let authorization = "Basic " + Data("platform:s3cret-unit".utf8).base64EncodedString()
        let catalog = try LoopbackHTTP.send(
            port: port,
            "GET",
            "/v2/catalog",
            headers: [("Authorization", authorization), ("X-Broker-API-Version", "2.16")]
        )
        #expect(catalog.status == 200, "\(catalog)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: directory.file("stephost.sqlite").path))
    }
}

extension FileHandle {
    /// Bytes up to the first newline (or the end).
    func availableDataUntilNewline() -> Data {
        var bytes = Data()
        while let byte = readData(ofLength: 1).first, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return bytes
    }
}
