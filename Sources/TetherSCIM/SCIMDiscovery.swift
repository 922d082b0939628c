/// The discovery documents (RFC 7644 §4), true to what the service implements: PATCH,
/// filters, sorting and ETags yes; bulk and password change no; a static bearer token.
enum SCIMDiscovery {
    static func serviceProviderConfig(base: String, maxResults: Int) -> SCIMJSON {
        func supported(_ flag: Bool) -> SCIMJSON { .object(SCIMJSON.Object([.init("supported", .bool(flag))])) }
        return .object(SCIMJSON.Object([
            .init("schemas", ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]),
            .init("patch", supported(true)),
            .init("bulk", .object(SCIMJSON.Object([
                .init("supported", false), .init("maxOperations", 0), .init("maxPayloadSize", 0),
            ]))),
            .init("filter", .object(SCIMJSON.Object([
                .init("supported", true), .init("maxResults", .integer(Int64(maxResults))),
            ]))),
            .init("changePassword", supported(false)),
            .init("sort", supported(true)),
            .init("etag", supported(true)),
            .init("authenticationSchemes", [
                .object(SCIMJSON.Object([
                    .init("type", "oauthbearertoken"),
                    .init("name", "Bearer token"),
                    .init("description", "A static bearer token (RFC 6750) from sources.scim.tokenFile, sent as 'Authorization: Bearer TOKEN'."),
                    .init("primary", true),
                ])),
            ]),
            .init("meta", .object(SCIMJSON.Object([
                .init("resourceType", "ServiceProviderConfig"),
                .init("location", .string("\(base)/ServiceProviderConfig")),
            ]))),
        ]))
    }

    static func resourceTypes(base: String) -> [SCIMJSON] {
        SCIMResourceType.served.map { $0.document(location: "\(base)/ResourceTypes/\($0.name)") }
    }

    static func resourceType(_ id: String, base: String) -> SCIMJSON? {
        SCIMResourceType.served.first { $0.name == id }.map { $0.document(location: "\(base)/ResourceTypes/\($0.name)") }
    }

    static var schemas: [SCIMSchema] { [.user, .enterpriseUser, .group, .agent, .tetherAgent] }

    static func schemaDocuments(base: String) -> [SCIMJSON] {
        schemas.map { $0.document(location: "\(base)/Schemas/\($0.id)") }
    }

    static func schema(_ id: String, base: String) -> SCIMJSON? {
        schemas.first { $0.id == id }.map { $0.document(location: "\(base)/Schemas/\($0.id)") }
    }

    /// A ListResponse of every item (discovery lists are small and not paged).
    static func list(_ items: [SCIMJSON]) -> SCIMJSON {
        .object(SCIMJSON.Object([
            .init("schemas", [.string(SCIMQuery.listSchema)]),
            .init("totalResults", .integer(Int64(items.count))),
            .init("startIndex", 1),
            .init("itemsPerPage", .integer(Int64(items.count))),
            .init("Resources", .array(items)),
        ]))
    }
}
