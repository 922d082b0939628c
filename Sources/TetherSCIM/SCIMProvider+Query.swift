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
        let plan = try SCIMListPlan(query, types: types, maxResults: maxResults)
        let (startIndex, count, projection) = (plan.startIndex, plan.count, plan.projection)
        if types.count == 1, plan.filter == nil, plan.sortPaths.isEmpty {
            // Plain paging reads only the page.
            let type = types[0]
            let kind = Self.kind(of: type)
            let total = try await store.scimResourceCount(kind: kind)
            var page: [SCIMJSON] = []
            if count > 0 {
                let records = try await store.scimResources(kind: kind, offset: startIndex - 1, limit: count)
                let membership = type.name == "User" ? try await membership() : SCIMMembership([])
                page = try records.map {
                    .object(projection.apply(render(try decode($0), groups: membership.ancestors(of: $0.id), base: base), type: type))
                }
            }
            return SCIMListPlan.response(total: total, startIndex: startIndex, page: page)
        }
        return plan.response(try await matched(types, plan: plan, base: base))
    }

    /// The full representations of the resources of `types` that pass `plan`'s filter, each
    /// type in `plan`'s order, one type after the other.
    func matched(_ types: [SCIMResourceType], plan: SCIMListPlan, base: String) async throws -> [(SCIMResourceType, SCIMJSON.Object)] {
        let membership = try await membership()
        var matched: [(SCIMResourceType, SCIMJSON.Object)] = []
        for type in types {
            let kind = Self.kind(of: type)
            let records: [SCIMResourceRecord]
            if let filter = plan.filter, let indexed = Self.indexedEquality(filter, type: type) {
                records = try await store.scimResources(kind: kind, where: indexed.0, equals: indexed.1)
            } else {
                records = try await store.scimResources(kind: kind, offset: 0, limit: nil)
            }
            var found: [SCIMJSON.Object] = []
            for record in records {
                let full = render(try decode(record), groups: membership.ancestors(of: record.id), base: base)
                if plan.matches(full, type: type) { found.append(full) }
            }
            matched += plan.sorted(found, type: type).map { (type, $0) }
        }
        return matched
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
}

extension SCIMListPlan {
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
