import ArgumentParser
import Foundation
import StepHostABIText
import StepHostApplication
import StepHostCore
import StepHostLoader
import StepHostTemplates

/// `stephost new-plugin --language swift|c|rust NAME`: a ready-to-build plugin project with one step, a test and
/// a README.
struct NewPlugin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-plugin",
        abstract: "Write a ready-to-build plugin project (Swift, C or Rust) with one step, a test and a README.",
        discussion: """
            The project goes into a new directory (--output, default ./NAME); nothing is overwritten. Each \
            exports only stephost_plugin_init, and its step is idempotent (it records what it decided in a custom \
            field and reads it back on the next pass). Then:
              swift: swift build -c release && swift test   (the kit is fetched from --kit-url at --kit-version, \
            with traits: [] so none of the host's dependencies are)
              c:     make && make test
              rust:  cargo build --offline --release && cargo test --offline
            and `stephost check-plugin` on the library it built.
            """
    )

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case swift, c, rust
    }

    @Option(help: "The project's language: swift, c or rust.")
    var language: Language

    @Argument(help: "The plugin's name: 1 to 64 characters of a-z, 0-9, '-' and '_', starting with a letter.")
    var name: String

    @Option(
        help: ArgumentHelp("Where to write the project (default: ./NAME); it must not exist.", valueName: "directory")
    )
    var output: String?

    @Option(help: "The step's weight: below 100 runs before create_runtime, above 100 after it.")
    var weight: Int = 50

    @Option(help: ArgumentHelp("swift: the git URL of the stephost repository the kit comes from.", valueName: "url"))
    var kitURL = NewPlugin.defaultKitURL

    @Option(help: ArgumentHelp("swift: the kit's version (a tag of that repository).", valueName: "version"))
    var kitVersion = NewPlugin.kitVersion

    static let defaultKitURL = "https://github.com/stephost/stephost"
    /// The release the kit's dependency line asks for: the repository's tags are MAJOR.MINOR.PATCH, with the
    /// ABI's major and minor (README, Releasing).
    static let kitVersion = "\(ABIVersion.current.major).\(ABIVersion.current.minor).0"

    func validate() throws {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), let first = bytes.first, (0x61...0x7A).contains(first),
            bytes.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F })
        else {
            throw ValidationError(
                "the plugin name '\(name.escapingControlCharacters)' must be 1 to 64 characters of a-z, 0-9, '-' and '_', "
                    + "starting with a letter (it names the plugin, its step, its library and its module)"
            )
        }
        guard weight >= 1, weight != 100, weight <= Int(Int32.max) else {
            throw ValidationError("--weight must be at least 1 and not 100 (create_runtime's); got \(weight)")
        }
        guard !kitURL.isEmpty, !kitURL.contains("\""), !kitURL.contains("\\"), !kitURL.contains("\n") else {
            throw ValidationError("--kit-url must be a URL without quotes, backslashes or newlines")
        }
        guard kitVersion.split(separator: ".").count == 3,
            kitVersion.split(separator: ".").allSatisfy({ Int($0) != nil })
        else {
            throw ValidationError(
                "--kit-version must be MAJOR.MINOR.PATCH, for example \(Self.kitVersion); got \(kitVersion)"
            )
        }
    }

    func run() throws {
        let directory = output ?? name
        guard !FileManager.default.fileExists(atPath: directory) else {
            printError("stephost: \(directory) already exists; pass --output with a new directory")
            throw ExitCode.validationFailure
        }
        let files: [(String, String)] =
            switch language {
            case .swift: swiftProject()
            case .c: cProject()
            case .rust: rustProject()
            }
        do {
            for (path, text) in files {
                let url = URL(fileURLWithPath: directory).appendingPathComponent(path)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(),
                    withIntermediateDirectories: true
                )
                try Data(text.utf8).write(to: url, options: .withoutOverwriting)
            }
        } catch {
            printError("stephost: writing \(directory) failed: \(error)")
            throw ExitStatus.failed
        }
        print("wrote \(language.rawValue) plugin project \(name) to \(directory)/ (\(files.count) files)")
        print(nextSteps(directory))
    }

    private func nextSteps(_ directory: String) -> String {
        switch language {
        case .swift:
            """
            next: cd \(directory) && swift build -c release && swift test
                  stephost check-plugin .build/release/lib\(name).so
            """
        case .c:
            """
            next: cd \(directory) && make && make test
                  stephost check-plugin \(name).so
            """
        case .rust:
            """
            next: cd \(directory) && cargo build --offline --release && cargo test --offline
                  stephost check-plugin target/release/lib\(rustLibrary).so
            """
        }
    }

    // MARK: names

    /// `billing-sync` → `BillingSync`.
    private var typeName: String {
        name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined()
    }
    /// `billing-sync` → `billing_sync_step`.
    private var stepName: String { name.replacingOccurrences(of: "-", with: "_") + "_step" }
    /// The custom field the step records its decision in.
    private var fieldName: String { name.replacingOccurrences(of: "-", with: "_") + "_account" }
    private var cName: String { name.replacingOccurrences(of: "-", with: "_") }
    private var rustLibrary: String { "stephost_" + cName }

    private static let exportsMap = """
        /* Linker version script: the plugin exports only the ABI's entry point; everything else stays inside it. */
        {
          global: stephost_plugin_init;
          local: *;
        };

        """

    private static var header: String {
        String(
            decoding: UnsafeRawBufferPointer(start: stephost_abi_header_bytes(), count: stephost_abi_header_length()),
            as: UTF8.self
        )
    }

    /// The package identity SwiftPM gives the repository at `kitURL`: its last path component, without `.git`.
    private var kitPackage: String {
        var last = kitURL.split(separator: "/").last.map(String.init) ?? "stephost"
        if last.hasSuffix(".git") { last.removeLast(4) }
        return last.lowercased()
    }

    // MARK: Swift

    private func swiftProject() -> [(String, String)] {
        let steps = "\(typeName)Steps"
        let plugin = "\(typeName)Plugin"
        let package = """
            // swift-tools-version:6.1
            import PackageDescription

            let package = Package(
                name: "\(name)",
                products: [
                    // The plugin: lib\(name).so, which the host loads from its plugin directory.
                    .library(name: "\(name)", type: .dynamic, targets: ["\(plugin)"])
                ],
                dependencies: [
                    // The plugin kit and the ABI only: `traits: []` turns off the trait "Host", so none of the host's own
                    // dependencies are resolved. The package is named after the URL's last path component.
                    .package(url: "\(kitURL)", from: "\(kitVersion)", traits: [])
                ],
                targets: [
                    // The steps, as a library of their own so the tests can use them.
                    .target(name: "\(steps)", dependencies: [.product(name: "StepHostPluginKit", package: "\(kitPackage)")]),
                    // The entry point, linked with a version script so the library exports it alone.
                    .target(
                        name: "\(plugin)",
                        dependencies: [
                            "\(steps)", .product(name: "StepHostPluginKit", package: "\(kitPackage)"),
                            .product(name: "StepHostABI", package: "\(kitPackage)"),
                        ],
                        linkerSettings: [
                            .unsafeFlags(["-Xlinker", "--version-script=\\(Context.packageDirectory)/exports.map"])
                        ]
                    ),
                    .testTarget(
                        name: "\(steps)Tests",
                        dependencies: ["\(steps)", .product(name: "StepHostPluginKit", package: "\(kitPackage)")]
                    ),
                ]
            )

            """
        let step = """
            import StepHostPluginKit

            /// The plugin: its name, version and steps (\(plugin) exports it to the host).
            public let \(typeName.prefix(1).lowercased() + typeName.dropFirst())Plugin = Plugin(
                name: "\(name)",
                version: "0.1.0",
                steps: [\(typeName)Step()]
            )

            /// The plugin's one step (weight \(weight): \(weight < 100 ? "before" : "after") create_runtime).
            ///
            /// It decides an account once and records it in the custom field `\(fieldName)`; every later pass (a retry,
            /// a restart, another host) reads it back instead of deciding again, so the step is idempotent. Overrides and
            /// labels last one pass, so it adds them on every pass.
            public struct \(typeName)Step: Step {
                public let name = "\(stepName)"
                public let weight = \(weight)

                public init() {}

                /// The parameters the step reads. The host applies its defaults first: `region` is always there.
                struct Parameters: Decodable {
                    var name: String
                    var region: String
                }

                public func run(_ operation: ProvisioningOperation) throws -> Outcome {
                    let parameters = try operation.parameters(as: Parameters.self)
                    let account: String
                    if let recorded = operation.field("\(fieldName)")?.stringValue {
                        account = recorded
                    } else {
                        account = "acct-\\(parameters.name)"
                        try operation.setField("\(fieldName)", account)
                        // Persisted now: a host that dies after this line does not decide again.
                        try operation.checkpoint()
                    }
                    try operation.addGlobalOverride(key: "global.\(cName).account", value: account)
                    try operation.addGlobalOverride(key: "global.\(cName).region", value: parameters.region)
                    operation.log(.info, "\(name): account \\(account) in \\(parameters.region)")
                    return .done
                }
            }

            """
        let entry = """
            public import StepHostABI
            import StepHostPluginKit
            import \(steps)

            /// The one symbol the library exports: the host calls it once when it loads the plugin.
            @c @implementation
            public func stephost_plugin_init(
                _ offer: UnsafePointer<stephost_host_offer>?,
                _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
            ) -> stephost_status {
                \(typeName.prefix(1).lowercased() + typeName.dropFirst())Plugin.export(offer, descriptor)
            }

            """
        let test = """
            import StepHostPluginKit
            import Testing
            import \(steps)

            /// The step run on operations made for the test (ProvisioningOperation's test initializer), which records
            /// what the step did instead of sending it to a host.
            @Test func decidesTheAccountOnceAndAddsTheOverridesOnEveryPass() throws {
                let parameters: [String: JSONValue] = ["name": "demo", "region": "europe-west4"]
                let first = ProvisioningOperation(pass: 1, parameters: parameters)
                #expect(try \(typeName)Step().run(first) == .done)
                let recorded = try #require(first.recording)
                #expect(recorded.fields == ["\(fieldName)": "acct-demo"])
                #expect(recorded.checkpoints == 1)
                #expect(recorded.overrides.map(\\.key) == ["global.\(cName).account", "global.\(cName).region"])

                // The next pass sees the field the first one stored and decides nothing again.
                let second = ProvisioningOperation(pass: 2, parameters: parameters, fields: first.fields)
                #expect(try \(typeName)Step().run(second) == .done)
                #expect(second.recording?.fields.isEmpty == true)
                #expect(second.recording?.overrides == recorded.overrides)
            }

            @Test func refusesParametersWithoutAName() throws {
                #expect(throws: (any Error).self) { try \(typeName)Step().run(ProvisioningOperation(parameters: [:])) }
            }

            """
        let readme = """
            # \(name): a stephost step plugin in Swift

            One step, `\(stepName)` (weight \(weight), \(weight < 100 ? "before" : "after") `create_runtime`): it decides an
            account once, records it in the custom field `\(fieldName)`, and adds the global overrides
            `global.\(cName).account` and `global.\(cName).region` on every pass.

            ```sh
            swift build -c release          # .build/release/lib\(name).so
            swift test                      # the step, on operations made for the test
            stephost check-plugin .build/release/lib\(name).so
            install -m 0644 .build/release/lib\(name).so /etc/stephost/plugins/\(name).so
            ```

            - The kit comes from `\(kitURL)` at `\(kitVersion)` or later with `traits: []`, which leaves out
              every dependency of the host itself: the plugin resolves the kit and the ABI only.
            - `exports.map` keeps every symbol but `stephost_plugin_init` inside the library
              (`stephost check-plugin` warns otherwise).
            - Steps receive the parameters with the host's defaults applied (`region` is always set), and
              must be idempotent: a retry or a restart runs them again on what they stored.

            """
        return [
            ("Package.swift", package),
            ("exports.map", Self.exportsMap),
            ("Sources/\(steps)/\(typeName)Step.swift", step),
            ("Sources/\(plugin)/Entry.swift", entry),
            ("Tests/\(steps)Tests/\(typeName)StepTests.swift", test),
            ("README.md", readme),
            (".gitignore", ".build/\n.swiftpm/\n"),
        ]
    }

    // MARK: C

    private func cProject() -> [(String, String)] {
        let source = """
            // The `\(name)` stephost plugin, in C against stephost.h only (`stephost plugin-header` prints it).
            //
            // One step, \(stepName) (weight \(weight)): it decides an account once and records it in the custom field
            // \(fieldName); a later pass (a retry, a restart) finds the field and does not decide again, so the step is
            // idempotent. Overrides last one pass, so it adds them on every pass.
            #define _GNU_SOURCE
            #include <stdbool.h>
            #include <string.h>

            #include "stephost.h"

            // Whether the host's call holds everything ABI 1.0 has (a newer host's larger structs are fine).
            static bool call_is_complete(const stephost_step_call *call) {
                return call->struct_size >= STEPHOST_SIZE_THROUGH(stephost_step_call, services) && call->services != NULL &&
                       call->services->struct_size >= STEPHOST_SIZE_THROUGH(stephost_call_services, set_error);
            }

            // Whether the operation's "fields" object has the member `key` (quoted): the first pass has not.
            static bool has_field(const stephost_step_call *call, const char *quoted_key, size_t length) {
                const char *fields = memmem(call->operation_json, call->operation_json_len, STEPHOST_LITERAL("\\"fields\\""));
                if (fields == NULL) return false;
                size_t rest = call->operation_json_len - (size_t)(fields - call->operation_json);
                return memmem(fields, rest, quoted_key, length) != NULL;
            }

            static stephost_outcome run_\(cName)(void *step_ctx, const stephost_step_call *call) {
                (void)step_ctx;
                if (!call_is_complete(call)) return STEPHOST_OUTCOME_FAIL;
                const stephost_call_services *s = call->services;
                if (!has_field(call, STEPHOST_LITERAL("\\"\(fieldName)\\""))) {
                    if (s->set_field(call->ctx, STEPHOST_LITERAL("\(fieldName)"), STEPHOST_LITERAL("\\"acct-\(name)\\"")) != STEPHOST_STATUS_OK ||
                        s->checkpoint(call->ctx) != STEPHOST_STATUS_OK) {
                        s->set_error(call->ctx, STEPHOST_LITERAL("the host refused the account field"));
                        return STEPHOST_OUTCOME_FAIL;
                    }
                }
                if (s->add_global_override(call->ctx, STEPHOST_LITERAL("global.\(cName).account"), STEPHOST_LITERAL("acct-\(name)"), 0) !=
                    STEPHOST_STATUS_OK) {
                    s->set_error(call->ctx, STEPHOST_LITERAL("the host refused the account override"));
                    return STEPHOST_OUTCOME_FAIL;
                }
                s->log(call->ctx, STEPHOST_LOG_INFO, STEPHOST_LITERAL("\(name): account acct-\(name)"));
                return STEPHOST_OUTCOME_DONE;
            }

            static const stephost_step_descriptor step = {
                .struct_size = sizeof(stephost_step_descriptor),
                .weight = \(weight),
                .name = STEPHOST_LITERAL("\(stepName)"),
                .run = run_\(cName),
                .step_ctx = NULL,
            };
            static const stephost_step_descriptor *const steps[] = {&step};

            stephost_status stephost_plugin_init(const stephost_host_offer *offer, stephost_plugin_descriptor *descriptor) {
                if (offer == NULL || descriptor == NULL) return STEPHOST_STATUS_INVALID_ARGUMENT;
                uint32_t wanted = STEPHOST_ABI_VERSION(1, 0);
                if (offer->abi_min > wanted || offer->abi_max < wanted ||
                    descriptor->struct_size < STEPHOST_SIZE_THROUGH(stephost_plugin_descriptor, step_count)) {
                    return STEPHOST_STATUS_ERROR;
                }
                descriptor->abi_version = wanted;
                descriptor->name = "\(name)";
                descriptor->name_len = sizeof("\(name)") - 1;
                descriptor->version = "0.1.0";
                descriptor->version_len = 5;
                descriptor->steps = steps;
                descriptor->step_count = 1;
                return STEPHOST_STATUS_OK;
            }

            """
        let test = """
            // A test of the \(name) plugin without a host: it loads \(name).so, negotiates, and runs the step twice
            // through a recording services table (first pass, then a pass that sees the field the first stored).
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <stdio.h>
            #include <string.h>

            #include "stephost.h"

            static int fields_set, overrides_added, checkpoints;

            static stephost_status set_field(void *ctx, const char *key, size_t key_len, const char *json, size_t json_len) {
                (void)ctx, (void)json, (void)json_len;
                if (key_len == strlen("\(fieldName)") && memcmp(key, "\(fieldName)", key_len) == 0) fields_set++;
                return STEPHOST_STATUS_OK;
            }
            static stephost_status remove_field(void *ctx, const char *key, size_t key_len) { (void)ctx, (void)key, (void)key_len; return STEPHOST_STATUS_OK; }
            static stephost_status add_component_override(void *ctx, const char *c, size_t cl, const char *k, size_t kl, const char *v, size_t vl, int32_t s) {
                (void)ctx, (void)c, (void)cl, (void)k, (void)kl, (void)v, (void)vl, (void)s;
                overrides_added++;
                return STEPHOST_STATUS_OK;
            }
            static stephost_status add_global_override(void *ctx, const char *k, size_t kl, const char *v, size_t vl, int32_t s) {
                (void)ctx, (void)k, (void)kl, (void)v, (void)vl, (void)s;
                overrides_added++;
                return STEPHOST_STATUS_OK;
            }
            static stephost_status add_label(void *ctx, const char *k, size_t kl, const char *v, size_t vl) { (void)ctx, (void)k, (void)kl, (void)v, (void)vl; return STEPHOST_STATUS_OK; }
            static void log_line(void *ctx, stephost_log_level level, const char *m, size_t ml) { (void)ctx, (void)level; printf("  log: %.*s\\n", (int)ml, m); }
            static stephost_status checkpoint(void *ctx) { (void)ctx; checkpoints++; return STEPHOST_STATUS_OK; }
            static void set_retry_after(void *ctx, uint64_t ms) { (void)ctx, (void)ms; }
            static void set_error(void *ctx, const char *m, size_t ml) { (void)ctx; printf("  error: %.*s\\n", (int)ml, m); }
            static void report_error(void *ctx, const char *m, size_t ml) { (void)ctx; printf("  init error: %.*s\\n", (int)ml, m); }

            static int failures;
            #define CHECK(condition) do { if (!(condition)) { printf("FAILED: %s (line %d)\\n", #condition, __LINE__); failures++; } } while (0)

            static stephost_outcome run(const stephost_step_descriptor *step, const char *json) {
                static const stephost_call_services services = {
                    sizeof services, set_field, remove_field, add_component_override, add_global_override, add_label,
                    log_line, checkpoint, set_retry_after, set_error, NULL,
                };
                stephost_step_call call = {sizeof call, json, strlen(json), NULL, &services};
                return step->run(step->step_ctx, &call);
            }

            int main(void) {
                void *library = dlopen("./\(name).so", RTLD_NOW | RTLD_LOCAL);
                if (library == NULL) { printf("FAILED: %s\\n", dlerror()); return 1; }
                stephost_plugin_init_fn init = (stephost_plugin_init_fn)dlsym(library, "stephost_plugin_init");
                CHECK(init != NULL);
                if (init == NULL) return 1;
                stephost_host_services host = {sizeof host, NULL, report_error, log_line};
                stephost_host_offer offer = {sizeof offer, STEPHOST_ABI_VERSION(1, 0), STEPHOST_ABI_VERSION(STEPHOST_ABI_CURRENT_MAJOR, STEPHOST_ABI_CURRENT_MINOR), &host};
                stephost_plugin_descriptor descriptor = {.struct_size = sizeof descriptor};
                CHECK(init(&offer, &descriptor) == STEPHOST_STATUS_OK);
                CHECK(descriptor.step_count == 1);
                const stephost_step_descriptor *step = descriptor.steps[0];
                CHECK(step->weight == \(weight));

                CHECK(run(step, "{\\"id\\":\\"op\\",\\"pass\\":1,\\"parameters\\":{\\"name\\":\\"demo\\"},\\"fields\\":{}}") == STEPHOST_OUTCOME_DONE);
                CHECK(fields_set == 1 && checkpoints == 1 && overrides_added == 1);
                // The next pass: the field is there, nothing is decided again; the override comes again.
                CHECK(run(step, "{\\"id\\":\\"op\\",\\"pass\\":2,\\"parameters\\":{\\"name\\":\\"demo\\"},\\"fields\\":{\\"\(fieldName)\\":\\"acct-\(name)\\"}}") == STEPHOST_OUTCOME_DONE);
                CHECK(fields_set == 1 && checkpoints == 1 && overrides_added == 2);
                printf(failures == 0 ? "ok: \(name)\\n" : "%d check(s) failed\\n", failures);
                return failures == 0 ? 0 : 1;
            }

            """
        let makefile = """
            # The \(name) stephost plugin: `make` builds \(name).so, `make test` runs its test.
            CC ?= cc
            CFLAGS ?= -O2 -g
            CFLAGS += -std=c11 -Wall -Wextra -Werror -fPIC -Iinclude
            # Export only the entry point (exports.map).
            LDFLAGS += -shared -Wl,--version-script=exports.map

            all: \(name).so

            \(name).so: \(name).c include/stephost.h exports.map
            \t$(CC) $(CFLAGS) $(LDFLAGS) -o $@ \(name).c

            test_\(cName): test_\(cName).c include/stephost.h
            \t$(CC) -std=c11 -Wall -Wextra -Werror -Iinclude -o $@ test_\(cName).c -ldl

            test: \(name).so test_\(cName)
            \t./test_\(cName)

            clean:
            \trm -f \(name).so test_\(cName)

            .PHONY: all test clean

            """
        let readme = """
            # \(name): a stephost step plugin in C

            One step, `\(stepName)` (weight \(weight), \(weight < 100 ? "before" : "after") `create_runtime`). It
            decides an account once, records it in the custom field `\(fieldName)`, and adds the global override
            `global.\(cName).account` on every pass.

            ```sh
            make            # \(name).so, exporting only stephost_plugin_init (exports.map)
            make test       # loads \(name).so and runs the step twice through a recording host
            stephost check-plugin \(name).so
            install -m 0644 \(name).so /etc/stephost/plugins/
            ```

            `include/stephost.h` is the header of the stephost that wrote this project (`stephost plugin-header`
            prints the one of any host). Use `STEPHOST_LITERAL("text")` for every literal you pass with its length.

            """
        return [
            ("\(name).c", source),
            ("test_\(cName).c", test),
            ("include/stephost.h", Self.header),
            ("exports.map", Self.exportsMap),
            ("Makefile", makefile),
            ("README.md", readme),
            (".gitignore", "\(name).so\ntest_\(cName)\n"),
        ]
    }

    // MARK: Rust

    /// The Rust example plugin's crate with the plugin's, step's, crate's and library's names replaced: its
    /// bindings (`src/abi.rs`, checked against stephost.h by the stephost test suite, with `const` assertions of
    /// every size and offset), its host-call wrappers and its tests come as they are.
    private func rustProject() -> [(String, String)] {
        var files: [(String, String)] = []
        for index in 0..<stephost_rust_template_count() {
            guard let path = stephost_rust_template_path(index), let bytes = stephost_rust_template_bytes(index) else {
                continue
            }
            var text = String(
                decoding: UnsafeRawBufferPointer(start: bytes, count: stephost_rust_template_length(index)),
                as: UTF8.self
            )
            for (from, to) in [
                ("stephost-rust-example", "stephost-\(name)"), ("stephost_rust_example", rustLibrary),
                ("rust-example", name), ("label_cost_center", stepName),
                ("const STEP_WEIGHT: i32 = 40;", "const STEP_WEIGHT: i32 = \(weight);"),
                (
                    "(weight 40, before create_runtime)",
                    "(weight \(weight), \(weight < 100 ? "before" : "after") create_runtime)"
                ),
            ] {
                text = text.replacingOccurrences(of: from, with: to)
            }
            files.append((String(cString: path), text))
        }
        let readme = """
            # \(name): a stephost step plugin in Rust

            Made by `stephost new-plugin --language rust` from stephost's Rust example: one step, `\(stepName)`
            (weight \(weight)), which records a cost center once in the custom field `rust_cost_center` and adds the
            global override `global.costCenter` on every pass. No dependencies: it builds offline.

            ```sh
            cargo build --offline --release      # target/release/lib\(rustLibrary).so, exporting only stephost_plugin_init
            cargo test --offline                 # the step, the ABI negotiation and the layout assertions
            stephost check-plugin target/release/lib\(rustLibrary).so
            install -m 0644 target/release/lib\(rustLibrary).so /etc/stephost/plugins/\(name).so
            ```

            `src/abi.rs` holds `#[repr(C)]` bindings of stephost.h, checked against the header by stephost's own
            tests; its `const` assertions pin every struct's size and every field's offset, so a binding that drifts
            does not compile. `panic = "abort"` keeps a panic from unwinding into the host.

            """
        files.append(("README.md", readme))
        files.append((".gitignore", "target/\n"))
        return files
    }
}
