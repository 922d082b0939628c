import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TetherCore
import TetherStore
@testable import TetherSCIM

/// SCIM `/Agents` over a real loopback socket (SPEC §15): each change is one audited commit
/// whose grants follow it before the answer.
@Suite struct SCIMAgentTests {
    static let agentURN = "urn:ietf:params:scim:schemas:core:2.0:Agent"
    static let tetherURN = "urn:ietf:params:scim:schemas:extension:tether:2.0:Agent"
    /// The World's policies plus one naming `triage-bot`, which only SCIM registers.
    static let policySet = PolicySet(
        agents: World.policySet.agents,
        policies: World.policySet.policies + [
            Policy(
                id: "triage", when: .memberOf("support"),
                grant: [GrantTemplate(agent: "triage-bot", scopes: ["tickets:triage"], resource: "zendesk:queue/{department}")])
        ])
    static let aliceTriage = CheckRequest(
        subject: "alice", agent: "triage-bot", scope: "tickets:triage", resource: "zendesk:queue/Support")

    /// An Agent body; `owners` are raw JSON objects.
    static func body(
        name: String = "triage-bot", owners: [String], active: Bool = true, extra: String = #","displayName":"Triage bot""#
    ) -> String {
        #"{"schemas":["\#(agentURN)"],"name":"\#(name)","active":\#(active),"owners":[\#(owners.joined(separator: ","))]\#(extra)}"#
    }

    /// jdoe and mkhan (sponsors), alice in support: the users' ids by userName.
    static func seed(_ client: any TestClientProtocol) async throws -> [String: String] {
        var ids: [String: String] = [:]
        for name in ["jdoe", "mkhan"] { ids[name] = try await client.createUser(name, extra: #","active":true"#).id }
        ids["alice"] = try await client.createUser("alice", extra: supportUser).id
        try await client.createGroup("support", members: [ids["alice"]!])
        return ids
    }

    /// The audit actions and actors committed after `seq`.
    static func audit(_ world: World, after seq: Int) async throws -> [(action: String, actor: String)] {
        try await world.store.auditRecords(AuditQuery(afterSeq: seq)).map { ($0.action, $0.values["actor"]?.string ?? "") }
    }

    @Test func aSCIMClientCreatesFindsChangesDisablesAndDeletesAnAgent() async throws {
        let world = try World(policySet: Self.policySet)
        try await world.withLiveServer { client in
            let ids = try await Self.seed(client)
            #expect(!world.engine.index.decide(Self.aliceTriage).allowed, "no agent triage-bot yet")

            // Created with one owner by User id and one by userName: one commit, the grant given.
            var seq = try await world.store.lastAuditSeq()
            let created = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"\#(ids["jdoe"]!)"}"#, #"{"value":"mkhan"}"#]))
            #expect(created.status == 201, "\(created.text)")
            #expect(created.id == "triage-bot")
            #expect(created.headers[.location]?.hasSuffix("/scim/v2/Agents/triage-bot") == true)
            #expect(created["meta"]?["version"]?.stringValue == created.etag)
            let owners = created["owners"]?.arrayValue ?? []
            #expect(owners.map { $0["value"]?.stringValue } == [ids["jdoe"]!, ids["mkhan"]!])
            #expect(owners.first?["$ref"]?.stringValue?.hasSuffix("/Users/\(ids["jdoe"]!)") == true)
            #expect(try await world.store.registeredAgents().map(\.sponsors) == [["jdoe", "mkhan"]])
            #expect(try await world.grants(of: "alice").contains("tickets:triage zendesk:queue/Support"))
            #expect(world.engine.index.decide(Self.aliceTriage).allowed)
            var audit = try await Self.audit(world, after: seq)
            #expect(audit.filter { $0.action.hasPrefix("agent.") }.map(\.action) == ["agent.registered"])
            #expect(audit.allSatisfy { $0.actor == "scim" })
            #expect(audit.contains { $0.action == "grant.granted" })

            // Found by filter, paged and sorted with the configured agent.
            let found = try await client.scim(.get, "Agents?filter=" + Self.encoded(#"name eq "triage-bot" and active eq true"#))
            #expect(found.totalResults == 1 && found.resources.first?["id"] == "triage-bot")
            let byOwner = try await client.scim(.get, "Agents?filter=" + Self.encoded(#"owners.value eq "\#(ids["mkhan"]!)""#))
            #expect(byOwner.resources.map { $0["id"]?.stringValue } == ["triage-bot"])
            let byDisplay = try await client.scim(.get, "Agents?filter=" + Self.encoded(#"displayName co "triage""#))
            #expect(byDisplay.totalResults == 1)
            let page = try await client.scim(.get, "Agents?sortBy=name&sortOrder=descending&startIndex=2&count=1&attributes=name")
            #expect(page.totalResults == 2 && page.resources.count == 1)
            #expect(page.resources.first?["name"] == "support-copilot")
            #expect(page.resources.first?["owners"] == nil, "attributes=name leaves owners out")
            let searched = try await client.scim(.post, "Agents/.search", #"{"filter":"active eq true","sortBy":"name"}"#)
            #expect(searched.resources.map { $0["id"]?.stringValue } == ["support-copilot", "triage-bot"])
            let everything = try await client.scim(.post, ".search", #"{"filter":"displayName co \"triage\" or userName eq \"jdoe\""}"#)
            #expect(everything.status == 200, "\(everything.text)")
            #expect(everything.resources.compactMap { $0["meta"]?["resourceType"]?.stringValue } == ["User", "Agent"])

            // Disabled: the grant is gone when the answer arrives, in the same commit.
            seq = try await world.store.lastAuditSeq()
            let disabled = try await client.patch("Agents/triage-bot", #"[{"op":"replace","path":"active","value":false}]"#)
            #expect(disabled.status == 200, "\(disabled.text)")
            #expect(disabled["active"] == .bool(false))
            #expect(!(try await world.grants(of: "alice").contains("tickets:triage zendesk:queue/Support")))
            #expect(!world.engine.index.decide(Self.aliceTriage).allowed)
            audit = try await Self.audit(world, after: seq)
            #expect(audit.filter { $0.action.hasPrefix("agent.") }.map(\.action) == ["agent.disabled"])
            #expect(audit.contains { $0.action == "grant.revoked" } && audit.allSatisfy { $0.actor == "scim" })

            // Enabled again and changed through PUT: the grant is back.
            let replaced = try await client.scim(
                .put, "Agents/triage-bot",
                Self.body(owners: [#"{"value":"mkhan"}"#], extra: #","agentType":"workflow","description":"Sorts tickets""#))
            #expect(replaced.status == 200, "\(replaced.text)")
            #expect(replaced["displayName"] == nil, "PUT leaves out what the body leaves out")
            #expect(replaced["agentType"] == "workflow")
            #expect(try await world.store.registeredAgents().map(\.sponsors) == [["mkhan"]])
            #expect(world.engine.index.decide(Self.aliceTriage).allowed)

            // Deleted: every grant revoked before the answer, one commit audited agent.deleted.
            seq = try await world.store.lastAuditSeq()
            let deleted = try await client.scim(.delete, "Agents/triage-bot")
            #expect(deleted.status == 204)
            #expect(!(try await world.grants(of: "alice").contains("tickets:triage zendesk:queue/Support")))
            #expect(!world.engine.index.decide(Self.aliceTriage).allowed)
            audit = try await Self.audit(world, after: seq)
            #expect(audit.filter { $0.action.hasPrefix("agent.") }.map(\.action) == ["agent.deleted"])
            #expect(try await client.scim(.get, "Agents/triage-bot").status == 404)
            #expect(try await world.store.registeredAgents().isEmpty)
        }
    }

    @Test func patchChangesEveryAttributeAndTheExtensionAndRefusesARename() async throws {
        let world = try World(policySet: Self.policySet)
        try await world.withLiveServer { client in
            let ids = try await Self.seed(client)
            _ = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#]))
            let patched = try await client.patch(
                "Agents/triage-bot",
                #"""
                [{"op":"add","path":"owners","value":[{"value":"http://localhost/scim/v2/Users/\#(ids["mkhan"]!)"}]},
                 {"op":"replace","path":"description","value":"Sorts"},{"op":"remove","path":"displayName"},
                 {"op":"add","path":"agentType","value":"assistant"},
                 {"op":"replace","path":"\#(Self.tetherURN):onSponsorLeave","value":"transfer-to-manager"}]
                """#)
            #expect(patched.status == 200, "\(patched.text)")
            #expect(patched["owners"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == [ids["jdoe"]!, ids["mkhan"]!])
            #expect(patched["displayName"] == nil && patched["description"] == "Sorts" && patched["agentType"] == "assistant")
            #expect(patched[Self.tetherURN]?["onSponsorLeave"] == "transfer-to-manager")
            #expect(patched["schemas"]?.arrayValue?.contains(.string(Self.tetherURN)) == true)
            let agent = try #require(try await world.store.registeredAgents().first)
            #expect(agent.sponsors == ["jdoe", "mkhan"] && agent.onSponsorLeave == .transferToManager && agent.displayName == nil)

            let removed = try await client.patch(
                "Agents/triage-bot", #"[{"op":"remove","path":"owners[value eq \"\#(ids["jdoe"]!)\"]"},{"op":"remove","path":"\#(Self.tetherURN):onSponsorLeave"}]"#)
            #expect(removed.status == 200, "\(removed.text)")
            #expect(removed[Self.tetherURN] == nil, "a value back at its default is unassigned")
            #expect(try await world.store.registeredAgents().first?.sponsors == ["mkhan"])

            let autonomous = try await client.patch("Agents/triage-bot", #"[{"op":"add","path":"\#(Self.tetherURN):kind","value":"autonomous"}]"#)
            #expect(autonomous[Self.tetherURN]?["kind"] == "autonomous")
            #expect(try await world.store.registeredAgents().first?.kind == .autonomous)

            // The name is the agent id checks and policies use: it never changes.
            let renamed = try await client.patch("Agents/triage-bot", #"[{"op":"replace","path":"name","value":"other-bot"}]"#)
            #expect(renamed.status == 400 && renamed.scimType == "mutability", "\(renamed.text)")
            let put = try await client.scim(.put, "Agents/triage-bot", Self.body(name: "other-bot", owners: [#"{"value":"mkhan"}"#]))
            #expect(put.status == 400 && put.scimType == "mutability", "\(put.text)")
            #expect(put["detail"]?.stringValue?.contains("other-bot") == true)
            let badKind = try await client.patch("Agents/triage-bot", #"[{"op":"replace","path":"\#(Self.tetherURN):kind","value":"robot"}]"#)
            #expect(badKind.status == 400 && badKind.scimType == "invalidValue")
            #expect(try await world.store.registeredAgents().map(\.id) == ["triage-bot"])
        }
    }

    @Test func versionsGuardEveryWrite() async throws {
        let world = try World(policySet: Self.policySet)
        try await world.withLiveServer { client in
            _ = try await Self.seed(client)
            let created = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#]))
            let etag = try #require(created.etag)
            #expect(try await client.scim(.get, "Agents/triage-bot", headers: [.ifNoneMatch: etag]).status == 304)

            let stale = try await client.patch(
                "Agents/triage-bot", #"[{"op":"replace","path":"active","value":false}]"#, headers: [.ifMatch: #"W/"0123""#])
            #expect(stale.status == 412, "\(stale.text)")
            #expect(try await world.store.registeredAgents().first?.active == true, "nothing changed")
            let current = try await client.patch(
                "Agents/triage-bot", #"[{"op":"replace","path":"description","value":"x"}]"#, headers: [.ifMatch: etag])
            #expect(current.status == 200)
            #expect(current.etag != etag, "a change gives a new version")
            #expect(try await client.scim(.delete, "Agents/triage-bot", headers: [.ifMatch: etag]).status == 412)
            #expect(try await client.scim(.delete, "Agents/triage-bot", headers: [.ifMatch: current.etag!]).status == 204)
        }
    }

    @Test func refusalsSayWhatIsWrong() async throws {
        let world = try World(policySet: Self.policySet)
        try await world.withLiveServer { client in
            let ids = try await Self.seed(client)
            #expect(try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#])).status == 201)

            let duplicate = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#]))
            #expect(duplicate.status == 409 && duplicate.scimType == "uniqueness", "\(duplicate.text)")
            let configuredName = try await client.scim(.post, "Agents", Self.body(name: "support-copilot", owners: [#"{"value":"jdoe"}"#]))
            #expect(configuredName.status == 409)
            #expect(configuredName["detail"]?.stringValue?.contains("/etc/tether/tether.yaml") == true)

            // The configured agent is listed, and read-only here.
            let configured = try await client.scim(.get, "Agents/support-copilot")
            #expect(configured.status == 200)
            #expect(configured["owners"]?.arrayValue?.first?["value"]?.stringValue == ids["jdoe"])
            let seq = try await world.store.lastAuditSeq()
            for reply in [
                try await client.patch("Agents/support-copilot", #"[{"op":"replace","path":"active","value":false}]"#),
                try await client.scim(.put, "Agents/support-copilot", Self.body(name: "support-copilot", owners: [#"{"value":"jdoe"}"#])),
                try await client.scim(.delete, "Agents/support-copilot"),
            ] {
                #expect(reply.status == 403, "\(reply.text)")
                #expect(reply["detail"]?.stringValue?.contains("/etc/tether/tether.yaml") == true, "\(reply.text)")
            }
            #expect(try await world.store.lastAuditSeq() == seq, "nothing was written")
            #expect(try await world.grants(of: "alice").count == 3)

            let ghost = try await client.scim(.post, "Agents", Self.body(name: "ghost-bot", owners: [#"{"value":"jdoe"}"#, #"{"value":"ghost"}"#]))
            #expect(ghost.status == 400 && ghost.scimType == "invalidValue")
            #expect(ghost["detail"]?.stringValue?.contains(#""ghost""#) == true, "\(ghost.text)")
            let noOwner = try await client.scim(.post, "Agents", Self.body(name: "lone-bot", owners: []))
            #expect(noOwner.status == 400 && noOwner["detail"]?.stringValue?.contains("owners") == true, "\(noOwner.text)")
            let badName = try await client.scim(.post, "Agents", Self.body(name: "bad name", owners: [#"{"value":"jdoe"}"#]))
            #expect(badName.status == 400 && badName["detail"]?.stringValue?.contains("bad name") == true, "\(badName.text)")
            #expect(try await client.patch("Agents/nobody", #"[{"op":"replace","path":"active","value":false}]"#).status == 404)
            #expect(try await world.store.registeredAgents().map(\.id) == ["triage-bot"])
        }
    }

    @Test func minSponsorsIsABadRequestThatCountsTheActiveOwners() async throws {
        let world = try World(policySet: Self.policySet, minSponsors: 2)
        try await world.withLiveServer { client in
            let ids = try await Self.seed(client)
            let one = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#]))
            #expect(one.status == 400 && one.scimType == "invalidValue", "\(one.text)")
            #expect(one["detail"]?.stringValue?.contains("agents.minSponsors") == true)
            #expect(try await world.store.registeredAgents().isEmpty)
            let two = try await client.scim(.post, "Agents", Self.body(owners: [#"{"value":"jdoe"}"#, #"{"value":"\#(ids["mkhan"]!)"}"#]))
            #expect(two.status == 201, "\(two.text)")
            let fewer = try await client.patch("Agents/triage-bot", #"[{"op":"remove","path":"owners[value eq \"\#(ids["jdoe"]!)\"]"}]"#)
            #expect(fewer.status == 400 && fewer["detail"]?.stringValue?.contains("agents.minSponsors") == true, "\(fewer.text)")
            #expect(try await world.store.registeredAgents().first?.sponsors == ["jdoe", "mkhan"])
        }
    }

    @Test func discoveryAdvertisesAgentsAsServed() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let types = try await client.scim(.get, "ResourceTypes")
            let agent = try #require(types.resources.first { $0["id"] == "Agent" })
            #expect(agent["endpoint"] == "/Agents" && agent["schema"]?.stringValue == Self.agentURN)
            #expect(agent["schemaExtensions"]?.arrayValue?.first?["schema"]?.stringValue == Self.tetherURN)
            #expect(try await client.scim(.get, "ResourceTypes/Agent").status == 200)
            let schema = try await client.scim(.get, "Schemas/\(Self.agentURN)")
            let attributes = schema["attributes"]?.arrayValue ?? []
            let name = try #require(attributes.first { $0["name"] == "name" })
            #expect(name["mutability"] == "immutable" && name["uniqueness"] == "server" && name["required"] == .bool(true))
            #expect(attributes.compactMap { $0["name"]?.stringValue } == ["name", "displayName", "agentType", "active", "description", "owners"])
            #expect(try await client.scim(.get, "Schemas/\(Self.tetherURN)").status == 200)
            #expect(try await client.scim(.delete, "Agents").status == 405)
        }
    }

    static func encoded(_ filter: String) -> String { filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
}
