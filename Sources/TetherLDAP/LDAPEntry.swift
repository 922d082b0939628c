import CLDAP
import Foundation

/// One directory entry as read: its DN and the values of the attributes asked for.
///
/// Attribute names are lowercased (LDAP names are case-insensitive). Values are UTF-8
/// text, except for attributes read as binary (such as Active Directory's `objectGUID`),
/// which are kept as bytes in ``binary``. An entry holds a dozen attributes or so: they are
/// kept in arrays and looked up linearly, which is cheaper than hashing for every entry of
/// a large read.
public struct LDAPEntry: Sendable, Hashable {
    /// The entry's distinguished name as the server wrote it.
    public var dn: String
    /// Lowercased names of the text attributes; values of `names[i]` are `values[ranges[i]]`.
    public private(set) var names: [String] = []
    private var ranges: [Range<Int32>] = []
    private var flat: [String] = []
    /// Binary values by lowercased attribute name.
    public var binary: [String: [[UInt8]]]
    /// What could not be decoded as UTF-8 text: `dn` for the DN, else lowercased attribute
    /// names. Their text holds U+FFFD where the bytes were invalid, and must not be trusted.
    public var undecodable: [String] = []
    /// The layout of the search that read the entry: the first ``names`` are its attributes,
    /// in its order, so a mapper can take values by position.
    let layout: AttributeLayout?

    /// Creates an entry; `attributes` keys may be in any case.
    ///
    /// - Parameter undecodable: what was not valid UTF-8 as read (see ``undecodable``).
    public init(
        dn: String, attributes: [String: [String]] = [:], binary: [String: [[UInt8]]] = [:], undecodable: [String] = []
    ) {
        self.dn = dn
        self.binary = binary
        self.undecodable = undecodable.map { $0.lowercased() }
        self.layout = nil
        for (name, values) in attributes.sorted(by: { $0.key < $1.key }) { append(name.lowercased(), values) }
    }

    init(dn: String, layout: AttributeLayout) {
        self.dn = dn
        self.binary = [:]
        self.layout = layout
        self.names = layout.names
        self.ranges = Array(repeating: 0..<0, count: layout.names.count)
        self.flat.reserveCapacity(layout.names.count)
    }

    /// Text values by lowercased attribute name.
    public var attributes: [String: [String]] {
        get {
            var result: [String: [String]] = [:]
            for (index, name) in names.enumerated() where !ranges[index].isEmpty {
                result[name, default: []] += slice(index)
            }
            return result
        }
        set {
            names = []
            ranges = []
            flat = []
            for (name, values) in newValue.sorted(by: { $0.key < $1.key }) { append(name.lowercased(), values) }
        }
    }

    private func slice(_ index: Int) -> ArraySlice<String> {
        flat[Int(ranges[index].lowerBound)..<Int(ranges[index].upperBound)]
    }

    /// The text values of `name`, which must be lowercased; nil when the entry has none.
    public func values(_ name: String) -> [String]? {
        for index in names.indices where names[index] == name {
            return ranges[index].isEmpty ? nil : Array(slice(index))
        }
        return nil
    }

    /// The values at `slot` of `layout` when the entry was read with that layout (no copy,
    /// no lookup), else the values of that slot's name.
    func values(_ slot: Int, of layout: AttributeLayout) -> ArraySlice<String>? {
        if self.layout === layout {
            return ranges[slot].isEmpty ? nil : slice(slot)
        }
        return values(layout.names[slot]).map { $0[...] }
    }

    /// The text values of `attribute` (any case).
    public subscript(_ attribute: String) -> [String] {
        values(attribute.lowercased()) ?? []
    }

    /// The first value of `attribute` (any case), if any.
    public func first(_ attribute: String) -> String? {
        values(attribute.lowercased())?.first
    }

    /// The names (lowercased) of the attributes the server sent in a range
    /// (`member;range=0-1499`) instead of whole. The server names them itself, so they are
    /// among the slots of the search's layout only when it asked for a range by name.
    var rangedNames: [String] {
        var found: [String] = []
        let start = layout.map { $0.asksForRanges ? 0 : $0.names.count } ?? 0
        for index in start..<names.count
        where !ranges[index].isEmpty && names[index].contains(";range=") {
            found.append(names[index])
        }
        return found
    }

    /// Sets the values of the attribute `name` (lowercased), replacing any it had; no
    /// values removes it.
    mutating func setValues(_ name: String, _ values: [String]) {
        guard let index = names.firstIndex(of: name) else {
            if !values.isEmpty { append(name, values) }
            return
        }
        ranges[index] = 0..<0
        if !values.isEmpty { append(values, at: index) }
    }

    /// Adds `values` to the attribute `name` (lowercased).
    mutating func append(_ name: String, _ values: [String]) {
        append(values, at: names.firstIndex(of: name) ?? {
            names.append(name)
            ranges.append(0..<0)
            return names.count - 1
        }())
    }

    /// Adds `values` to the attribute at `index`; an attribute's values stay contiguous.
    mutating func append(_ values: [String], at index: Int) {
        let existing = slice(index)
        let start = Int32(flat.count)
        if !existing.isEmpty {
            // Rare: the server sent the attribute twice. Move its values to the end first.
            flat += Array(existing)
        }
        flat += values
        ranges[index] = start..<Int32(flat.count)
    }

    /// Adds the NULL-terminated `bervals` as text values of the attribute at `slot`.
    mutating func appendValues(_ bervals: UnsafeMutablePointer<berval>, at slot: Int) {
        guard ranges[slot].isEmpty else {
            var list: [String] = []
            noteDecoding(Self.decode(bervals, into: &list), of: names[slot])
            append(list, at: slot)
            return
        }
        // The first values of an attribute go straight into the flat storage: no list per
        // attribute per entry on the read's hot path.
        let start = Int32(flat.count)
        noteDecoding(Self.decode(bervals, into: &flat), of: names[slot])
        ranges[slot] = start..<Int32(flat.count)
    }

    /// Appends the NULL-terminated `bervals` to `values` as text; false when one of them is
    /// not valid UTF-8.
    static func decode(_ bervals: UnsafeMutablePointer<berval>, into values: inout [String]) -> Bool {
        var valid = true
        var index = 0
        while bervals[index].bv_val != nil {
            let (text, ok) = String.decoding(bervals[index])
            values.append(text)
            valid = valid && ok
            index += 1
        }
        return valid
    }

    /// Notes `name` in ``undecodable`` when its values were not all valid UTF-8.
    mutating func noteDecoding(_ valid: Bool, of name: String) {
        if !valid, !undecodable.contains(name) { undecodable.append(name) }
    }

    /// Entries are equal when their DN and values are, however they were read.
    public static func == (a: LDAPEntry, b: LDAPEntry) -> Bool {
        a.dn == b.dn && a.attributes == b.attributes && a.binary == b.binary
    }

    /// Hashes what ``==`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(dn)
        hasher.combine(attributes)
        hasher.combine(binary)
    }
}

/// The attributes a search asks for, lowercased and as bytes, so that each attribute of
/// each entry is matched by a byte comparison instead of building and hashing a name.
final class AttributeLayout: Sendable {
    let names: [String]
    let bytes: [[UInt8]]
    let binary: [Bool]

    /// Whether an attribute is asked for with a range option (`member;range=1500-*`).
    let asksForRanges: Bool

    init(_ attributes: [String], binary: Set<String>) {
        names = attributes.map { $0.lowercased() }
        asksForRanges = names.contains { $0.contains(";range=") }
        bytes = names.map { Array($0.utf8) }
        self.binary = names.map(binary.contains)
    }

    /// The slot of the attribute named `name` (any case), if the search asked for it.
    func slot(of name: berval) -> Int? {
        guard let start = name.bv_val else { return nil }
        let count = Int(name.bv_len)
        let raw = UnsafeRawBufferPointer(start: start, count: count)
        search: for (index, wanted) in bytes.enumerated() where wanted.count == count {
            for position in 0..<count {
                let byte = raw[position]
                let lowered = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                if lowered != wanted[position] { continue search }
            }
            return index
        }
        return nil
    }
}

/// Attributes whose values are bytes rather than text.
enum BinaryAttributes {
    /// Known binary attributes of Active Directory and others; read as bytes.
    static let known: Set<String> = ["objectguid", "objectsid", "jpegphoto", "usercertificate", "thumbnailphoto"]
}

extension LDAPEntry {
    /// Reads the entry message `message` of `ld`, freeing everything libldap allocated.
    ///
    /// Uses `ldap_get_dn_ber`/`ldap_get_attribute_ber`, which walk the message without
    /// copying attribute names (the fast path `ldapsearch` uses too).
    static func read(_ ld: OpaquePointer, _ message: OpaquePointer, layout: AttributeLayout) -> LDAPEntry? {
        var ber: OpaquePointer?
        var name = berval()
        guard ldap_get_dn_ber(ld, message, &ber, &name) == LDAP_SUCCESS else {
            if let ber { ber_free(ber, 0) }
            return nil
        }
        defer { if let ber { ber_free(ber, 0) } }
        let (dn, validDN) = String.decoding(name)
        var entry = LDAPEntry(dn: dn, layout: layout)
        if !validDN { entry.undecodable.append("dn") }
        var values: UnsafeMutablePointer<berval>?
        while ldap_get_attribute_ber(ld, message, ber, &name, &values) == LDAP_SUCCESS, name.bv_val != nil {
            guard let bervals = values else { continue }
            defer {
                ber_memfree(bervals)
                values = nil
            }
            let slot = layout.slot(of: name)
            if let slot, layout.binary[slot] {
                var list: [[UInt8]] = []
                var index = 0
                while let bytes = bervals[index].bv_val {
                    list.append(Array(UnsafeRawBufferPointer(start: bytes, count: Int(bervals[index].bv_len))))
                    index += 1
                }
                entry.binary[layout.names[slot], default: []] += list
                continue
            }
            if let slot {
                entry.appendValues(bervals, at: slot)
            } else {
                let lowered = String(lowercasedASCII: name)
                var list: [String] = []
                entry.noteDecoding(LDAPEntry.decode(bervals, into: &list), of: lowered)
                entry.append(lowered, list)
            }
        }
        return entry
    }
}

extension String {
    /// The UTF-8 text of a berval (invalid sequences repaired).
    init(berval value: berval) {
        guard let bytes = value.bv_val, value.bv_len > 0 else {
            self = ""
            return
        }
        self = String(
            decoding: UnsafeRawBufferPointer(start: bytes, count: Int(value.bv_len)).bindMemory(to: UInt8.self),
            as: UTF8.self)
    }

    /// The UTF-8 text of a berval, and whether its bytes were valid UTF-8 (when not, the
    /// text has invalid sequences repaired).
    static func decoding(_ value: berval) -> (text: String, valid: Bool) {
        guard let bytes = value.bv_val, value.bv_len > 0 else { return ("", true) }
        let raw = UnsafeRawBufferPointer(start: bytes, count: Int(value.bv_len))
        let buffer = raw.bindMemory(to: UInt8.self)
        // Nearly every value is ASCII, which is valid UTF-8: checked eight bytes at a time,
        // it skips `String(validating:)`, whose generic path costs more than the copy.
        if isASCII(raw) { return (String(decoding: buffer, as: UTF8.self), true) }
        if let text = String(validating: buffer, as: UTF8.self) { return (text, true) }
        return (String(decoding: buffer, as: UTF8.self), false)
    }

    /// Whether every byte is below 0x80.
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        var high: UInt64 = 0
        while offset + 8 <= bytes.count {
            high |= bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < bytes.count {
            high |= UInt64(bytes[offset])
            offset += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }

    /// The berval's text with ASCII letters lowercased, built in one pass.
    init(lowercasedASCII value: berval) {
        let count = Int(value.bv_len)
        guard let bytes = value.bv_val, count > 0 else {
            self = ""
            return
        }
        let source = UnsafeRawBufferPointer(start: bytes, count: count)
        self = String(unsafeUninitializedCapacity: count) { buffer in
            for index in 0..<count {
                let byte = source[index]
                buffer[index] = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            }
            return count
        }
    }
}

extension Data {
    /// The bytes of a berval.
    init(berval value: berval) {
        guard let bytes = value.bv_val, value.bv_len > 0 else {
            self = Data()
            return
        }
        self = Data(bytes: bytes, count: Int(value.bv_len))
    }
}
