import Crypto
import Foundation
import Logging
import TetherCore
import TetherEngine
import TetherStore

/// The `/Agents` collection (SPEC §15): SCIM Agent resources over the engine's agent
/// registry. The resource's `id` is the agent id (its `name`, which never changes); every
/// write is one engine change, one commit audited `agent.registered|updated|disabled|deleted`
/// with the grants that follow it, made before the answer.
struct SCIMAgents<Store: SCIMResourceReading>: Sendable {
    let store: Store
    let engine: Engine
    let logger: Logger
    /// The largest page a query returns (`filter.maxResults`).
    let maxResults: Int
    /// The gate SCIM writes share: an owner resolved from a User is not changed meanwhile.
    let gate: SCIMWriteGate

    static var resourceType: SCIMResourceType { .agent }

    /// An agent as a SCIM client sees it: its full representation and its version.
    struct Resource: Sendable {
        var listing: AgentListing
        /// The full representation, `meta` included.
        var attributes: SCIMJSON.Object
        var version: String
        var id: String { listing.agent.id }
    }

    // MARK: Reading

    /// The agent `id` (configured or registered); `404` when there is none.
    func load(_ id: String, base: String) async throws -> Resource {
        guard let listing = try await engine.agent(id: id) else { throw SCIMError.notFound("no Agent has id \(id)") }
        return render(listing, userIDs: try await userIDs(of: [listing.agent]), base: base)
    }

    /// A ListResponse of the agents that match `query`, one page of them.
    func list(_ query: SCIMQuery, base: String) async throws -> SCIMJSON {
        let plan = try SCIMListPlan(query, types: [Self.resourceType], maxResults: maxResults)
        return plan.response(try await matched(plan, base: base))
    }

    /// Every agent's full representation that passes `plan`'s filter, in its order: the
    /// configured agents in file order, then the registered ones in the order registered.
    func matched(_ plan: SCIMListPlan, base: String) async throws -> [(SCIMResourceType, SCIMJSON.Object)] {
        let listings = try await engine.agents()
        let ids = try await userIDs(of: listings.map(\.agent))
        let matched = listings.map { render($0, userIDs: ids, base: base).attributes }.filter { plan.matches($0, type: Self.resourceType) }
        return plan.sorted(matched, type: Self.resourceType).map { (Self.resourceType, $0) }
    }

    /// The SCIM User ids of the sponsors of `agents` that are SCIM Users, by userName.
    private func userIDs(of agents: [Agent]) async throws -> [String: String] {
        var ids: [String: String] = [:]
        for sponsor in Set(agents.flatMap(\.sponsors)) {
            let users = try await store.scimResources(kind: .user, where: .userName, equals: sponsor)
            if let user = users.first(where: { $0.userName == sponsor }) ?? users.first { ids[sponsor] = user.id }
        }
        return ids
    }

    /// The full representation: the core attributes, the extension's attributes that are not
    /// at their default, and `meta` with a version that changes with the representation.
    func render(_ listing: AgentListing, userIDs: [String: String], base: String) -> Resource {
        let agent = listing.agent
        var body = SCIMJSON.Object()
        if let externalId = agent.externalId { body["externalId"] = .string(externalId) }
        body["name"] = .string(agent.id)
        if let displayName = agent.displayName { body["displayName"] = .string(displayName) }
        if let agentType = agent.agentType { body["agentType"] = .string(agentType) }
        body["active"] = .bool(agent.active)
        if let description = agent.description { body["description"] = .string(description) }
        let owners = agent.sponsors.map { sponsor -> SCIMJSON in
            guard let id = userIDs[sponsor] else {
                return .object(SCIMJSON.Object([.init("value", .string(sponsor))]))
            }
            return .object(SCIMJSON.Object([.init("value", .string(id)), .init("$ref", .string("\(base)/Users/\(id)"))]))
        }
        if !owners.isEmpty { body["owners"] = .array(owners) }
        var tether = SCIMJSON.Object()
        if agent.kind == .autonomous { tether["kind"] = .string(agent.kind.rawValue) }
        if agent.onSponsorLeave == .transferToManager { tether["onSponsorLeave"] = .string(agent.onSponsorLeave.rawValue) }
        var schemas: [SCIMJSON] = [.string(SCIMSchema.agentURN)]
        if !tether.isEmpty {
            schemas.append(.string(SCIMSchema.tetherAgentURN))
            body[SCIMSchema.tetherAgentURN] = .object(tether)
        }
        let version = Self.version(of: body, agent: agent)
        var meta = SCIMJSON.Object([.init("resourceType", .string(Self.resourceType.name))])
        if let created = agent.createdAt { meta["created"] = .string(Timestamp.string(created)) }
        if let modified = agent.updatedAt { meta["lastModified"] = .string(Timestamp.string(modified)) }
        meta["location"] = .string("\(base)\(Self.resourceType.endpoint)/\(agent.id)")
        meta["version"] = .string(SCIMVersion.etag(version))
        let full = SCIMJSON.Object(
            [.init("schemas", .array(schemas)), .init("id", .string(agent.id))] + body.members + [.init("meta", .object(meta))])
        return Resource(listing: listing, attributes: full, version: version)
    }

    /// A digest of the representation and the registration time: any change a client can see
    /// gives another version, and an agent deleted and created again never reuses one.
    private static func version(of body: SCIMJSON.Object, agent: Agent) -> String {
        var text = SCIMJSON.object(body).text
        if let updated = agent.updatedAt { text += "\n" + Timestamp.string(updated) }
        return SHA256.hash(data: Data(text.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// The attributes a client owns: the representation without `id` and `meta`.
    private static func clientAttributes(of resource: Resource) -> SCIMJSON.Object {
        SCIMJSON.Object(resource.attributes.members.filter { $0.name != "id" && $0.name != "meta" })
    }

    // MARK: Writing

    /// POST: registers an agent (source `scim`).
    func create(body: SCIMJSON, base: String) async throws -> Resource {
        let attributes = try SCIMResourceBody.read(body, type: Self.resourceType)
        try SCIMValues.validate(attributes, type: Self.resourceType)
        return try await gate.run {
            let agent = try await registration(from: attributes, existing: nil)
            let outcome = try await Self.engineCall { try await engine.registerAgent(agent, actor: .scim) }
            log("scim agent created", agent: agent.id, outcome: outcome)
            return try await load(agent.id, base: base)
        }
    }

    /// PUT: replaces a registered agent's attributes; those left out become unassigned.
    func replace(id: String, body: SCIMJSON, ifMatch: String?, base: String) async throws -> Resource {
        let attributes = try SCIMResourceBody.read(body, type: Self.resourceType)
        try SCIMValues.validate(attributes, type: Self.resourceType)
        return try await gate.run {
            let current = try await writable(id, ifMatch: ifMatch, base: base)
            return try await update(current, to: attributes, base: base)
        }
    }

    /// PATCH: applies the operations to a registered agent, all or none.
    func patch(id: String, body: SCIMJSON, ifMatch: String?, base: String) async throws -> Resource {
        let patch = try SCIMPatch.parse(body, knownSchemas: Self.resourceType.schemaURNs)
        return try await gate.run {
            let current = try await writable(id, ifMatch: ifMatch, base: base)
            let attributes = try patch.apply(to: Self.clientAttributes(of: current), type: Self.resourceType)
            try SCIMValues.validate(attributes, type: Self.resourceType)
            return try await update(current, to: attributes, base: base)
        }
    }

    /// DELETE: deletes a registered agent and revokes every grant it holds, in one commit.
    func delete(id: String, ifMatch: String?, base: String) async throws {
        try await gate.run {
            let current = try await writable(id, ifMatch: ifMatch, base: base)
            let outcome = try await Self.engineCall { try await engine.deleteAgent(current.id, actor: .scim) }
            log("scim agent deleted", agent: id, outcome: outcome)
        }
    }

    /// The agent `id` as it is, if a client may change it: `404` when there is none, `412`
    /// when `ifMatch` names another version, `403` when the configuration file declares it.
    private func writable(_ id: String, ifMatch: String?, base: String) async throws -> Resource {
        let current = try await load(id, base: base)
        if let ifMatch, !SCIMVersion.matches(ifMatch: ifMatch, version: current.version) {
            throw SCIMError.preconditionFailed(
                "If-Match \(ifMatch) does not match the current version \(SCIMVersion.etag(current.version)) of Agent \(id)")
        }
        if !current.listing.agent.isRegistered {
            // Raises the engine's refusal, which names the file to edit.
            _ = try await Self.engineCall { try await engine.updateAgent(id, actor: .scim) { _ in } }
        }
        return current
    }

    /// Puts `attributes` in force for `current`, provided the registration is still the one
    /// the client's change was made against.
    private func update(_ current: Resource, to attributes: SCIMJSON.Object, base: String) async throws -> Resource {
        let id = current.id
        if let name = attributes["name"]?.stringValue, name != id {
            throw SCIMError.mutability("name is immutable: Agent \(id) cannot be renamed to \(name); create another Agent instead")
        }
        let expected = current.listing.agent
        let agent = try await registration(from: attributes, existing: expected)
        let outcome = try await Self.engineCall {
            try await engine.updateAgent(id, actor: .scim) { registered in
                guard registered == expected else {
                    throw SCIMError.preconditionFailed("Agent \(id) changed while this request was applied; read it again")
                }
                registered = agent
            }
        }
        log("scim agent changed", agent: id, outcome: outcome)
        return try await load(id, base: base)
    }

    /// The registration `attributes` describe; `existing` gives what SCIM does not carry
    /// (source, an autonomous agent's declared grants).
    private func registration(from attributes: SCIMJSON.Object, existing: Agent?) async throws -> Agent {
        let name = attributes["name"]?.stringValue ?? ""
        let tether = attributes[SCIMSchema.tetherAgentURN]?.objectValue ?? SCIMJSON.Object()
        let kind = try Self.choice(tether["kind"], among: [AgentKind.delegated, .autonomous], path: "kind")
        let onSponsorLeave = try Self.choice(
            tether["onSponsorLeave"], among: [SponsorLeavePolicy.quarantine, .transferToManager], path: "onSponsorLeave")
        return Agent(
            id: name, kind: kind, sponsors: try await sponsors(attributes["owners"]?.arrayValue ?? []),
            onSponsorLeave: onSponsorLeave, grants: existing?.grants ?? [], displayName: attributes["displayName"]?.stringValue,
            description: attributes["description"]?.stringValue, agentType: attributes["agentType"]?.stringValue,
            active: attributes["active"]?.boolValue ?? true, source: existing?.source ?? .scim, createdAt: existing?.createdAt,
            updatedAt: existing?.updatedAt, externalId: attributes["externalId"]?.stringValue)
    }

    /// An extension value among the raw values of `cases`, compared case-insensitively;
    /// unassigned is the first case, the default.
    private static func choice<T: RawRepresentable>(_ value: SCIMJSON?, among cases: [T], path: String) throws(SCIMError) -> T
    where T.RawValue == String {
        guard let text = value?.stringValue else { return cases[0] }
        guard let found = cases.first(where: { $0.rawValue.caseInsensitiveEquals(text) }) else {
            throw SCIMError.invalidValue(
                "\(SCIMSchema.tetherAgentURN):\(path) is one of \(cases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
        }
        return found
    }

    /// The sponsors `owners` name, as identity userNames: a `value` is a User's id (or its
    /// URI) or an identity's userName. Values that name neither are a `400` that lists them.
    private func sponsors(_ owners: [SCIMJSON]) async throws -> [String] {
        var sponsors: [String] = []
        var unknown: [String] = []
        for owner in owners {
            guard let value = owner["value"]?.stringValue else { continue }
            var userName: String?
            let userID = value.range(of: "/Users/", options: .backwards).map { String(value[$0.upperBound...]) } ?? value
            if let record = try await store.scimResource(id: userID), record.kind == .user, let name = record.userName, !name.isEmpty {
                userName = name
            } else if try await engine.identityExists(userName: value) {
                userName = value
            }
            guard let userName else {
                unknown.append(value)
                continue
            }
            if !sponsors.contains(userName) { sponsors.append(userName) }
        }
        guard unknown.isEmpty else {
            throw SCIMError.invalidValue(
                "owners \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")) \(unknown.count == 1 ? "names" : "name") no User id "
                    + "and no identity's userName; create the User first, or name an identity Tether knows")
        }
        return sponsors
    }

    /// Runs an engine call, its refusals as SCIM errors: an invalid registration or too few
    /// active sponsors `400`, a taken name `409`, an agent of the configuration file `403`
    /// (no SCIM client may change it), an unknown agent `404`.
    private static func engineCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as EngineError {
            switch error.code {
            case .invalidAgent, .tooFewSponsors: throw SCIMError.invalidValue(error.message)
            case .agentExists: throw SCIMError.uniqueness(error.message)
            case .configuredAgent: throw SCIMError(status: 403, nil, error.message)
            case .unknownAgent: throw SCIMError.notFound(error.message)
            default: throw error
            }
        }
    }

    private func log(_ message: Logger.Message, agent: String, outcome: AgentOutcome) {
        logger.info(
            message,
            metadata: [
                "agent": "\(agent)", "action": "\(outcome.action.rawValue)", "revision": "\(outcome.revision.map { String($0) } ?? "-")",
            ])
    }
}
