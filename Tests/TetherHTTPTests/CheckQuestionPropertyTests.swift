import Foundation
import Hummingbird
import PropertyInput
import Testing
import TetherCore

@testable import TetherHTTP

/// Questions as gateways send them, with the extra fields some add (trace context, numbers,
/// nested objects), and the escapes JSON allows.
private let questions: [String] = [
    #"{"subject":"alice","agent":"support-copilot","scope":"tickets:read","resource":"zendesk:queue/Support"}"#,
    #"{"agent":"a","subject":"\u00e9\u0301\ud83d\ude00","scope":"s\/t","resource":"r\"\\\b\f\n\r\t","trace":{"id":"x","n":[1,-2.5e+3,0.0,null,true,false]}}"#,
    #" {"resource":"git:*" , "scope" : "repo:read","subject":"bob","agent":"ci-bot","n":-0,"e":1E-7,"deep":[[[[{"a":[]}]]]]} "#,
]

private let questionTokens = [
    "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "0", "-0", "01", "1.", ".5", "1e", "1e+", "-", "+1", "1-2",
    "2.5e3", "1E400", "\"subject\"", "\"agent\"", "\"scope\"", "\"resource\"", "\"trace\"", "\\u0000", "\\ud800", "\\udc00",
    "\\ud800\\udc00", "\\u00", "\\x41", "\\/", "tru", "nul", "fals", "\u{7}",
]

private let questionNesting = [
    (open: "[", close: "]", core: "1"),
    (open: "{\"a\":", close: "}", core: "null"),
    (open: #"{"subject":"a","agent":"b","scope":"c","resource":"d","t":"#, close: "}", core: "[]"),
    (open: #"{"subject":"a","agent":"b","scope":"c","resource":"d","t":["#, close: "]}", core: "{}"),
]

/// The check question's own reader over random and mutated bodies: whatever it reads,
/// `JSONDecoder` reads the same; whatever it refuses is left to the decoder (and its 400). No
/// body, however deep, exhausts the stack.
///
/// `TETHER_PROPERTY_SEED=N` replays a run.
@Suite struct CheckQuestionPropertyTests {
    @Test func theReaderAgreesWithTheDecoderOnEveryBody() {
        let seed = propertySeed("check questions")
        let cases = 20_000
        var mutator = InputMutator(seed: seed, corpus: questions, tokens: questionTokens, nesting: questionNesting)
        var failures = PropertyFailures(seed: seed)
        var (read, decoded) = (0, 0)
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let answer = CheckAnswerer.question(ByteBuffer(bytes: bytes))
            let decoder = try? JSONDecoder().decode(CheckRequest.self, from: Data(bytes))
            if answer != nil { read += 1 }
            if decoder != nil { decoded += 1 }
            if let answer {
                failures.check(answer == decoder, "read \(answer), decoder \(String(describing: decoder)); case \(number) (\(strategy)): \(bytes.quoted())")
            }
        }
        failures.finish("check questions: \(cases) bodies, \(read) read, \(decoded) decoded")
        // The decoder also takes what the reader leaves to it (a key given twice, nesting past
        // the reader's depth, and numbers the RFC does not allow in a field it ignores); most
        // of what it takes is the plain kind the reader reads itself.
        #expect(read > 500 && 2 * read >= decoded, "seed \(seed): \(read) read, \(decoded) decoded")
    }

    @Test(arguments: [63, 64, 10_000, 1_000_000])
    func deepNestingIsLeftToTheDecoder(_ depth: Int) {
        let body = #"{"subject":"a","agent":"b","scope":"c","resource":"d","t":"#
            + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        let answer = CheckAnswerer.question(ByteBuffer(string: body))
        #expect((answer != nil) == (1 + depth <= JSONReader.maximumDepth), "the question's object and \(depth) arrays")
    }
}
