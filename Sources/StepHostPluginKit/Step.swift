/// One provisioning step, written in Swift and exported to the host through the C ABI.
///
/// A step reads the operation, may change its custom fields and add overrides, and returns an
/// ``Outcome``. The host may run a step again (a whole operation is repeated after a retry), so a
/// step must be idempotent: check what an earlier run persisted before doing the work again.
///
/// ```swift
/// struct AllocateSubnet: Step {
///     let name = "allocate_subnet"
///     let weight = 20
///
///     func run(_ operation: ProvisioningOperation) throws -> Outcome {
///         if let subnet = operation.field("subnet")?.stringValue {
///             operation.log(.info, "subnet \(subnet) already allocated")
///             return .done
///         }
///         try operation.setField("subnet", "10.250.0.0/22")
///         return .done
///     }
/// }
/// ```
///
/// - Important: `run` may be called from any thread, concurrently for different operations.
public protocol Step: Sendable {
    /// The step's name: 1 to 64 characters of `[A-Za-z0-9_.-]`, unique across every plugin.
    var name: String { get }

    /// The step's position: below 100 runs before `create_runtime`, above 100 after it. Not 0, not 100.
    var weight: Int { get }

    /// Runs the step for one operation.
    ///
    /// An error thrown from here fails the operation with the error's description as its message.
    func run(_ operation: ProvisioningOperation) throws -> Outcome
}

/// How a step run ends.
public enum Outcome: Sendable, Hashable {
    /// The step finished; the operation goes on to the next step.
    case done
    /// The whole operation is repeated from the first step after the delay.
    case retry(after: Duration)
    /// The operation fails with this message.
    case fail(String)
}

/// The level of a line a step writes to the host's log.
public enum LogLevel: Int32, Sendable, Hashable {
    case debug = 0
    case info = 1
    case warning = 2
    case error = 3
}
