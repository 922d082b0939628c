/// Durations as configuration writes them: a whole number and a unit, `500ms`, `30s`, `15m`, `1h`, `7d`.
public enum ConfigurationDuration {
    /// The units a duration may use, in the order they are listed to users.
    public static let units = ["ms", "s", "m", "h", "d"]

    /// The duration `text` names, or nil when it is not a whole number followed by one unit.
    public static func parse(_ text: String) -> Duration? {
        let scalars = Array(text.unicodeScalars)
        guard let firstUnit = scalars.firstIndex(where: { !("0"..."9").contains($0) }), firstUnit > 0,
            firstUnit <= 15
        else { return nil }
        guard let number = Int64(String(String.UnicodeScalarView(scalars[..<firstUnit]))) else { return nil }
        let unit = String(String.UnicodeScalarView(scalars[firstUnit...]))
        let secondsPerUnit: Int64
        switch unit {
        case "ms": return .milliseconds(number)
        case "s": secondsPerUnit = 1
        case "m": secondsPerUnit = 60
        case "h": secondsPerUnit = 3_600
        case "d": secondsPerUnit = 86_400
        default: return nil
        }
        let (seconds, overflow) = number.multipliedReportingOverflow(by: secondsPerUnit)
        return overflow ? nil : .seconds(seconds)
    }

    /// The shortest configuration text for `duration` (`15m` rather than `900s`), for messages and dumps.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds != 0 || seconds == 0 {
            let milliseconds = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
            return "\(milliseconds)ms"
        }
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
