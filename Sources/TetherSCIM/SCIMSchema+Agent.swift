import TetherCore

/// The Agent resource (draft-wzdk-scim-agent-resource, after draft-abbey-scim-agent-extension)
/// as Tether serves it, and Tether's extension for what the drafts leave out (SPEC §15).
extension SCIMSchema {
    /// `urn:ietf:params:scim:schemas:core:2.0:Agent`.
    public static let agentURN = "urn:ietf:params:scim:schemas:core:2.0:Agent"
    /// `urn:ietf:params:scim:schemas:extension:tether:2.0:Agent`.
    public static let tetherAgentURN = "urn:ietf:params:scim:schemas:extension:tether:2.0:Agent"

    /// The core Agent schema: what Tether keeps of an agent's registration.
    public static let agent = SCIMSchema(
        id: agentURN, name: "Agent", description: "AI agent",
        attributes: [
            SCIMAttribute(
                "name",
                description: "The agent's unique name: Tether's agent id, which checks and policies name. Letters, digits, "
                    + "'.', '_', ':' and '-', starting with a letter or digit; it cannot change once the agent exists.",
                required: true, caseExact: true, mutability: .immutable, uniqueness: .server),
            SCIMAttribute("displayName", description: "A name for people."),
            SCIMAttribute("agentType", description: "A free classification of the agent, e.g. 'assistant' or 'workflow'."),
            SCIMAttribute(
                "active", .boolean,
                description: "False disables the agent: every grant it holds is revoked before the answer and every check "
                    + "for it is denied.",
                required: true),
            SCIMAttribute("description", description: "What the agent is for."),
            SCIMAttribute(
                "owners", .complex, multiValued: true,
                description: "The agent's sponsors: accountable people, each a User (by its id) or an identity (by its "
                    + "userName). The agent keeps its grants while at least one of them is an active identity; "
                    + "agents.minSponsors of them must be.",
                required: true,
                subAttributes: [
                    SCIMAttribute(
                        "value", .reference,
                        description: "The owner: the id of a User resource (or its URI), or the userName of an identity from "
                            + "any source. Returned as the User's id, or as the userName.",
                        required: true, caseExact: true, referenceTypes: ["User"]),
                    SCIMAttribute(
                        "$ref", .reference, description: "The URI of the User resource; Tether derives it from value.",
                        caseExact: true, referenceTypes: ["User"]),
                ]),
        ])

    /// Tether's Agent extension. Each attribute is unassigned at its default, so a removed
    /// value reads back as unassigned.
    public static let tetherAgent = SCIMSchema(
        id: tetherAgentURN, name: "TetherAgent", description: "What Tether needs of an agent beyond the core schema",
        attributes: [
            SCIMAttribute(
                "kind",
                description: "'autonomous': the agent acts as itself (its grants' subject is agent:<name>). Unassigned "
                    + "(or 'delegated'), the agent acts for whoever invokes it and is returned without kind.",
                canonicalValues: [AgentKind.autonomous.rawValue]),
            SCIMAttribute(
                "onSponsorLeave",
                description: "'transfer-to-manager': when the last active owner leaves, the agent is quarantined and the "
                    + "owner's manager proposed as its sponsor. Unassigned (or 'quarantine'), it is quarantined until an "
                    + "owner is active again.",
                canonicalValues: [SponsorLeavePolicy.transferToManager.rawValue]),
        ])
}

extension SCIMResourceType {
    /// `/Agents`: the core Agent with Tether's optional extension.
    public static let agent = SCIMResourceType(
        name: "Agent", endpoint: "/Agents", description: "AI agent (a non-human identity) and its sponsors", schema: .agent,
        extensions: [Extension(schema: .tetherAgent, required: false)])

    /// Every resource type served, as discovery advertises them: ``all`` (kept in the SCIM
    /// store) and Agents (kept in the agent registry).
    public static let served: [SCIMResourceType] = all + [.agent]
}
