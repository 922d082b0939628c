import Foundation
import Hummingbird
import TetherCore
import TetherEngine

/// `tether agents` and its subcommands over the admin socket (SPEC §15): the effective agent
/// list, and registering, changing, disabling and deleting runtime agents, each one audited
/// commit whose actor is the operator.
extension AdminController {
    func addAgentRoutes(to router: Router<AdminContext>) {
        router.get("/v1/agents") { request, _ in
            let rows = try await engine.agents().map(AdminModels.AgentRow.init)
            return try await usedAgents(rows, unused: request.uri.queryParameters.get("unused"))
        }
        router.post("/v1/agents") { request, context in
            let body = try await Self.agentBody(request)
            let actor = try await context.operatorActor()
            return try await agentChange {
                try await engine.registerAgent(try Self.newAgent(body), actor: actor)
            }
        }
        router.patch("/v1/agents/:agent") { request, context in
            let id = try context.parameters.require("agent")
            let body = try await Self.agentBody(request)
            let actor = try await context.operatorActor()
            return try await agentChange {
                try Self.checkFields(of: body, id: id)
                return try await engine.updateAgent(id, actor: actor) { agent in try Self.apply(body, to: &agent) }
            }
        }
        router.post("/v1/agents/:agent/disable") { _, context in
            let id = try context.parameters.require("agent")
            let actor = try await context.operatorActor()
            return try await agentChange { try await engine.setAgentActive(id, active: false, actor: actor) }
        }
        router.post("/v1/agents/:agent/enable") { _, context in
            let id = try context.parameters.require("agent")
            let actor = try await context.operatorActor()
            return try await agentChange { try await engine.setAgentActive(id, active: true, actor: actor) }
        }
        router.delete("/v1/agents/:agent") { _, context in
            let id = try context.parameters.require("agent")
            let actor = try await context.operatorActor()
            return try await agentChange { try await engine.deleteAgent(id, actor: actor) }
        }
        router.post("/v1/agents/:agent/sponsors") { request, context in
            let id = try context.parameters.require("agent")
            let buffer = try await request.body.collect(upTo: 64 * 1024)
            guard let body = try? JSONDecoder().decode(AdminModels.SponsorsBody.self, from: Data(buffer: buffer)) else {
                return try json(AdminModels.ErrorBody(error: "expected {\"add\":[userName…],\"remove\":[userName…]}"), status: .badRequest)
            }
            let actor = try await context.operatorActor()
            return try await agentChange {
                try await engine.changeSponsors(of: id, adding: body.add, removing: body.remove, actor: actor)
            }
        }
        router.post("/v1/agents/:agent/sponsor/:user") { _, context in
            let agent = try context.parameters.require("agent")
            let user = try context.parameters.require("user")
            do {
                let plan = try await engine.sponsor(agent: agent, userName: user, actor: try await context.operatorActor())
                return try json(AdminModels.Message(status: "applied", message: "\(agent) sponsored by \(user)", plan: AdminModels.PlanRow(plan)))
            } catch let error as EngineError {
                return try json(AdminModels.ErrorBody(error: error.message), status: .badRequest)
            }
        }
    }

    /// Runs a registry change and answers with what it did, or with the engine's refusal:
    /// 400 for an invalid agent or too few sponsors, 404 for an unknown one, 409 for an id
    /// taken or an agent the configuration file declares.
    func agentChange(_ change: () async throws -> AgentOutcome) async throws -> Response {
        let outcome: AgentOutcome
        do {
            outcome = try await change()
        } catch let error as EngineError {
            let status: HTTPResponse.Status =
                switch error.code {
                case .unknownAgent: .notFound
                case .agentExists, .configuredAgent: .conflict
                default: .badRequest
                }
            return try json(AdminModels.ErrorBody(error: error.message), status: status)
        }
        let listing =
            try await engine.agent(id: outcome.agent.id)
            ?? AgentListing(agent: outcome.agent, state: nil, sponsors: outcome.agent.sponsors, activeSponsors: [])
        var row = AdminModels.AgentRow(listing)
        if outcome.action == .agentDeleted {
            row.status = "deleted"
            row.reason = "deleted"
        }
        return try json(AdminModels.AgentResult(
            action: outcome.action.rawValue, revision: outcome.revision, agent: row, plan: AdminModels.PlanRow(outcome.plan)))
    }

    /// Agents in force with exactly one active sponsor: one departure from quarantine.
    func agentsAtOneSponsor() async throws -> [AdminModels.OneSponsorRow] {
        try await engine.agents().compactMap { listing in
            guard listing.status == .active, listing.activeSponsors.count == 1 else { return nil }
            return AdminModels.OneSponsorRow(
                id: listing.agent.id, sponsors: listing.sponsors, activeSponsor: listing.activeSponsors[0])
        }
    }

    private static func agentBody(_ request: Request) async throws -> AdminModels.AgentBody {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try JSONDecoder().decode(AdminModels.AgentBody.self, from: Data(buffer: buffer))
        } catch {
            throw HTTPError(
                .badRequest,
                message: "expected {\"id\",\"kind\",\"sponsors\",\"displayName\"?,\"description\"?,\"agentType\"?,"
                    + "\"onSponsorLeave\"?,\"grants\"?:[{\"scopes\",\"resource\"}]}")
        }
    }

    /// A new operator-registered agent from a request body.
    static func newAgent(_ body: AdminModels.AgentBody) throws -> Agent {
        guard let id = body.id else { throw EngineError(.invalidAgent, "an agent needs an id") }
        guard let kindText = body.kind else {
            throw EngineError(.invalidAgent, "agent \(id) needs a kind: delegated (acts for the person invoking it) or autonomous (acts as itself)")
        }
        var agent = Agent(id: id, kind: try kind(kindText), sponsors: body.sponsors ?? [], source: .operator)
        try apply(body, to: &agent)
        return agent
    }

    /// Refuses a change that names another id than the agent's.
    static func checkFields(of body: AdminModels.AgentBody, id: String) throws {
        if let other = body.id, other != id {
            throw EngineError(.invalidAgent, "agent \(id) cannot be renamed to \(other); register a new agent instead")
        }
    }

    /// Sets the fields `body` gives on `agent`; an empty text clears an optional field.
    static func apply(_ body: AdminModels.AgentBody, to agent: inout Agent) throws {
        if let text = body.kind { agent.kind = try kind(text) }
        if let sponsors = body.sponsors { agent.sponsors = sponsors }
        if let text = body.displayName { agent.displayName = text.isEmpty ? nil : text }
        if let text = body.description { agent.description = text.isEmpty ? nil : text }
        if let text = body.agentType { agent.agentType = text.isEmpty ? nil : text }
        if let text = body.onSponsorLeave {
            guard let policy = SponsorLeavePolicy(rawValue: text) else {
                throw EngineError(.invalidAgent, "unknown onSponsorLeave '\(text)'; expected quarantine or transfer-to-manager")
            }
            agent.onSponsorLeave = policy
        }
        if let grants = body.grants { agent.grants = grants.map { StaticGrant(scopes: $0.scopes, resource: $0.resource) } }
    }

    private static func kind(_ text: String) throws -> AgentKind {
        guard let kind = AgentKind(rawValue: text) else {
            throw EngineError(.invalidAgent, "unknown kind '\(text)'; expected delegated or autonomous")
        }
        return kind
    }
}
