import Foundation
import StepHostLoader
import Testing

/// The ELF export reader of check-plugin on crafted images: it never reads past what the file holds, and what a
/// hostile table claims costs at most its bounds.
@Suite("Exported symbols of a crafted ELF file")
struct ExportedSymbolsTests {
    /// A 64-bit little-endian ELF image with one .dynsym of `symbols` entries, all named at offset `nameOffset` of a
    /// .dynstr of `strings`.
    static func image(symbols: Int, nameOffset: UInt32, strings: [UInt8], entrySize: UInt64 = 24) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        func put(_ value: UInt64, _ width: Int, at offset: Int) {
            for index in 0..<width { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        }
        bytes[0...3] = [0x7F, 0x45, 0x4C, 0x46]
        bytes[4] = 2
        bytes[5] = 1
        let symbolsOffset = 64
        let table = (0..<symbols).flatMap { _ -> [UInt8] in
            var entry = [UInt8](repeating: 0, count: 24)
            for index in 0..<4 { entry[index] = UInt8(truncatingIfNeeded: nameOffset >> (8 * UInt32(index))) }
            entry[4] = 0x12  // GLOBAL FUNC
            entry[6] = 1  // defined in section 1
            return entry
        }
        bytes += table
        let stringsOffset = bytes.count
        bytes += strings
        let sections = bytes.count
        bytes += [UInt8](repeating: 0, count: 3 * 64)
        put(UInt64(sections), 8, at: 0x28)
        put(64, 2, at: 0x3A)
        put(3, 2, at: 0x3C)
        // Section 1: .dynsym, linked to section 2: .dynstr.
        put(11, 4, at: sections + 64 + 4)
        put(UInt64(symbolsOffset), 8, at: sections + 64 + 0x18)
        put(UInt64(table.count), 8, at: sections + 64 + 0x20)
        put(2, 4, at: sections + 64 + 0x28)
        put(entrySize, 8, at: sections + 64 + 0x38)
        put(3, 4, at: sections + 128 + 4)
        put(UInt64(stringsOffset), 8, at: sections + 128 + 0x18)
        put(UInt64(strings.count), 8, at: sections + 128 + 0x20)
        return bytes
    }

    @Test func namesAreReadAsWritten() throws {
        let strings = Array("\0stephost_plugin_init\0".utf8)
        #expect(
            try ExportedSymbols.symbols(in: Self.image(symbols: 3, nameOffset: 1, strings: strings)) == [
                "stephost_plugin_init"
            ]
        )
    }

    /// A name with no NUL before the end of a large string table is cut at 1 KiB: listing it costs its bound, not
    /// the table's size (a 4 MB table of such names once took 111 s and 8 GB).
    @Test func aNameWithoutItsEndIsCut() throws {
        let strings = [UInt8](repeating: 0x41, count: 1 << 20)
        let names = try ExportedSymbols.symbols(in: Self.image(symbols: 100, nameOffset: 0, strings: strings))
        #expect(names.count == 1)
        #expect(names.first?.count == ExportedSymbols.maximumNameLength + 1)
        #expect(names.first?.hasSuffix("…") == true)
    }

    /// An entry size other than Elf64_Sym's 24 bytes is refused, not read as an empty table.
    @Test func aWrongEntrySizeIsRefused() throws {
        let strings = Array("\0stephost_plugin_init\0".utf8)
        #expect(throws: ExportedSymbols.Unreadable.self) {
            try ExportedSymbols.symbols(in: Self.image(symbols: 3, nameOffset: 1, strings: strings, entrySize: 1 << 40))
        }
    }
}
