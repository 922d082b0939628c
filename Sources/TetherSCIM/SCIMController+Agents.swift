import Hummingbird

extension SCIMController {
    /// The `/Agents` routes (SPEC §15): the collection, `.search`, and one agent by id.
    func addAgentRoutes<Context: RequestContext>(to scim: RouterGroup<Context>) {
        let agents = self.agents
        scim.get("Agents") { request, _ in
            await respond(request) { base in SCIMResponse.json(try await agents.list(try Self.query(from: request), base: base)) }
        }
        scim.post("Agents") { request, _ in
            await respond(request) { base in
                let created = try await agents.create(body: try await readBody(request), base: base)
                return try agentResponse(created, request: request, base: base, status: .created)
            }
        }
        scim.post("Agents/.search") { request, _ in
            await respond(request) { base in
                SCIMResponse.json(try await agents.list(try SCIMQuery.search(try await readBody(request)), base: base))
            }
        }
        scim.get("Agents/:id") { request, context in
            await respond(request) { base in
                let agent = try await agents.load(context.parameters.get("id") ?? "", base: base)
                if let ifNoneMatch = request.headers[.ifNoneMatch], SCIMVersion.matches(ifMatch: ifNoneMatch, version: agent.version) {
                    return Response(status: .notModified, headers: [.eTag: SCIMVersion.etag(agent.version)])
                }
                return try agentResponse(agent, request: request, base: base, status: .ok)
            }
        }
        scim.put("Agents/:id") { request, context in
            await respond(request) { base in
                let replaced = try await agents.replace(
                    id: context.parameters.get("id") ?? "", body: try await readBody(request), ifMatch: request.headers[.ifMatch],
                    base: base)
                return try agentResponse(replaced, request: request, base: base, status: .ok)
            }
        }
        scim.patch("Agents/:id") { request, context in
            await respond(request) { base in
                let patched = try await agents.patch(
                    id: context.parameters.get("id") ?? "", body: try await readBody(request), ifMatch: request.headers[.ifMatch],
                    base: base)
                return try agentResponse(patched, request: request, base: base, status: .ok)
            }
        }
        scim.delete("Agents/:id") { request, context in
            await respond(request) { base in
                try await agents.delete(id: context.parameters.get("id") ?? "", ifMatch: request.headers[.ifMatch], base: base)
                return Response(status: .noContent)
            }
        }
        notAllowed(scim, "Agents", except: [.get, .post])
        notAllowed(scim, "Agents/:id", except: [.get, .put, .patch, .delete])
        notAllowed(scim, "Agents/.search", except: [.post])
    }

    /// One agent with its `ETag` (and `Location` when created), projected by `attributes` or
    /// `excludedAttributes`.
    func agentResponse(
        _ agent: SCIMAgents<Store>.Resource, request: Request, base: String, status: HTTPResponse.Status
    ) throws -> Response {
        let query = try Self.query(from: request)
        let projection = try SCIMProjection.parse(
            attributes: query.attributes, excludedAttributes: query.excludedAttributes, types: [.agent])
        var headers: HTTPFields = [.eTag: SCIMVersion.etag(agent.version)]
        if status == .created { headers[.location] = "\(base)\(SCIMResourceType.agent.endpoint)/\(agent.id)" }
        return SCIMResponse.json(.object(projection.apply(agent.attributes, type: .agent)), status: status, headers: headers)
    }
}
