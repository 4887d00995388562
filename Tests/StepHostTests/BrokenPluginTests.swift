import Foundation
import Glibc
import StepHostCore
import StepHostLoader
import Testing

/// One way a plugin file can be broken, and what the report must say about it.
struct BrokenCase: Sendable, CustomTestStringConvertible {
    var label: String
    /// The check the report names.
    var code: PluginLoadError.Code
    /// Text the message must contain: the values found, not just the check.
    var message: String
    /// Puts the broken file(s) into the directory and returns their names.
    var make: @Sendable (TemporaryDirectory) throws -> [String]

    var testDescription: String { label }

    /// A fixture compiled with `defines` into `broken.so`.
    static func fixture(
        _ label: String,
        _ code: PluginLoadError.Code,
        _ message: String,
        _ defines: [String: String]
    ) -> BrokenCase {
        BrokenCase(label: label, code: code, message: message) { directory in
            try compileFixture(directory.file("broken.so"), ["PLUGIN_NAME": cString("broken")].merging(defines) { $1 })
            return ["broken.so"]
        }
    }

    static let all: [BrokenCase] = [
        BrokenCase(label: "empty file", code: .loadFailed, message: "file too short") { directory in
            try directory.write("empty.so", "")
            return ["empty.so"]
        },
        BrokenCase(label: "text file named .so", code: .loadFailed, message: "invalid ELF header") { directory in
            try directory.write("notes.so", String(repeating: "this is a text file, not a shared object\n", count: 4))
            return ["notes.so"]
        },
        // Lengths are size_t: 2^63 and above must read as too large, never as negative (empty).
        fixture(
            "plugin name length SIZE_MAX",
            .invalidPluginName,
            "its plugin name is 18446744073709551615 bytes long, more than 64",
            ["NAME_LEN": "SIZE_MAX"]
        ),
        fixture(
            "version length SIZE_MAX",
            .invalidDescriptor,
            "its version is 18446744073709551615 bytes long, more than 128",
            ["VERSION_LEN": "SIZE_MAX"]
        ),
        fixture(
            "version length 2^63",
            .invalidDescriptor,
            "its version is 9223372036854775808 bytes long, more than 128",
            ["VERSION_LEN": "((size_t)1 << 63)"]
        ),
        fixture(
            "null version pointer",
            .invalidDescriptor,
            "its version is a null pointer with length 5",
            ["PLUGIN_VERSION": "NULL", "VERSION_LEN": "5"]
        ),
        BrokenCase(
            label: "file larger than a plugin may be",
            code: .tooLarge,
            message: "it is 314572800 bytes, more than the 268435456 a plugin may have; it was not read"
        ) { directory in
            // Sparse: 300 MiB that take no disk space, and that the loader must not read.
            let file = directory.file("huge.so")
            try #require(FileManager.default.createFile(atPath: file.path, contents: nil))
            chmod(file.path, 0o644)
            try #require(truncate(file.path, 300 * 1024 * 1024) == 0)
            return ["huge.so"]
        },
        BrokenCase(label: "symlink loop", code: .notRegularFile, message: "it is a symlink loop") { directory in
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("loop.so").path,
                withDestinationPath: "loop.so"
            )
            return ["loop.so"]
        },
        fixture(
            "step_count SIZE_MAX",
            .invalidDescriptor,
            "its step_count (18446744073709551615) is above",
            ["STEP_COUNT": "SIZE_MAX"]
        ),
        fixture(
            "missing entry symbol",
            .missingEntrySymbol,
            "it does not export stephost_plugin_init",
            ["ENTRY_NAME": "some_other_init"]
        ),
        fixture(
            "init returns failure with a message",
            .initFailed,
            "stephost_plugin_init returned status 1: 'license file /etc/fixture.lic not found'",
            ["INIT_FAILS": cString("license file /etc/fixture.lic not found")]
        ),
        fixture(
            "unsupported ABI major",
            .abiVersion,
            "it chose ABI 2.0; this host supports ABI 1.0 to 1.1, and a different major version is incompatible",
            ["ABI_MAJOR": "2", "ABI_MINOR": "0"]
        ),
        // A plugin that refuses the offer but says which version it was built for, and its name (the Swift kit
        // does), is a version mismatch, named, not a vague init failure; its own message is kept.
        fixture(
            "init fails after declaring another ABI major",
            .abiVersion,
            "it chose ABI 2.0; this host supports ABI 1.0 to 1.1, and a different major version is incompatible; "
                + "stephost_plugin_init returned status 1: 'built for ABI 2.0'",
            ["ABI_MAJOR": "2", "ABI_MINOR": "0", "INIT_FAILS_DECLARED": cString("built for ABI 2.0")]
        ),
        // The same refusal with a version this host supports is no mismatch: the plugin's own failure, as given.
        fixture(
            "init fails after declaring a supported ABI version",
            .initFailed,
            "stephost_plugin_init returned status 1: 'license expired'",
            ["INIT_FAILS_DECLARED": cString("license expired")]
        ),
        fixture(
            "newer ABI minor than offered",
            .abiVersion,
            "it chose ABI 1.7, outside the 1.0 to 1.1 this host offered",
            ["ABI_MINOR": "7"]
        ),
        // Each struct is refused below the minimum of the version the plugin chose, naming the struct, the
        // size it declared and the minimum.
        fixture(
            "plugin descriptor struct size too small",
            .structTooSmall,
            "its plugin descriptor struct_size is 8 bytes; ABI 1.0 needs at least 56 "
                + "(stephost_plugin_descriptor up to and including step_count)",
            ["DESCRIPTOR_SIZE": "8", "ABI_MINOR": "0"]
        ),
        fixture(
            "plugin descriptor too small to hold its ABI version",
            .structTooSmall,
            "its plugin descriptor struct_size is 4 bytes, too small to hold abi_version; ABI 1.0 needs at least 56 "
                + "(stephost_plugin_descriptor up to and including step_count)",
            ["DESCRIPTOR_SIZE": "4"]
        ),
        fixture(
            "step descriptor struct size too small",
            .structTooSmall,
            "step 1's descriptor struct_size is 16 bytes; ABI 1.0 needs at least 40 "
                + "(stephost_step_descriptor up to and including step_ctx)",
            ["STEP_SIZE": "16", "ABI_MINOR": "0"]
        ),
        fixture(
            "step descriptor that ends one field early",
            .structTooSmall,
            "step 1's descriptor struct_size is 32 bytes; ABI 1.0 needs at least 40 "
                + "(stephost_step_descriptor up to and including step_ctx)",
            ["STEP_SIZE": "32", "ABI_MINOR": "0"]
        ),
        fixture(
            "plugin descriptor struct size above the host's capacity",
            .invalidDescriptor,
            "its plugin descriptor struct_size is 64 bytes, more than the 56 the host allocated",
            ["DESCRIPTOR_SIZE": "64"]
        ),
        // The version comes first: a plugin of another major is reported for its version, not for a descriptor
        // that is small by 1.0's measure.
        fixture(
            "another ABI major with a descriptor smaller than 1.0's",
            .abiVersion,
            "it chose ABI 2.0; this host supports ABI 1.0 to 1.1, and a different major version is incompatible",
            ["ABI_MAJOR": "2", "ABI_MINOR": "0", "DESCRIPTOR_SIZE": "24"]
        ),
        fixture(
            "step named create_runtime",
            .reservedStepName,
            "step 1 is named 'create_runtime', the host's built-in step",
            ["STEP1_NAME": cString("create_runtime")]
        ),
        fixture(
            "weight 0",
            .invalidWeight,
            "step 'fixture_step' has weight 0, weights start at 1",
            ["STEP1_WEIGHT": "0"]
        ),
        fixture(
            "negative weight",
            .invalidWeight,
            "step 'fixture_step' has weight -5, weights start at 1",
            ["STEP1_WEIGHT": "-5"]
        ),
        fixture(
            "weight 100",
            .invalidWeight,
            "step 'fixture_step' has weight 100, the weight of the built-in create_runtime step",
            ["STEP1_WEIGHT": "100"]
        ),
        fixture(
            "invalid step name",
            .invalidStepName,
            "step 1's name 'bad name' contains ' '; only [A-Za-z0-9_.-] is allowed",
            ["STEP1_NAME": cString("bad name")]
        ),
        fixture(
            "step name that is not UTF-8",
            .invalidStepName,
            "step 1's name is not valid UTF-8",
            ["STEP1_NAME": cString("caf\\xe9")]
        ),
        fixture(
            "step name longer than 64 bytes",
            .invalidStepName,
            "step 1's name is 65 bytes long, more than 64",
            ["STEP1_NAME": cString(String(repeating: "s", count: 65))]
        ),
        fixture(
            "step declared twice in one plugin",
            .invalidStepName,
            "step 'twice' is declared twice",
            [
                "STEP1_NAME": cString("twice"), "STEP2_NAME": cString("twice"), "STEP2_WEIGHT": "20",
            ]
        ),
        fixture("empty plugin name", .invalidPluginName, "its plugin name is empty", ["PLUGIN_NAME": cString("")]),
        fixture("no steps", .invalidDescriptor, "it declares no steps", ["NO_STEPS": ""]),
        BrokenCase(label: "world-writable file", code: .untrustedFile, message: "is writable by others (mode 0757)") {
            directory in
            try compileFixture(directory.file("open.so"), ["PLUGIN_NAME": cString("open")])
            chmod(directory.file("open.so").path, 0o757)
            return ["open.so"]
        },
        BrokenCase(label: "group-writable file", code: .untrustedFile, message: "is writable by its group (mode 0775)")
        {
            directory in
            try compileFixture(directory.file("group.so"), ["PLUGIN_NAME": cString("group")])
            chmod(directory.file("group.so").path, 0o775)
            return ["group.so"]
        },
        BrokenCase(label: "symlink out of the directory", code: .symlinkEscape, message: "outside the plugin directory")
        {
            directory in
            let outside = try TemporaryDirectory("stephost-outside")
            let target = try compileFixture(outside.file("elsewhere.so"), ["PLUGIN_NAME": cString("elsewhere")])
            // Keep the target alive past this closure: the symlink must resolve when the loader looks.
            try FileManager.default.copyItem(at: target, to: URL(fileURLWithPath: directory.path + ".outside.so"))
            symlink(directory.path + ".outside.so", directory.file("escape.so").path)
            return ["escape.so"]
        },
        BrokenCase(label: "directory named .so", code: .notRegularFile, message: "it is not a regular file") {
            directory in
            try FileManager.default.createDirectory(at: directory.file("folder.so"), withIntermediateDirectories: false)
            return ["folder.so"]
        },
        BrokenCase(
            label: "duplicate step name across plugins",
            code: .duplicateStepName,
            message: "is also declared by"
        ) { directory in
            for name in ["first", "second"] {
                try compileFixture(
                    directory.file("\(name).so"),
                    ["PLUGIN_NAME": cString(name), "STEP1_NAME": cString("shared_step")]
                )
            }
            return ["first.so", "second.so"]
        },
        BrokenCase(
            label: "duplicate plugin name",
            code: .duplicatePluginName,
            message: "plugin name 'twin' is also declared by"
        ) { directory in
            try compileFixture(
                directory.file("twin1.so"),
                ["PLUGIN_NAME": cString("twin"), "STEP1_NAME": cString("t1")]
            )
            try compileFixture(
                directory.file("twin2.so"),
                ["PLUGIN_NAME": cString("twin"), "STEP1_NAME": cString("t2")]
            )
            return ["twin1.so", "twin2.so"]
        },
    ]
}

@Suite("Broken plugins are reported, the others still load")
struct BrokenPluginTests {
    @Test(arguments: BrokenCase.all)
    func brokenPluginIsReportedWithReasonWhileTheOthersLoad(_ broken: BrokenCase) throws {
        let directory = try TemporaryDirectory()
        try directory.copyExample("ExampleCPlugin")
        try directory.copyExample("ExampleAuditPlugin")
        let files = try broken.make(directory)
        defer { try? FileManager.default.removeItem(atPath: directory.path + ".outside.so") }

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.map(\.file) == files.map { directory.file($0).path })
        for report in catalog.broken {
            #expect(report.error.code == broken.code, "\(report.error)")
            #expect(report.error.message.contains(broken.message), "\(report.error.message)")
            #expect(!report.error.fix.isEmpty)
        }
        #expect(catalog.plugins.map(\.name) == ["audit", "monitoring"])
        #expect(
            pipelineOrder(catalog).map(\.name) == [
                "configure_monitoring", "open_audit_ticket", "create_runtime", "verify_monitoring",
                "close_audit_ticket",
            ]
        )
    }

    @Test(.enabled(if: geteuid() == 0, "changing a file's owner needs root"))
    func pluginOwnedBySomeoneElseIsRefused() throws {
        let directory = try TemporaryDirectory()
        let file = try compileFixture(directory.file("foreign.so"))
        #expect(chown(file.path, 65_534, 65_534) == 0)
        let catalog = try loadCatalog(directory)
        let report = try #require(catalog.broken.first)
        #expect(report.error.code == .untrustedFile)
        #expect(report.error.message.contains("is owned by uid 65534, neither root nor the host's user"))
        #expect(catalog.plugins.isEmpty)
    }
}
