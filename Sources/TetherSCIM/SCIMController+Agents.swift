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
        // PUT replaces, PATCH applies operations: both answer the agent as it now is.
        let writes: [(HTTPRequest.Method, @Sendable (String, SCIMJSON, String?, String) async throws -> SCIMAgents<Store>.Resource)] = [
            (.put, { try await agents.replace(id: $0, body: $1, ifMatch: $2, base: $3) }),
            (.patch, { try await agents.patch(id: $0, body: $1, ifMatch: $2, base: $3) }),
        ]
        for (method, write) in writes {
            scim.on("Agents/:id", method: method) { request, context in
                await respond(request) { base in
                    let written = try await write(
                        context.parameters.get("id") ?? "", try await readBody(request), request.headers[.ifMatch], base)
                    return try agentResponse(written, request: request, base: base, status: .ok)
                }
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
