/// An attribute path as RFC 7644 §3.10 writes it: `[URN ":"] attribute ["." subAttribute]`,
/// e.g. `name.givenName` or `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
///
/// A path may also name an extension schema itself (its bare URN), which designates the
/// extension's whole object.
public struct SCIMAttributePath: Sendable, Hashable, CustomStringConvertible {
    /// The schema URN as written, if the path is qualified.
    public var schema: String?
    /// The attribute name; nil when the path is a bare schema URN.
    public var attribute: String?
    /// The sub-attribute after a `.`, if any.
    public var subAttribute: String?

    /// A path from its parts.
    public init(schema: String? = nil, attribute: String?, subAttribute: String? = nil) {
        self.schema = schema
        self.attribute = attribute
        self.subAttribute = subAttribute
    }

    /// The path as RFC 7644 writes it.
    public var description: String {
        var text = schema.map { attribute == nil ? $0 : $0 + ":" } ?? ""
        if let attribute { text += attribute }
        if let subAttribute { text += "." + subAttribute }
        return text
    }

    /// Parses a path; `knownSchemas` are the URNs a bare-URN path may name.
    ///
    /// Returns nil when the text is not shaped like an attribute path.
    public static func parse(_ text: String, knownSchemas: [String]) -> SCIMAttributePath? {
        guard !text.isEmpty else { return nil }
        if let urn = knownSchemas.first(where: { $0.caseInsensitiveEquals(text) }) {
            return SCIMAttributePath(schema: urn, attribute: nil)
        }
        var rest = Substring(text)
        var schema: String?
        if text.lowercased().hasPrefix("urn:") {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            schema = String(text[..<colon])
            rest = text[text.index(after: colon)...]
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy(isAttributeName) else { return nil }
        return SCIMAttributePath(
            schema: schema, attribute: String(parts[0]), subAttribute: parts.count == 2 ? String(parts[1]) : nil)
    }

    /// RFC 7643 §2.1 ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA, plus `$ref`.
    static func isAttributeName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        if name.lowercased() == "$ref" { return true }
        guard ("a"..."z").contains(first) || ("A"..."Z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
    }
}

/// A path resolved against a resource type: where its value lives and what it is.
struct ResolvedPath: Sendable, Hashable {
    /// The extension URN whose object holds the attribute; nil for core and common attributes.
    var extensionURN: String?
    /// The attribute; nil when the path names an extension's whole object.
    var attribute: SCIMAttribute?
    var subAttribute: SCIMAttribute?

    /// The definition the path's values follow: the sub-attribute if any, else the attribute.
    var leaf: SCIMAttribute? { subAttribute ?? attribute }

    /// `attribute.subAttribute` with the schema's spelling.
    var description: String {
        var text = extensionURN.map { attribute == nil ? $0 : $0 + ":" } ?? ""
        if let attribute { text += attribute.name }
        if let subAttribute { text += "." + subAttribute.name }
        return text
    }
}

extension SCIMResourceType {
    /// Every schema URN a path of this type may start with.
    var schemaURNs: [String] { schemas.map(\.id) }

    /// Resolves `path` to its definitions: core attributes (with or without the core URN),
    /// `id`/`externalId`/`meta`, and extension attributes (qualified, or unqualified when no
    /// core attribute has the name).
    func resolve(_ path: SCIMAttributePath) -> ResolvedPath? {
        var extensionURN: String?
        var schema: SCIMSchema?
        if let urn = path.schema {
            guard let found = self.schema(urn: urn) else { return nil }
            schema = found
            if found.id != self.schema.id { extensionURN = found.id }
        }
        guard let name = path.attribute else {
            guard let extensionURN, path.subAttribute == nil else { return nil }
            return ResolvedPath(extensionURN: extensionURN, attribute: nil, subAttribute: nil)
        }
        var attribute: SCIMAttribute?
        if let schema {
            attribute = schema.attribute(name)
            if attribute == nil, extensionURN == nil {
                attribute = SCIMCommonAttributes.all.first { $0.name.caseInsensitiveEquals(name) }
            }
        } else {
            attribute = self.schema.attribute(name) ?? SCIMCommonAttributes.all.first { $0.name.caseInsensitiveEquals(name) }
            if attribute == nil {
                for ext in extensions {
                    if let found = ext.schema.attribute(name) {
                        attribute = found
                        extensionURN = ext.schema.id
                        break
                    }
                }
            }
        }
        guard let attribute else { return nil }
        var sub: SCIMAttribute?
        if let subName = path.subAttribute {
            guard attribute.type == .complex, let found = attribute.subAttribute(subName) else { return nil }
            sub = found
        }
        return ResolvedPath(extensionURN: extensionURN, attribute: attribute, subAttribute: sub)
    }
}
