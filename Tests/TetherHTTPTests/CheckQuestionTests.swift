import Foundation
import Hummingbird
import Testing
import TetherCore

@testable import TetherHTTP

/// The check question is read without `JSONDecoder` when it is the plain object gateways
/// send; what it reads is what the decoder reads, and anything else is left to the decoder.
@Suite struct CheckQuestionTests {
    @Test(arguments: [
        #"{"subject":"alice","agent":"support-copilot","scope":"tickets:read","resource":"zendesk:queue/Support"}"#,
        #" { "resource" : "r\u00e9s\/1" , "scope":"s\"q\\", "agent":"a", "subject":"\ud83d\ude00", "trace": {"id": [1, 2.5e3, null, true]} } "#,
    ])
    func aPlainQuestionIsReadAsTheDecoderReadsIt(_ body: String) throws {
        let read = try #require(CheckAnswerer.question(ByteBuffer(string: body)))
        #expect(read == (try JSONDecoder().decode(CheckRequest.self, from: Data(body.utf8))))
    }

    @Test(arguments: [
        #"{"subject":"alice","agent":"a","scope":"s"}"#,
        #"{"subject":"alice","agent":7,"scope":"s","resource":"r"}"#,
        #"{"subject":null,"agent":"a","scope":"s","resource":"r"}"#,
        #"{"subject":"alice","subject":"bob","agent":"a","scope":"s","resource":"r"}"#,
        #"{"subject":"alice","agent":"a","scope":"s","resource":"r"} {"#,
        #"{"subject":"alice","agent":"a","scope":"s","resource":"r""#,
        #"["alice","a","s","r"]"#,
        "",
    ])
    func anythingElseIsLeftToTheDecoder(_ body: String) {
        #expect(CheckAnswerer.question(ByteBuffer(string: body)) == nil)
    }

    @Test func textThatIsNotUTF8IsLeftToTheDecoder() {
        var bytes = Array(#"{"subject":"al","agent":"a","scope":"s","resource":"r"}"#.utf8)
        bytes.insert(0xFF, at: 13)
        #expect(CheckAnswerer.question(ByteBuffer(bytes: bytes)) == nil)
    }
}
