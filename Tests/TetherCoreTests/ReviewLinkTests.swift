import Foundation
import Testing
import TetherCore

/// The reviewer's link token and the form token (SPEC §18).
@Suite struct ReviewLinkTests {
    static let key = Data(repeating: 1, count: 32)
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let link = ReviewLink(campaign: "r_1", reviewer: "jdoe", expires: now.addingTimeInterval(3600))

    @Test func aTokenNamesItsCampaignAndReviewerUntilItExpires() throws {
        let token = Self.link.token(key: Self.key)
        #expect(!token.contains("=") && !token.contains("+") && !token.contains("/"))
        #expect(ReviewLink.campaign(of: token) == "r_1")
        #expect(Self.link.token(key: Self.key) == token, "the same link has the same token")
        #expect(try ReviewLink.verify(token, key: Self.key, now: Self.now) == Self.link)
        #expect(throws: ReviewLink.Refusal.expired) { try ReviewLink.verify(token, key: Self.key, now: Self.now.addingTimeInterval(3600)) }
    }

    @Test func aTokenSignedWithAnotherKeyOrChangedIsForgedAndNonsenseIsMalformed() throws {
        let token = Self.link.token(key: Self.key)
        #expect(throws: ReviewLink.Refusal.forged) { try ReviewLink.verify(token, key: Data(repeating: 2, count: 32), now: Self.now) }
        // Another reviewer's name in the payload, with jdoe's signature.
        let parts = token.split(separator: ".")
        let other = ReviewLink(campaign: "r_1", reviewer: "boss", expires: Self.link.expires).token(key: Data(repeating: 3, count: 32))
        let swapped = other.split(separator: ".")[0] + "." + parts[1]
        #expect(throws: ReviewLink.Refusal.forged) { try ReviewLink.verify(String(swapped), key: Self.key, now: Self.now) }
        for nonsense in ["", ".", "abc", "a.b.c", token + "=", "%%%.%%%", String(parts[0])] {
            #expect(throws: ReviewLink.Refusal.malformed) { try ReviewLink.verify(nonsense, key: Self.key, now: Self.now) }
        }
    }

    @Test func aFormTokenIsBoundToTheBrowsersNonceTheReviewerAndTheCampaign() {
        let form = Self.link.formToken(nonce: "n1", key: Self.key)
        #expect(Self.link.acceptsFormToken(form, nonce: "n1", key: Self.key))
        #expect(!Self.link.acceptsFormToken(form, nonce: "n2", key: Self.key))
        #expect(!Self.link.acceptsFormToken(form, nonce: "", key: Self.key))
        #expect(!Self.link.acceptsFormToken("", nonce: "n1", key: Self.key))
        let boss = ReviewLink(campaign: "r_1", reviewer: "boss", expires: Self.link.expires)
        #expect(!boss.acceptsFormToken(form, nonce: "n1", key: Self.key))
        #expect(!Self.link.acceptsFormToken(form, nonce: "n1", key: Data(repeating: 9, count: 32)))
    }
}
