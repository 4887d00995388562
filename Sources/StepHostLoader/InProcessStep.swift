public import StepHostCore

/// A plugin step run in the host's process through the C ABI, as a pipeline step.
///
/// The plugin's function blocks for as long as it likes, so every call runs on a thread of the shared
/// ``BlockingExecutor``, never on Swift's cooperative pool. A checkpoint the plugin asks for is persisted
/// from that thread (through the engine's ``StepContext``) while the plugin waits for the answer.
public struct InProcessStep: Step {
    public let step: PluginStep
    private let executor: BlockingExecutor

    public init(_ step: PluginStep, executor: BlockingExecutor) {
        self.step = step
        self.executor = executor
    }

    /// The steps of `plugins`, sharing one executor of up to `threads` threads (one per operation the
    /// engine runs at once).
    public static func steps(of plugins: [LoadedPlugin], executor: BlockingExecutor) -> [InProcessStep] {
        plugins.flatMap(\.steps).map { InProcessStep($0, executor: executor) }
    }

    public var identity: StepIdentity { step.identity }

    public func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        let document = OperationDocument.json(operation, pass: context.pass)
        let call: @Sendable () -> StepResult = { [step] in
            step.run(
                operationJSON: document,
                minimumLogLevel: context.minimumLogLevel,
                log: { line, declared in context.log(line, declaredSecrets: declared) },
                checkpoint: { changes in
                    // On the plugin's thread, which may block: persist now and let the step go on.
                    switch blockingWait({ try await context.checkpoint(changes) }) {
                    case .success: true
                    case .failure: false
                    }
                }
            )
        }
        // A pass the engine runs on the executor calls its step right here: no hop to another thread and back.
        if executor.isCurrent { return call() }
        return await executor.run(call)
    }
}
