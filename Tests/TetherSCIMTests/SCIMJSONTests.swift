import Testing
@testable import TetherSCIM

@Suite struct SCIMJSONTests {
    @Test func parsesAndWritesEveryKindOfValue() throws {
        let text = #"{"s":"a\"b\\c\n\u00e9\ud83d\ude00","i":-42,"d":1.5,"e":2e3,"t":true,"f":false,"n":null,"a":[1,{"x":[]}],"o":{}}"#
        let value = try SCIMJSON.parse(text)
        #expect(value["s"] == .string("a\"b\\c\né😀"))
        #expect(value["i"] == .integer(-42))
        #expect(value["d"] == .decimal(1.5))
        #expect(value["e"] == .decimal(2000))
        #expect(value["t"] == .bool(true))
        #expect(value["f"] == .bool(false))
        #expect(value["n"] == .null)
        #expect(value["a"] == [1, ["x": []]])
        #expect(try SCIMJSON.parse(value.text) == value)
        #expect(SCIMJSON.string("a/b\u{1}").text == #""a/b\u0001""#)
    }

    @Test func keepsMemberOrderAndLooksUpNamesCaseInsensitively() throws {
        let value = try SCIMJSON.parse(#"{"zeta":1,"Alpha":2,"userName":"x"}"#)
        #expect(value.objectValue?.names == ["zeta", "Alpha", "userName"])
        #expect(value["USERNAME"] == "x")
        #expect(value.text == #"{"zeta":1,"Alpha":2,"userName":"x"}"#)
    }

    @Test func objectsCompareWithoutRegardToOrder() throws {
        #expect(try SCIMJSON.parse(#"{"a":1,"b":2}"#) == (try SCIMJSON.parse(#"{"b":2,"a":1}"#)))
        #expect(try SCIMJSON.parse(#"{"a":1}"#) != (try SCIMJSON.parse(#"{"a":1,"b":2}"#)))
        #expect(Set([try SCIMJSON.parse(#"{"a":1,"b":2}"#), try SCIMJSON.parse(#"{"b":2,"a":1}"#)]).count == 1)
    }

    @Test(arguments: [
        (#"{"a":1,}"#, 1, 8, "expected a member name"),
        ("{\"a\":\n tru}", 2, 2, "expected 'true'"),
        (#"{"userName":"a","USERNAME":"b"}"#, 1, 17, "appears twice"),
        (#"[01]"#, 1, 2, "leading zeros"),
        (#""abc"#, 1, 1, "not closed"),
        (#"{"a":1} x"#, 1, 9, "after the document"),
        (#"{"a":"\ud800"}"#, 1, 13, "lone UTF-16 surrogate"),
        ("", 1, 1, "found the end"),
    ])
    func refusesMalformedDocumentsSayingWhere(text: String, line: Int, column: Int, reason: String) {
        do {
            _ = try SCIMJSON.parse(text)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.column == column, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
        }
    }

    @Test func refusesDocumentsNestedTooDeep() {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: SCIMJSONSyntaxError.self) { try SCIMJSON.parse(deep) }
        let fine = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        #expect(throws: Never.self) { try SCIMJSON.parse(fine) }
    }

    @Test func errorDocumentFollowsTheSCIMErrorSchema() {
        let error = SCIMError(status: 400, .invalidFilter, "bad")
        #expect(error.document.text
            == #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"bad"}"#)
        #expect(SCIMError(status: 404, nil, "gone").document["scimType"] == nil)
    }
}
