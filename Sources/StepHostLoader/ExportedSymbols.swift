import Foundation

/// The symbols a shared object exports, read from its ELF dynamic symbol table without loading it (what
/// `nm -D --defined-only` lists): for `stephost check-plugin`, which warns about a plugin that exports more than
/// its entry point.
///
/// The file is a plugin's, so it is hostile input: every offset, size and count is checked against the bytes
/// actually read before it is used, and a table that claims more than the file holds is refused, never followed.
public enum ExportedSymbols {
    /// Why the symbols could not be listed.
    public struct Unreadable: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The most symbols a table may claim; a plugin has a handful.
    static let maximumSymbols = 1 << 20
    /// The most names listed, and the longest name read (longer ones are cut and end in "…").
    public static let maximumListed = 4096
    public static let maximumNameLength = 1024

    /// The names of the defined global and weak symbols of default or protected visibility in the file's
    /// `.dynsym`, sorted, without their version suffixes.
    public static func read(path: String, maximumSize: Int) throws(Unreadable) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw Unreadable(description: "it cannot be opened (\(String(cString: strerror(errno))))")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumSize + 1) ?? Data()
        } catch {
            throw Unreadable(description: "it cannot be read (\(error))")
        }
        guard data.count <= maximumSize else { throw Unreadable(description: "it is larger than a plugin may be") }
        return try symbols(in: [UInt8](data))
    }

    /// The exported symbols of an ELF image held in `bytes`.
    public static func symbols(in bytes: [UInt8]) throws(Unreadable) -> [String] {
        let file = Bytes(bytes)
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw Unreadable(description: "it is not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else {
            throw Unreadable(description: "it is not a 64-bit little-endian ELF file, which this host cannot load")
        }
        guard let sectionTable = file.u64(0x28), let entrySize = file.u16(0x3A), let count = file.u16(0x3C) else {
            throw Unreadable(description: "its ELF header is cut short")
        }
        guard count > 0 else { throw Unreadable(description: "it has no section headers (stripped with sstrip?)") }
        guard entrySize >= 64 else { throw Unreadable(description: "its section headers are too small") }
        for index in 0..<Int(count) {
            guard let header = Self.offset(sectionTable, plus: UInt64(index) * UInt64(entrySize)),
                let type = file.u32(header + 4)
            else { throw Unreadable(description: "its section header \(index) lies outside the file") }
            guard type == 11 else { continue }  // SHT_DYNSYM
            guard let offset = file.u64(header + 0x18), let size = file.u64(header + 0x20),
                let link = file.u32(header + 0x28), let symbolSize = file.u64(header + 0x38)
            else { throw Unreadable(description: "its dynamic symbol table's header is cut short") }
            // Elf64_Sym is 24 bytes: any other entry size would misread (or, larger than the table, hide) every
            // symbol, so the table is refused instead of read as empty.
            guard symbolSize == 24 else {
                throw Unreadable(description: "its dynamic symbol table has entries of \(symbolSize) bytes, not 24")
            }
            guard link < count,
                let stringsHeader = Self.offset(sectionTable, plus: UInt64(link) * UInt64(entrySize)),
                let stringsOffset = file.u64(stringsHeader + 0x18), let stringsSize = file.u64(stringsHeader + 0x20),
                file.contains(stringsOffset, stringsSize), file.contains(offset, size)
            else { throw Unreadable(description: "its dynamic symbol table lies outside the file") }
            let symbols = size / symbolSize
            guard symbols <= UInt64(Self.maximumSymbols) else {
                throw Unreadable(description: "it claims \(symbols) dynamic symbols")
            }
            var names: Set<String> = []
            // At most 16 MiB of names are scanned in all, whatever the table claims.
            var budget = 16 << 20
            for symbol in 0..<Int(symbols) where budget > 0 {
                let entry = Int(offset) + symbol * Int(symbolSize)
                guard let name = file.u32(entry), let shndx = file.u16(entry + 6) else { continue }
                let info = bytes[entry + 4]
                let visibility = bytes[entry + 5] & 3
                let binding = info >> 4
                let kind = info & 0xF
                // GLOBAL, WEAK or GNU_UNIQUE; defined here; DEFAULT or PROTECTED; not a section or file symbol.
                guard [1, 2, 10].contains(binding), shndx != 0, visibility == 0 || visibility == 3, kind != 3,
                    kind != 4, UInt64(name) < stringsSize
                else { continue }
                let start = Int(stringsOffset) + Int(name)
                // A name is read up to its NUL or maximumNameLength bytes, whichever comes first: a table whose
                // names all run to the end of a large string table must cost no more than its size once.
                let end = min(Int(stringsOffset + stringsSize), start + Self.maximumNameLength)
                var stop = start
                while stop < end && bytes[stop] != 0 { stop += 1 }
                budget -= stop - start + 1
                guard stop > start else { continue }
                let cut = stop == end && (stop >= bytes.count || bytes[stop] != 0)
                names.insert(String(decoding: bytes[start..<stop], as: UTF8.self) + (cut ? "…" : ""))
                guard names.count < Self.maximumListed else { break }
            }
            return names.sorted()
        }
        throw Unreadable(description: "it has no dynamic symbol table (it is not a shared object)")
    }

    private static func offset(_ base: UInt64, plus: UInt64) -> Int? {
        let (sum, overflow) = base.addingReportingOverflow(plus)
        // Past 2^48 no file of a plugin's size can reach; below it, the reads that follow cannot overflow.
        guard !overflow, sum < 1 << 48 else { return nil }
        return Int(sum)
    }

    /// Little-endian reads that return `nil` past the end instead of trapping.
    private struct Bytes {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func contains(_ offset: UInt64, _ size: UInt64) -> Bool {
            let (end, overflow) = offset.addingReportingOverflow(size)
            return !overflow && end <= UInt64(bytes.count)
        }

        private func read(_ offset: Int, _ width: Int) -> UInt64? {
            guard offset >= 0, offset <= bytes.count - width else { return nil }
            var value: UInt64 = 0
            for index in (0..<width).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
            return value
        }

        func u16(_ offset: Int) -> UInt16? { read(offset, 2).map { UInt16($0) } }
        func u32(_ offset: Int) -> UInt32? { read(offset, 4).map { UInt32($0) } }
        func u64(_ offset: Int) -> UInt64? { read(offset, 8) }
    }
}
