import PropertyInput
import Testing

@testable import TetherSCIM

/// Filters, PATCH paths and PatchOp bodies that the compliance and unit suites use: the
/// valid inputs the mutator starts from (the libFuzzer seed corpora hold the same).
private let filterCorpus = [
    #"userName eq "bjensen@example.com""#,
    #"USERNAME EQ "BJENSEN@EXAMPLE.COM""#,
    #"externalId eq "E1001""#,
    #"name.familyName co "jensen""#,
    "title pr",
    "active eq true",
    "active ne false",
    "userType eq null",
    "meta.lastModified gt \"2026-05-13T04:42:34Z\"",
    "meta.created le \"2026-01-23T05:56:22+01:00\"",
    #"emails[type eq "work" and value co "@example.com"]"#,
    #"emails[type eq "work"].value eq "bjensen@example.com""#,
    #"emails[not (type eq "work")]"#,
    #"(userName eq "x" or title eq "Tour Guide") and active eq true"#,
    #"userName eq "x" or title eq "y" and active eq true"#,
    #"not (userName eq "x")"#,
    #"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
    #"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#,
    #"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#,
    #"userName eq "say \"hi\" \u00e9\\""#,
    "x.y ge 1.5e3 and z lt -42",
    "members[value eq \"2819c223\"]",
]

private let filterTokens = [
    " and ", " or ", "not ", " not", "(", ")", "[", "]", " eq ", " ne ", " co ", " sw ", " ew ", " gt ", " ge ", " lt ", " le ",
    " pr", "\"x\"", "\"", "true", "false", "null", "1.5", "-0", ".", ":", "urn:", "urn:ietf:params:scim:schemas:core:2.0:User:",
    "emails", "value", "$ref", "meta.version", "  ", "\u{3000}",
]

private let filterNesting = [
    (open: "(", close: ")", core: "title pr"),
    (open: "not (", close: ")", core: "title pr"),
    (open: "emails[", close: "]", core: "value pr"),
    (open: "[", close: "]", core: ""),
    (open: "title pr and ", close: "", core: "title pr"),
    (open: "title pr or (", close: ")", core: "title pr"),
]

private let pathCorpus = [
    "members", "active", "name.givenName", "emails[type eq \"work\"]", "emails[type eq \"work\"].value",
    "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]", "addresses[type eq \"work\"].streetAddress",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "emails[type eq \"work\" and value ew \"]\"].display", "phoneNumbers[not (primary eq true)].value",
]

private let patchCorpus = [
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"},{"op":"Add","path":"roles","value":[{"value":"admin","primary":"True"}]},{"op":"Replace","path":"name.givenName","value":"Babs"}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0100"},{"op":"Replace","path":"emails[type eq \"work\"].value","value":"barbara@example.com"}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"},{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"26118915"}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"name.familyName"},{"op":"remove","path":"emails[type eq \"home\"]"}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails","value":[{"value":"a@example.com","primary":true}]}]}"#,
    #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"4130"},"name.formatted":"B J","nickName":1.5e2}}]}"#,
]

private let jsonTokens = [
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "0", "-1.5e+3", "\"op\"", "\"path\"", "\"value\"",
    "\"Operations\"", "\"remove\"", "\"add\"", "{\"op\":\"add\",\"value\":{}}", "\\u0000", "\\ud83d\\ude00",
]

private let jsonNesting = [
    (open: "[", close: "]", core: "1"),
    (open: "{\"a\":", close: "}", core: "null"),
    (open: #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":["#, close: "]}", core: "{}"),
]

private let user = try! SCIMJSON.parse(
    #"""
    {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
     "id":"2819c223","externalId":"E1001","userName":"bjensen@example.com","displayName":"Babs Jensen",
     "name":{"familyName":"Jensen","givenName":"Barbara"},"title":"Tour Guide","active":true,
     "emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","manager":{"value":"26118915"}},
     "meta":{"resourceType":"User","created":"2026-01-23T04:56:22Z","lastModified":"2026-05-13T04:42:34.123Z"}}
    """#
).objectValue!

private let schemas = SCIMResourceType.user.schemaURNs

/// The 1-based character position an `invalidFilter` detail names, if any.
private func position(in detail: String) -> Int? {
    guard let range = detail.range(of: "at character ") else { return nil }
    return Int(detail[range.upperBound...].prefix { $0.isNumber })
}

/// Properties of the SCIM parsers over random and mutated input: they answer with a value or
/// with their 400, never crash, and what they parse renders back to the same value.
///
/// Each property prints its seed; `TETHER_PROPERTY_SEED=N` replays a run.
@Suite struct SCIMParserPropertyTests {
    @Test func filterParserAnswersAFilterOrInvalidFilterSayingWhere() {
        let seed = propertySeed("SCIM filter parser")
        let cases = 6_000
        var mutator = InputMutator(seed: seed, corpus: filterCorpus, tokens: filterTokens, nesting: filterNesting)
        var failures = PropertyFailures(seed: seed)
        var parsed = 0
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let text = String(decoding: bytes, as: UTF8.self)
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            let filter: SCIMFilter
            do {
                filter = try SCIMFilter.parse(text, knownSchemas: schemas)
            } catch {
                failures.check(error.status == 400 && error.scimType == .invalidFilter, "\(error); \(context)")
                let at = position(in: error.detail) ?? 0
                failures.check(at >= 1 && at <= text.unicodeScalars.count + 1, "\(error.detail); \(context)")
                continue
            }
            parsed += 1
            let rendered = filter.description
            let again = try? SCIMFilter.parse(rendered, knownSchemas: schemas)
            failures.check(again == filter, "renders as \(rendered), which parses as \(again.map(String.init(describing:)) ?? "an error"); \(context)")
            do {
                _ = try filter.compile(for: .user).matches(user)
            } catch {
                failures.check(error.status == 400 && error.scimType == .invalidFilter, "\(error); \(context)")
            }
        }
        failures.finish("SCIM filter parser: \(cases) inputs, \(parsed) parsed, \(cases - parsed) refused with invalidFilter")
        // Mutations of valid filters are often still valid: the property saw both outcomes.
        #expect(parsed > 100, "seed \(seed): only \(parsed) inputs parsed")
    }

    @Test func generatedFiltersRenderAndParseBackUnchanged() {
        let seed = propertySeed("SCIM filter round trip")
        let cases = 4_000
        var generator = FilterGenerator(random: SeededRandom(seed: seed))
        var failures = PropertyFailures(seed: seed)
        for number in 0..<cases {
            let filter = generator.filter(depth: 0, inValuePath: false)
            let rendered = filter.description
            do {
                let again = try SCIMFilter.parse(rendered, knownSchemas: schemas)
                failures.check(again == filter, "case \(number): \(rendered) parsed as \(again)")
            } catch {
                failures.check(false, "case \(number): \(rendered) refused: \(error)")
            }
        }
        failures.finish("SCIM filter round trip: \(cases) generated filters")
    }

    @Test func patchPathParserAnswersAPathOrInvalidPathNamingIt() {
        let seed = propertySeed("PATCH path parser")
        let cases = 6_000
        var mutator = InputMutator(seed: seed, corpus: pathCorpus, tokens: filterTokens, nesting: filterNesting)
        var failures = PropertyFailures(seed: seed)
        var parsed = 0
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let text = String(decoding: bytes, as: UTF8.self)
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            do {
                let path = try SCIMPatch.Path.parse(text, knownSchemas: schemas)
                parsed += 1
                failures.check(path.text == text, context)
                failures.check(path.attribute.attribute != nil || (path.filter == nil && path.subAttribute == nil), context)
            } catch {
                failures.check(error.status == 400 && error.scimType == .invalidPath, "\(error); \(context)")
                let quotedPath = Array("\"\(text)\"".utf8)
                failures.check(error.detail.utf8.firstRange(of: quotedPath) != nil, "the detail does not quote the path: \(error.detail); \(context)")
            }
        }
        failures.finish("PATCH path parser: \(cases) inputs, \(parsed) parsed, \(cases - parsed) refused with invalidPath")
        #expect(parsed > 100, "seed \(seed): only \(parsed) inputs parsed")
    }

    @Test func generatedPatchPathsParseBackToTheirParts() {
        let seed = propertySeed("PATCH path round trip")
        let cases = 4_000
        var generator = FilterGenerator(random: SeededRandom(seed: seed))
        var failures = PropertyFailures(seed: seed)
        for number in 0..<cases {
            let attribute = generator.path(allowSub: false)
            let filter = generator.filter(depth: 1, inValuePath: true)
            let sub = generator.random.chance(50) ? generator.attributeName() : nil
            let text = "\(attribute)[\(filter)]" + (sub.map { "." + $0 } ?? "")
            do {
                let path = try SCIMPatch.Path.parse(text, knownSchemas: schemas)
                failures.check(
                    path.attribute == attribute && path.filter == filter && path.subAttribute == sub,
                    "case \(number): \(text) parsed as \(path.attribute) [\(path.filter.map(String.init(describing:)) ?? "")] \(path.subAttribute ?? "")")
            } catch {
                failures.check(false, "case \(number): \(text) refused: \(error)")
            }
        }
        failures.finish("PATCH path round trip: \(cases) generated paths")
    }

    @Test func patchBodiesParseAndApplyOrAnswerA400() {
        let seed = propertySeed("PatchOp bodies")
        let cases = 5_000
        var mutator = InputMutator(seed: seed, corpus: patchCorpus, tokens: jsonTokens + filterTokens, nesting: jsonNesting)
        var failures = PropertyFailures(seed: seed)
        var json = 0
        var applied = 0
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            let body: SCIMJSON
            do {
                body = try SCIMJSON.parse(bytes)
            } catch {
                failures.check(error.line >= 1 && error.column >= 1 && !error.reason.isEmpty, "\(error); \(context)")
                continue
            }
            json += 1
            failures.check((try? SCIMJSON.parse(body.bytes)) == body, "JSON round trip: \(body.text); \(context)")
            do {
                let patch = try SCIMPatch.parse(body, knownSchemas: schemas)
                _ = try patch.apply(to: user, type: .user)
                applied += 1
            } catch {
                failures.check(error.status == 400 && error.scimType != nil && !error.detail.isEmpty, "\(error); \(context)")
            }
        }
        failures.finish("PatchOp bodies: \(cases) inputs, \(json) JSON, \(applied) applied")
        #expect(applied > 10, "seed \(seed): only \(applied) bodies applied")
    }
}

/// Random well-formed filters, within the grammar the parser accepts and renders.
struct FilterGenerator {
    var random: SeededRandom

    /// Names a filter can use unambiguously: any attribute name but `not`, which starts a negation.
    private static let names = [
        "userName", "emails", "name", "title", "active", "id", "meta", "x", "A-b_9", "$ref", "pr", "and", "or", "eq", "true",
        "null", "value", "type",
    ]

    private static let urns = [
        "urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:x:y", "URN:a.b:c",
    ]

    mutating func attributeName() -> String {
        if random.chance(60) { return random.pick(Self.names) }
        let first = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let rest = first + Array("0123456789-_")
        var name = String(random.pick(first)) + String((0..<random.below(12)).map { _ in random.pick(rest) })
        if name.lowercased() == "not" { name += "x" }
        return name
    }

    mutating func path(allowSub: Bool) -> SCIMAttributePath {
        SCIMAttributePath(
            schema: random.chance(15) ? random.pick(Self.urns) : nil, attribute: attributeName(),
            subAttribute: allowSub && random.chance(30) ? attributeName() : nil)
    }

    mutating func string() -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<random.below(12) {
            switch random.below(5) {
            case 0: scalars.append(random.pick(InputMutator.oddScalars))
            case 1: scalars.append(random.pick(["\"", "\\", "]", ")", "[", "(", " ", "/", "\u{8}", "\u{1F}"]))
            case 2: scalars.append(Unicode.Scalar(UInt32(random.below(0xD800))) ?? "x")
            default: scalars.append(Unicode.Scalar(UInt8(32 + random.below(95))))
            }
        }
        return String(scalars)
    }

    mutating func value() -> SCIMJSON {
        switch random.below(7) {
        case 0: return .bool(random.chance(50))
        case 1: return .null
        case 2: return .integer(Int64(bitPattern: random.next()) >> Int64(random.below(64)))
        case 3:
            let value = Double(bitPattern: random.next())
            return .decimal(value.isFinite ? value : 1.5)
        case 4: return .decimal(Double(random.below(2_000_000) - 1_000_000) / 64)
        default: return .string(string())
        }
    }

    mutating func filter(depth: Int, inValuePath: Bool) -> SCIMFilter {
        let leaf = depth >= 4 || random.chance(35)
        switch leaf ? random.below(2) : 2 + random.below(inValuePath ? 3 : 4) {
        case 0: return .present(path(allowSub: true))
        case 1: return .compare(path(allowSub: true), random.pick(SCIMFilter.Operator.allCases), value())
        case 2: return .and(filter(depth: depth + 1, inValuePath: inValuePath), filter(depth: depth + 1, inValuePath: inValuePath))
        case 3: return .or(filter(depth: depth + 1, inValuePath: inValuePath), filter(depth: depth + 1, inValuePath: inValuePath))
        case 4: return .not(filter(depth: depth + 1, inValuePath: inValuePath))
        default: return .valuePath(path(allowSub: false), filter(depth: depth + 1, inValuePath: true))
        }
    }
}

/// The inputs the properties and the fuzzers found, and the bounds they led to, as fixed cases.
@Suite struct SCIMParserRegressionTests {
    /// `(((…` 10,000 deep overflowed the stack of the recursive-descent parser (signal 11).
    @Test(arguments: [
        String(repeating: "(", count: 10_000) + "title pr" + String(repeating: ")", count: 10_000),
        String(repeating: "not (", count: 10_000) + "title pr" + String(repeating: ")", count: 10_000),
        String(repeating: "(", count: 10_000),
        "emails[" + String(repeating: "(", count: 10_000) + "value pr" + String(repeating: ")", count: 10_000) + "]",
    ])
    func deepNestingIsRefusedAtTheLevelPastTheBound(filter: String) throws {
        let error = try #require(throws: SCIMError.self) { try SCIMFilter.parse(filter, knownSchemas: schemas) }
        #expect(error.status == 400 && error.scimType == .invalidFilter)
        #expect(error.detail.contains("nest deeper than 32 levels"), "\(error.detail)")
    }

    /// What libFuzzer found (`scripts/fuzz`, minimised with `-minimize_crash=1`) against the
    /// parser before the bound: an AddressSanitizer stack-overflow in `parseUnary`.
    @Test func theFuzzersCrashInputsAreRefused() throws {
        let filter =
            "x.y ge 1.5e3 and" + String(repeating: "(", count: 37) + "x.y ge 1.5e3 and " + String(repeating: "(", count: 25)
            + "x.y ge 1.5e3 and " + String(repeating: "(", count: 439) + "x.y ge 5e3 and " + String(repeating: "(", count: 384)
            + "x.y ge 5e3 and " + String(repeating: "(", count: 46) + " a" + String(repeating: "(", count: 3) + "lt42"
        let filterError = try #require(throws: SCIMError.self) { try SCIMFilter.parse(filter, knownSchemas: schemas) }
        #expect(filterError.scimType == .invalidFilter && filterError.detail.contains("nest deeper than 32 levels"), "\(filterError.detail)")
        let path = "l[" + String(repeating: "(", count: 930) + "\"s\"]"
        let pathError = try #require(throws: SCIMError.self) { try SCIMPatch.Path.parse(path, knownSchemas: schemas) }
        #expect(pathError.scimType == .invalidPath && pathError.detail.contains("nest deeper than 32 levels"), "\(pathError.detail)")
    }

    @Test func thirtyTwoLevelsAreAccepted() throws {
        let filter = String(repeating: "(", count: 32) + "title pr" + String(repeating: ")", count: 32)
        #expect(try SCIMFilter.parse(filter) == .present(SCIMAttributePath(attribute: "title")))
        let negations = String(repeating: "not (", count: 32) + "title pr" + String(repeating: ")", count: 32)
        let parsed = try SCIMFilter.parse(negations)
        #expect(try SCIMFilter.parse(parsed.description) == parsed)
        let error = try #require(throws: SCIMError.self) { try SCIMFilter.parse("(" + filter + ")") }
        #expect(error.detail.contains("at character 33: parentheses, \"not\" and value filters nest deeper than 32 levels"), "\(error.detail)")
    }

    /// `a and b and …` nests one level per term: 2,000 terms overflowed the stack of the
    /// compiler and the evaluator on a test thread (signal 11).
    @Test func aFilterHoldsAtMostTwoHundredConditions() throws {
        let chain = { (count: Int) in Array(repeating: "title pr", count: count).joined(separator: " and ") }
        let largest = try SCIMFilter.parse(chain(200), knownSchemas: schemas)
        #expect(try largest.compile(for: .user).matches(user))
        // The run is written as one group, so its text parses back.
        #expect(largest.description == "(" + chain(200) + ")")
        #expect(try SCIMFilter.parse(largest.description) == largest)
        for count in [201, 10_000] {
            let error = try #require(throws: SCIMError.self) { try SCIMFilter.parse(chain(count)) }
            #expect(error.scimType == .invalidFilter && error.detail.contains("more than 200 conditions"), "\(error.detail)")
        }
    }

    /// `a or b and (…)` is written `(a or (b and (…)))`: the description nests two levels for
    /// every one of the text, and must still parse back.
    @Test func precedenceThatWouldNestTheDescriptionTooDeeplyIsRefused() throws {
        func nested(_ levels: Int) -> String {
            levels == 0 ? "title pr" : "title pr or title pr and (\(nested(levels - 1)))"
        }
        let deepest = try SCIMFilter.parse(nested(16))
        #expect(try SCIMFilter.parse(deepest.description) == deepest)
        let error = try #require(throws: SCIMError.self) { try SCIMFilter.parse(nested(17)) }
        #expect(error.detail.contains("once the precedence of and/or is written out"), "\(error.detail)")
    }

    /// A string starting with a combining mark or a joiner merged with its opening quote into
    /// one character, which the parser then did not see as a quote.
    @Test(arguments: ["\u{301}x", "\u{308}", "\u{200D}]", "\u{1F3FD} )", "a\u{301}\"\u{301}"])
    func stringsStartingWithACombiningMarkParseAndRoundTrip(value: String) throws {
        let filter = SCIMFilter.compare(SCIMAttributePath(attribute: "userName"), .eq, .string(value))
        #expect(try SCIMFilter.parse(filter.description) == filter, "\(filter.description)")
        let path = try SCIMPatch.Path.parse("emails[value eq \(SCIMJSON.string(value).text)].display", knownSchemas: schemas)
        #expect(path.filter == .compare(SCIMAttributePath(attribute: "value"), .eq, .string(value)))
        #expect(path.subAttribute == "display")
    }

    @Test func aPatchPathNestedTooDeeplyIsAnInvalidPath() throws {
        let text = "emails[" + String(repeating: "(", count: 10_000) + "value pr" + String(repeating: ")", count: 10_000) + "]"
        let error = try #require(throws: SCIMError.self) { try SCIMPatch.Path.parse(text, knownSchemas: schemas) }
        #expect(error.status == 400 && error.scimType == .invalidPath)
        #expect(error.detail.contains("at character 40: parentheses"), "\(error.detail.prefix(200))")
    }
}
