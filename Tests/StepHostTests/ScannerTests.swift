import Foundation
import Logging
import StepHostApplication
import StepHostLoader
import Synchronization
import Testing

/// The scanner: each plugin loads first in a child of its own, and what that child reports is not taken on trust.
@Suite struct ScannerTests {
    /// A plugin whose constructor writes a forged "loaded fine" report to the scanner's pipe and then crashes (as
    /// it would crash the host): the scanner's own ending gives it away, so it is reported broken and never mapped
    /// into the host; a healthy plugin beside it loads.
    @Test func aForgedReportFollowedByACrashIsCaught() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("forger.so"),
            [
                "PLUGIN_NAME": cString("forger"), "STEP1_NAME": cString("forger_step"),
                "CTOR_FORGES_THEN_CRASHES": "",
            ]
        )
        try compileFixture(
            directory.file("healthy.so"),
            ["PLUGIN_NAME": cString("healthy"), "STEP1_NAME": cString("healthy_step")]
        )
        let cache = directory.file("scan-cache.json").path
        let result = try runProcess(
            Paths.stephost,
            ["list-plugins", "--json", "--plugins-dir", directory.path],
            environment: ["STEPHOST_SCAN_CACHE": cache]
        )
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        )
        let broken = try #require(report["broken"] as? [[String: Any]])
        #expect(broken.count == 1)
        #expect(broken.first?["file"] as? String == directory.file("forger.so").path)
        #expect(broken.first?["check"] as? String == "load-crashed")
        #expect(
            (broken.first?["error"] as? String)?.hasPrefix(
                "the scanner that loaded it crashed with signal 11 (SIGSEGV, Segmentation fault) after it reported on it"
            ) == true,
            "\(broken)"
        )
        let plugins = try #require(report["plugins"] as? [[String: Any]])
        #expect(plugins.map { $0["name"] as? String } == ["healthy"])
        // Cached as broken: the next start does not scan it again, and still refuses it.
        let again = try runProcess(
            Paths.stephost,
            ["list-plugins", "--plugins-dir", directory.path],
            environment: ["STEPHOST_SCAN_CACHE": cache]
        )
        #expect(again.status == 1)
        #expect(again.stdout.contains("[load-crashed] the scanner that loaded it crashed with signal 11"))
    }

    /// A hundred plugins scanned cold through the command (scanners run a few at a time): every one loads, and
    /// the second listing comes from the cache.
    @Test func aHundredPluginsScanColdThroughTheCommand() throws {
        let directory = try TemporaryDirectory()
        let failures = Mutex<[String]>([])
        let root = directory.url
        DispatchQueue.concurrentPerform(iterations: 100) { index in
            do {
                try compileFixture(
                    root.appendingPathComponent("p\(index).so"),
                    ["PLUGIN_NAME": cString("p\(index)"), "STEP1_NAME": cString("p\(index)_step")]
                )
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let cache = directory.file("scan-cache.json").path
        for _ in 0..<2 {
            let result = try runProcess(
                Paths.stephost,
                ["list-plugins", "--plugins-dir", directory.path],
                environment: ["STEPHOST_SCAN_CACHE": cache]
            )
            #expect(result.status == 0, "\(result.stdout.suffix(600))")
            #expect(result.stdout.hasSuffix("All 100 plugins loaded.\n"))
        }
        let cached = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cache)))
        #expect(((cached as? [String: Any])?["plugins"] as? [String: Any])?.count == 100)
    }

    /// What a scanner reports is read as the loader reads a plugin's own descriptor: a forged report whose
    /// version is empty is refused as malformed, and the plugin is broken, not accepted.
    @Test func aForgedReportWithAnInvalidVersionIsRefused() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(
            directory.file("forger.so"),
            [
                "PLUGIN_NAME": cString("forger"), "STEP1_NAME": cString("forger_step"),
                "CTOR_FORGES_THEN_EXITS0": "", "FORGED_VERSION": cString(""),
            ]
        )
        let result = try runProcess(
            Paths.stephost,
            ["list-plugins", "--plugins-dir", directory.path],
            environment: ["STEPHOST_SCAN_CACHE": "off"]
        )
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(
            result.stdout.contains(
                "[load-crashed] while loading it, the scanner sent a malformed report (it reported a version the "
                    + "loader would have refused)"
            ),
            "\(result.stdout)"
        )
    }

    /// A scan depends on the host that ran it: the cache keys each record by the host's GNU build-id and the
    /// plugin file's SHA-256, so a record another build of stephost left in a shared cache is not used (here one
    /// that calls a healthy plugin broken), while this build's own record is.
    @Test func aRecordFromAnotherHostBuildIsNotUsed() throws {
        let directory = try TemporaryDirectory()
        let plugin = try compileFixture(
            directory.file("healthy.so"),
            ["PLUGIN_NAME": cString("healthy"), "STEP1_NAME": cString("healthy_step")]
        )
        let sha = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["sha256sum", plugin.path])
        let fileHash = try #require(sha.stdout.split(separator: " ").first.map(String.init))
        let notes = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["readelf", "-n", Paths.stephost.path])
        let buildID = try #require(
            notes.stdout.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last
                .map(String.init)
        )
        let cache = directory.file("scan-cache.json").path
        func forge(_ key: String) throws {
            let record: [String: Any] = [
                "file": plugin.path, "scannedAt": 0,
                "failure": ["code": "load-crashed", "message": "forged by another build", "fix": "none"],
            ]
            let file: [String: Any] = ["version": 2, "plugins": [key: record]]
            try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: cache))
            chmod(cache, 0o600)
        }
        func listPlugins() throws -> ProcessResult {
            try runProcess(
                Paths.stephost,
                ["list-plugins", "--plugins-dir", directory.path],
                environment: ["STEPHOST_SCAN_CACHE": cache]
            )
        }
        try forge("0123456789abcdef:\(fileHash)")
        let fresh = try listPlugins()
        #expect(fresh.status == 0, "\(fresh.stdout)")
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cache)))
        let keys = ((stored as? [String: Any])?["plugins"] as? [String: Any])?.keys.sorted() ?? []
        #expect(keys.contains("\(buildID):\(fileHash)"), "\(keys)")

        try forge("\(buildID):\(fileHash)")
        let cached = try listPlugins()
        #expect(cached.status == 1)
        #expect(cached.stdout.contains("[load-crashed] forged by another build"), "\(cached.stdout)")
    }
}
