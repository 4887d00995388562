import Foundation
import StepHostCore
import StepHostLoader
import Testing

/// Runs steps of real plugins through the C ABI and checks what the host receives.
@Suite("Calling steps through the ABI")
struct StepCallTests {
    static func operation(fields: String = "{}", parameters: String = #"{"name":"demo"}"#) -> [UInt8] {
        Array(
            #"{"id":"op-12345678-abcd","instance_id":"inst-1","type":"provision","pass":1,"attempt":1,"parameters":\#(parameters),"fields":\#(fields)}"#
                .utf8
        )
    }

    /// A checkpoint that the "host" persisted.
    static let persisted: @Sendable (OperationChanges) -> Bool = { _ in true }

    func step(_ name: String, in products: [String]) throws -> PluginStep {
        let directory = try TemporaryDirectory()
        for product in products { try directory.copyExample(product) }
        let catalog = try loadCatalog(directory)
        return try #require(catalog.plugins.flatMap(\.steps).first { $0.name == name })
    }

    @Test func swiftStepAllocatesOnceAndReusesThePersistedFieldOnTheNextPass() throws {
        let allocate = try step("allocate_subnet", in: ["ExampleNetworkPlugin"])

        var checkpointed = OperationChanges()
        let first = allocate.run(operationJSON: Self.operation()) { changes in
            checkpointed = changes
            return true
        }
        #expect(first.outcome == .done)
        let subnet = try #require(first.changes.fields.first { $0.key == "subnet" }?.json)
        #expect(subnet.hasPrefix(#""10."#) && subnet.hasSuffix(#"/22""#))
        #expect(first.checkpoints == 1)
        #expect(checkpointed.fields.map(\.key) == ["subnet"])
        #expect(first.componentOverrides.map(\.component) == ["istio"])

        // A repeated pass finds the field and does not allocate again, but rebuilds the override.
        let second = allocate.run(
            operationJSON: Self.operation(fields: #"{"subnet":\#(subnet)}"#),
            checkpoint: Self.persisted
        )
        #expect(second.outcome == .done)
        #expect(second.changes.fields.isEmpty)
        #expect(second.checkpoints == 0)
        #expect(second.componentOverrides == first.componentOverrides)
    }

    /// A checkpoint the host could not persist (a full disk, a conflicting writer) reaches the step as an
    /// error, and the Swift kit fails the step with it instead of going on as if the field were safe.
    @Test func checkpointTheHostCannotPersistFailsTheStep() throws {
        let allocate = try step("allocate_subnet", in: ["ExampleNetworkPlugin"])
        var attempts = 0
        let result = allocate.run(operationJSON: Self.operation()) { _ in
            attempts += 1
            return false
        }
        #expect(attempts == 1)
        #expect(result.checkpoints == 1)
        #expect(result.outcome == .fail("the host refused checkpoint (status 1)"))
        #expect(result.componentOverrides.isEmpty)  // it stopped before adding its override
    }

    @Test func secretOverrideIsFlaggedAndRedactedWhenPrinted() throws {
        let dns = try step("configure_dns", in: ["ExampleNetworkPlugin"])
        let result = dns.run(
            operationJSON: Self.operation(parameters: #"{"name":"demo","domain":"demo.test"}"#),
            checkpoint: Self.persisted
        )
        #expect(result.outcome == .done)
        let secret = try #require(result.componentOverrides.first { $0.override.key == "provider.apiKey" })
        #expect(secret.override.secret)
        #expect(secret.override.value == "dns-key-inst-1")
        #expect(secret.description == "dns: provider.apiKey=<redacted>")
        #expect(!"\(result.componentOverrides)".contains("dns-key-inst-1"))
        #expect(result.labels.map(\.value) == ["demo.test"])
    }

    @Test func swiftStepFailureCarriesItsMessage() throws {
        let close = try step("close_audit_ticket", in: ["ExampleAuditPlugin"])
        let result = close.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(result.outcome == .fail("no audit ticket: open_audit_ticket (weight 50) must run before this step"))
    }

    @Test func swiftStepThatCannotReadItsParametersFailsInsteadOfCrashing() throws {
        let dns = try step("configure_dns", in: ["ExampleNetworkPlugin"])
        let result = dns.run(operationJSON: Self.operation(parameters: #"{"domain":7}"#), checkpoint: Self.persisted)
        guard case .fail(let message) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        #expect(message.contains("the parameters cannot be read as Parameters"))
    }

    @Test func cStepAsksForRetryThenFinishesOnceItsFieldIsPersisted() throws {
        let verify = try step("verify_monitoring", in: ["ExampleCPlugin"])
        let first = verify.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(first.outcome == .retry(after: .milliseconds(500)))
        #expect(first.changes.fields.map(\.key) == ["monitoring_probe_started"])
        #expect(first.changes.fields.map(\.json) == ["true"])
        let second = verify.run(
            operationJSON: Self.operation(fields: #"{"monitoring_probe_started": true}"#),
            checkpoint: Self.persisted
        )
        #expect(second.outcome == .done)
        #expect(second.logs.map(\.message) == ["monitoring answered the probe"])
    }

    @Test(arguments: [
        (3, "the plugin broke the ABI: the step returned the unknown outcome code 7"),
        (4, "the plugin broke the ABI: set_field: the value of field 'broken' is not valid UTF-8 JSON"),
        (
            5,
            "the plugin broke the ABI: set_field: field 'stephost_state' uses the prefix 'stephost', reserved for the host"
        ),
        (
            13,
            "the plugin broke the ABI: add_label: the value of 'k' is 18446744073709551615 bytes long, more than 1048576"
        ),
        (
            14,
            "the plugin broke the ABI: add_global_override: the value of 'k' is 18446744073709551615 bytes long, "
                + "more than 1048576"
        ),
        (
            15,
            "the plugin broke the ABI: add_component_override: the key is 18446744073709551615 bytes long, "
                + "more than 1048576"
        ),
        (18, "the plugin broke the ABI: set_error: the message is a null pointer with length 5"),
        (21, "the plugin broke the ABI: set_field: the value of field 'deep' is nested 512 levels deep, more than 64"),
        (
            22,
            "the plugin broke the ABI: set_field: the value of field 'bom' begins with a byte-order mark; JSON "
                + "values are plain UTF-8"
        ),
        (
            23,
            "the plugin broke the ABI: set_field: the value of field 'wide' holds the control byte 0x0; JSON values "
                + "are UTF-8 text (UTF-16 and UTF-32 are refused)"
        ),
        (24, "the plugin broke the ABI: set_field: the value of field 'big' is 71680 bytes, more than 65536"),
        (
            16,
            "the plugin broke the ABI: set_field: the value of field 'f' is 18446744073709551615 bytes long, "
                + "more than 1048576"
        ),
    ])
    func pluginThatBreaksTheABIIsAFault(mode: Int, message: String) throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("faulty.so"), ["RUN_MODE": "\(mode)"])
        let step = try #require(try loadCatalog(directory).plugins.first?.steps.first)
        let result = step.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(result.outcome == .fault(message))
        #expect(result.changes.fields.isEmpty)
    }

    /// A context kept from an earlier call is refused, and nothing is written through it: before, that was a
    /// use-after-free that could write into another operation's call.
    @Test func contextKeptFromAnEarlierCallIsRefusedAndAFault() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("keeper.so"), ["RUN_MODE": "25"])
        let step = try #require(try loadCatalog(directory).plugins.first?.steps.first)
        let first = step.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(first.outcome == .done)
        let second = step.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(
            second.outcome
                == .fault(
                    "the plugin broke the ABI: set_field was given a call context that is stale or belongs to "
                        + "another call"
                )
        )
        #expect(first.changes.fields.isEmpty && second.changes.fields.isEmpty)
    }

    /// A callback from a thread of the plugin's own, with the call's context, is refused: callbacks belong to
    /// the thread of their call.
    @Test func callbackFromAnotherThreadIsRefusedAndAFault() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("threaded.so"), ["RUN_MODE": "26"])
        let step = try #require(try loadCatalog(directory).plugins.first?.steps.first)
        let result = step.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(
            result.outcome
                == .fault("the plugin broke the ABI: set_field was called from a thread other than the call's")
        )
        #expect(result.changes.fields.isEmpty)
    }

    /// Lines below the log level are dropped as they arrive, never buffered; the rest reach the host's log
    /// while the step runs (before its checkpoint here), not when it returns.
    @Test func logLinesAreFilteredAndWrittenAsTheyArrive() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("chatty.so"), ["RUN_MODE": "27"])
        let step = try #require(try loadCatalog(directory).plugins.first?.steps.first)

        var streamed: [StepLogLine] = []
        var streamedBeforeCheckpoint = 0
        let result = step.run(
            operationJSON: Self.operation(),
            minimumLogLevel: .warning,
            log: { line, _ in streamed.append(line) },
            checkpoint: { _ in
                streamedBeforeCheckpoint = streamed.count
                return true
            }
        )
        #expect(result.outcome == .done)
        #expect(streamed.count == 1500)
        #expect(streamed.allSatisfy { $0.level == .error })
        #expect(streamedBeforeCheckpoint == 1500)
        #expect(result.logs.isEmpty)

        // Without a sink, what is kept is bounded and says how much was dropped.
        let buffered = step.run(operationJSON: Self.operation(), minimumLogLevel: .warning, checkpoint: Self.persisted)
        #expect(buffered.logs.count == 1000 + 1)  // the bound, and the line that counts the rest
        #expect(buffered.logs.dropLast().allSatisfy { $0.level == .error })
        #expect(buffered.logs.last?.message == "500 more log lines of this step were dropped")
    }

    /// 2^63 is where a size_t turns negative as a Swift Int: it must still read as too long.
    @Test func lengthOfTwoToTheSixtyThirdIsTooLongNotEmpty() throws {
        let directory = try TemporaryDirectory()
        try compileFixture(directory.file("huge.so"), ["RUN_MODE": "13", "HUGE_LEN": "((size_t)1 << 63)"])
        let step = try #require(try loadCatalog(directory).plugins.first?.steps.first)
        let result = step.run(operationJSON: Self.operation(), checkpoint: Self.persisted)
        #expect(
            result.outcome
                == .fault(
                    "the plugin broke the ABI: add_label: the value of 'k' is 9223372036854775808 bytes long, "
                        + "more than 1048576"
                )
        )
        #expect(result.labels.isEmpty)
    }

    @Test func cFixtureStepReportsDoneRetryAndFail() throws {
        let directory = try TemporaryDirectory()
        for (mode, name) in [(0, "done"), (1, "retry"), (2, "fail")] {
            try compileFixture(
                directory.file("\(name).so"),
                ["RUN_MODE": "\(mode)", "PLUGIN_NAME": cString(name), "STEP1_NAME": cString("\(name)_step")]
            )
        }
        let steps = try loadCatalog(directory).plugins.flatMap(\.steps)
        let outcomes = Dictionary(
            uniqueKeysWithValues: steps.map {
                ($0.name, $0.run(operationJSON: Self.operation(), checkpoint: Self.persisted))
            }
        )
        #expect(outcomes["done_step"]?.outcome == .done)
        #expect(outcomes["done_step"]?.changes.fields.map(\.json) == [#""done_step""#])
        #expect(outcomes["retry_step"]?.outcome == .retry(after: .milliseconds(250)))
        #expect(outcomes["fail_step"]?.outcome == .fail("fixture failure"))
    }
}
