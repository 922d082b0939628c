import Foundation
import TetherStore

/// The parameters of a list or search (RFC 7644 §3.4.2, §3.4.3).
struct SCIMQuery: Sendable {
    var filter: String?
    var sortBy: String?
    var sortOrder: String?
    var startIndex: Int?
    var count: Int?
    var attributes: [String]?
    var excludedAttributes: [String]?

    /// The ListResponse message schema.
    static let listSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

    /// Reads a `POST …/.search` body.
    static func search(_ body: SCIMJSON) throws(SCIMError) -> SCIMQuery {
        guard case .object(let object) = body else {
            throw SCIMError.invalidSyntax("a search body must be a JSON object, not \(body.kindDescription)")
        }
        func strings(_ name: String) throws(SCIMError) -> [String]? {
            guard let value = object[name], value != .null else { return nil }
            if let text = value.stringValue { return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw SCIMError.invalidValue("\(name) must be an array of attribute names")
            }
            return items.compactMap(\.stringValue)
        }
        func text(_ name: String) throws(SCIMError) -> String? {
            guard let value = object[name], value != .null else { return nil }
            guard let text = value.stringValue else { throw SCIMError.invalidValue("\(name) must be a string") }
            return text
        }
        func integer(_ name: String) throws(SCIMError) -> Int? {
            guard let value = object[name], value != .null else { return nil }
            guard case .integer(let number) = value else { throw SCIMError.invalidValue("\(name) must be an integer") }
            return Int(clamping: number)
        }
        return SCIMQuery(
            filter: try text("filter"), sortBy: try text("sortBy"), sortOrder: try text("sortOrder"),
            startIndex: try integer("startIndex"), count: try integer("count"), attributes: try strings("attributes"),
            excludedAttributes: try strings("excludedAttributes"))
    }
}

extension SCIMProvider {
    /// A ListResponse of the resources of `types` that match `query`, one page of them.
    func list(_ types: [SCIMResourceType], query: SCIMQuery, base: String) async throws -> SCIMJSON {
        let startIndex = max(1, query.startIndex ?? 1)
        let count = min(max(0, query.count ?? maxResults), maxResults)
        let projection = try SCIMProjection.parse(
            attributes: query.attributes, excludedAttributes: query.excludedAttributes, types: types)
        let allURNs = types.flatMap(\.schemaURNs)
        var filters: [String: CompiledSCIMFilter] = [:]
        var parsed: SCIMFilter?
        if let text = query.filter, !text.trimmingCharacters(in: .whitespaces).isEmpty {
            let filter = try SCIMFilter.parse(text, knownSchemas: allURNs)
            parsed = filter
            filters = types.count == 1
                ? [types[0].name: try filter.compile(for: types[0])]
                : try SCIMFilter.compileAcross(filter, types: types)
        }
        let descending: Bool
        switch query.sortOrder?.lowercased() {
        case nil, "ascending": descending = false
        case "descending": descending = true
        case let other?: throw SCIMError.invalidValue("sortOrder must be ascending or descending, not \(other)")
        }
        var sortPaths: [String: ResolvedPath] = [:]
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

        var page: [SCIMJSON] = []
        var total = 0
        if types.count == 1, parsed == nil, sortPaths.isEmpty {
            // Plain paging reads only the page.
            let type = types[0]
            let kind = Self.kind(of: type)
            total = try await store.scimResourceCount(kind: kind)
            if count > 0 {
                let records = try await store.scimResources(kind: kind, offset: startIndex - 1, limit: count)
                let membership = type.name == "User" ? try await membership() : SCIMMembership([])
                page = try records.map {
                    .object(projection.apply(render(try decode($0), groups: membership.ancestors(of: $0.id), base: base), type: type))
                }
            }
        } else {
            let membership = try await membership()
            var matched: [(SCIMResourceType, SCIMJSON.Object)] = []
            for type in types {
                let kind = Self.kind(of: type)
                let records: [SCIMResourceRecord]
                if let parsed, let indexed = Self.indexedEquality(parsed, type: type) {
                    records = try await store.scimResources(kind: kind, where: indexed.0, equals: indexed.1)
                } else {
                    records = try await store.scimResources(kind: kind, offset: 0, limit: nil)
                }
                var found: [SCIMJSON.Object] = []
                for record in records {
                    let full = render(try decode(record), groups: membership.ancestors(of: record.id), base: base)
                    if let filter = filters[type.name], !filter.matches(full) { continue }
                    found.append(full)
                }
                if let path = sortPaths[type.name] {
                    found = Self.sorted(found, by: path, descending: descending)
                }
                matched += found.map { (type, $0) }
            }
            total = matched.count
            if count > 0, startIndex <= matched.count {
                page = matched[(startIndex - 1)..<min(matched.count, startIndex - 1 + count)].map {
                    .object(projection.apply($0.1, type: $0.0))
                }
            }
        }
        return .object(SCIMJSON.Object([
            .init("schemas", [.string(SCIMQuery.listSchema)]),
            .init("totalResults", .integer(Int64(total))),
            .init("startIndex", .integer(Int64(startIndex))),
            .init("itemsPerPage", .integer(Int64(page.count))),
            .init("Resources", .array(page)),
        ]))
    }

    /// A `userName`, `externalId` or `displayName` equality that an index can answer, at the
    /// top of the filter or in one of its `and` branches. The whole filter is still evaluated.
    static func indexedEquality(_ filter: SCIMFilter, type: SCIMResourceType) -> (SCIMIndexedField, String)? {
        switch filter {
        case .compare(let path, .eq, .string(let value)):
            guard let resolved = type.resolve(path), resolved.extensionURN == nil, resolved.subAttribute == nil,
                let name = resolved.attribute?.name
            else { return nil }
            switch name {
            case "userName" where type.name == "User": return (.userName, value)
            case "externalId": return (.externalId, value)
            case "displayName": return (.displayName, value)
            default: return nil
            }
        case .and(let a, let b):
            return indexedEquality(a, type: type) ?? indexedEquality(b, type: type)
        default:
            return nil
        }
    }

    /// Sorts by the value at `path` (a multi-valued attribute sorts by its primary or first
    /// value); resources without a value come last when ascending.
    static func sorted(_ resources: [SCIMJSON.Object], by path: ResolvedPath, descending: Bool) -> [SCIMJSON.Object] {
        let definition = CompiledSCIMFilter.comparedDefinition(path)
        func key(_ resource: SCIMJSON.Object) -> SCIMJSON? {
            var values = CompiledSCIMFilter.values(at: path, in: resource, element: nil)
            if path.leaf?.type == .complex {
                let primary = values.first { $0["primary"] == .bool(true) } ?? values.first
                values = primary.flatMap { $0["value"] }.map { [$0] } ?? []
            }
            return values.first
        }
        func less(_ a: SCIMJSON, _ b: SCIMJSON) -> Bool {
            guard let definition else { return false }
            switch definition.type {
            case .integer, .decimal: return (a.numberValue ?? 0) < (b.numberValue ?? 0)
            case .boolean: return a.boolValue == false && b.boolValue == true
            case .dateTime:
                let da = a.stringValue.flatMap(CompiledSCIMFilter.parseDate) ?? .distantPast
                let db = b.stringValue.flatMap(CompiledSCIMFilter.parseDate) ?? .distantPast
                return da < db
            default:
                let sa = a.stringValue ?? "", sb = b.stringValue ?? ""
                return definition.caseExact ? sa < sb : sa.lowercased() < sb.lowercased()
            }
        }
        let keyed = resources.map { (key($0), $0) }
        let present = keyed.filter { $0.0 != nil }
        let absent = keyed.filter { $0.0 == nil }.map(\.1)
        var ordered = present.enumerated().sorted { lhs, rhs in
            let (a, b) = (lhs.element.0!, rhs.element.0!)
            if less(a, b) { return true }
            if less(b, a) { return false }
            return lhs.offset < rhs.offset
        }.map(\.element.1)
        if descending { ordered.reverse() }
        return ordered + absent
    }
}
