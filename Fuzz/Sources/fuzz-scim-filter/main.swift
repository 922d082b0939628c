import TetherSCIM

// libFuzzer calls this once per input; it never returns normally on a broken property:
// `precondition` traps, and libFuzzer saves the input as a crash.

private let type = SCIMResourceType.user
private let schemas = type.schemas.map(\.id)

/// A User as the service renders it, to evaluate parsed filters on.
private let user = try! SCIMJSON.parse(
    #"""
    {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
     "id":"2819c223","externalId":"E1001","userName":"bjensen@example.com","displayName":"Babs Jensen",
     "name":{"familyName":"Jensen","givenName":"Barbara"},"title":"Tour Guide","active":true,
     "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
     "groups":[{"value":"g1","display":"support","type":"direct"}],
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","manager":{"value":"26118915"}},
     "meta":{"resourceType":"User","created":"2026-01-23T04:56:22Z","lastModified":"2026-05-13T04:42:34.123Z"}}
    """#
).objectValue!

/// The input, as UTF-8 text, is a filter. Holds: parsing gives a filter or `400 invalidFilter`;
/// a parsed filter renders to text that parses back to the same filter; it compiles against
/// User or is refused with `400 invalidFilter`; a compiled filter evaluates.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSCIMFilter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let filter: SCIMFilter
    do {
        filter = try SCIMFilter.parse(text, knownSchemas: schemas)
    } catch {
        precondition(error.status == 400 && error.scimType == .invalidFilter && !error.detail.isEmpty, "parse: \(error)")
        return 0
    }
    let rendered = filter.description
    do {
        let again = try SCIMFilter.parse(rendered, knownSchemas: schemas)
        precondition(again == filter, "round trip: \(rendered) parsed as \(again)")
    } catch {
        preconditionFailure("the rendering \(rendered) of a parsed filter is refused: \(error)")
    }
    do {
        _ = try filter.compile(for: type).matches(user)
    } catch {
        precondition(error.status == 400 && error.scimType == .invalidFilter, "compile: \(error)")
    }
    return 0
}
