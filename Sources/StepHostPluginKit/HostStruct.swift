import Glibc
import StepHostABI
import Synchronization

/// How the kit reads a struct that the host wrote: as far as both sides know it, never past what the host
/// declared.
///
/// The plugin side of the host's rule (`stephost.h`, STRUCT GROWTH): for each minor version of ABI 1 the table
/// holds the least `struct_size` the host may declare, the end of the last field that version has; a minor
/// version that did not grow the struct needs no row. Reading copies `min(struct_size, MemoryLayout<Layout>.size)`
/// bytes into a zeroed value, so a field past what the host declared reads as zero (absent: a `nil` callback),
/// and fields a newer host appended are left behind. A kit built against a newer header therefore still
/// works with an older host, which writes smaller structs.
///
/// Nothing here asks the Swift runtime how large `Layout` is. The runtime keeps one metadata record per imported C
/// type name for the whole process, made by whichever image asked first: in a host built against another minor
/// version (or beside another Swift plugin built against one), `MemoryLayout<Layout>.size` in generic code, and
/// every generic copy of a `Layout`, would use that image's size, not this kit's, and copy past the end of this
/// kit's values. So the size is taken where the type is concrete (`size`), and bytes are copied with `memcpy` into
/// a value the caller made.
struct HostStruct<Layout: BitwiseCopyable>: Sendable {
    /// The least `struct_size` of one minor version: the end of the last field it has.
    struct Minimum: Sendable {
        var lastField: String
        var size: Int

        /// The struct up to and including `field`.
        static func through<Value>(_ name: String, _ field: KeyPath<Layout, Value>) -> Minimum {
            guard let offset = MemoryLayout<Layout>.offset(of: field) else {
                preconditionFailure("\(name) is not a stored field of \(Layout.self)")
            }
            return Minimum(lastField: name, size: offset + MemoryLayout<Value>.size)
        }
    }

    /// The C type's name, for messages.
    let name: String
    /// `MemoryLayout<Layout>.size` as this kit was built, taken where the type is concrete.
    let size: Int
    /// The least `struct_size` per minor version of ABI 1, keyed by minor version.
    let minimums: [UInt32: Minimum]

    /// The least `struct_size` for the packed ABI `version`: its own row, or that of the nearest earlier minor.
    func minimum(for version: UInt32) -> Minimum {
        let minor = minimums.keys.filter { $0 <= stephost_abi_minor(version) }.max() ?? 0
        return minimums[minor]!
    }

    /// Copies the struct at `pointer` into `value` (made zero by the caller) for the packed ABI `version`, or says
    /// why it is too small for that version (and copies nothing).
    func read(_ pointer: UnsafeRawPointer, version: UInt32, into value: inout Layout) -> PluginKitError? {
        if let problem = check(pointer, version: version) { return problem }
        copy(pointer, into: &value)
        return nil
    }

    /// Why the struct at `pointer` is too small for the packed ABI `version`, or nil when it holds what it must.
    func check(_ pointer: UnsafeRawPointer, version: UInt32) -> PluginKitError? {
        let declared = Int(pointer.load(as: UInt32.self))
        guard declared >= minimum(for: version).size else {
            return PluginKitError(tooSmall(declared, version: version))
        }
        return nil
    }

    /// Why a struct of `declared` bytes is too small for `version`.
    func tooSmall(_ declared: Int, version: UInt32) -> String {
        let minimum = minimum(for: version)
        return "the host's \(name) struct_size is \(declared) bytes; ABI \(stephost_abi_major(version))."
            + "\(stephost_abi_minor(version)) needs at least \(minimum.size) (\(name) up to and including "
            + "\(minimum.lastField))"
    }

    /// Copies the first `min(struct_size, size)` bytes at `pointer` into `value`, which the caller made zero; no
    /// size check, for reading whatever part of a struct is there (to report an error through it).
    func copy(_ pointer: UnsafeRawPointer, into value: inout Layout) {
        let count = min(Int(pointer.load(as: UInt32.self)), size)
        _ = memcpy(&value, pointer, count)
    }
}

/// The structs the host writes and the kit reads, with the minimum size of each at every minor version, and
/// the version this plugin chose.
///
/// A minor version that appends a field to one of them adds one row to its table here, and the same row to
/// the table of the `stephost.h` comment (STRUCT GROWTH).
enum HostStructs {
    /// Read before a version is chosen, so at the lowest version of the host's major.
    static let offer = HostStruct<stephost_host_offer>(
        name: "stephost_host_offer",
        size: MemoryLayout<stephost_host_offer>.size,
        minimums: [0: .through("services", \.services)]
    )
    static let services = HostStruct<stephost_host_services>(
        name: "stephost_host_services",
        size: MemoryLayout<stephost_host_services>.size,
        minimums: [0: .through("log", \.log)]
    )
    static let stepCall = HostStruct<stephost_step_call>(
        name: "stephost_step_call",
        size: MemoryLayout<stephost_step_call>.size,
        minimums: [0: .through("services", \.services)]
    )
    static let callServices = HostStruct<stephost_call_services>(
        name: "stephost_call_services",
        size: MemoryLayout<stephost_call_services>.size,
        minimums: [0: .through("set_error", \.set_error), 1: .through("is_cancelled", \.is_cancelled)]
    )
    /// The descriptor the host allocates: its capacity must hold what the chosen version writes.
    static let pluginDescriptor = HostStruct<stephost_plugin_descriptor>(
        name: "stephost_plugin_descriptor",
        size: MemoryLayout<stephost_plugin_descriptor>.size,
        minimums: [0: .through("step_count", \.step_count)]
    )

    /// The descriptor up to and including the plugin's version: what a plugin that refuses the offer still
    /// declares (its ABI version, name and version), so the host can name the mismatch.
    static let pluginIdentityEnd = HostStruct<stephost_plugin_descriptor>.Minimum.through(
        "version_len",
        \.version_len
    ).size

    /// The lowest version of this kit's major: how the offer is read before a version is chosen.
    static let baseVersion = stephost_abi_version(UInt32(STEPHOST_ABI_CURRENT_MAJOR), 0)

    /// The version `stephost_plugin_init` chose, set once it succeeds; the base version until then.
    static var negotiatedVersion: UInt32 {
        let chosen = negotiated.load(ordering: .acquiring)
        return chosen == 0 ? baseVersion : chosen
    }

    static func record(_ version: UInt32) {
        negotiated.store(version, ordering: .releasing)
    }

    private static let negotiated = Atomic<UInt32>(0)
}
