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
        let tokens = try #require(BearerTokens(fileContents: Data("  alpha-token \n\nbeta-token\r\n".utf8)))
        #expect(tokens.count == 2)
        #expect(tokens.accepts("alpha-token"))
        #expect(tokens.accepts("beta-token"))
        for wrong in ["", "alpha", "alpha-token ", "alpha-tokenX", "beta-token\n", "ALPHA-TOKEN"] {
            #expect(!tokens.accepts(wrong), "\(wrong.debugDescription) accepted")
        }
        #expect(!"\(tokens)".contains("alpha") && !"\(tokens)".contains("beta"))
        #expect(BearerTokens(fileContents: Data("\n  \n".utf8)) == nil, "a file without a token turns the endpoint off")
    }
}
