import Testing
@testable import TetherSCIM

private let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/// Stored attributes of a User, as POST left them.
private func user(_ extra: String = "") throws -> SCIMJSON.Object {
    let body = try SCIMJSON.parse(#"""
        {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen","active":true,
         "name":{"givenName":"Barbara","familyName":"Jensen"},
         "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}]\#(extra)}
        """#)
    return try SCIMResourceBody.read(body, type: .user)
}

private func group() throws -> SCIMJSON.Object {
    try SCIMResourceBody.read(
        try SCIMJSON.parse(#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Support","members":[{"value":"u1"},{"value":"u2"}]}"#),
        type: .group)
}

/// Applies a PatchOp body's operations to `resource`.
private func patch(_ resource: SCIMJSON.Object, _ operations: String, type: SCIMResourceType = .user) throws(SCIMError) -> SCIMJSON.Object {
    let body = try! SCIMJSON.parse(#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":\#(operations)}"#)
    return try SCIMPatch.parse(body, knownSchemas: type.schemaURNs).apply(to: resource, type: type)
}

private func failure(_ resource: SCIMJSON.Object, _ operations: String, type: SCIMResourceType = .user) -> SCIMError? {
    do {
        _ = try patch(resource, operations, type: type)
        return nil
    } catch {
        return error
    }
}

@Suite struct SCIMPatchTests {
    // MARK: What Okta sends

    @Test func oktaDeactivatesWithoutAPath() throws {
        let result = try patch(try user(), #"[{"op":"replace","value":{"active":false}}]"#)
        #expect(result["active"] == false)
        #expect(result["userName"] == "bjensen")
    }

    @Test func oktaAddsAndRemovesGroupMembersAndRenamesWithoutAPath() throws {
        var result = try patch(try group(), #"[{"op":"add","path":"members","value":[{"value":"u3","display":"carol@example.com"}]}]"#, type: .group)
        #expect(result["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == ["u1", "u2", "u3"])
        result = try patch(result, #"[{"op":"remove","path":"members[value eq \"u1\"]"}]"#, type: .group)
        #expect(result["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == ["u2", "u3"])
        result = try patch(result, #"[{"op":"replace","value":{"id":"abf4dd94","displayName":"Support Tier 2"}}]"#, type: .group)
        #expect(result["displayName"] == "Support Tier 2")
    }

    // MARK: What Entra sends

    @Test func entraCapitalisesOperationsAndSendsStringBooleans() throws {
        let result = try patch(try user(), #"""
            [{"op":"Replace","path":"active","value":"False"},
             {"op":"Add","path":"roles","value":[{"value":"admin","primary":"True"}]},
             {"op":"Replace","path":"name.givenName","value":"Babs"}]
            """#)
        #expect(result["active"] == false)
        #expect(result["roles"] == [["value": "admin", "primary": true]])
        #expect(result["name"]?["givenName"] == "Babs")
        #expect(result["name"]?["familyName"] == "Jensen")
    }

    @Test func entraAddsAFilteredEmailThatDoesNotExistYet() throws {
        let result = try patch(try user(), #"""
            [{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0100"},
             {"op":"Replace","path":"emails[type eq \"work\"].value","value":"barbara@example.com"},
             {"op":"Add","path":"addresses[type eq \"work\"].streetAddress","value":"1 Main St"},
             {"op":"Replace","path":"addresses[type eq \"work\"].locality","value":"Springfield"}]
            """#)
        #expect(result["phoneNumbers"] == [["type": "mobile", "value": "+1 555 0100"]])
        #expect(result["emails"]?.arrayValue?.first?["value"] == "barbara@example.com")
        #expect(result["emails"]?.arrayValue?.count == 2)
        #expect(result["addresses"] == [["type": "work", "streetAddress": "1 Main St", "locality": "Springfield"]])
    }

    @Test func entraSetsEnterpriseAttributesByFullPathAndManagerAsAnId() throws {
        let result = try patch(try user(), #"""
            [{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"},
             {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"26118915"},
             {"op":"Add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"701984","name.familyName":"Jensen-Smith"}}]
            """#)
        #expect(result[enterprise]?["department"] == "Sales")
        #expect(result[enterprise]?["manager"] == ["value": "26118915"])
        #expect(result[enterprise]?["employeeNumber"] == "701984")
        #expect(result["name"]?["familyName"] == "Jensen-Smith")
        #expect(result["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", .string(enterprise)])
    }

    @Test func entraRemovesMembersByValue() throws {
        let result = try patch(try group(), #"[{"op":"Remove","path":"members","value":[{"value":"u2"}]}]"#, type: .group)
        #expect(result["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == ["u1"])
    }

    @Test func manyMembersInOneOperation() throws {
        let values = (0..<1000).map { #"{"value":"m\#($0)"}"# }.joined(separator: ",")
        let result = try patch(try group(), #"[{"op":"add","path":"members","value":[\#(values)]}]"#, type: .group)
        #expect(result["members"]?.arrayValue?.count == 1002)
    }

    // MARK: RFC 7644 §3.5.2 semantics

    @Test func addAppendsToMultiValuedAndKeepsOnePrimary() throws {
        let result = try patch(try user(), #"[{"op":"add","path":"emails","value":[{"value":"new@example.com","type":"other","primary":true}]}]"#)
        let emails = result["emails"]?.arrayValue ?? []
        #expect(emails.count == 3)
        #expect(emails.filter { $0["primary"] == true }.compactMap { $0["value"]?.stringValue } == ["new@example.com"])
        // Adding a value that is already there changes nothing.
        let again = try patch(result, #"[{"op":"add","path":"emails","value":[{"value":"babs@jensen.org","type":"home"}]}]"#)
        #expect(again["emails"]?.arrayValue?.count == 3)
    }

    @Test func replaceMultiValuedReplacesAllValues() throws {
        let result = try patch(try user(), #"[{"op":"replace","path":"emails","value":[{"value":"only@example.com"}]}]"#)
        #expect(result["emails"] == [["value": "only@example.com"]])
    }

    @Test func replaceComplexMergesSubAttributes() throws {
        let result = try patch(try user(), #"[{"op":"replace","path":"name","value":{"givenName":"Babs"}}]"#)
        #expect(result["name"] == ["givenName": "Babs", "familyName": "Jensen"])
    }

    @Test func replaceAFilteredValueReplacesIt() throws {
        let result = try patch(try user(), #"[{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"b@home.org","type":"home"}}]"#)
        #expect(result["emails"]?.arrayValue?.last == ["value": "b@home.org", "type": "home"])
    }

    @Test func removeAttributeSubAttributeAndFilteredValues() throws {
        var result = try patch(try user(), #"[{"op":"remove","path":"name.familyName"},{"op":"remove","path":"emails[type eq \"home\"]"}]"#)
        #expect(result["name"] == ["givenName": "Barbara"])
        #expect(result["emails"]?.arrayValue?.count == 1)
        result = try patch(result, #"[{"op":"remove","path":"emails"},{"op":"remove","path":"name"},{"op":"remove","path":"nickName"}]"#)
        #expect(result["emails"] == nil)
        #expect(result["name"] == nil)
    }

    @Test func extensionAsAWhole() throws {
        var result = try patch(try user(), #"[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"Support","costCenter":"4130"}}]"#)
        #expect(result[enterprise] == ["costCenter": "4130", "department": "Support"])
        result = try patch(result, #"[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"}]"#)
        #expect(result[enterprise] == ["department": "Support"])
        result = try patch(result, #"[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]"#)
        #expect(result[enterprise] == nil)
        #expect(result["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"])
    }

    @Test func operationsAreAtomic() throws {
        let original = try user()
        let error = failure(original, #"[{"op":"replace","path":"displayName","value":"Babs"},{"op":"remove","path":"emails[type eq \"fax\"]"}]"#)
        #expect(error?.scimType == .noTarget)
        #expect(error?.detail.contains("operation 2") == true, "\(error?.detail ?? "")")
        #expect(original["displayName"] == nil)
    }

    @Test(arguments: [
        (#"[{"op":"remove"}]"#, SCIMError.Kind.noTarget, "remove needs a \"path\""),
        (#"[{"op":"move","path":"title"}]"#, .invalidSyntax, "\"op\" must be"),
        (#"[{"op":"add","path":"title"}]"#, .invalidSyntax, "needs a \"value\""),
        (#"[{"op":"add","value":"x"}]"#, .invalidSyntax, "must be an object"),
        (#"[{"op":"add","path":"shoeSize","value":"x"}]"#, .invalidPath, "names no attribute"),
        (#"[{"op":"add","path":"emails[type eq","value":"x"}]"#, .invalidPath, "not closed"),
        (#"[{"op":"add","path":"emails[type eqq \"work\"].value","value":"x"}]"#, .invalidPath, "\"eqq\" is not an operator"),
        (#"[{"op":"add","path":"emails[kind eq \"work\"].value","value":"x"}]"#, .invalidPath, "unknown attribute \"kind\""),
        (#"[{"op":"replace","path":"title[value eq \"x\"]","value":"x"}]"#, .invalidPath, "takes no value filter"),
        (#"[{"op":"add","path":"groups","value":[{"value":"g1"}]}]"#, .mutability, "read-only"),
        (#"[{"op":"remove","path":"userName"}]"#, .invalidValue, "required"),
        (#"[{"op":"replace","path":"active","value":"maybe"}]"#, .invalidValue, "boolean"),
        (#"[{"op":"replace","path":"emails","value":[{"value":"a","primary":true},{"value":"b","primary":true}]}]"#, .invalidValue, "at most one"),
        (#"[{"op":"replace","path":"userName","value":7}]"#, .invalidValue, "a string"),
        (#"[{"op":"remove","path":"emails[value eq \"nobody@example.com\"]"}]"#, .noTarget, "matches"),
        (#"[{"op":"replace","path":"emails[type eq \"fax\"]","value":{"value":"x"}}]"#, .noTarget, "matches"),
        (#"[{"op":"replace","path":"emails[value co \"@\" and type ne \"work\"].display","value":"x"},{"op":"replace","path":"emails[value sw \"zz\"].display","value":"x"}]"#, .noTarget, "operation 2"),
    ])
    func refusesBadOperationsWithTheRightScimType(operations: String, kind: SCIMError.Kind, detail: String) {
        let error = failure(try! user(), operations)
        #expect(error?.status == 400)
        #expect(error?.scimType == kind, "\(error?.description ?? "no error")")
        #expect(error?.detail.contains(detail) == true, "\(error?.detail ?? "no error")")
    }

    @Test func refusesChangingAnImmutableMemberValue() {
        let error = failure(try! group(), #"[{"op":"replace","path":"members[value eq \"u1\"].value","value":"u9"}]"#, type: .group)
        #expect(error?.scimType == .mutability)
    }

    @Test func refusesAMalformedPatchBody() {
        let cases = [
            #"{"Operations":[{"op":"add","path":"title","value":"x"}]}"#,
            #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}"#,
            #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}"#,
            #"[1]"#,
        ]
        for text in cases {
            #expect(throws: SCIMError.self) { try SCIMPatch.parse(try SCIMJSON.parse(text), knownSchemas: []) }
        }
    }

    @Test func pathsParseWithFiltersAndSubAttributes() throws {
        let path = try SCIMPatch.Path.parse(#"emails[type eq "work" and value ew "]x"].value"#, knownSchemas: [])
        #expect(path.attribute == SCIMAttributePath(attribute: "emails"))
        #expect(path.subAttribute == "value")
        #expect(path.filter?.description == #"(type eq "work" and value ew "]x")"#)
        let bare = try SCIMPatch.Path.parse(enterprise, knownSchemas: SCIMResourceType.user.schemaURNs)
        #expect(bare.attribute.attribute == nil)
        let qualified = try SCIMPatch.Path.parse(enterprise + ":manager.value", knownSchemas: SCIMResourceType.user.schemaURNs)
        #expect(qualified.attribute == SCIMAttributePath(schema: enterprise, attribute: "manager", subAttribute: "value"))
    }
}
