import Logging
import StepHostABI
import StepHostCore

/// Calls one plugin's `stephost_plugin_init` with the host's offer and validates what it filled in.
///
/// The host checks the ABI version the plugin chose before it trusts the descriptor's layout, then reads
/// each struct the plugin wrote through ``StructLayout``: refused below the minimum of that version, and
/// read only as far as the plugin declared and the host knows. It names the struct, the field and the
/// values whenever something does not fit (PostgreSQL's magic-block rule).
struct PluginNegotiation {
    /// A failed check, with the plugin's name when it declared one.
    struct Failure: Error {
        var name: String?
        var error: PluginLoadError
    }

    let file: String
    let fileHash: String
    let logger: Logger

    /// The descriptor's capacity: the size of the descriptor this host knows.
    static let descriptorSize = MemoryLayout<stephost_plugin_descriptor>.size
    /// The least struct_size that holds the version a plugin chose.
    private static let abiVersionEnd = StructLayout<stephost_plugin_descriptor>.Minimum.through(
        "abi_version",
        \.abi_version
    ).size
    /// Room past the descriptor, so a plugin that writes more than it was given corrupts nothing.
    private static let guardBytes = 256
    /// More steps than this is a corrupt descriptor, not a plugin.
    static let maximumSteps = 4096

    func run(_ entry: stephost_plugin_init_fn) throws(Failure) -> LoadedPlugin {
        let context = InitContext(logger: logger, file: file)
        let (status, raw) = callInit(entry, context: context)
        defer { raw.deallocate() }
        // The host allocated the descriptor, so it can be copied whatever the plugin declared; the copy is zero
        // past the declared size, so a field the plugin did not declare is absent. Nothing in it is trusted yet.
        let size = Int(raw.load(as: UInt32.self))
        let descriptor = StructLayout<stephost_plugin_descriptor>.copy(raw, declaredSize: size)

        guard status == STEPHOST_STATUS_OK else {
            let reason = context.errorMessage.map { "'\($0)'" } ?? "no message (it did not call report_error)"
            // A plugin that refused the offer may still have said which version it was built for and its name
            // (the Swift kit does): that is a version mismatch the operator can disable by name, not a vague
            // init failure.
            if size >= Self.abiVersionEnd, size <= Self.descriptorSize, descriptor.abi_version != 0 {
                do {
                    try checkVersion(ABIVersion(packed: descriptor.abi_version), plugin: Self.declaredName(descriptor))
                } catch {
                    throw fail(
                        error.name,
                        error.error.code,
                        "\(error.error.message); stephost_plugin_init returned status \(status): \(reason)",
                        fix: error.error.fix
                    )
                }
            }
            throw fail(
                nil,
                .initFailed,
                "stephost_plugin_init returned status \(status): \(reason)",
                fix: "correct what the message names, or ask the plugin's authors"
            )
        }
        if let message = context.errorMessage {
            // An error report followed by success: the plugin loads, but what it said is not lost.
            logger.warning(
                "plugin reported an error during init but returned STEPHOST_STATUS_OK",
                metadata: ["file": "\(file)", "message": "\(message.escapingControlCharacters)"]
            )
        }
        // The version first: the layout is trusted only once the version is (PostgreSQL's magic block).
        guard size >= Self.abiVersionEnd else {
            let lowest = PluginLoader.supportedVersions.lowerBound
            let minimum = PluginStructs.pluginDescriptor.minimum(for: lowest)
            throw fail(
                nil,
                .structTooSmall,
                "its plugin descriptor struct_size is \(size) bytes, too small to hold abi_version; ABI \(lowest) "
                    + "needs at least \(minimum.size) (\(PluginStructs.pluginDescriptor.name) up to and including "
                    + "\(minimum.lastField))",
                fix: "set descriptor->struct_size to the size of the descriptor it wrote and rebuild against stephost.h"
            )
        }
        let version = ABIVersion(packed: descriptor.abi_version)
        // The name as declared, if the struct holds a valid one, so even a version mismatch report can say
        // which plugin it is (and the operator can disable it by that name).
        let declaredName = Self.declaredName(descriptor)
        try checkVersion(version, plugin: declaredName)

        if let problem = PluginStructs.pluginDescriptor.problem(declaredSize: size, version: version) {
            throw fail(
                declaredName,
                .structTooSmall,
                "its plugin descriptor \(problem)",
                fix: "set descriptor->struct_size to the size of the descriptor it wrote, at least the minimum of "
                    + "the ABI version it chose, and rebuild against stephost.h"
            )
        }
        guard size <= Self.descriptorSize else {
            throw fail(
                declaredName,
                .invalidDescriptor,
                "its plugin descriptor struct_size is \(size) bytes, more than the \(Self.descriptorSize) the host "
                    + "allocated",
                fix: "write no more than the struct_size the host passes in, and set struct_size to the smaller of "
                    + "that capacity and sizeof(stephost_plugin_descriptor)"
            )
        }

        let name: String
        switch Names.validate(descriptor.name, descriptor.name_len) {
        case .success(let valid): name = valid
        case .failure(let problem):
            throw fail(
                nil,
                .invalidPluginName,
                "its plugin name \(problem)",
                fix: "name the plugin with 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"
            )
        }
        let pluginVersion: String
        switch Names.read(descriptor.version, descriptor.version_len, limit: 128) {
        case .success(let text) where !text.isEmpty: pluginVersion = text
        case .success:
            throw fail(
                name,
                .invalidDescriptor,
                "its version is empty",
                fix: "set version to a string such as \"1.4.2\""
            )
        case .failure(let problem):
            throw fail(
                name,
                .invalidDescriptor,
                "its version \(problem) (UTF-8 text of 1 to 128 bytes is expected)",
                fix: "set version to a string such as \"1.4.2\" and version_len to its length in bytes"
            )
        }
        let steps = try readSteps(descriptor, abi: version, plugin: name, version: pluginVersion)
        return LoadedPlugin(
            name: name,
            version: pluginVersion,
            file: file,
            fileHash: fileHash,
            abiVersion: version,
            steps: steps
        )
    }

    private func callInit(
        _ entry: stephost_plugin_init_fn,
        context: InitContext
    ) -> (stephost_status, UnsafeMutableRawPointer) {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: Self.descriptorSize + Self.guardBytes,
            alignment: MemoryLayout<stephost_plugin_descriptor>.alignment
        )
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: Self.descriptorSize + Self.guardBytes)
        raw.storeBytes(of: UInt32(Self.descriptorSize), as: UInt32.self)

        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        var services = stephost_host_services(
            struct_size: UInt32(MemoryLayout<stephost_host_services>.size),
            ctx: unmanaged.toOpaque(),
            report_error: initReportError,
            log: initLog
        )
        let status = withUnsafePointer(to: &services) { services in
            var offer = stephost_host_offer(
                struct_size: UInt32(MemoryLayout<stephost_host_offer>.size),
                abi_min: PluginLoader.supportedVersions.lowerBound.packed,
                abi_max: PluginLoader.supportedVersions.upperBound.packed,
                services: services
            )
            return entry(&offer, raw.assumingMemoryBound(to: stephost_plugin_descriptor.self))
        }
        return (status, raw)
    }

    /// The plugin's name as its descriptor declares it, if valid: named even in a version mismatch report.
    private static func declaredName(_ descriptor: stephost_plugin_descriptor) -> String? {
        try? Names.validate(descriptor.name, descriptor.name_len).get()
    }

    private func checkVersion(_ version: ABIVersion, plugin: String?) throws(Failure) {
        let supported = PluginLoader.supportedVersions
        guard !supported.contains(version) else { return }
        let range = "\(supported.lowerBound) to \(supported.upperBound)"
        if version.major != supported.upperBound.major {
            throw fail(
                plugin,
                .abiVersion,
                "it chose ABI \(version); this host supports ABI \(range), and a different major version is "
                    + "incompatible",
                fix: "rebuild the plugin against this host's stephost.h (`stephost plugin-header`)"
            )
        }
        throw fail(
            plugin,
            .abiVersion,
            "it chose ABI \(version), outside the \(range) this host offered",
            fix: "choose a version within the offer's abi_min and abi_max, or upgrade stephost"
        )
    }

    private func readSteps(
        _ descriptor: stephost_plugin_descriptor,
        abi: ABIVersion,
        plugin: String,
        version: String
    ) throws(Failure) -> [PluginStep] {
        let stepCount = Names.size(descriptor.step_count)
        guard stepCount > 0 else {
            throw fail(plugin, .invalidDescriptor, "it declares no steps", fix: "list at least one step in steps")
        }
        guard stepCount <= UInt(Self.maximumSteps), let array = descriptor.steps else {
            throw fail(
                plugin,
                .invalidDescriptor,
                "its steps array is null or its step_count (\(stepCount)) is above \(Self.maximumSteps)",
                fix: "point steps at an array of step_count step descriptor pointers"
            )
        }
        var steps: [PluginStep] = []
        for index in 0..<Int(stepCount) {
            let position = index + 1
            guard let pointer = array[index] else {
                throw fail(
                    plugin,
                    .invalidDescriptor,
                    "step \(position) is a null pointer",
                    fix: "fill every entry of steps"
                )
            }
            let size = Int(UnsafeRawPointer(pointer).load(as: UInt32.self))
            let step: stephost_step_descriptor
            switch PluginStructs.stepDescriptor.read(pointer, declaredSize: size, version: abi) {
            case .success(let read): step = read
            case .failure(let problem):
                throw fail(
                    plugin,
                    .structTooSmall,
                    "step \(position)'s descriptor \(problem)",
                    fix: "set struct_size = sizeof(stephost_step_descriptor) and rebuild against stephost.h"
                )
            }
            let name: String
            switch Names.validate(step.name, step.name_len) {
            case .success(let valid): name = valid
            case .failure(let problem):
                throw fail(
                    plugin,
                    .invalidStepName,
                    "step \(position)'s name \(problem)",
                    fix: "name the step with 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"
                )
            }
            if name == STEPHOST_CREATE_RUNTIME_NAME {
                throw fail(
                    plugin,
                    .reservedStepName,
                    "step \(position) is named '\(name)', the host's built-in step",
                    fix: "rename the step; create_runtime always runs at weight 100"
                )
            }
            if steps.contains(where: { $0.name == name }) {
                throw fail(
                    plugin,
                    .invalidStepName,
                    "step '\(name)' is declared twice",
                    fix: "give each step its own name"
                )
            }
            let weight = Int(step.weight)
            guard weight >= 1, weight != Int(STEPHOST_CREATE_RUNTIME_WEIGHT) else {
                let why =
                    weight == Int(STEPHOST_CREATE_RUNTIME_WEIGHT)
                    ? "the weight of the built-in create_runtime step" : "weights start at 1"
                throw fail(
                    plugin,
                    .invalidWeight,
                    "step '\(name)' has weight \(weight), \(why)",
                    fix: "use a weight from 1 to 99 to run before create_runtime, or above 100 to run after it"
                )
            }
            guard let run = step.run else {
                throw fail(plugin, .invalidDescriptor, "step '\(name)' has no run function", fix: "set run")
            }
            steps.append(
                PluginStep(
                    name: name,
                    weight: weight,
                    plugin: PluginProvenance(
                        name: plugin,
                        version: version,
                        file: file,
                        fileHash: fileHash,
                        stepIndex: index
                    ),
                    entry: .init(run: run, context: step.step_ctx)
                )
            )
        }
        return steps
    }

    private func fail(_ name: String?, _ code: PluginLoadError.Code, _ message: String, fix: String) -> Failure {
        Failure(name: name, error: PluginLoadError(code, message, fix: fix))
    }
}

/// What `stephost_plugin_init` reports through the host services while it runs.
private final class InitContext {
    let logger: Logger
    let file: String
    var errorMessage: String?

    init(logger: Logger, file: String) {
        self.logger = logger
        self.file = file
    }
}

private let initReportError: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int) -> Void = {
    context,
    message,
    length in
    guard let context else { return }
    let initContext = Unmanaged<InitContext>.fromOpaque(context).takeUnretainedValue()
    initContext.errorMessage = Names.message(message, length)
}

private let initLog: @convention(c) (UnsafeMutableRawPointer?, stephost_log_level, UnsafePointer<CChar>?, Int) -> Void =
    { context, level, message, length in
        guard let context else { return }
        let initContext = Unmanaged<InitContext>.fromOpaque(context).takeUnretainedValue()
        initContext.logger.log(
            level: LogLevels.swiftLog(level),
            "\(Names.message(message, length).escapingControlCharacters)",
            metadata: ["file": "\(initContext.file)"]
        )
    }
