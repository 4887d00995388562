import Foundation
import Glibc
import Testing

/// A real child process that runs beside the test: a provisioner stand-in, or a host to kill.
final class BackgroundProcess {
    let process = Process()
    private let output = Pipe()

    /// Starts `executable`; its standard output can be read line by line, its standard error is discarded.
    init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The first line the process prints (up to 4 KiB), or `nil` if it exits first.
    func firstLine() -> String? {
        var bytes: [UInt8] = []
        let handle = output.fileHandleForReading
        while bytes.count < 4096 {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Sends SIGKILL and waits for the process to end.
    func killNow() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// Polls `condition` every 50 ms for up to `seconds`; a bounded wait, never a timing assertion.
func eventually(within seconds: Double = 30, _ condition: () throws -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
