import StepHostABI

/// Makes the host's own layouts of the ABI structs the ones the Swift runtime uses in this process.
///
/// The runtime keeps one metadata record per imported C type name for the whole process, made by whichever image
/// asks first. A Swift plugin built against another minor version of `stephost.h` carries its own, larger or
/// smaller, `stephost_host_offer` and the rest; had it asked first, the host's generic code (``StructLayout``)
/// would copy the plugin's size into the host's values. Asking for every struct's metadata before the first
/// plugin is opened settles it for the host.
package enum ABIMetadata {
    /// Touched before every `dlopen` of a plugin; its first use registers the host's metadata.
    package static let pinned: Void = {
        register(stephost_host_services.self)
        register(stephost_host_offer.self)
        register(stephost_call_services.self)
        register(stephost_step_call.self)
        register(stephost_step_descriptor.self)
        register(stephost_plugin_descriptor.self)
    }()

    /// The size the runtime gives `type` in generic code: what every image's generic code uses for it.
    @inline(never)
    package static func runtimeSize<T>(_ type: T.Type) -> Int { MemoryLayout<T>.size }

    @inline(never)
    private static func register<T>(_ type: T.Type) { _ = runtimeSize(type) }
}
