import Foundation
import TetherCore

extension Engine {
    /// Audits that the decision log dropped `count` check decisions between `since` and now
    /// because its queue was full (`decisions.dropped`, actor `check`): an audit-only commit,
    /// like a refusal's record.
    public func recordDecisionsDropped(_ count: Int, since: Date, queueSize: Int) async throws {
        try await lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(
            action: .decisionsDropped, actor: Actor("check"), time: changeset.time,
            fields: [
                "count": "\(count)", "since": Timestamp.string(since),
                "reason": "\(count) check decision\(count == 1 ? " was" : "s were") not recorded: the decision log's queue "
                    + "(check.log.queueSize \(queueSize)) was full",
            ]))
        try await commit(changeset)
    }
}
