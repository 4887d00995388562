import Glibc
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
    ///
    /// Every struct the host passes is read as far as both sides know it (``HostStruct``): a host built
    /// against an older header writes smaller structs, a newer one larger. The descriptor gets the smaller of
    /// the host's capacity and this kit's size, never more than the host allocated.
    public func export(
        _ offer: UnsafePointer<stephost_host_offer>?,
        _ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>?
    ) -> stephost_status {
        // No version is chosen yet: the offer is read as the lowest version of the major, which holds
        // everything negotiation needs. A smaller one leaves nothing to report through.
        var hostOffer = stephost_host_offer()
        guard let offer, HostStructs.offer.read(offer, version: HostStructs.baseVersion, into: &hostOffer) == nil
        else {
            return STEPHOST_STATUS_ERROR
        }
        // Whatever part of the services table the host declared, to report through; checked below.
        let reporter = hostOffer.services.map { pointer in
            var services = stephost_host_services()
            HostStructs.services.copy(pointer, into: &services)
            return services
        }
        guard let version = Self.negotiate(hostOffer) else {
            let supported = Self.text(Self.kitVersion)
            let offered = "\(Self.text(hostOffer.abi_min)) to \(Self.text(hostOffer.abi_max))"
            Self.report(
                "plugin '\(name)' was built for ABI \(supported); the host offers \(offered). "
                    + "Rebuild the plugin against this host's stephost.h.",
                reporter
            )
            // Its version, name and version, no steps: the host then names the mismatch (`abi-version`, both
            // versions, this plugin), so that `--disable-plugin NAME` works for it.
            if let descriptor, Int(UnsafeRawPointer(descriptor).load(as: UInt32.self)) >= HostStructs.pluginIdentityEnd
            {
                fill(descriptor, version: Self.kitVersion, length: HostStructs.pluginIdentityEnd)
            }
            return STEPHOST_STATUS_ERROR
        }
        // The version is chosen: now each struct must hold what that version has.
        if let problem = HostStructs.offer.check(offer, version: version) {
            Self.report(problem.message, reporter)
            return STEPHOST_STATUS_ERROR
        }
        if let services = hostOffer.services, let problem = HostStructs.services.check(services, version: version) {
            Self.report(problem.message, reporter)
            return STEPHOST_STATUS_ERROR
        }
        guard let descriptor else {
            Self.report("the host passed no descriptor", reporter)
            return STEPHOST_STATUS_ERROR
        }
        let capacity = Int(UnsafeRawPointer(descriptor).load(as: UInt32.self))
        guard capacity >= HostStructs.pluginDescriptor.minimum(for: version).size else {
            Self.report(HostStructs.pluginDescriptor.tooSmall(capacity, version: version), reporter)
            return STEPHOST_STATUS_ERROR
        }
        // Written only as far as the host's capacity; the size written is the struct_size declared.
        fill(descriptor, version: version, length: min(capacity, MemoryLayout<stephost_plugin_descriptor>.size))
        HostStructs.record(version)
        return STEPHOST_STATUS_OK
    }

    /// The ABI version this kit was built for.
    private static let kitVersion = stephost_abi_version(
        UInt32(STEPHOST_ABI_CURRENT_MAJOR),
        UInt32(STEPHOST_ABI_CURRENT_MINOR)
    )

    /// Writes this plugin's descriptor, for ABI `version`, into the host's: the first `length` bytes of it, with
    /// `struct_size` set to `length`. Field by field, so the kit builds against a header whose descriptor has grown.
    private func fill(_ descriptor: UnsafeMutablePointer<stephost_plugin_descriptor>, version: UInt32, length: Int) {
        let exported = ExportedPlugin.shared(for: self)
        var filled = stephost_plugin_descriptor()
        filled.struct_size = UInt32(length)
        filled.abi_version = version
        filled.name = exported.name.pointer
        filled.name_len = exported.name.count
        filled.version = exported.version.pointer
        filled.version_len = exported.version.count
        filled.steps = exported.steps
        filled.step_count = exported.stepCount
        _ = memcpy(descriptor, &filled, length)
    }

    /// The highest version that both this kit and the host support, if any.
    private static func negotiate(_ offer: stephost_host_offer) -> UInt32? {
        let kit = kitVersion
        let sameMajor = stephost_abi_major(offer.abi_max) == stephost_abi_major(kit)
        let candidate = sameMajor ? min(kit, offer.abi_max) : kit
        // Compared, not made into a range: an offer whose abi_min is above its abi_max must not trap.
        return offer.abi_min <= candidate && candidate <= offer.abi_max ? candidate : nil
    }

    /// A packed ABI version as major.minor.
    private static func text(_ version: UInt32) -> String {
        "\(stephost_abi_major(version)).\(stephost_abi_minor(version))"
    }

    /// Reports `message` through the host's `report_error`, if the services table holds one.
    private static func report(_ message: String, _ services: stephost_host_services?) {
        guard let services, let reportError = services.report_error else { return }
        var message = message
        message.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { reportError(services.ctx, $0.baseAddress, $0.count) }
        }
    }
}
