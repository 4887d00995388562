public import StepHostABI
import Synchronization

/// A plugin: a name, a version and its steps, exported to the host through `stephost_plugin_init`.
///
/// Export a plugin from your `.dynamic` library target with one definition of the ABI's entry
/// point, which the compiler checks against `stephost.h`:
///
/// ```swift
/// import StepHostABI
/// import StepHostPluginKit
///
/// @c @implementation
/// public func stephost_plugin_init(
///     _ offer: UnsafePointer<stephost_host_offer>?,
///     _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
/// ) -> stephost_status {
///     Plugin(name: "network", version: "1.0.0", steps: [AllocateSubnet()]).export(offer, descriptor)
/// }
/// ```
///
/// No Swift type crosses the boundary: the kit is linked into your plugin and speaks C to the host.
public struct Plugin: Sendable {
    /// The plugin's name: 1 to 64 characters of `[A-Za-z0-9_.-]`, unique among the host's plugins.
    public var name: String
    /// The plugin's own version, shown by `stephost list-plugins`.
    public var version: String
    /// The steps, in the order they run among steps of equal weight.
    public var steps: [any Step]

    public init(name: String, version: String, steps: [any Step]) {
        self.name = name
        self.version = version
        self.steps = steps
    }

    /// Negotiates the ABI version with the host's offer and fills the host's descriptor.
    ///
    /// Returns `STEPHOST_STATUS_OK`, or reports why through the host's services and returns
    /// `STEPHOST_STATUS_ERROR`. Has no side effect beyond building the descriptor once per process.
    public func export(
        _ offer: UnsafePointer<stephost_host_offer>?,
        _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
    ) -> stephost_status {
        guard let offer, Int(offer.pointee.struct_size) >= MemoryLayout<stephost_host_offer>.size else {
            return STEPHOST_STATUS_ERROR
        }
        let services = offer.pointee.services
        guard let descriptor else {
            Self.report("the host passed no descriptor", services)
            return STEPHOST_STATUS_ERROR
        }
        guard let version = Self.negotiate(offer.pointee) else {
            let supported = Self.text(
                stephost_abi_version(UInt32(STEPHOST_ABI_CURRENT_MAJOR), UInt32(STEPHOST_ABI_CURRENT_MINOR))
            )
            let offered = "\(Self.text(offer.pointee.abi_min)) to \(Self.text(offer.pointee.abi_max))"
            Self.report(
                "plugin '\(name)' was built for ABI \(supported); the host offers \(offered). "
                    + "Rebuild the plugin against this host's stephost.h.",
                services
            )
            return STEPHOST_STATUS_ERROR
        }
        let capacity = Int(descriptor.pointee.struct_size)
        guard capacity >= MemoryLayout<stephost_plugin_descriptor>.size else {
            Self.report(
                "the host's descriptor holds \(capacity) bytes; this plugin needs "
                    + "\(MemoryLayout<stephost_plugin_descriptor>.size)",
                services
            )
            return STEPHOST_STATUS_ERROR
        }
        let exported = ExportedPlugin.shared(for: self)
        descriptor.pointee = stephost_plugin_descriptor(
            struct_size: UInt32(MemoryLayout<stephost_plugin_descriptor>.size),
            abi_version: version,
            name: exported.name.pointer,
            name_len: exported.name.count,
            version: exported.version.pointer,
            version_len: exported.version.count,
            steps: exported.steps,
            step_count: exported.stepCount
        )
        return STEPHOST_STATUS_OK
    }

    /// The highest version that both this kit and the host support, if any.
    private static func negotiate(_ offer: stephost_host_offer) -> UInt32? {
        let kit = stephost_abi_version(UInt32(STEPHOST_ABI_CURRENT_MAJOR), UInt32(STEPHOST_ABI_CURRENT_MINOR))
        let sameMajor = stephost_abi_major(offer.abi_max) == stephost_abi_major(kit)
        let candidate = sameMajor ? min(kit, offer.abi_max) : kit
        return (offer.abi_min...offer.abi_max).contains(candidate) ? candidate : nil
    }

    /// A packed ABI version as major.minor.
    private static func text(_ version: UInt32) -> String {
        "\(stephost_abi_major(version)).\(stephost_abi_minor(version))"
    }

    private static func report(_ message: String, _ services: UnsafePointer<stephost_host_services>?) {
        guard let services, Int(services.pointee.struct_size) >= MemoryLayout<stephost_host_services>.size,
            let reportError = services.pointee.report_error
        else { return }
        var message = message
        message.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { reportError(services.pointee.ctx, $0.baseAddress, $0.count) }
        }
    }
}
