import Foundation

/// How long to wait before trying a failed change again: exponential backoff with jitter and a
/// cap; a target's `Retry-After` wins when it names a time, from `initialDelay` (never a hot
/// loop, even on `Retry-After: 0`) up to `maximumRetryAfter`.
public struct RetryPolicy: Sendable, Hashable {
    /// The wait after the first failure.
    public var initialDelay: Duration
    /// The longest wait backoff grows to.
    public var maximumDelay: Duration
    /// Each failure multiplies the wait by this.
    public var multiplier: Double
    /// Up to this fraction of each wait is taken off at random, so targets that fail together
    /// are not retried together (0 = no jitter, 1 = anywhere from zero to the full wait).
    public var jitter: Double
    /// The longest `Retry-After` honoured; a target asking for more is retried after this.
    public var maximumRetryAfter: Duration

    /// The defaults: 1 s, doubling, capped at 5 min, up to 20% jitter; `Retry-After` up to 1 h.
    public init(
        initialDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(300), multiplier: Double = 2,
        jitter: Double = 0.2, maximumRetryAfter: Duration = .seconds(3600)
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = min(max(jitter, 0), 1)
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// This policy with backoff capped at `maximum` (and the first wait no longer than that);
    /// nil keeps it as it is.
    public func capped(at maximum: Duration?) -> RetryPolicy {
        guard let maximum else { return self }
        var capped = self
        capped.maximumDelay = maximum
        capped.initialDelay = min(initialDelay, maximum)
        return capped
    }

    /// The wait after the `attempts`-th consecutive failure (1 for the first).
    public func delay(afterAttempt attempts: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let initial = Self.seconds(initialDelay)
        let cap = Self.seconds(maximumDelay)
        let exponent = Double(max(0, min(attempts - 1, 64)))
        let base = min(cap, initial * pow(max(multiplier, 1), exponent))
        let factor = 1 - jitter * Double.random(in: 0..<1, using: &random)
        return .milliseconds(Int64((base * factor * 1000).rounded()))
    }

    /// The wait a failure calls for: the target's `Retry-After` if it gave one, else backoff.
    public func delay(afterAttempt attempts: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(max(retryAfter, initialDelay), max(maximumRetryAfter, initialDelay)) }
        var random = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempts, using: &random)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
    /// The wait `value` asks for, measured from `now`; nil when it is neither form.
    public static func parse(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return .seconds(Int64(text) ?? Int64(Int32.max))
        }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                let seconds = max(0, date.timeIntervalSince(now))
                return .milliseconds(Int64((seconds * 1000).rounded(.up)))
            }
        }
        return nil
    }
}
