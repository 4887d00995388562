import Glibc
import StepHostABI
import StepHostLoader
import Testing

/// A struct as ABI "1.0" has it, and as "1.1" grows it by one appended field (laid out as C lays them out).
private struct Version10 {
    var struct_size: UInt32
    var flags: UInt32
    var handle: UInt64
}

private struct Version11 {
    var struct_size: UInt32
    var flags: UInt32
    var handle: UInt64
    var added: UInt64
}

/// How the host reads a plugin's struct through the per-version minimum table, shown with a host that knows
/// "1.1" (a struct larger than a 1.0 plugin writes), which the real header cannot give yet.
@Suite("Reading a struct the other side wrote")
struct StructLayoutTests {
    static let v10 = ABIVersion(major: 1, minor: 0)
    static let v11 = ABIVersion(major: 1, minor: 1)

    /// What a host that knows 1.1 holds: one row per minor version.
    private static let grown = StructLayout<Version11>(
        "fake_struct",
        minimums: [0: .through("handle", \.handle), 1: .through("added", \.added)]
    )

    /// A 1.0 plugin's struct, 16 bytes, placed so that its last byte is the last readable one: reading the
    /// host's 24-byte `sizeof` would fault. It is read, and the field it lacks is zero (absent).
    @Test func olderStructIsReadWithoutOverreadingAndWhatItLacksIsAbsent() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapping = try #require(
            mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            "mmap failed"
        )
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, 2 * page) }
        try #require(mprotect(mapping + page, page, PROT_NONE) == 0)
        let old = mapping + page - MemoryLayout<Version10>.size
        old.storeBytes(
            of: Version10(struct_size: UInt32(MemoryLayout<Version10>.size), flags: 7, handle: 0xfeed),
            as: Version10.self
        )

        let read = try Self.grown.read(old, declaredSize: 16, version: Self.v10).get()

        #expect(read.flags == 7)
        #expect(read.handle == 0xfeed)
        #expect(read.added == 0)
    }

    /// Below the minimum of the version the plugin chose: refused, naming the struct, the declared size, the
    /// minimum and the field it ends with. A 1.0-sized struct is too small for a plugin that chose 1.1.
    @Test func structBelowItsVersionsMinimumIsRefusedWithTheSizes() throws {
        var bytes = [UInt8](repeating: 0xA5, count: 64)
        let refused = bytes.withUnsafeMutableBytes { buffer in
            [
                Self.grown.read(buffer.baseAddress!, declaredSize: 12, version: Self.v10),
                Self.grown.read(buffer.baseAddress!, declaredSize: 16, version: Self.v11),
            ].map { result -> String? in
                guard case .failure(let problem) = result else { return nil }
                return problem.description
            }
        }
        #expect(
            refused == [
                "struct_size is 12 bytes; ABI 1.0 needs at least 16 (fake_struct up to and including handle)",
                "struct_size is 16 bytes; ABI 1.1 needs at least 24 (fake_struct up to and including added)",
            ]
        )
    }

    /// A struct larger than the host knows (a newer minor's): read as far as the host knows, the rest ignored.
    @Test func largerStructIsReadAsFarAsKnownAndItsTailIgnored() throws {
        var bytes = [UInt8](repeating: 0xA5, count: 64)
        let (newest, older) = try bytes.withUnsafeMutableBytes { buffer in
            buffer.storeBytes(
                of: Version11(struct_size: 64, flags: 3, handle: 0xbeef, added: 0x1234),
                as: Version11.self
            )
            let knowsOnly10 = StructLayout<Version10>("fake_struct", minimums: [0: .through("handle", \.handle)])
            return (
                try Self.grown.read(buffer.baseAddress!, declaredSize: 64, version: Self.v11).get(),
                try knowsOnly10.read(buffer.baseAddress!, declaredSize: 64, version: Self.v11).get()
            )
        }
        #expect(newest.added == 0x1234 && newest.handle == 0xbeef)
        #expect(older.flags == 3 && older.handle == 0xbeef)
    }

    /// Fields between what a plugin declared and what the host knows read as zero even when the memory after
    /// the plugin's struct holds something else.
    @Test func fieldsPastTheDeclaredSizeReadAsZero() throws {
        var bytes = [UInt8](repeating: 0xA5, count: 32)
        let read = bytes.withUnsafeMutableBytes { buffer in
            StructLayout<Version11>.copy(buffer.baseAddress!, declaredSize: 8)
        }
        #expect(read.struct_size == 0xA5A5_A5A5 && read.flags == 0xA5A5_A5A5)
        #expect(read.handle == 0 && read.added == 0)
    }

    /// A minor version that did not grow a struct has no row: it needs what the nearest earlier minor needs.
    @Test func minorVersionWithoutARowNeedsWhatTheEarlierOneNeeds() {
        let table = StructLayout<Version11>(
            "fake_struct",
            minimums: [0: .through("handle", \.handle), 2: .through("added", \.added)]
        )
        #expect(table.minimum(for: ABIVersion(major: 1, minor: 1)).size == 16)
        #expect(table.minimum(for: ABIVersion(major: 1, minor: 2)).size == 24)
        #expect(table.minimum(for: ABIVersion(major: 1, minor: 9)).lastField == "added")
    }

    /// Appending a field to a struct in stephost.h without a row for it would leave the new field unchecked:
    /// the newest row ends where the header's struct ends.
    @Test func everyTableEndsWhereTheCurrentHeadersStructEnds() {
        #expect(
            PluginStructs.pluginDescriptor.minimum(for: .current).size
                == MemoryLayout<stephost_plugin_descriptor>.size
        )
        #expect(
            PluginStructs.stepDescriptor.minimum(for: .current).size == MemoryLayout<stephost_step_descriptor>.size
        )
    }
}
