import Foundation
import GRDB
import StepHostSQLite
import StepHostStorage
import Testing

/// One bad input: the command, the exit status and message it must give, and proof nothing was written.
struct BadInput: Sendable, CustomTestStringConvertible {
    var label: String
    var status: Int32
    var message: String
    /// Prepares the database file (or not) and returns the arguments.
    var arguments: @Sendable (_ database: String, _ directory: TemporaryDirectory) throws -> [String]

    var testDescription: String { label }

    static func provision(_ label: String, _ parameters: String, _ status: Int32, _ message: String) -> BadInput {
        BadInput(label: label, status: status, message: message) { _, _ in ["provision", "--parameters", parameters] }
    }

    static let all: [BadInput] = [
        provision("malformed JSON", #"{"name": "x""#, 65, "invalid parameters: the parameters are not valid JSON"),
        provision("JSON array", "[1, 2]", 65, "invalid parameters: the parameters must be a JSON object"),
        provision("missing name", #"{"region":"europe-west1"}"#, 65, "name is required and has no default"),
        provision(
            "wrong types",
            #"{"name":"x","autoScalerMin":"two"}"#,
            65,
            "autoScalerMin must be an integer from 1 to 2147483647"
        ),
        BadInput(label: "oversized parameters", status: 65, message: "at most 65536 are accepted") { _, directory in
            let big = #"{"name":"x","blob":""# + String(repeating: "b", count: 70_000) + #""}"#
            return ["provision", "--parameters", "@" + (try directory.write("big.json", big)).path]
        },
        BadInput(label: "missing parameters file", status: 66, message: "cannot read the parameters file") {
            _,
            directory in
            ["provision", "--parameters", "@" + directory.file("absent.json").path]
        },
        BadInput(label: "unknown operation id", status: 66, message: "there is no operation no-such-id") {
            database,
            _ in
            _ = try SQLiteOperationStore(path: database)  // a stephost database without that operation
            return ["operations", "show", "no-such-id"]
        },
        BadInput(label: "no database to list", status: 66, message: "there is no database at") { _, _ in
            ["operations", "list"]
        },
        BadInput(label: "empty SQLite file, not stephost's", status: 74, message: "its schema is missing") {
            database,
            _ in
            _ = try DatabaseQueue(path: database)
            return ["operations", "list"]
        },
        BadInput(
            label: "another application's SQLite database",
            status: 74,
            message: "is an SQLite database of another application (tables: customers, operations)"
        ) { database, _ in
            // Even one with a table named like stephost's: nothing is added, WAL is not switched on.
            let queue = try DatabaseQueue(path: database)
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
                try db.execute(sql: "CREATE TABLE operations (id INTEGER PRIMARY KEY)")
            }
            return ["provision", "--parameters", #"{"name":"x"}"#]
        },
        BadInput(label: "corrupt database", status: 74, message: "is not a stephost database or is damaged") {
            database,
            _ in
            try Data(String(repeating: "garbage ", count: 1000).utf8).write(to: URL(fileURLWithPath: database))
            return ["provision", "--parameters", #"{"name":"x"}"#]
        },
        BadInput(label: "database of a newer schema", status: 78, message: "a newer stephost wrote it") { database, _ in
            let queue = try DatabaseQueue(path: database)
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
                try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v1'), ('v99')")
            }
            return ["provision", "--parameters", #"{"name":"x"}"#]
        },
        BadInput(
            label: "infinite deadline",
            status: 64,
            message: "--deadline-hours must be a number of hours above 0 to 8,760; got inf"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--deadline-hours", "inf"]
        },
        BadInput(
            label: "deadline of zero",
            status: 64,
            message: "--deadline-hours must be a number of hours above 0 to 8,760; got 0.0"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--deadline-hours", "0"]
        },
        BadInput(
            label: "poll interval beyond a Duration",
            status: 64,
            message: "--poll-interval must be a number of seconds from 0.01 to 86,400; got 1e+300"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--poll-interval", "1e300"]
        },
        BadInput(
            label: "negative retry delay",
            status: 64,
            message: "--default-retry-delay must be a number of seconds from 0 to 86,400; got -1.0"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--default-retry-delay=-1"]
        },
        BadInput(
            label: "retry delay not a number",
            status: 64,
            message: "--default-retry-delay must be a number of seconds from 0 to 86,400; got nan"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--default-retry-delay", "nan"]
        },
        BadInput(
            label: "minimum retry delay of zero",
            status: 64,
            message: "--minimum-retry-delay must be a number of seconds from 0.01 to 3,600; got 0.0"
        ) { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--minimum-retry-delay", "0"]
        },
        BadInput(label: "no workers", status: 64, message: "--workers must be a whole number from 1 to 256; got 0") {
            _,
            _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--workers", "0"]
        },
        provision(
            "volume size beyond the schema's 32-bit Int",
            #"{"name":"x","volumeSizeGB":3000000000}"#,
            65,
            "volumeSizeGB must be an integer from 1 to 2147483647"
        ),
        provision(
            "autoscaler maximum beyond the schema's 32-bit Int",
            #"{"name":"x","autoScalerMax":3000000000}"#,
            65,
            "autoScalerMax must be an integer from 1 to 2147483647"
        ),
        provision(
            "component namespace of the wrong type",
            #"{"name":"x","components":[{"name":"istio","namespace":7}]}"#,
            65,
            "components[0].namespace must be a non-empty string"
        ),
        BadInput(label: "empty instance id", status: 64, message: "--instance-id must be 1 to 256 bytes") { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--instance-id", ""]
        },
        BadInput(label: "instance id of 100 KB", status: 64, message: "got 102400 bytes") { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--instance-id", String(repeating: "i", count: 102_400)]
        },
        BadInput(label: "instance id with an escape sequence", status: 64, message: "printable text") { _, _ in
            ["provision", "--parameters", #"{"name":"x"}"#, "--instance-id", "id\u{1B}[2J"]
        },
        BadInput(label: "provisioner url of another scheme", status: 64, message: "must be an http:// or https://") {
            _,
            _ in
            [
                "provision", "--parameters", #"{"name":"x"}"#, "--provisioner", "http", "--provisioner-url",
                "httpx://h/g",
            ]
        },
        BadInput(label: "provisioner url with port 99999", status: 64, message: "has the port 99999") { _, _ in
            [
                "provision", "--parameters", #"{"name":"x"}"#, "--provisioner", "http", "--provisioner-url",
                "http://127.0.0.1:99999/graphql",
            ]
        },
        BadInput(
            label: "http provisioner without url",
            status: 64,
            message: "--provisioner http needs --provisioner-url"
        ) {
            _,
            _ in ["provision", "--parameters", #"{"name":"x"}"#, "--provisioner", "http"]
        },
    ]
}

@Suite("Bad input gets a clear message, a distinct exit status, and writes nothing")
struct BadInputTests {
    @Test(arguments: BadInput.all)
    func badInputIsRefusedWithoutWriting(_ input: BadInput) throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let arguments = try input.arguments(harness.databasePath, harness.directory)
        let before = Self.snapshot(harness.directory)

        let result = try runProcess(
            Paths.stephost,
            arguments + ["--db", harness.databasePath],
            environment: ["STEPHOST_PLUGINS_DIR": harness.plugins.path]
        )

        #expect(result.status == input.status, "\(result.stderr)")
        #expect(result.stderr.contains(input.message), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(Self.snapshot(harness.directory) == before, "the command wrote to the directory")
    }

    /// Bytes that are not UTF-8, given inline, are refused as they are in an @file (Swift would otherwise turn
    /// them into U+FFFD). A shell passes the raw byte; Foundation's Process takes only Strings.
    @Test func parametersThatAreNotUTF8InlineAreRefusedWithoutWriting() throws {
        let harness = try EngineHarness()
        try harness.addExamples()
        let before = Self.snapshot(harness.directory)
        let result = try runProcess(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c", #"exec "$0" provision --parameters "$(printf '{"name":"x","note":"\377"}')" --db "$1""#,
                Paths.stephost.path, harness.databasePath,
            ],
            environment: ["STEPHOST_PLUGINS_DIR": harness.plugins.path]
        )
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("is not UTF-8 text"))
        #expect(Self.snapshot(harness.directory) == before)
    }

    /// Every file of the directory (not the plugins) with its bytes. SQLite's shared-memory index (-shm) and an
    /// empty write-ahead log, which any reader of a WAL database may create, hold no data and are left out.
    static func snapshot(_ directory: TemporaryDirectory) -> [String: Data] {
        var files: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where name != "plugins"
        {
            guard let bytes = try? Data(contentsOf: directory.file(name)) else {
                files[name] = Data("(not a regular file)".utf8)
                continue
            }
            if name.hasSuffix("-shm") || (name.hasSuffix("-wal") && bytes.isEmpty) { continue }
            files[name] = bytes
        }
        return files
    }
}
