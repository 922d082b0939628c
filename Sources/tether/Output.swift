import Foundation

/// Renders human tables and passes `--json` through unchanged.
enum Output {
    /// A left-aligned table with a header row; empty tables say so.
    static func table(_ header: [String], _ rows: [[String]], empty: String = "(none)") -> String {
        guard !rows.isEmpty else { return empty }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func printJSON(_ data: Data) {
        FileHandle.standardOutput.write(data)
        if data.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("tether: \(message)\n".utf8))
    }
}
