// A Swift plugin through the plugin kit whose step traps: fatalError stops the process with SIGILL (SIGTRAP on
// arm64), the way a force unwrap of nil, an index out of range or an overflow does in a Swift plugin. The kit
// cannot turn a trap into a failed step: only running the plugin out of process keeps the host up.
//
// Built by compileSwiftTrapFixture (Tests/StepHostTests/Support/FaultFixtures.swift) together with a generated
// file that defines fixturePluginName, fixtureStepName, fixtureStepWeight and fixtureOnlyWhenName: when that is
// not nil, only an operation whose "name" parameter is that value traps; any other is done at once.
public import StepHostABI
import StepHostPluginKit

@c @implementation
public func stephost_plugin_init(
    _ offer: UnsafePointer<stephost_host_offer>?,
    _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
) -> stephost_status {
    Plugin(name: fixturePluginName, version: "1.0.0", steps: [TrappingStep()]).export(offer, descriptor)
}

/// Logs, then traps.
struct TrappingStep: Step {
    let name = fixtureStepName
    let weight = fixtureStepWeight

    func run(_ operation: ProvisioningOperation) throws -> Outcome {
        if let only = fixtureOnlyWhenName, operation.parameters["name"] != .string(only) { return .done }
        operation.log(.info, "about to trap")
        fatalError("fixture_swift_trap: a Swift trap in a step's run function")
    }
}
