/// A list or search query read against the resource types it covers (RFC 7644 §3.4.2):
/// the page, the projection, the compiled filter per type and the sort order. Every
/// collection (Users and Groups from the store, Agents from the registry) lists through it.
struct SCIMListPlan: Sendable {
    /// The 1-based index of the first result returned.
    var startIndex: Int
    /// The most results returned (`count`, within `filter.maxResults`).
    var count: Int
    var projection: SCIMProjection
    /// The filter as parsed; nil when the query has none.
    var filter: SCIMFilter?
    /// The filter compiled per resource type name.
    var filters: [String: CompiledSCIMFilter]
    /// The `sortBy` attribute per resource type name; empty when unsorted.
    var sortPaths: [String: ResolvedPath]
    var descending: Bool

    /// Reads `query` for `types`: a bad filter, sortBy, sortOrder or projection is a `400`.
    init(_ query: SCIMQuery, types: [SCIMResourceType], maxResults: Int) throws(SCIMError) {
        startIndex = max(1, query.startIndex ?? 1)
        count = min(max(0, query.count ?? maxResults), maxResults)
        projection = try SCIMProjection.parse(
            attributes: query.attributes, excludedAttributes: query.excludedAttributes, types: types)
        filters = [:]
        if let text = query.filter, !text.trimmingCharacters(in: .whitespaces).isEmpty {
            let parsed = try SCIMFilter.parse(text, knownSchemas: types.flatMap(\.schemaURNs))
            filter = parsed
            filters = types.count == 1
                ? [types[0].name: try parsed.compile(for: types[0])]
                : try SCIMFilter.compileAcross(parsed, types: types)
        }
        switch query.sortOrder?.lowercased() {
        case nil, "ascending": descending = false
        case "descending": descending = true
        case let other?: throw SCIMError.invalidValue("sortOrder must be ascending or descending, not \(other)")
        }
        sortPaths = [:]
        if let sortBy = query.sortBy, !sortBy.isEmpty {
            for type in types {
                if let path = SCIMAttributePath.parse(sortBy, knownSchemas: type.schemaURNs), let resolved = type.resolve(path),
                    resolved.attribute != nil
                {
                    sortPaths[type.name] = resolved
                }
            }
            if sortPaths.isEmpty { throw SCIMError.invalidValue("sortBy \"\(sortBy)\" is not an attribute") }
        }
    }

    /// Whether `resource` (a full representation of `type`) passes the filter.
    func matches(_ resource: SCIMJSON.Object, type: SCIMResourceType) -> Bool {
        filters[type.name]?.matches(resource) ?? true
    }

    /// `resources` of `type` in the requested order (as given when unsorted).
    func sorted(_ resources: [SCIMJSON.Object], type: SCIMResourceType) -> [SCIMJSON.Object] {
        guard let path = sortPaths[type.name] else { return resources }
        return Self.sorted(resources, by: path, descending: descending)
    }

    /// The ListResponse of the requested page of `matched` (full representations with their
    /// type, in order), projected.
    func response(_ matched: [(SCIMResourceType, SCIMJSON.Object)]) -> SCIMJSON {
        var page: [SCIMJSON] = []
        if count > 0, startIndex <= matched.count {
            page = matched[(startIndex - 1)..<min(matched.count, startIndex - 1 + count)].map {
                .object(projection.apply($0.1, type: $0.0))
            }
        }
        return Self.response(total: matched.count, startIndex: startIndex, page: page)
    }

    /// The ListResponse of one page of `total` results.
    static func response(total: Int, startIndex: Int, page: [SCIMJSON]) -> SCIMJSON {
        .object(SCIMJSON.Object([
            .init("schemas", [.string(SCIMQuery.listSchema)]),
            .init("totalResults", .integer(Int64(total))),
            .init("startIndex", .integer(Int64(startIndex))),
            .init("itemsPerPage", .integer(Int64(page.count))),
            .init("Resources", .array(page)),
        ]))
    }
}
