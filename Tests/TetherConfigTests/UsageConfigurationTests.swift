import Testing
import TetherConfig

/// `usage.flushInterval` (SPEC §15 "Usage").
@Suite struct UsageConfigurationTests {
    @Test func theFlushIntervalIsAMinuteByDefaultAndReadWhenGiven() throws {
        #expect(try #require(loaded("{}")).configuration.usage.flushInterval == .seconds(60))
        #expect(try #require(loaded("usage: { flushInterval: 5m }")).configuration.usage.flushInterval == .seconds(300))
        #expect(try #require(loaded("usage: { flushInterval: 1s }")).configuration.usage.flushInterval == .seconds(1))
    }

    @Test(arguments: [
        ("500ms", "must be at least 1s, found '500ms'"), ("0s", "must be longer than zero"), ("soon", "invalid duration 'soon'"),
        ("60", "invalid duration '60'"),
    ])
    func aBadFlushIntervalIsRejectedWhereItIsWritten(value: String, message: String) {
        let error = rejection(
            """
            usage:
              flushInterval: \(value)
            """)
        expectSingleError(error, keyPath: "usage.flushInterval", line: 2, message)
    }

    @Test func anUnknownUsageKeyIsRejected() {
        let error = rejection(
            """
            usage:
              flushEvery: 1m
            """)
        expectSingleError(error, keyPath: "usage.flushEvery", line: 2, "flushInterval")
    }
}
