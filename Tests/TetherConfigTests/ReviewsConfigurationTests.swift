import Testing
import TetherConfig

/// `reviews` (SPEC §18): unused time, the links' address and the notify target.
@Suite struct ReviewsConfigurationTests {
    @Test func theDefaultsAndGivenValuesAreRead() throws {
        let defaults = try #require(loaded("{}")).configuration.reviews
        #expect(defaults.unusedAfter == .seconds(30 * 86_400))
        #expect(defaults.publicURL == nil && defaults.notify == nil)
        let given = try #require(loaded(
            """
            reviews:
              unusedAfter: 60d
              publicURL: https://tether.example.com/
              notify: { url: "https://notify.example.com/reviews", secretFile: notify.secret }
            """)).configuration.reviews
        #expect(given.unusedAfter == .seconds(60 * 86_400))
        #expect(given.publicURL == "https://tether.example.com")
        #expect(given.notify?.url == "https://notify.example.com/reviews")
        #expect(given.notify?.id == "reviews.notify")
        #expect(given.notify?.secretFile.hasSuffix("/notify.secret") == true)
    }

    @Test(arguments: [
        ("unusedAfter: soon", "reviews.unusedAfter", "invalid duration 'soon'"),
        ("publicURL: tether.example.com", "reviews.publicURL", "invalid URL 'tether.example.com'"),
        ("notify: { url: \"ftp://x\", secretFile: n.secret }", "reviews.notify.url", "invalid URL 'ftp://x'"),
        ("notify: { url: \"https://x\" }", "reviews.notify.secretFile", "secretFile"),
        ("linkLifetime: 3d", "reviews.linkLifetime", "unusedAfter"),
    ])
    func aBadSettingIsRejectedWhereItIsWritten(line: String, keyPath: String, message: String) {
        let error = rejection(
            """
            reviews:
              \(line)
            """)
        expectSingleError(error, keyPath: keyPath, line: 2, message)
    }
}
