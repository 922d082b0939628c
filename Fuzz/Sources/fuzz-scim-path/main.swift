import TetherSCIM

// libFuzzer calls this once per input; a broken property traps (`precondition`) and
// libFuzzer saves the input as a crash.

private let type = SCIMResourceType.user
private let schemas = type.schemas.map(\.id)

/// A stored User, the resource PatchOp bodies are applied to.
private let user = try! SCIMJSON.parse(
    #"""
    {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
     "externalId":"E1001","userName":"bjensen@example.com","displayName":"Babs Jensen",
     "name":{"familyName":"Jensen","givenName":"Barbara"},"title":"Tour Guide","active":true,
     "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","manager":{"value":"26118915"}}}
    """#
).objectValue!

/// The scimType keywords a PatchOp body may be refused with before it is applied.
private let parseKinds: Set<SCIMError.Kind> = [.invalidSyntax, .invalidPath, .noTarget, .invalidFilter]

/// The input is read twice. As text, it is a PATCH path: parsing gives a path or
/// `400 invalidPath`. As a JSON document, it is a PatchOp body: it is refused with a located
/// syntax error, or parsed and then applied to a User, each step failing only with a 400.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSCIMPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let path = try SCIMPatch.Path.parse(text, knownSchemas: schemas)
        precondition(path.text == text, "the path keeps its text: \(path.text)")
        precondition(path.attribute.attribute != nil || path.filter == nil, "a filter on a bare URN: \(path)")
    } catch {
        precondition(error.status == 400 && error.scimType == .invalidPath && !error.detail.isEmpty, "path: \(error)")
    }

    let body: SCIMJSON
    do {
        body = try SCIMJSON.parse(bytes)
    } catch {
        precondition(error.line >= 1 && error.column >= 1 && !error.reason.isEmpty, "JSON: \(error)")
        return 0
    }
    precondition((try? SCIMJSON.parse(body.bytes)) == body, "JSON round trip: \(body.text)")
    let patch: SCIMPatch
    do {
        patch = try SCIMPatch.parse(body, knownSchemas: schemas)
    } catch {
        precondition(error.status == 400 && error.scimType.map(parseKinds.contains) == true, "PatchOp: \(error)")
        return 0
    }
    do {
        _ = try patch.apply(to: user, type: type)
    } catch {
        precondition(error.status == 400 && error.scimType != nil, "apply: \(error)")
    }
    return 0
}
