import CLDAP
import Foundation

/// One directory entry as read: its DN and the values of the attributes asked for.
///
/// Attribute names are lowercased (LDAP names are case-insensitive). Values are UTF-8
/// text, except for attributes read as binary (such as Active Directory's `objectGUID`),
/// which are kept as bytes in ``binary``.
public struct LDAPEntry: Sendable, Hashable {
    /// The entry's distinguished name as the server wrote it.
    public var dn: String
    /// Text values by lowercased attribute name.
    public var attributes: [String: [String]]
    /// Binary values by lowercased attribute name.
    public var binary: [String: [[UInt8]]]

    /// Creates an entry.
    public init(dn: String, attributes: [String: [String]] = [:], binary: [String: [[UInt8]]] = [:]) {
        self.dn = dn
        self.attributes = attributes
        self.binary = binary
    }

    /// The values of `attribute` (any case), text first, binary values as hex when asked for as text.
    public subscript(_ attribute: String) -> [String] {
        attributes[attribute.lowercased()] ?? []
    }

    /// The first value of `attribute`, if any.
    public func first(_ attribute: String) -> String? {
        attributes[attribute.lowercased()]?.first
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
    static func read(_ ld: OpaquePointer, _ message: OpaquePointer, binary: Set<String>) -> LDAPEntry? {
        var ber: OpaquePointer?
        var name = berval()
        guard ldap_get_dn_ber(ld, message, &ber, &name) == LDAP_SUCCESS else {
            if let ber { ber_free(ber, 0) }
            return nil
        }
        defer { if let ber { ber_free(ber, 0) } }
        var entry = LDAPEntry(dn: String(berval: name))
        var values: UnsafeMutablePointer<berval>?
        while ldap_get_attribute_ber(ld, message, ber, &name, &values) == LDAP_SUCCESS, name.bv_val != nil {
            let key = String(lowercasedASCII: name)
            if let bervals = values {
                if binary.contains(key) {
                    var list: [[UInt8]] = []
                    var index = 0
                    while let bytes = bervals[index].bv_val {
                        list.append(Array(UnsafeRawBufferPointer(start: bytes, count: Int(bervals[index].bv_len))))
                        index += 1
                    }
                    entry.binary[key, default: []] += list
                } else {
                    var list: [String] = []
                    var index = 0
                    while bervals[index].bv_val != nil {
                        list.append(String(berval: bervals[index]))
                        index += 1
                    }
                    entry.attributes[key, default: []] += list
                }
                ber_memfree(bervals)
                values = nil
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
