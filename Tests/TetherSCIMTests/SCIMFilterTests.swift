import Testing
@testable import TetherSCIM

/// A User as the service renders it, to filter on.
private let barbara = try! SCIMJSON.parse(#"""
    {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
     "id":"2819c223","externalId":"E1001","userName":"bjensen@Example.com","displayName":"Babs Jensen",
     "name":{"familyName":"Jensen","givenName":"Barbara"},"title":"Tour Guide","active":true,
     "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
     "groups":[{"value":"g1","display":"support","type":"direct"}],
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations",
        "manager":{"value":"26118915"}},
     "meta":{"resourceType":"User","created":"2026-01-23T04:56:22Z","lastModified":"2026-05-13T04:42:34.123Z",
        "version":"W/\"3694e05e9dff591\"","location":"https://example.com/scim/v2/Users/2819c223"}}
    """#).objectValue!

private func matches(_ filter: String, _ resource: SCIMJSON.Object = barbara, type: SCIMResourceType = .user) throws -> Bool {
    try SCIMFilter.parse(filter, knownSchemas: type.schemaURNs).compile(for: type).matches(resource)
}

private func failure(_ filter: String, type: SCIMResourceType = .user) -> SCIMError? {
    do {
        _ = try SCIMFilter.parse(filter, knownSchemas: type.schemaURNs).compile(for: type)
        return nil
    } catch {
        return error
    }
}

@Suite struct SCIMFilterTests {
    @Test(arguments: [
        ("userName eq \"bjensen@example.com\"", true),  // caseExact false
        ("USERNAME EQ \"BJENSEN@EXAMPLE.COM\"", true),  // names and operators in any case
        ("externalId eq \"e1001\"", false),  // externalId is caseExact
        ("externalId eq \"E1001\"", true),
        ("id eq \"2819c223\"", true),
        ("userName ne \"someone\"", true),
        ("userName co \"jensen\"", true),
        ("userName sw \"BJ\"", true),
        ("userName ew \"example.com\"", true),
        ("userName ew \"example.org\"", false),
        ("title pr", true),
        ("nickName pr", false),
        ("nickName ne \"x\"", true),  // absent: no value equals
        ("name.familyName eq \"jensen\"", true),
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        ("emails co \"jensen.org\"", true),  // a complex multi-valued attribute compares its value
        ("emails.type eq \"home\"", true),
        ("emails[type eq \"work\" and value co \"@example.com\"]", true),
        ("emails[type eq \"home\" and value co \"@example.com\"]", false),
        ("emails[type eq \"work\"].value eq \"bjensen@example.com\"", true),
        ("emails[type eq \"home\"].value eq \"bjensen@example.com\"", false),
        ("emails[primary eq true].value sw \"bjensen\"", true),
        ("emails[not (type eq \"work\")]", true),
        ("meta.lastModified gt \"2026-05-13T04:42:34Z\"", true),
        ("meta.lastModified gt \"2026-05-13T04:42:34.124Z\"", false),
        ("meta.created ge \"2026-01-23T04:56:22Z\"", true),
        ("meta.created lt \"2026-01-23T05:56:22+01:00\"", false),  // the same instant
        ("meta.created le \"2026-01-23T05:56:22+01:00\"", true),
        ("meta.resourceType eq \"User\"", true),
        ("title gt \"Tour A\" and title lt \"Tour Z\"", true),
        ("userName eq \"x\" or userName co \"jensen\"", true),
        ("userName eq \"x\" or title eq \"y\" and active eq true", false),
        ("(userName eq \"x\" or title eq \"Tour Guide\") and active eq true", true),
        ("not (userName eq \"x\")", true),
        ("not(active eq true)", false),
        ("userType eq null", true),
        ("title ne null", true),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"", true),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915\"", true),
        ("employeeNumber eq \"701984\"", true),  // an extension attribute no core attribute shadows
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"bjensen\"", true),
        ("groups.display eq \"Support\"", true),
        ("userName eq \"say \\\"hi\\\"\"", false),
    ])
    func evaluatesFiltersOnAUser(filter: String, expected: Bool) throws {
        #expect(try matches(filter) == expected, "\(filter)")
    }

    @Test func groupsFilterOnMembersAndDisplayName() throws {
        let group = try SCIMJSON.parse(
            #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"Support","members":[{"value":"u1","type":"User"},{"value":"u2","type":"User"}]}"#
        ).objectValue!
        #expect(try matches("displayName eq \"support\"", group, type: .group))
        #expect(try matches("members[value eq \"u2\"]", group, type: .group))
        #expect(try matches("members.value eq \"u1\"", group, type: .group))
        #expect(try !matches("members[value eq \"u3\"]", group, type: .group))
        #expect(failure("userName eq \"x\"", type: .group)?.scimType == .invalidFilter)
    }

    @Test func parsesOperatorPrecedenceAsTheRFCSays() throws {
        let filter = try SCIMFilter.parse("a eq 1 or b eq 2 and not (c pr)")
        #expect(filter.description == "(a eq 1 or (b eq 2 and not (c pr)))")
        let grouped = try SCIMFilter.parse("(a eq 1 or b eq 2) and c pr")
        #expect(grouped.description == "((a eq 1 or b eq 2) and c pr)")
        #expect(try SCIMFilter.parse("x eq 1.5e2").description == "x eq 150.0")
        #expect(try SCIMFilter.parse("x EQ TRUE").description == "x eq true")
    }

    @Test(arguments: [
        ("userName eq", "character 12: expected a value after \"eq\""),
        ("userName eqq \"x\"", "character 10: \"eqq\" is not an operator"),
        ("userName eq bjensen", "character 13: \"bjensen\" is not a value"),
        ("userName eq \"x", "character 13: the string starting here is not closed"),
        ("(userName eq \"x\"", "the parenthesis opened at character 1 is not closed"),
        ("emails[type eq \"work\"", "the value filter opened at character 7 is not closed"),
        ("emails[type[x eq 1]]", "cannot contain another value filter"),
        ("userName eq \"x\" and", "expected an attribute, \"not\" or \"(\", found the end of the filter"),
        ("userName eq \"x\" userName eq \"y\"", "character 17: unexpected \"userName\" after a complete filter"),
        ("not userName eq \"x\"", "\"not\" must be followed by a parenthesised filter"),
        ("", "expected an attribute"),
        ("1bad eq 1", "character 1: \"1bad\" is not an attribute path"),
    ])
    func refusesMalformedFiltersSayingWhere(filter: String, detail: String) {
        let error = failure(filter)
        #expect(error?.status == 400)
        #expect(error?.scimType == .invalidFilter)
        #expect(error?.detail.contains(detail) == true, "\(error?.detail ?? "no error") for \(filter)")
    }

    @Test(arguments: [
        ("nickname eq \"x\" and shoeSize gt 3", "unknown attribute \"shoeSize\""),
        ("active gt true", "only eq and ne apply"),
        ("active eq \"yes\"", "compare it with true or false"),
        ("userName eq 5", "compare it with a quoted string"),
        ("name eq \"x\"", "is complex"),
        ("meta.created gt \"yesterday\"", "not an RFC 3339 date-time"),
        ("userName gt null", "only eq and ne compare with null"),
        ("emails[kind eq \"work\"]", "unknown attribute \"kind\" inside the value filter of \"emails\""),
        ("userName[value eq \"x\"]", "not a complex attribute"),
        ("x509Certificates.value eq \"AAAA\"", "binary"),
        ("urn:example:unknown:2.0:User:thing eq \"x\"", "unknown attribute"),
    ])
    func refusesFiltersTheSchemaCannotAnswer(filter: String, detail: String) {
        let error = failure(filter)
        #expect(error?.scimType == .invalidFilter)
        #expect(error?.detail.contains(detail) == true, "\(error?.detail ?? "no error") for \(filter)")
    }

    @Test func searchesAcrossTypesKnowAttributesOfEither() throws {
        let filter = try SCIMFilter.parse("userName sw \"b\" or displayName eq \"Support\"")
        let compiled = try SCIMFilter.compileAcross(filter, types: SCIMResourceType.all)
        #expect(compiled["User"]?.matches(barbara) == true)
        let group = try SCIMJSON.parse(#"{"id":"g1","displayName":"support"}"#).objectValue!
        #expect(compiled["Group"]?.matches(group) == true)
        let negated = try SCIMFilter.compileAcross(try SCIMFilter.parse("not (userName pr)"), types: SCIMResourceType.all)
        #expect(negated["Group"]?.matches(group) == true)
        #expect(negated["User"]?.matches(barbara) == false)
        #expect(throws: SCIMError.self) { try SCIMFilter.compileAcross(try SCIMFilter.parse("shoeSize pr"), types: SCIMResourceType.all) }
    }
}
