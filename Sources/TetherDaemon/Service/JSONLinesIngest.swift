import Foundation
import TetherCore
import TetherEngine
import TetherHTTP

/// `tether ingest`: one SPEC §8 event per line, each applied or rejected with its line number.
/// A rejected line changes nothing; the lines before and after it are still applied.
struct JSONLinesIngest: EventIngest {
    let engine: Engine
    let clock: any WallClock

    func ingest(lines: String, actor: Actor) async -> [AdminModels.IngestLine] {
        var results: [AdminModels.IngestLine] = []
        for (offset, line) in lines.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { continue }
            let number = offset + 1
            let event: LifecycleEvent
            do {
                let tolerance = await engine.configuration.versionTolerance
                event = try HREvent(json: Data(text.utf8), now: clock.now(), tolerance: .milliseconds(Int64(tolerance * 1000))).event
            } catch {
                results.append(AdminModels.IngestLine(line: number, status: "rejected", error: error.description))
                continue
            }
            do {
                let outcome = try await engine.submit(event, actor: actor)
                results.append(AdminModels.IngestLine(
                    line: number, status: outcome.status.rawValue, event: event.id,
                    revoked: outcome.revoked > 0 ? outcome.revoked : nil))
            } catch {
                results.append(AdminModels.IngestLine(line: number, status: "rejected", event: event.id, error: "\(error)"))
            }
        }
        return results
    }
}
