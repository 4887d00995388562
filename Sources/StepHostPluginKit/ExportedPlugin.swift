import Glibc
import StepHostABI
import Synchronization

/// The C descriptor data of this image's plugin, built once and kept for the life of the process.
///
/// The host never unloads a plugin and may read the descriptor's strings and step array at any
/// time, so they are allocated once and never freed.
struct ExportedPlugin: @unchecked Sendable {
    // Unchecked: every pointer is written once, before the value is published through `cache`'s lock,
    // and never written or freed afterwards.
    var name: CString
    var version: CString
    var steps: UnsafePointer<UnsafePointer<stephost_step_descriptor>?>
    var stepCount: Int

    private static let cache = Mutex<ExportedPlugin?>(nil)

    /// The descriptor data for `plugin`, built on the first call; later calls return the same data.
    static func shared(for plugin: Plugin) -> ExportedPlugin {
        cache.withLock { cached in
            if let cached { return cached }
            let built = ExportedPlugin(plugin)
            cached = built
            return built
        }
    }

    private init(_ plugin: Plugin) {
        name = CString(plugin.name)
        version = CString(plugin.version)
        let array = UnsafeMutablePointer<UnsafePointer<stephost_step_descriptor>?>.allocate(
            capacity: max(plugin.steps.count, 1)
        )
        for (index, step) in plugin.steps.enumerated() {
            let stepName = CString(step.name)
            // Field by field, so the kit builds against a header whose step descriptor has grown: fields this
            // kit does not know stay zero (absent), and struct_size says how far it wrote.
            var filled = stephost_step_descriptor()
            filled.struct_size = UInt32(MemoryLayout<stephost_step_descriptor>.size)
            // Out-of-range weights are passed on clamped so the host reports them instead of wrapping.
            filled.weight = Int32(clamping: step.weight)
            filled.name = stepName.pointer
            filled.name_len = stepName.count
            filled.run = runStep
            filled.step_ctx = Unmanaged.passRetained(StepBox(step)).toOpaque()
            // Allocated and filled at this kit's own size, never the runtime's idea of the type (see HostStruct).
            let size = MemoryLayout<stephost_step_descriptor>.size
            let descriptor = UnsafeMutableRawPointer.allocate(
                byteCount: size,
                alignment: MemoryLayout<stephost_step_descriptor>.alignment
            )
            _ = memcpy(descriptor, &filled, size)
            (array + index).initialize(
                to: UnsafePointer(descriptor.assumingMemoryBound(to: stephost_step_descriptor.self))
            )
        }
        steps = UnsafePointer(array)
        stepCount = plugin.steps.count
    }
}

/// A UTF-8 string copied into memory that is never freed.
struct CString {
    var pointer: UnsafePointer<CChar>
    var count: Int

    init(_ string: String) {
        let bytes = Array(string.utf8)
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        for (index, byte) in bytes.enumerated() { buffer[index] = CChar(bitPattern: byte) }
        buffer[bytes.count] = 0
        pointer = UnsafePointer(buffer)
        count = bytes.count
    }
}

/// Holds a step behind the descriptor's `step_ctx`.
final class StepBox: Sendable {
    let step: any Step
    init(_ step: any Step) { self.step = step }
}
