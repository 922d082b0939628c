import Foundation
import Hummingbird
import Logging
import TetherCore
import TetherEngine
import TetherStore

/// What the SCIM endpoint needs from configuration.
public struct SCIMControllerConfiguration: Sendable {
    /// The accepted bearer tokens (the content of `sources.scim.tokenFile`; several during a
    /// rotation), replaceable in place by a reload.
    public var credentials: SCIMCredentials
    /// The largest request body accepted (`http.maxBodyBytes`); larger is `413`.
    public var maxBodyBytes: Int
    /// The public URL of `/scim/v2` for `meta.location` and `$ref`, e.g.
    /// `https://tether.example.com/scim/v2`; by default `http://` + the request's Host.
    public var baseURL: String?
    /// The largest page a list or search returns (`filter.maxResults`).
    public var maxResults: Int

    /// A configuration with fixed tokens; a trailing `/` on `baseURL` is dropped.
    public init(bearerTokens: [String], maxBodyBytes: Int = 1_048_576, baseURL: String? = nil, maxResults: Int = 1000) {
        self.init(credentials: SCIMCredentials(tokens: bearerTokens), maxBodyBytes: maxBodyBytes, baseURL: baseURL, maxResults: maxResults)
    }

    /// A configuration whose tokens `credentials` holds; a trailing `/` on `baseURL` is dropped.
    public init(credentials: SCIMCredentials, maxBodyBytes: Int = 1_048_576, baseURL: String? = nil, maxResults: Int = 1000) {
        self.credentials = credentials
        self.maxBodyBytes = maxBodyBytes
        self.baseURL = baseURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.maxResults = maxResults
    }
}

/// The SCIM 2.0 service provider's HTTP routes (RFC 7644, SPEC §7) under `scim/v2`:
/// Users, Groups and Agents, search, and the discovery endpoints, behind a bearer token.
///
/// Every response is `application/scim+json`; every error is a SCIM error document. The
/// store must be the very store the engine writes to, so that a resource and its lifecycle
/// events commit in one transaction.
public struct SCIMController<Store: SCIMResourceReading>: Sendable {
    let provider: SCIMProvider<Store>
    let agents: SCIMAgents<Store>
    let configuration: SCIMControllerConfiguration
    let logger: Logger

    /// A controller over `store`, which must be the store `engine` writes to; `clock` gives request times (versions).
    public init(
        store: Store, engine: Engine, configuration: SCIMControllerConfiguration, clock: any WallClock = SystemWallClock(),
        logger: Logger
    ) {
        self.provider = SCIMProvider(
            store: store, engine: engine, clock: clock, logger: logger, maxResults: max(1, configuration.maxResults))
        self.agents = SCIMAgents(
            store: store, engine: engine, logger: logger, maxResults: provider.maxResults, gate: provider.gate)
        self.configuration = configuration
        self.logger = logger
    }

    static var methods: [HTTPRequest.Method] { [.get, .post, .put, .patch, .delete] }

    /// Adds the routes under `scim/v2` of `group` (the router's root group serves `/scim/v2`).
    public func addRoutes<Context: RequestContext>(to group: RouterGroup<Context>) {
        let scim = group.group("scim/v2").add(middleware: SCIMAuthenticationMiddleware<Context>(credentials: configuration.credentials))
        for type in SCIMResourceType.all {
            let endpoint = String(type.endpoint.dropFirst())
            let item = RouterPath("\(endpoint)/:id")
            let collection = RouterPath(endpoint)
            scim.get(collection) { request, _ in
                await respond(request) { base in
                    let query = try Self.query(from: request)
                    return SCIMResponse.json(try await provider.list([type], query: query, base: base))
                }
            }
            scim.post(collection) { request, _ in
                await respond(request) { base in
                    let body = try await readBody(request)
                    let written = try await provider.create(type, body: body, base: base)
                    return try await resourceResponse(written, request: request, base: base, status: .created)
                }
            }
            scim.post(RouterPath("\(endpoint)/.search")) { request, _ in
                await respond(request) { base in
                    let query = try SCIMQuery.search(try await readBody(request))
                    return SCIMResponse.json(try await provider.list([type], query: query, base: base))
                }
            }
            scim.get(item) { request, context in
                await respond(request) { base in
                    let id = context.parameters.get("id") ?? ""
                    let resource = try await provider.load(id, type: type)
                    if let ifNoneMatch = request.headers[.ifNoneMatch],
                        SCIMVersion.matches(ifMatch: ifNoneMatch, version: resource.record.version)
                    {
                        return Response(status: .notModified, headers: [.eTag: SCIMVersion.etag(resource.record.version)])
                    }
                    return try await resourceResponse(
                        SCIMProvider<Store>.Written(resource: resource, outcomes: []), request: request, base: base, status: .ok)
                }
            }
            scim.put(item) { request, context in
                await respond(request) { base in
                    let body = try await readBody(request)
                    let written = try await provider.replace(
                        type, id: context.parameters.get("id") ?? "", body: body, ifMatch: request.headers[.ifMatch], base: base)
                    return try await resourceResponse(written, request: request, base: base, status: .ok)
                }
            }
            scim.patch(item) { request, context in
                await respond(request) { base in
                    let body = try await readBody(request)
                    let written = try await provider.patch(
                        type, id: context.parameters.get("id") ?? "", body: body, ifMatch: request.headers[.ifMatch], base: base)
                    return try await resourceResponse(written, request: request, base: base, status: .ok)
                }
            }
            scim.delete(item) { request, context in
                await respond(request) { _ in
                    _ = try await provider.delete(type, id: context.parameters.get("id") ?? "", ifMatch: request.headers[.ifMatch])
                    return Response(status: .noContent)
                }
            }
            notAllowed(scim, collection, except: [.get, .post])
            notAllowed(scim, item, except: [.get, .put, .patch, .delete])
            notAllowed(scim, RouterPath("\(endpoint)/.search"), except: [.post])
        }
        addAgentRoutes(to: scim)
        scim.post(".search") { request, _ in
            await respond(request) { base in
                let query = try SCIMQuery.search(try await readBody(request))
                let plan = try SCIMListPlan(query, types: SCIMResourceType.served, maxResults: provider.maxResults)
                let stored = try await provider.matched(SCIMResourceType.all, plan: plan, base: base)
                return SCIMResponse.json(plan.response(stored + (try await agents.matched(plan, base: base))))
            }
        }
        notAllowed(scim, ".search", except: [.post])

        scim.get("ServiceProviderConfig") { request, _ in
            await respond(request) { base in
                SCIMResponse.json(SCIMDiscovery.serviceProviderConfig(base: base, maxResults: provider.maxResults))
            }
        }
        scim.get("ResourceTypes") { request, _ in
            await respond(request) { base in SCIMResponse.json(SCIMDiscovery.list(SCIMDiscovery.resourceTypes(base: base))) }
        }
        scim.get("ResourceTypes/:id") { request, context in
            await respond(request) { base in
                let id = context.parameters.get("id") ?? ""
                guard let document = SCIMDiscovery.resourceType(id, base: base) else {
                    throw SCIMError.notFound("no resource type is named \(id)")
                }
                return SCIMResponse.json(document)
            }
        }
        scim.get("Schemas") { request, _ in
            await respond(request) { base in SCIMResponse.json(SCIMDiscovery.list(SCIMDiscovery.schemaDocuments(base: base))) }
        }
        scim.get("Schemas/:id") { request, context in
            await respond(request) { base in
                let id = context.parameters.get("id") ?? ""
                guard let document = SCIMDiscovery.schema(id, base: base) else { throw SCIMError.notFound("no schema has id \(id)") }
                return SCIMResponse.json(document)
            }
        }
        for path in ["ServiceProviderConfig", "ResourceTypes", "ResourceTypes/:id", "Schemas", "Schemas/:id"] {
            notAllowed(scim, RouterPath(path), except: [.get])
        }
        for method in Self.methods {
            scim.on("Bulk", method: method) { _, _ in
                SCIMResponse.error(SCIMError(status: 501, nil, "bulk operations are not supported (see /ServiceProviderConfig)"))
            }
            scim.on("**", method: method) { request, _ in
                SCIMResponse.error(SCIMError.notFound("\(request.uri.path) is not a SCIM endpoint of this service"))
            }
        }
    }

    /// Answers `405` with an `Allow` header for the methods a path does not support.
    func notAllowed<Context: RequestContext>(_ group: RouterGroup<Context>, _ path: RouterPath, except allowed: [HTTPRequest.Method]) {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for method in Self.methods where !allowed.contains(method) {
            group.on(path, method: method) { request, _ in
                SCIMResponse.error(
                    SCIMError.methodNotAllowed(method.rawValue, request.uri.path), headers: [.allow: allow])
            }
        }
    }

    // MARK: Requests and responses

    /// `/scim/v2` as the client reaches it.
    func base(of request: Request) -> String {
        if let configured = configuration.baseURL { return configured }
        let host = request.head.authority ?? "localhost"
        let path = request.uri.path
        let mount = path.range(of: "/scim/v2").map { String(path[..<$0.upperBound]) } ?? "/scim/v2"
        return "http://\(host)\(mount)"
    }

    /// Reads and parses the body, within `maxBodyBytes`.
    func readBody(_ request: Request) async throws -> SCIMJSON {
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw SCIMError.tooLarge(limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw SCIMError.tooLarge(limit)
        }
        guard buffer.readableBytes > 0 else { throw SCIMError.invalidSyntax("the request body is empty; a JSON object is expected") }
        do {
            return try SCIMJSON.parse(buffer.readableBytesView)
        } catch {
            throw SCIMError.invalidSyntax("the request body is not JSON: \(error.description)")
        }
    }

    /// The query parameters of a list (RFC 7644 §3.4.2), decoded as a form (`+` is a space).
    static func query(from request: Request) throws(SCIMError) -> SCIMQuery {
        var parameters: [String: String] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            parameters[decode(parts[0]).lowercased()] = parts.count > 1 ? decode(parts[1]) : ""
        }
        func integer(_ name: String) throws(SCIMError) -> Int? {
            guard let text = parameters[name.lowercased()], !text.isEmpty else { return nil }
            guard let value = Int(text) else { throw SCIMError.invalidValue("\(name) must be an integer, not \"\(text)\"") }
            return value
        }
        func names(_ name: String) -> [String]? {
            parameters[name.lowercased()].map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        }
        return SCIMQuery(
            filter: parameters["filter"], sortBy: parameters["sortby"], sortOrder: parameters["sortorder"],
            startIndex: try integer("startIndex"), count: try integer("count"), attributes: names("attributes"),
            excludedAttributes: names("excludedAttributes"))
    }

    /// A single resource with `ETag` (and `Location` when created), projected by `attributes`
    /// or `excludedAttributes`.
    func resourceResponse(
        _ written: SCIMProvider<Store>.Written, request: Request, base: String, status: HTTPResponse.Status
    ) async throws -> Response {
        guard let resource = written.resource else { return Response(status: .noContent) }
        let query = try Self.query(from: request)
        let projection = try SCIMProjection.parse(
            attributes: query.attributes, excludedAttributes: query.excludedAttributes, types: [resource.type])
        let full = provider.render(resource, groups: try await provider.groups(of: resource), base: base)
        var headers: HTTPFields = [.eTag: SCIMVersion.etag(resource.record.version)]
        if status == .created {
            headers[.location] = "\(base)\(resource.type.endpoint)/\(resource.record.id)"
        }
        return SCIMResponse.json(.object(projection.apply(full, type: resource.type)), status: status, headers: headers)
    }

    /// Runs `body`, turning every failure into a SCIM error response: `SCIMError` as it is,
    /// a store that cannot write `503`, a version race `412`, a taken userName `409`, anything
    /// else `500` (logged, without request data).
    func respond(_ request: Request, _ body: (String) async throws -> Response) async -> Response {
        do {
            return try await body(base(of: request))
        } catch let error as SCIMError {
            if error.status >= 500 { logger.error("scim request failed", metadata: ["detail": "\(error.detail)"]) }
            return SCIMResponse.error(error)
        } catch let error as StoreError {
            if let conflict = error.underlying as? SCIMWriteConflict {
                switch conflict.reason {
                case .changed(let id):
                    return SCIMResponse.error(.preconditionFailed("resource \(id) changed while this request was applied; read it again"))
                case .userNameTaken(let name):
                    return SCIMResponse.error(.uniqueness("userName \"\(name)\" is already taken"))
                }
            }
            logger.error(
                "scim request not stored", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            if error.code == .write {
                return SCIMResponse.error(.unavailable("the store could not commit the change; nothing was stored, retry later"))
            }
            return SCIMResponse.error(.internalError("the store failed; nothing was stored"))
        } catch {
            logger.error(
                "scim request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            return SCIMResponse.error(.internalError("the request failed inside Tether; nothing was stored"))
        }
    }
}
