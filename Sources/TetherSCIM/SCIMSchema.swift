/// One attribute definition of a SCIM schema with its characteristics (RFC 7643 §2.2, §7).
///
/// The same definitions drive validation, PATCH, filtering, projection and the `/Schemas`
/// documents, so what the service publishes is what it does.
public struct SCIMAttribute: Sendable, Hashable {
    /// RFC 7643 §2.3 data types.
    public enum DataType: String, Sendable, Hashable {
        case string, boolean, decimal, integer, dateTime, reference, binary, complex
    }

    /// RFC 7643 §7 `mutability`.
    public enum Mutability: String, Sendable, Hashable {
        case readOnly, readWrite, immutable, writeOnly
    }

    /// RFC 7643 §7 `returned`.
    public enum Returned: String, Sendable, Hashable {
        case always, never, `default`, request
    }

    /// RFC 7643 §7 `uniqueness`.
    public enum Uniqueness: String, Sendable, Hashable {
        case none, server, global
    }

    /// The attribute name as the schema spells it.
    public var name: String
    /// The data type.
    public var type: DataType
    /// True when the attribute holds an array of values.
    public var multiValued: Bool
    /// What the attribute is, for `/Schemas`.
    public var description: String
    /// True when a resource must have a value.
    public var required: Bool
    /// True when strings compare case-sensitively (filters, uniqueness).
    public var caseExact: Bool
    /// Who may set the attribute and when.
    public var mutability: Mutability
    /// When the attribute is returned.
    public var returned: Returned
    /// How the service enforces uniqueness.
    public var uniqueness: Uniqueness
    /// Suggested values (e.g. `work`, `home`).
    public var canonicalValues: [String]
    /// For references: the resource types referred to.
    public var referenceTypes: [String]
    /// For complex attributes: their sub-attributes.
    public var subAttributes: [SCIMAttribute]

    /// An attribute; characteristics default to RFC 7643 §2.2's defaults.
    public init(
        _ name: String, _ type: DataType = .string, multiValued: Bool = false, description: String,
        required: Bool = false, caseExact: Bool = false, mutability: Mutability = .readWrite,
        returned: Returned = .default, uniqueness: Uniqueness = .none, canonicalValues: [String] = [],
        referenceTypes: [String] = [], subAttributes: [SCIMAttribute] = []
    ) {
        self.name = name
        self.type = type
        self.multiValued = multiValued
        self.description = description
        self.required = required
        self.caseExact = caseExact
        self.mutability = mutability
        self.returned = returned
        self.uniqueness = uniqueness
        self.canonicalValues = canonicalValues
        self.referenceTypes = referenceTypes
        self.subAttributes = subAttributes
    }

    /// The sub-attribute named `name`, compared case-insensitively.
    public func subAttribute(_ name: String) -> SCIMAttribute? {
        subAttributes.first { $0.name.caseInsensitiveEquals(name) }
    }

    /// True for a multi-valued attribute whose values are objects.
    var isMultiValuedComplex: Bool { multiValued && type == .complex }

    /// The attribute as RFC 7643 §7 describes it in a schema document.
    public var document: SCIMJSON {
        var object = SCIMJSON.Object([
            .init("name", .string(name)),
            .init("type", .string(type.rawValue)),
            .init("multiValued", .bool(multiValued)),
            .init("description", .string(description)),
            .init("required", .bool(required)),
        ])
        if type != .complex && type != .boolean {
            object["caseExact"] = .bool(caseExact)
        }
        if !canonicalValues.isEmpty { object["canonicalValues"] = .array(canonicalValues.map(SCIMJSON.string)) }
        object["mutability"] = .string(mutability.rawValue)
        object["returned"] = .string(returned.rawValue)
        if type != .complex && type != .boolean {
            object["uniqueness"] = .string(uniqueness.rawValue)
        }
        if type == .reference { object["referenceTypes"] = .array(referenceTypes.map(SCIMJSON.string)) }
        if type == .complex { object["subAttributes"] = .array(subAttributes.map(\.document)) }
        return .object(object)
    }
}

/// A SCIM schema: its URN, name and attributes (RFC 7643 §7).
public struct SCIMSchema: Sendable, Hashable {
    /// The schema URN.
    public var id: String
    /// The schema's human-readable name.
    public var name: String
    /// What the schema describes.
    public var description: String
    /// The attributes, in the order resources list them.
    public var attributes: [SCIMAttribute]

    /// A schema.
    public init(id: String, name: String, description: String, attributes: [SCIMAttribute]) {
        self.id = id
        self.name = name
        self.description = description
        self.attributes = attributes
    }

    /// The attribute named `name`, compared case-insensitively.
    public func attribute(_ name: String) -> SCIMAttribute? {
        attributes.first { $0.name.caseInsensitiveEquals(name) }
    }

    /// The schema as `/Schemas/{id}` serves it.
    public func document(location: String) -> SCIMJSON {
        .object(SCIMJSON.Object([
            .init("schemas", ["urn:ietf:params:scim:schemas:core:2.0:Schema"]),
            .init("id", .string(id)),
            .init("name", .string(name)),
            .init("description", .string(description)),
            .init("attributes", .array(attributes.map(\.document))),
            .init("meta", .object(SCIMJSON.Object([
                .init("resourceType", "Schema"),
                .init("location", .string(location)),
            ]))),
        ]))
    }
}

/// A resource type the service serves: its endpoint, core schema and extensions (RFC 7643 §6).
public struct SCIMResourceType: Sendable, Hashable {
    /// The extensions a resource of this type may carry.
    public struct Extension: Sendable, Hashable {
        /// The extension schema.
        public var schema: SCIMSchema
        /// True when every resource of the type must carry it.
        public var required: Bool
    }

    /// The resource type's name (`User`, `Group`), also its id.
    public var name: String
    /// `/Users` or `/Groups`.
    public var endpoint: String
    /// What the resource type is.
    public var description: String
    /// The core schema.
    public var schema: SCIMSchema
    /// The schema extensions.
    public var extensions: [Extension]

    /// Every schema of this type, the core one first.
    public var schemas: [SCIMSchema] { [schema] + extensions.map(\.schema) }

    /// The schema whose URN is `urn` (compared case-insensitively).
    public func schema(urn: String) -> SCIMSchema? {
        schemas.first { $0.id.caseInsensitiveEquals(urn) }
    }

    /// The type as `/ResourceTypes/{name}` serves it.
    public func document(location: String) -> SCIMJSON {
        .object(SCIMJSON.Object([
            .init("schemas", ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]),
            .init("id", .string(name)),
            .init("name", .string(name)),
            .init("endpoint", .string(endpoint)),
            .init("description", .string(description)),
            .init("schema", .string(schema.id)),
            .init("schemaExtensions", .array(extensions.map { ext in
                .object(SCIMJSON.Object([.init("schema", .string(ext.schema.id)), .init("required", .bool(ext.required))]))
            })),
            .init("meta", .object(SCIMJSON.Object([
                .init("resourceType", "ResourceType"),
                .init("location", .string(location)),
            ]))),
        ]))
    }
}
