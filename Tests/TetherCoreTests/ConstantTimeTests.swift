import Foundation
import PropertyBased
import Testing
import TetherCore

/// Secrets are compared without an early exit: the answer is `==`'s, and only lengths may
/// shorten the work (timing itself is not measured here; see the implementation).
@Suite struct ConstantTimeTests {
    @Test func agreesWithEqualityOnRandomBytes() async {
        await propertyCheck(count: 1_000, input: Gen.uint8().array(of: 0...40), Gen.uint8(in: 0...1).array(of: 0...40)) { a, b in
            #expect(ConstantTime.equal(a, b) == (a == b))
            #expect(ConstantTime.equal(a, a))
        }
    }

    @Test("a difference in the first, a middle or the last byte is found", arguments: [0, 16, 31])
    func findsADifferenceAnywhere(at index: Int) {
        let a = [UInt8](repeating: 0x5a, count: 32)
        var b = a
        b[index] ^= 0x01
        #expect(!ConstantTime.equal(a, b))
        #expect(!ConstantTime.equal(a, a.dropLast()), "a prefix is not equal")
    }

    @Test func bearerTokensAcceptOnlyTheirTokensAndNeverDescribeThem() throws {
        let tokens = try #require(try BearerTokens(fileContents: Data("  alpha-token \n\nbeta-token\r\n".utf8)))
        #expect(tokens.count == 2)
        #expect(tokens.accepts("alpha-token") != nil)
        #expect(tokens.accepts("beta-token") != nil)
        for wrong in ["", "alpha", "alpha-token ", "alpha-tokenX", "beta-token\n", "ALPHA-TOKEN"] {
            #expect(tokens.accepts(wrong) == nil, "\(wrong.debugDescription) accepted")
        }
        #expect(!"\(tokens)".contains("alpha") && !"\(tokens)".contains("beta"))
        #expect(try BearerTokens(fileContents: Data("\n  \n".utf8)) == nil, "a file without a token turns the endpoint off")
    }

    @Test func aTokenFileLineMayNameItsToken() throws {
        let file = "gateway-eu  s3cret-eu\nbare-token\n\n\tgateway-us\ts3cret-us \r\n"
        let tokens = try #require(try BearerTokens(fileContents: Data(file.utf8)))
        #expect(tokens.count == 3)
        #expect(tokens.accepts("s3cret-eu") == "gateway-eu")
        #expect(tokens.accepts("bare-token") == "token-2", "a bare token is named by its line number")
        #expect(tokens.accepts("s3cret-us") == "gateway-us")
        #expect(tokens.accepts("gateway-eu") == nil, "a name is not a token")
        #expect(tokens.accepts("gateway-eu s3cret-eu") == nil)
        #expect(!"\(tokens)".contains("gateway") && !"\(tokens)".contains("s3cret"))
    }

    @Test("a malformed token file names the line and never its contents", arguments: [
        ("a s3cret extra\n", 1, "expected TOKEN or NAME TOKEN, found 3 fields"),
        ("one s3cret\none other\n", 2, "the name one is used by an earlier line"),
        ("s3cret\ntoken-1 other\n", 2, "the name token-1 is kept for the bare token on that line; choose another"),
    ])
    func malformedTokenFiles(file: String, line: Int, reason: String) {
        #expect(throws: BearerTokens.Malformed(line: line, reason: reason)) { try BearerTokens(fileContents: Data(file.utf8)) }
        do { _ = try BearerTokens(fileContents: Data(file.utf8)) } catch { #expect(!"\(error)".contains("s3cret")) }
    }
}
