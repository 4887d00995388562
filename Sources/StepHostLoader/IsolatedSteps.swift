public import StepHostCore

/// Builds the pipeline steps of loaded plugins by their isolation: `in-process` plugins' steps call the plugin
/// here (and move to a runner child once the plugin is quarantined), `process` plugins' steps run in runners.
public enum IsolatedSteps {
    public static func steps(
        of plugins: [LoadedPlugin],
        isolation: IsolationConfiguration,
        executor: BlockingExecutor,
        stuck: StuckSteps,
        quarantine: QuarantineList,
        environment: ChildEnvironment
    ) -> [any Step] {
        plugins.flatMap { plugin -> [any Step] in
            let policy = isolation.policy(name: plugin.name, fileName: fileName(plugin.file))
            let pool = RunnerPool(
                RunnerPlugin(
                    name: plugin.name,
                    file: plugin.file,
                    fileHash: plugin.fileHash,
                    sealedCopy: plugin.sealedCopy,
                    steps: plugin.steps.map { ($0.name, $0.weight) }
                ),
                limits: policy.limits,
                environment: environment,
                ownsSealedCopy: plugin.isolation == .process
            )
            return plugin.steps.map { step -> any Step in
                let isolated = ProcessStep(step, pool: pool, executor: executor, deadline: policy.deadline)
                if plugin.isolation == .process { return isolated }
                let fallback: any Step =
                    isolation.quarantine == .process ? isolated : RefusedStep(step: step, quarantine: quarantine)
                return InProcessStep(
                    step,
                    executor: executor,
                    deadline: policy.deadline,
                    stuck: stuck,
                    quarantine: (quarantine, fallback)
                )
            }
        }
    }

    static func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// The step of a quarantined plugin when the configuration refuses quarantined plugins: it faults at once.
struct RefusedStep: Step {
    let step: PluginStep
    let quarantine: QuarantineList

    var identity: StepIdentity { step.identity }

    func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        let reason = quarantine.entry(for: step.plugin.name, fileHash: step.plugin.fileHash)?.reason ?? "quarantined"
        return StepResult(
            outcome: .fault(
                "plugin \(step.plugin.name) is quarantined (\(reason)) and the configuration refuses quarantined "
                    + "plugins; deploy a fixed build or run `stephost plugins clear-quarantine \(step.plugin.name)`"
            )
        )
    }
}
