import Testing
import TetherCore

@testable import TetherEngine

/// The check index's compact grants hold what they were given, no more and no less.
@Suite struct GrantTableTests {
    static func grant(_ subject: String, _ agent: String, _ scope: String, _ resource: String) -> Grant {
        Grant(subject: subject, agent: agent, scope: scope, resource: resource)
    }

    @Test func aCheckSeesTheGrantsOfItsPairAndScopeOnly() {
        var table = GrantTable()
        table.insert(Self.grant("alice", "copilot", "read", "wiki:Sales"), policy: "sales")
        table.insert(Self.grant("alice", "copilot", "read", "git:cc-01/*"), policy: "cc")
        table.insert(Self.grant("alice", "copilot", "write", "wiki:Sales"), policy: "sales")
        table.insert(Self.grant("alice", "ledger", "read", "wiki:Sales"), policy: "sales")
        table.insert(Self.grant("bob", "copilot", "read", "wiki:Sales"), policy: "sales")
        #expect(table.count == 5)

        let found = table.candidates(subject: "alice", agent: "copilot", scope: "read")
        #expect(found.map(\.grant).sorted() == [Self.grant("alice", "copilot", "read", "git:cc-01/*"), Self.grant("alice", "copilot", "read", "wiki:Sales")])
        #expect(Set(found.map(\.policy)) == ["sales", "cc"])
        // Names the table holds, in a pair or scope it has no grant for.
        #expect(table.candidates(subject: "bob", agent: "ledger", scope: "read").isEmpty)
        #expect(table.candidates(subject: "bob", agent: "copilot", scope: "write").isEmpty)
        // Names it has never seen.
        #expect(table.candidates(subject: "carol", agent: "copilot", scope: "read").isEmpty)
        #expect(table.candidates(subject: "alice", agent: "copilot", scope: "delete").isEmpty)
        // A name in one role is not taken for another: "read" is a scope, not an agent.
        #expect(table.candidates(subject: "alice", agent: "read", scope: "read").isEmpty)
        // Each distinct name once.
        #expect(table.nameCount == 10)
    }

    @Test func aRevocationRemovesThatGrantAndKeepsTheRest() {
        var table = GrantTable()
        let kept = Self.grant("alice", "copilot", "read", "wiki:Sales")
        let revoked = Self.grant("alice", "copilot", "read", "git:cc-01/*")
        table.insert(kept, policy: "sales")
        table.insert(revoked, policy: "cc")
        #expect(table.remove(revoked) == 1)
        #expect(table.remove(revoked) == 0)
        #expect(table.remove(Self.grant("alice", "copilot", "read", "never:seen")) == 0)
        #expect(table.count == 1)
        #expect(table.grants(subject: "alice", agent: "copilot").map(\.grant) == [kept])
        #expect(table.remove(kept) == 1)
        #expect(table.count == 0)
        #expect(table.grants(subject: "alice", agent: "copilot").isEmpty)
    }

    /// A follower applies other nodes' commits by grant id.
    @Test func aGrantIsFoundByItsId() {
        var table = GrantTable()
        let first = Self.grant("alice", "copilot", "read", "wiki:Sales")
        let second = Self.grant("alice", "copilot", "write", "wiki:Sales")
        table.insert(first, policy: "sales")
        table.insert(second, policy: "sales")
        #expect(table.remove(id: second.id, subject: "alice", agent: "copilot") == 1)
        #expect(table.remove(id: second.id, subject: "alice", agent: "copilot") == 0)
        #expect(table.remove(id: first.id, subject: "bob", agent: "copilot") == 0)
        #expect(table.grants(subject: "alice", agent: "copilot").map(\.grant) == [first])
    }

    /// Inserted again after a removal, a grant comes back with the policy it now has.
    @Test func aGrantInsertedAgainCarriesItsNewPolicy() {
        var table = GrantTable()
        let grant = Self.grant("alice", "copilot", "read", "wiki:Sales")
        table.insert(grant, policy: "old")
        table.remove(id: grant.id, subject: "alice", agent: "copilot")
        table.insert(grant, policy: "new")
        #expect(table.candidates(subject: "alice", agent: "copilot", scope: "read").map(\.policy) == ["new"])
        #expect(table.count == 1)
    }
}
