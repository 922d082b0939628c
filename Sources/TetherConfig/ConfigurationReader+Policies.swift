import TetherCore

/// An agent entry as read, kept with its nodes so that policies can be checked against it.
struct DeclaredAgent {
    let index: Int
    let id: String?
    let idNode: ConfigNode?
    let kind: AgentKind?
    /// False for a second entry with an id already declared.
    let isFirstWithID: Bool
    /// The complete agent, nil when the entry has errors.
    let agent: Agent?
}

/// A policy entry as read, with the agents it names and where its groups are written.
struct DeclaredPolicy {
    let policy: Policy?
    let grantedAgents: Set<String>
    let groupReferences: [GroupReference]
}

extension ConfigurationReader {
    static let conditionKeys = ["all", "any", "not", "memberOf", "attribute"]
    static let attributeTestKeys = ["equals", "in", "present", "prefix", "bitsSet"]

    // MARK: - agents

    /// The `agents` section: a list of agents, or a mapping with `minSponsors` and the
    /// list under `declared`. Returns the agents and `agents.minSponsors` (default 1).
    func readAgentsSection(_ node: ConfigNode) -> (agents: [DeclaredAgent], minSponsors: Int) {
        guard case .mapping(let mapping) = node.node else { return (readAgents(node, minSponsors: 1), 1) }
        let keys = Set(mapping.keys.compactMap { key -> String? in
            if case .scalar(let scalar) = key { return scalar.string }
            return nil
        })
        if keys.isDisjoint(with: ["minSponsors", "declared"]) {
            // Most likely one agent written without the list's dash.
            node.typeError("a list of agents, or a mapping with minSponsors and declared")
            return ([], 1)
        }
        guard let map = node.mapping(allowed: ["minSponsors", "declared"], expected: "a list of agents, or { minSponsors, declared }")
        else { return ([], 1) }
        var minSponsors = 1
        if let value = map.optional("minSponsors")?.int(
            atLeast: 1, atMost: 16, expected: "a whole number of sponsors from 1 to 16")
        {
            minSponsors = value
        }
        let agents = map.optional("declared").map { readAgents($0, minSponsors: minSponsors) } ?? []
        return (agents, minSponsors)
    }

    func readAgents(_ node: ConfigNode, minSponsors: Int) -> [DeclaredAgent] {
        guard let items = node.list("a list of agents") else { return [] }
        var declared: [DeclaredAgent] = []
        var firstByID: [String: (index: Int, line: Int)] = [:]
        for (index, item) in items.enumerated() {
            guard let map = item.mapping(allowed: ["id", "kind", "sponsor", "sponsors", "onSponsorLeave", "grants"]) else {
                continue
            }
            let idNode = map.required("id")
            let id = idNode.flatMap { readIdentifier($0, what: "agent id") }
            var isFirst = true
            if let id, let idNode {
                if let first = firstByID[id] {
                    idNode.error(
                        "duplicate agent id '\(id)'; it is already declared at agents[\(first.index)] (line \(first.line)); "
                            + "agent ids must be unique")
                    isFirst = false
                } else {
                    firstByID[id] = (index, idNode.location.line)
                }
            }
            let kind = map.required(
                "kind", hint: "delegated (acts for the identity that invokes it) or autonomous (acts as itself)"
            ).flatMap { $0.oneOf([AgentKind.delegated, .autonomous]) }
            let sponsors = readSponsors(map, agent: id ?? "agents[\(index)]", minSponsors: minSponsors)
            var onSponsorLeave: SponsorLeavePolicy? = .quarantine
            if let leaveNode = map.optional("onSponsorLeave") {
                onSponsorLeave = leaveNode.oneOf([SponsorLeavePolicy.quarantine, .transferToManager])
            }

            var grants: [StaticGrant]? = []
            if let grantsNode = map.optional("grants") {
                switch kind {
                case .delegated?:
                    let name = id ?? "this agent"
                    grantsNode.error(
                        "grants are only for autonomous agents; delegated agent '\(name)' acts for the identity that "
                            + "invokes it and receives its grants from policies (policies[].grant[].agent: \(name))")
                    grants = nil
                case .autonomous?:
                    grants = readStaticGrants(grantsNode)
                case nil:
                    grants = nil
                }
            } else if kind == .autonomous, let id {
                (idNode ?? item).warning(
                    "autonomous agent '\(id)' declares no grants; it holds nothing until grants are listed under it")
            }

            var agent: Agent?
            if let id, let kind, let sponsors, let onSponsorLeave, let grants {
                agent = Agent(id: id, kind: kind, sponsors: sponsors, onSponsorLeave: onSponsorLeave, grants: grants)
            }
            declared.append(
                DeclaredAgent(index: index, id: id, idNode: idNode, kind: kind, isFirstWithID: isFirst, agent: agent))
        }
        return declared
    }

    /// `sponsor: x` or `sponsors: [x, y]` (one of them), at least `minSponsors` of them, each
    /// named once.
    func readSponsors(_ map: ConfigMapping, agent: String, minSponsors: Int) -> [String]? {
        let hint = "the userName of the person accountable for the agent (or sponsors: [a, b])"
        let one = map.optional("sponsor")
        let several = map.optional("sponsors")
        if one != nil, let several {
            several.error("agent '\(agent)' has both sponsor and sponsors; list every sponsor under sponsors")
            return nil
        }
        var sponsors: [String]?
        if let several {
            sponsors = several.stringList(nonEmpty: true, expected: "a list of userNames, e.g. [jdoe, mkhan]")
        } else if let one = map.required("sponsor", hint: hint) {
            sponsors = one.nonEmptyString("the userName of the accountable person").map { [$0] }
        }
        guard let sponsors else { return nil }
        let node = several ?? one ?? map.node
        var seen = Set<String>()
        if let twice = sponsors.first(where: { !seen.insert($0).inserted }) {
            node.error("sponsor '\(twice)' is named twice for agent '\(agent)'; name each sponsor once")
            return nil
        }
        if sponsors.count < minSponsors {
            node.error(
                "agent '\(agent)' names \(sponsors.count) sponsor\(sponsors.count == 1 ? "" : "s"); agents.minSponsors "
                    + "requires at least \(minSponsors): list them under sponsors: [a, b]")
            return nil
        }
        return sponsors
    }

    func readStaticGrants(_ node: ConfigNode) -> [StaticGrant]? {
        guard let items = node.list("a list of grants, e.g. [{ scopes: [ledger:read], resource: \"erp:ledger/*\" }]")
        else { return nil }
        var grants: [StaticGrant] = []
        var valid = true
        for item in items {
            guard let map = item.mapping(allowed: ["scopes", "resource"]) else {
                valid = false
                continue
            }
            let scopes = map.required("scopes", hint: "a list such as [ledger:read]").flatMap(readScopes)
            var resource: String?
            if let resourceNode = map.required("resource", hint: "what the grant applies to, e.g. erp:ledger/*"),
                let text = resourceNode.nonEmptyString("a resource such as erp:ledger/*")
            {
                if text.contains("{") || text.contains("}") {
                    resourceNode.error(
                        "an autonomous agent's grant names one fixed resource; {field} placeholders expand from an "
                            + "identity and only work in policy grants")
                } else {
                    resource = text
                }
            }
            if let scopes, let resource {
                grants.append(StaticGrant(scopes: scopes, resource: resource))
            } else {
                valid = false
            }
        }
        return valid ? grants : nil
    }

    func readScopes(_ node: ConfigNode) -> [String]? {
        guard let scopes = node.stringList(nonEmpty: true, expected: "a list of scopes, e.g. [tickets:read]") else {
            return nil
        }
        if let bad = scopes.first(where: { $0.contains(where: \.isWhitespace) }) {
            node.error("invalid scope '\(bad)'; scopes contain no spaces, e.g. tickets:read")
            return nil
        }
        return scopes
    }

    /// Warns about delegated agents that no policy grants: they can never hold anything.
    func checkAgentUse(agents: [DeclaredAgent], policies: [DeclaredPolicy]) {
        let granted = policies.reduce(into: Set<String>()) { $0.formUnion($1.grantedAgents) }
        for agent in agents where agent.kind == .delegated && agent.isFirstWithID {
            guard let id = agent.id, let idNode = agent.idNode, !granted.contains(id) else { continue }
            idNode.warning("delegated agent '\(id)' is not granted by any policy; it will hold no grants")
        }
    }

    // MARK: - policies

    func readPolicies(_ node: ConfigNode, agents: [DeclaredAgent], sources: SourcesConfiguration) -> [DeclaredPolicy] {
        guard let items = node.list("a list of policies") else { return [] }
        var agentsByID: [String: DeclaredAgent] = [:]
        for agent in agents where agent.isFirstWithID {
            if let id = agent.id { agentsByID[id] = agent }
        }
        let knownFields = Set(Self.identityFields).union(sources.ldap?.attributes.keys ?? [:].keys)
        var declared: [DeclaredPolicy] = []
        var firstByID: [String: (index: Int, line: Int)] = [:]
        for (index, item) in items.enumerated() {
            guard let map = item.mapping(allowed: ["id", "description", "when", "grant"]) else { continue }
            let idNode = map.required("id")
            let id = idNode.flatMap { readIdentifier($0, what: "policy id") }
            if let id, let idNode {
                if let first = firstByID[id] {
                    idNode.error(
                        "duplicate policy id '\(id)'; it is already used by policies[\(first.index)] (line \(first.line)); "
                            + "policy ids must be unique")
                } else {
                    firstByID[id] = (index, idNode.location.line)
                }
            }
            var description: String?
            var descriptionIsValid = true
            if let descriptionNode = map.optional("description") {
                description = descriptionNode.string()
                descriptionIsValid = description != nil
            }
            var references: [GroupReference] = []
            let condition = map.required("when", hint: "the condition identities must meet, e.g. { memberOf: support }")
                .flatMap { readCondition($0, policy: id ?? "policies[\(index)]", references: &references) }

            var granted = Set<String>()
            var templates: [GrantTemplate]?
            if let grantNode = map.required("grant", hint: "a list of { agent, scopes, resource }") {
                templates = readGrantTemplates(
                    grantNode, agents: agentsByID, knownFields: sources.ldap == nil ? nil : knownFields,
                    granted: &granted)
            }
            var policy: Policy?
            if let id, descriptionIsValid, let condition, let templates {
                policy = Policy(id: id, description: description, when: condition, grant: templates)
            }
            declared.append(DeclaredPolicy(policy: policy, grantedAgents: granted, groupReferences: references))
        }
        return declared
    }

    func readGrantTemplates(
        _ node: ConfigNode, agents: [String: DeclaredAgent], knownFields: Set<String>?, granted: inout Set<String>
    ) -> [GrantTemplate]? {
        guard
            let items = node.list(
                "a list of grants, e.g. [{ agent: support-copilot, scopes: [tickets:read], resource: … }]")
        else { return nil }
        if items.isEmpty {
            node.error("expected at least one grant, found an empty list")
            return nil
        }
        var templates: [GrantTemplate] = []
        var valid = true
        for item in items {
            guard let map = item.mapping(allowed: ["agent", "scopes", "resource"]) else {
                valid = false
                continue
            }
            var agentID: String?
            if let agentNode = map.required("agent", hint: "the id of a delegated agent declared under agents"),
                let name = agentNode.nonEmptyString("an agent id")
            {
                granted.insert(name)
                if let agent = agents[name] {
                    if agent.kind == .autonomous {
                        agentNode.error(
                            "agent '\(name)' is autonomous: it acts as itself, so policies cannot grant it per identity; "
                                + "declare its grants under agents[\(agent.index)].grants")
                    } else {
                        agentID = name
                    }
                } else if let id = readIdentifier(agentNode, what: "agent id") {
                    // An agent may be registered later, by SCIM or an operator (SPEC §15).
                    let declared = agents.keys.sorted()
                    agentNode.warning(
                        "agent '\(id)' is not declared here; the policy grants nothing through it until an agent "
                            + "'\(id)' is registered (SCIM or tether agents add)"
                            + (declared.isEmpty ? "" : "; declared agents: \(declared.joined(separator: ", "))"))
                    agentID = id
                }
            }
            let scopes = map.required("scopes", hint: "a list such as [tickets:read]").flatMap(readScopes)
            let resource = map.required("resource", hint: "e.g. \"zendesk:queue/{department}\"")
                .flatMap { readResourceTemplate($0, knownFields: knownFields) }
            if let agentID, let scopes, let resource {
                templates.append(GrantTemplate(agent: agentID, scopes: scopes, resource: resource))
            } else {
                valid = false
            }
        }
        return valid ? templates : nil
    }

    /// A resource with balanced `{field}` placeholders; fields nobody provides are warned about.
    func readResourceTemplate(_ node: ConfigNode, knownFields: Set<String>?) -> String? {
        guard let text = node.nonEmptyString("a resource such as \"zendesk:queue/{department}\"") else { return nil }
        switch Self.placeholders(in: text) {
        case .failure(let problem):
            node.error(
                "invalid resource template '\(text)': \(problem); write placeholders as {field}, e.g. {department}")
            return nil
        case .success(let fields):
            if let knownFields {
                for field in fields where !knownFields.contains(field) {
                    node.warning(
                        "placeholder {\(field)} is neither an identity field nor an attribute mapped under "
                            + "sources.ldap.attributes; the grant expands to nothing for identities without it")
                }
            }
            return text
        }
    }

    struct PlaceholderProblem: Error, CustomStringConvertible {
        let description: String
    }

    /// The fields of every `{field}` in `template`, or what is unbalanced about its braces.
    static func placeholders(in template: String) -> Result<[String], PlaceholderProblem> {
        var fields: [String] = []
        var open: (position: Int, name: String)?
        for (offset, character) in template.enumerated() {
            let position = offset + 1
            switch character {
            case "{":
                if let open {
                    return .failure(PlaceholderProblem(description: "'{' at position \(open.position) is never closed"))
                }
                open = (position, "")
            case "}":
                guard let current = open else {
                    return .failure(PlaceholderProblem(description: "'}' at position \(position) has no matching '{'"))
                }
                guard !current.name.isEmpty else {
                    return .failure(
                        PlaceholderProblem(description: "empty placeholder {} at position \(current.position)"))
                }
                guard isAttributeName(current.name) else {
                    return .failure(PlaceholderProblem(description: "'{\(current.name)}' is not a field name"))
                }
                fields.append(current.name)
                open = nil
            default:
                if open != nil { open!.name.append(character) }
            }
        }
        if let open {
            return .failure(PlaceholderProblem(description: "'{' at position \(open.position) is never closed"))
        }
        return .success(fields)
    }

    // MARK: - conditions

    func readCondition(_ node: ConfigNode, policy: String, references: inout [GroupReference]) -> Condition? {
        let expected = "a condition: a mapping with one of \(Self.conditionKeys.joined(separator: ", "))"
        guard let map = node.mapping(allowed: Self.conditionKeys, expected: expected) else { return nil }
        guard let entry = singleEntry(of: map, among: Self.conditionKeys, what: "a condition", combine: "all: [ … ]")
        else { return nil }
        let value = entry.value
        switch entry.key {
        case "all", "any":
            guard let items = value.list("a list of conditions") else { return nil }
            if items.isEmpty {
                value.error("expected at least one condition under \(entry.key), found an empty list")
                return nil
            }
            let conditions = items.compactMap { readCondition($0, policy: policy, references: &references) }
            guard conditions.count == items.count else { return nil }
            return entry.key == "all" ? .all(conditions) : .any(conditions)
        case "not":
            return readCondition(value, policy: policy, references: &references).map { .not($0) }
        case "memberOf":
            guard let group = value.nonEmptyString("a group's cn or DN") else { return nil }
            references.append(GroupReference(group: group, policy: policy, location: value.location))
            return .memberOf(group)
        default:
            return readAttributeTest(value).map { .attribute(name: $0.0, test: $0.1) }
        }
    }

    /// `{ name, <one test> }`: the attribute and the test, as in policies and `suspendWhen`.
    func readAttributeTest(_ node: ConfigNode) -> (String, AttributeTest)? {
        let tests = Self.attributeTestKeys.joined(separator: ", ")
        guard
            let map = node.mapping(
                allowed: ["name"] + Self.attributeTestKeys, expected: "a mapping { name, and one of \(tests) }")
        else { return nil }
        let name = map.required("name", hint: "the identity field or attribute to test").flatMap {
            $0.nonEmptyString("an attribute name")
        }
        guard
            let entry = singleEntry(
                of: map, among: Self.attributeTestKeys, what: "an attribute test", combine: "all: [ … ]")
        else { return nil }
        let value = entry.value
        let test: AttributeTest?
        switch entry.key {
        case "equals":
            test = value.string("a value to compare with").map { .equals($0) }
        case "in":
            test = value.stringList(nonEmpty: true, expected: "a list of values").map { .in($0) }
        case "present":
            test = value.bool().map { .present($0) }
        case "prefix":
            test = value.nonEmptyString("a prefix").map { .prefix($0) }
        default:
            test = readBits(value).map { .bitsSet($0) }
        }
        guard let name, let test else { return nil }
        return (name, test)
    }

    /// A positive integer mask, decimal or `0x` hexadecimal.
    func readBits(_ node: ConfigNode) -> Int? {
        guard let text = node.string("a positive integer bit mask such as 2") else { return nil }
        let value = text.lowercased().hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) : Int(text)
        guard let value, value > 0 else {
            node.error("invalid bit mask '\(text)'; expected a positive integer such as 2 (decimal) or 0x2")
            return nil
        }
        return value
    }

    /// The one entry of a mapping that must hold exactly one of `keys`, reporting none or several.
    private func singleEntry(
        of map: ConfigMapping, among keys: [String], what: String, combine: String
    ) -> ConfigMapping.Entry? {
        let present = map.entries.filter { keys.contains($0.key) }
        if present.count > 1 {
            let names = present.map { "'\($0.key)'" }.joined(separator: " and ")
            present[1].keyNode.error(
                "\(what) has exactly one of \(keys.joined(separator: ", ")); found \(names): combine them with \(combine)"
            )
            return nil
        }
        guard let entry = present.first else {
            if case .mapping(let mapping) = map.node.node, mapping.count > map.entries.count {
                return nil  // the unknown keys are already reported
            }
            map.node.error("\(what) needs one of \(keys.joined(separator: ", ")), found none")
            return nil
        }
        return entry
    }
}
