/// Comparison of distinguished names.
///
/// Attribute types and the values of the naming attributes Tether meets (uid, cn, ou, dc)
/// compare case-insensitively, and servers differ in the spaces they keep after commas:
/// `uid=Alice, ou=People,dc=example,dc=com` and `uid=alice,ou=people,dc=example,dc=com`
/// name the same entry.
public enum DistinguishedName {
    /// `dn` lowercased, with spaces around RDN separators and `=` removed; escaped
    /// separators (`\,`) are kept as they are.
    public static func normalize(_ dn: String) -> String {
        // Most servers already write DNs this way; then there is nothing to copy.
        var text = dn
        let normal = text.withUTF8 { bytes in
            for byte in bytes where (byte >= 0x41 && byte <= 0x5A) || byte == UInt8(ascii: " ") || byte == UInt8(ascii: ";") {
                return false
            }
            return true
        }
        if normal { return dn }
        var result: [UInt8] = []
        result.reserveCapacity(dn.utf8.count)
        var escaped = false
        var pendingSpaces = 0
        var atComponentStart = true
        for byte in dn.utf8 {
            if escaped {
                result.append(lower(byte))
                escaped = false
                continue
            }
            switch byte {
            case UInt8(ascii: "\\"):
                flush(&pendingSpaces, into: &result)
                result.append(byte)
                escaped = true
                atComponentStart = false
            case UInt8(ascii: " "):
                if !atComponentStart { pendingSpaces += 1 }
            case UInt8(ascii: ","), UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: ";"):
                pendingSpaces = 0
                result.append(byte == UInt8(ascii: ";") ? UInt8(ascii: ",") : byte)
                atComponentStart = true
            default:
                flush(&pendingSpaces, into: &result)
                result.append(lower(byte))
                atComponentStart = false
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Whether `dn` is `base` or lies below it.
    public static func isWithin(_ dn: String, base: String) -> Bool {
        let dn = normalize(dn)
        let base = normalize(base)
        if base.isEmpty || dn == base { return true }
        return dn.hasSuffix("," + base)
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    private static func flush(_ spaces: inout Int, into result: inout [UInt8]) {
        if spaces > 0 { result += Array(repeating: UInt8(ascii: " "), count: spaces) }
        spaces = 0
    }
}
