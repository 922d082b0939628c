import Foundation
import PropertyInput
import Testing
import TetherHTTP

/// 2026-11-18T12:00:00Z, when every body and header below is received.
private let now = Date(timeIntervalSince1970: 1_795_003_200)
private let secret = Array("property-secret".utf8)
private let secrets = WebhookSecrets([secret, Array("rotated-secret".utf8)])!

/// Bodies in the shapes SPEC §8 and the webhook tests use: joiners, movers, leavers, scheduled leavers.
private let bodies: [String] = [
    HR.body(id: "evt-1"),
    HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z", department: "Legal"),
    HR.body(id: "evt-3", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", effectiveAt: "2026-12-01T00:00:00+01:00", active: false),
    HR.body(id: "evt-4", type: "leaver", occurredAt: "2026-11-18T10:00:00.123456Z", externalId: "E-\u{e9}\u{301}", manager: nil),
    #"{"id":"e","type":"joiner","occurredAt":"2026-11-18T08:00:00Z","user":{"externalId":"E1","emails":[{"value":"a@b","primary":false},{"value":"c@d"}],"name":{"formatted":"A B"}}}"#,
]

private let jsonTokens = [
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "0", "-1.5e+3", "1e400", "\"id\"", "\"type\"", "\"user\"",
    "\"externalId\"", "\"joiner\"", "\"leaver\"", "\"mover\"", "\"occurredAt\"", "\"effectiveAt\"", "\"2026-11-18T08:00:00Z\"",
    "\"2026-02-30T25:61:61Z\"", "\"9999-12-31T23:59:59.9999999999Z\"", "\"0000-01-01T00:00:00-23:59\"", "\\u0000", "\\ud800",
    "\"active\"", "\"emails\"", "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
]

private let jsonNesting = [
    (open: "[", close: "]", core: "1"),
    (open: "{\"a\":", close: "}", core: "null"),
    (open: #"{"id":"e","type":"joiner","occurredAt":"2026-11-18T08:00:00Z","user":"#, close: "}", core: "{}"),
]

/// Headers for the first corpus body: valid ones as senders write them (one secret, two in
/// rotation, other schemes beside v1), and the shapes attackers try.
private let headers: [String] = {
    let body = Array(bodies[0].utf8)
    let valid = WebhookSignature.header(body: body, secrets: [secret], time: now)
    let rotating = WebhookSignature.header(body: body, secrets: [Array("rotated-secret".utf8), secret], time: now)
    return [
        valid, rotating, valid + ",v0=legacy", "v2=next, " + valid.replacingOccurrences(of: ",", with: ", "), "t=1795003200,v1=" + valid.split(separator: "=").last!.uppercased(),
        "t=1795003200,v1=" + String(repeating: "0", count: 64),
        "t=1795003200, v1=abc, v0=zz, v1=" + String(repeating: "A", count: 64),
        "v1=00,t=1795003200",
    ]
}()

private let headerTokens = [
    "t=", "v1=", "v0=", ",", "=", " ", "t=1795003200", "t=-1", "t=99999999999999999999", "t=0001795003200", "t=\u{0661}\u{0662}",
    "v1=" + String(repeating: "f", count: 64), "v1=" + String(repeating: "g", count: 64), ",,,,", "v1=,v1=,v1=,v1=,v1=,v1=,v1=,v1=,v1=",
]

/// The HR webhook's parsers over random and mutated input: a body parses to an event or a
/// 400 that names its JSON path; a header verifies only when it carries the body's MAC.
///
/// Each property prints its seed; `TETHER_PROPERTY_SEED=N` replays a run.
@Suite struct HRParserPropertyTests {
    @Test func bodiesParseToAnEventOrAMalformedErrorNamingTheJSONPath() {
        let seed = propertySeed("HR event bodies")
        let cases = 5_000
        var mutator = InputMutator(seed: seed, corpus: bodies, tokens: jsonTokens, nesting: jsonNesting)
        var failures = PropertyFailures(seed: seed)
        var parsed = 0
        var paths = Set<String>()
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            do {
                let event = try HREvent(json: bytes, now: now).event
                parsed += 1
                failures.check(!event.id.isEmpty && event.facts.externalId?.isEmpty == false, context)
                failures.check(event.source == .hr, context)
            } catch {
                failures.check(error.code == .malformed, "\(error); \(context)")
                failures.check(error.path?.hasPrefix("$") == true && !error.detail.isEmpty, "\(error); \(context)")
                paths.insert(error.path ?? "")
            }
        }
        failures.finish("HR event bodies: \(cases) inputs, \(parsed) parsed, \(cases - parsed) refused, faults at \(paths.count) JSON paths")
        #expect(parsed > 100, "seed \(seed): only \(parsed) bodies parsed")
        // Faults were found all over the body, not only at its root.
        #expect(paths.count >= 6, "seed \(seed): \(paths.sorted())")
    }

    @Test func aSignatureHeaderVerifiesOnlyWithTheBodysMAC() {
        let seed = propertySeed("Tether-Signature header")
        let cases = 10_000
        var mutator = InputMutator(seed: seed, corpus: headers, tokens: headerTokens, nesting: [(open: "v1=", close: ",", core: "")])
        let body = Array(bodies[0].utf8)
        // The MAC of the body at t=1795003200 under each accepted secret.
        let macs = [secret, Array("rotated-secret".utf8)].map {
            String(WebhookSignature.header(body: body, secrets: [$0], time: now).split(separator: "=").last!)
        }
        var failures = PropertyFailures(seed: seed)
        var verified = 0
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let header = String(decoding: bytes, as: UTF8.self)
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            do {
                try WebhookSignature.verify(header: header, body: body, secrets: secrets, now: now, tolerance: .seconds(300))
                verified += 1
                // Only a true MAC passes, and only with the time it was made for (t=1795003200,
                // the one form of it the mutator can reach without leading zeros).
                failures.check(
                    macs.contains { header.lowercased().contains("v1=\($0)") } && header.contains("t=1795003200"), context)
            } catch {
                failures.check(!error.description.isEmpty, context)
                failures.check(!macs.contains { error.description.contains($0) }, "an expected MAC leaked: \(error); \(context)")
            }
        }
        failures.finish("Tether-Signature header: \(cases) headers, \(verified) verified")
        // Mutations that leave the header valid (an added field, a cut second signature) still verify.
        #expect(verified > 50, "seed \(seed): only \(verified) headers verified")
    }
}
