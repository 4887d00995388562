public import StepHostCore
import Synchronization

/// A plugin step run in the host's process through the C ABI, as a pipeline step.
///
/// The plugin's function blocks for as long as it likes, so every call runs on a thread of the shared
/// ``BlockingExecutor``, never on Swift's cooperative pool. A checkpoint the plugin asks for is persisted
/// from that thread (through the engine's ``StepContext``) while the plugin waits for the answer.
///
/// Every run has a deadline. The host cannot stop a thread, so when a run passes it, the step's `is_cancelled`
/// turns true, the run ends as a fault ("exceeded its deadline"), and the pass goes on without it, while the
/// plugin's thread is counted in ``StuckSteps`` until it returns (its late result is discarded).
public struct InProcessStep: Step {
    public let step: PluginStep
    private let executor: BlockingExecutor
    private let deadline: Duration
    private let stuck: StuckSteps
    /// Where the step runs instead once its plugin is quarantined (a runner child).
    private let quarantine: (list: QuarantineList, fallback: any Step)?

    public init(
        _ step: PluginStep,
        executor: BlockingExecutor,
        deadline: Duration = .seconds(600),
        stuck: StuckSteps = StuckSteps(limit: 4),
        quarantine: (list: QuarantineList, fallback: any Step)? = nil
    ) {
        self.step = step
        self.executor = executor
        self.deadline = deadline
        self.stuck = stuck
        self.quarantine = quarantine
    }

    public var identity: StepIdentity { step.identity }

    public func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        if let quarantine, quarantine.list.contains(step.plugin) {
            return await quarantine.fallback.run(operation, context: context)
        }
        let document = OperationDocument.json(operation, pass: context.pass)
        let cancellation = StepCancellation()
        let call: @Sendable () -> StepResult = { [step] in
            step.run(
                operationJSON: document,
                minimumLogLevel: context.minimumLogLevel,
                log: { line, declared in context.log(line, declaredSecrets: declared) },
                cancellation: cancellation,
                checkpoint: { changes in
                    // On the plugin's thread, which may block: persist now and let the step go on.
                    switch blockingWait({ try await context.checkpoint(changes) }) {
                    case .success: true
                    case .failure: false
                    }
                }
            )
        }
        // What the deadline reports is built only if it passes: a step that ends in time pays nothing for it.
        let (step, deadline, operationID) = (self.step, self.deadline, operation.id)
        let overrun: @Sendable () -> (StepResult, String) = {
            (
                StepResult(
                    outcome: .fault(
                        "step \(step.name) exceeded its deadline of \(deadline.humanText); the host stopped "
                            + "waiting for it (an in-process step's thread cannot be stopped: it stays busy until the "
                            + "step returns, and whatever it returns then is discarded)"
                    )
                ),
                "step \(step.name) of plugin \(step.plugin.name), operation \(operationID)"
            )
        }
        let stuck = self.stuck
        return await withUnsafeContinuation { continuation in
            let race = FirstResult(continuation)
            let registration = DeadlineWatch.shared.schedule(at: .now + deadline) {
                guard cancellation.cancel() else { return }
                let (result, description) = overrun()
                race.finish(result) { stuck.began(description) }
            }
            // The pass waits here, so its thread (when it runs on the executor) takes the call itself, next; and the
            // pass, resumed by the call, goes on on that thread too.
            executor.runNext { [executor] in
                // The deadline may have passed before the call began: then it never begins (and no thread is stuck).
                if let stuckToken = race.finishedBeforeTheCall() {
                    if let token = stuckToken { stuck.ended(token) }
                    return
                }
                let result = call()
                DeadlineWatch.shared.cancel(registration)
                let stuckToken = executor.handingOff { race.finish(result, ifFirst: { nil }) }
                if let token = stuckToken ?? nil { stuck.ended(token) }
            }
        }
    }
}

/// Resumes a continuation with whichever result comes first: the step's, or its deadline's.
private final class FirstResult: Sendable {
    private struct State: @unchecked Sendable {
        // Unchecked: the continuation is resumed once, under the lock.
        var continuation: UnsafeContinuation<StepResult, Never>?
        var stuckToken: Int?
    }
    private let state: Mutex<State>

    init(_ continuation: UnsafeContinuation<StepResult, Never>) {
        state = Mutex(State(continuation: continuation))
    }

    /// The deadline's result: resumes with it unless the step's came first, recording the stuck run under the
    /// same lock (so a step that returns a moment later finds it).
    func finish(_ result: StepResult, recording: () -> Int) {
        state.withLock { state in
            guard let continuation = state.continuation else { return }
            state.continuation = nil
            state.stuckToken = recording()
            continuation.resume(returning: result)
        }
    }

    /// `nil` while the run may begin; once the deadline's result came first, the stuck run's token.
    func finishedBeforeTheCall() -> Int?? {
        state.withLock { state in state.continuation == nil ? .some(state.stuckToken) : .none }
    }

    /// The step's result: resumes with it if it is first. Returns `nil` if it was first, else the stuck run's
    /// token.
    func finish(_ result: StepResult, ifFirst: () -> Int?) -> Int?? {
        state.withLock { state in
            guard let continuation = state.continuation else { return .some(state.stuckToken) }
            state.continuation = nil
            continuation.resume(returning: result)
            return .none
        }
    }
}
