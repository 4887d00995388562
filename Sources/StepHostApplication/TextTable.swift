import Foundation

/// Plain-text tables for people: columns padded to their widest cell, two spaces apart.
public enum TextTable {
    /// The rows as lines, every column but the last padded, trailing spaces removed.
    public static func lines(_ rows: [[String]]) -> [String] {
        guard let header = rows.first else { return [] }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").replacing(/\ +$/, with: "")
        }
    }
}
