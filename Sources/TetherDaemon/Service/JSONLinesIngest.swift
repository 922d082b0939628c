import Foundation
import TetherCore
import TetherEngine

/// `tether ingest`: one SPEC §8 event per line, each applied or rejected with its line number.
/// A rejected line changes nothing; the lines before and after it are still applied.
struct JSONLinesIngest: EventIngest {
    let engine: Engine

    func ingest(lines: String, actor: Actor) async -> [AdminModels.IngestLine] {
        var results: [AdminModels.IngestLine] = []
        for (offset, line) in lines.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            results.append(AdminModels.IngestLine(line: offset + 1, status: "rejected", error: "event parsing is not wired yet"))
        }
        return results
    }
}
