import Foundation
import Glibc
import StepHostApplication
import StepHostLoader
import Testing

/// What the configuration file refuses before it reads a key: alias bombs, large files, files that are not
/// regular.
@Suite("Configuration file guards")
struct ConfigurationFileGuardTests {
    /// The billion laughs: nine levels of nine aliases each.
    // Without the alias limit Yams takes minutes here (measured: 139 s), hashing the expanded key.
    @Test(.timeLimit(.minutes(1))) func anAliasBombIsRefusedBeforeItExpands() throws {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        for level in 1...8 {
            let aliases = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
            lines.append("a\(level): &a\(level) [\(aliases)]")
        }
        lines.append("? *a8\n: used as a key, it would be hashed once per expanded node")
        let error = try #require(throws: ConfigurationFileError.self) {
            try ConfigurationFile.parse(lines.joined(separator: "\n"), file: "bomb.yaml")
        }
        #expect(error.code == .tooComplex)
        #expect(error.message.contains("uses 73 aliases"), "\(error)")
    }

    /// Within the alias limit, the expanded tree is still counted: 16 aliases of 16 aliases of a long list.
    @Test func aFileThatExpandsPastTheNodeLimitIsRefused() throws {
        let list = Array(repeating: "x", count: 700).joined(separator: ", ")
        let yaml = """
            plugins: { settings: { a: &a [\(list)], b: &b [\(Array(repeating: "*a", count: 8).joined(separator: ", "))],
              c: [\(Array(repeating: "*b", count: 8).joined(separator: ", "))] } }
            """
        let error = try #require(throws: ConfigurationFileError.self) {
            try ConfigurationFile.parse(yaml, file: "wide.yaml")
        }
        #expect(error.code == .tooComplex, "\(error)")
        #expect(error.message.contains("more than 10000 values"), "\(error)")
    }

    @Test func aFewAliasesAreFine() throws {
        let yaml = """
            plugins:
              settings:
                network: &strict { isolation: process, deadline: 30s }
                audit: *strict
            """
        let file = try ConfigurationFile.parse(yaml, file: "stephost.yaml")
        #expect(file.plugins.settings["audit"] == file.plugins.settings["network"])
        #expect(file.plugins.settings["audit"]?.isolation == .process)
    }

    @Test func aFileOverOneMebibyteIsRefused() throws {
        let directory = try TemporaryDirectory()
        let comment = "# " + String(repeating: "x", count: 1_000) + "\n"
        let url = try directory.write("stephost.yaml", String(repeating: comment, count: 1_100))
        let error = try #require(throws: ConfigurationFileError.self) { try ConfigurationFile.load(path: url.path) }
        #expect(error.code == .tooLarge, "\(error)")
        #expect(error.description.hasPrefix("\(url.path): is 1103300 bytes"), "\(error)")
    }

    @Test func aDirectoryOrAFIFOIsNotAConfigurationFile() throws {
        let directory = try TemporaryDirectory()
        let fifo = directory.file("fifo.yaml").path
        try #require(mkfifo(fifo, 0o644) == 0)
        for path in [directory.path, fifo] {
            // A FIFO with no writer would block a plain open: the test returning at all is part of the check.
            let error = try #require(throws: ConfigurationFileError.self) { try ConfigurationFile.load(path: path) }
            #expect(error.code == .notRegularFile, "\(error)")
        }
    }

    @Test func aMissingFileIsNotFound() throws {
        let directory = try TemporaryDirectory()
        let error = try #require(throws: ConfigurationFileError.self) {
            try ConfigurationFile.load(path: directory.file("missing.yaml").path)
        }
        #expect(error.code == .notFound)
    }

    @Test func bytesThatAreNotUTF8AreRefused() throws {
        let directory = try TemporaryDirectory()
        let url = directory.file("stephost.yaml")
        try Data([0x64, 0x62, 0x3A, 0x20, 0xFF, 0x0A]).write(to: url)
        let error = try #require(throws: ConfigurationFileError.self) { try ConfigurationFile.load(path: url.path) }
        #expect(error.code == .notText)
    }

    /// Relative paths in the file are taken from its directory, so the file means the same from anywhere.
    @Test func relativePathsAreTakenFromTheFilesDirectory() throws {
        let directory = try TemporaryDirectory()
        let url = try directory.write("stephost.yaml", "plugins: { directory: plugins }\ndatabase: /abs/db.sqlite\n")
        let file = try ConfigurationFile.load(path: url.path)
        #expect(file.plugins.directory == directory.file("plugins").path)
        #expect(file.database == "/abs/db.sqlite")
    }
}
