package import StepHostABI

/// How the host reads a struct that a plugin wrote: as far as both sides know it, never past what the plugin
/// declared.
///
/// Every ABI struct starts with `struct_size` and grows only by appending fields in a new minor version
/// (`stephost.h`, STRUCT GROWTH). For each minor version of ABI 1 the table holds the least `struct_size` a
/// plugin that chose that version may declare: the end of the last field that version has. A minor version
/// that did not grow the struct needs no row; it inherits the row of the nearest earlier minor.
///
/// Reading copies `min(struct_size, MemoryLayout<Layout>.size)` bytes into a zeroed value: a field past what
/// the plugin declared reads as zero, which the ABI calls absent, and fields a newer plugin appended are left
/// behind. `pointee` of a plugin's struct would read the host's whole `sizeof`, past the end of an older
/// plugin's smaller struct.
package struct StructLayout<Layout: BitwiseCopyable>: Sendable {
    /// The least `struct_size` of one minor version: the end of the last field it has.
    package struct Minimum: Sendable, Hashable {
        /// The name of the version's last field, for messages.
        package var lastField: String
        /// Its end, in bytes from the start of the struct.
        package var size: Int

        package init(lastField: String, size: Int) {
            self.lastField = lastField
            self.size = size
        }

        /// The struct up to and including `field`.
        package static func through<Value>(_ name: String, _ field: KeyPath<Layout, Value>) -> Minimum {
            guard let offset = MemoryLayout<Layout>.offset(of: field) else {
                preconditionFailure("\(name) is not a stored field of \(Layout.self)")
            }
            return Minimum(lastField: name, size: offset + MemoryLayout<Value>.size)
        }
    }

    /// The C type's name, for messages.
    package let name: String
    /// The least `struct_size` per minor version of ABI 1, keyed by minor version.
    package let minimums: [Int: Minimum]

    package init(_ name: String, minimums: [Int: Minimum]) {
        precondition(minimums[0] != nil, "every struct has a 1.0 minimum")
        self.name = name
        self.minimums = minimums
    }

    /// The least `struct_size` for `version`: its own row, or that of the nearest earlier minor version.
    package func minimum(for version: ABIVersion) -> Minimum {
        let minor = minimums.keys.filter { $0 <= version.minor }.max() ?? 0
        return minimums[minor]!
    }

    /// The struct at `pointer`, which declares `declaredSize` bytes, for a plugin that chose `version`; or
    /// why it is too small for that version.
    ///
    /// - Precondition: `version` is one the host accepted (checked before, so a layout is trusted only
    ///   once its version is).
    package func read(
        _ pointer: UnsafeRawPointer,
        declaredSize: Int,
        version: ABIVersion
    ) -> Result<Layout, StructTooSmall> {
        if let problem = problem(declaredSize: declaredSize, version: version) { return .failure(problem) }
        return .success(Self.copy(pointer, declaredSize: declaredSize))
    }

    /// Why a struct that declares `declaredSize` bytes is too small for `version`, if it is.
    package func problem(declaredSize: Int, version: ABIVersion) -> StructTooSmall? {
        let minimum = minimum(for: version)
        guard declaredSize < minimum.size else { return nil }
        return StructTooSmall(
            structName: name,
            declaredSize: declaredSize,
            version: version,
            minimumSize: minimum.size,
            lastField: minimum.lastField
        )
    }

    /// The first `min(declaredSize, MemoryLayout<Layout>.size)` bytes at `pointer` in a zeroed value; no size
    /// check.
    package static func copy(_ pointer: UnsafeRawPointer, declaredSize: Int) -> Layout {
        let count = min(max(declaredSize, 0), MemoryLayout<Layout>.size)
        return withUnsafeTemporaryAllocation(
            byteCount: MemoryLayout<Layout>.size,
            alignment: MemoryLayout<Layout>.alignment
        ) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: count))
            return buffer.load(as: Layout.self)
        }
    }
}

/// A struct whose `struct_size` is below what the plugin's ABI version needs.
package struct StructTooSmall: Error, Hashable, Sendable, CustomStringConvertible {
    /// The C type's name.
    package var structName: String
    /// The `struct_size` the plugin declared.
    package var declaredSize: Int
    /// The ABI version the plugin chose.
    package var version: ABIVersion
    /// The least `struct_size` that version needs, and the field it ends with.
    package var minimumSize: Int
    package var lastField: String

    package var description: String {
        "struct_size is \(declaredSize) bytes; ABI \(version) needs at least \(minimumSize) "
            + "(\(structName) up to and including \(lastField))"
    }
}

/// The structs a plugin writes and the host reads, with the minimum size of each at every minor version.
///
/// A minor version that appends a field to one of them adds one row to its table here, and the same row to
/// the table of the `stephost.h` comment (STRUCT GROWTH).
package enum PluginStructs {
    package static let pluginDescriptor = StructLayout<stephost_plugin_descriptor>(
        "stephost_plugin_descriptor",
        minimums: [0: .through("step_count", \.step_count)]
    )
    package static let stepDescriptor = StructLayout<stephost_step_descriptor>(
        "stephost_step_descriptor",
        minimums: [0: .through("step_ctx", \.step_ctx)]
    )
}
