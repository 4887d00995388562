import Glibc
public import StepHostCore
import Synchronization

/// A plugin step run in a runner child of its plugin (`process` isolation), as a pipeline step.
///
/// The runner loads the same sealed copy of the plugin through the same loader and serves the same ABI; each
/// callback travels over its pipe and is checked here exactly as an in-process one is (``StepCallRecorder``).
/// A runner that crashes, exits, sends garbage or passes the step's deadline (then it is sent SIGTERM, and
/// SIGKILL after the grace period) ends only this step: it faults naming the step, the plugin and what happened,
/// and the next call starts a new runner.
public struct ProcessStep: Step {
    public let step: PluginStep
    let pool: RunnerPool
    private let executor: BlockingExecutor
    private let deadline: Duration

    init(_ step: PluginStep, pool: RunnerPool, executor: BlockingExecutor, deadline: Duration) {
        self.step = step
        self.pool = pool
        self.executor = executor
        self.deadline = deadline
    }

    public var identity: StepIdentity { step.identity }

    public func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        let document = OperationDocument.json(operation, pass: context.pass)
        let work: @Sendable () -> StepResult = { [self] in call(document, context: context) }
        if executor.isCurrent { return work() }
        return await executor.run(work)
    }

    /// When a step whose runner could not be started (the host was out of descriptors or processes) runs again.
    static let retryAfterSpawnFailure: Duration = .seconds(10)

    private func call(_ document: [UInt8], context: StepContext) -> StepResult {
        let what = "step \(step.name) of plugin \(step.plugin.name)"
        let runner: PluginRunner
        do {
            runner = try pool.acquire()
        } catch  where error.transient {
            var result = StepResult(outcome: .retry(after: Self.retryAfterSpawnFailure))
            result.logs.append(StepLogLine(.warning, "\(what) could not run, retrying: \(error)"))
            return result
        } catch {
            return StepResult(outcome: .fault("\(what) could not run: \(error)"))
        }
        let cancellation = StepCancellation()
        let recorder = StepCallRecorder(
            checkpoint: { changes in
                switch blockingWait({ try await context.checkpoint(changes) }) {
                case .success: true
                case .failure: false
                }
            },
            minimumLogLevel: context.minimumLogLevel,
            log: { line, declared in context.log(line, declaredSecrets: declared) },
            cancellation: cancellation
        )
        let overran = Atomic<Bool>(false)
        let grace = pool.environment.killGrace
        let registration = DeadlineWatch.shared.schedule(at: .now + deadline) {
            guard cancellation.cancel() else { return }
            overran.store(true, ordering: .releasing)
            runner.child.signal(SIGTERM)
            _ = DeadlineWatch.shared.schedule(at: .now + grace) { runner.child.signal(SIGKILL) }
        }
        let end = runner.call(step: step.plugin.stepIndex, document: document, recorder: recorder)
        DeadlineWatch.shared.cancel(registration)
        switch end {
        case .finished(let code) where !overran.load(ordering: .acquiring):
            pool.release(runner)
            return recorder.result(for: code)
        case .finished:
            runner.child.stop()
            pool.lost()
            return StepResult(outcome: .fault(overrun))
        case .broken(let reason):
            pool.lost()
            // Reaped and never used again. A runner that closed its pipe is ending by itself (its pipe closes before
            // it can be reaped): it gets a moment, so its own signal or status is what is reported. One that sent
            // garbage or an oversized message is stopped at once.
            let overranNow = overran.load(ordering: .acquiring)
            let ending =
                overranNow
                ? runner.child.finish(within: grace)
                : reason.isEmpty ? runner.child.finish(within: .seconds(1)) : runner.child.stop()
            if overran.load(ordering: .acquiring) {
                return StepResult(outcome: .fault("\(overrun); its runner \(ending)"))
            }
            let runner = "the runner of plugin \(step.plugin.name)"
            guard !reason.isEmpty else {
                return StepResult(outcome: .fault("\(runner) \(ending) while running step \(step.name)"))
            }
            return StepResult(
                outcome: .fault("\(runner) \(reason) while running step \(step.name); it \(ending)")
            )
        }
    }

    private var overrun: String {
        "step \(step.name) exceeded its deadline of \(deadline.humanText)"
    }
}
