/// The schemas Tether serves: RFC 7643 §4.1 User (without `password`, which Tether never
/// accepts nor stores), §4.3 enterprise User extension and §4.2 Group.
extension SCIMSchema {
    /// `urn:ietf:params:scim:schemas:core:2.0:User`.
    public static let userURN = "urn:ietf:params:scim:schemas:core:2.0:User"
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    public static let enterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    /// `urn:ietf:params:scim:schemas:core:2.0:Group`.
    public static let groupURN = "urn:ietf:params:scim:schemas:core:2.0:Group"

    /// Sub-attributes of a typed multi-valued attribute such as `emails` (RFC 7643 §2.4).
    private static func typedValues(
        _ what: String, valueType: SCIMAttribute.DataType = .string, referenceTypes: [String] = [],
        types: [String] = []
    ) -> [SCIMAttribute] {
        [
            SCIMAttribute("value", valueType, description: "The \(what).", caseExact: valueType == .binary || valueType == .reference,
                          referenceTypes: referenceTypes),
            SCIMAttribute("display", description: "A human-readable name for the \(what), for display only."),
            SCIMAttribute("type", description: "A label indicating the function of the \(what).", canonicalValues: types),
            SCIMAttribute("primary", .boolean, description: "True for the primary \(what); at most one value is primary."),
        ]
    }

    /// The core User schema.
    public static let user = SCIMSchema(
        id: userURN, name: "User", description: "User Account",
        attributes: [
            SCIMAttribute("userName", description: "Unique identifier for the User, used to sign in; unique case-insensitively.",
                          required: true, uniqueness: .server),
            SCIMAttribute("name", .complex, description: "The components of the user's real name.", subAttributes: [
                SCIMAttribute("formatted", description: "The full name, formatted for display."),
                SCIMAttribute("familyName", description: "The family name."),
                SCIMAttribute("givenName", description: "The given name."),
                SCIMAttribute("middleName", description: "The middle name(s)."),
                SCIMAttribute("honorificPrefix", description: "The honorific prefix(es), e.g. 'Ms.'."),
                SCIMAttribute("honorificSuffix", description: "The honorific suffix(es), e.g. 'III'."),
            ]),
            SCIMAttribute("displayName", description: "The name of the User, suitable for display."),
            SCIMAttribute("nickName", description: "The casual way to address the user."),
            SCIMAttribute("profileUrl", .reference, description: "A URI of the User's online profile.", caseExact: true,
                          referenceTypes: ["external"]),
            SCIMAttribute("title", description: "The user's title, such as 'Vice President'."),
            SCIMAttribute("userType", description: "The relationship to the organization, e.g. 'Employee' or 'Contractor'."),
            SCIMAttribute("preferredLanguage", description: "The preferred written or spoken language, e.g. 'en-US'."),
            SCIMAttribute("locale", description: "The default location for localizing, e.g. 'en-US'."),
            SCIMAttribute("timezone", description: "The time zone in the IANA database format, e.g. 'Europe/Paris'."),
            SCIMAttribute("active", .boolean, description: "The administrative status; false suspends the identity and revokes its grants."),
            SCIMAttribute("emails", .complex, multiValued: true, description: "Email addresses; the primary (else the first) is the identity's email.",
                          subAttributes: typedValues("email address", types: ["work", "home", "other"])),
            SCIMAttribute("phoneNumbers", .complex, multiValued: true, description: "Phone numbers.",
                          subAttributes: typedValues("phone number", types: ["work", "home", "mobile", "fax", "pager", "other"])),
            SCIMAttribute("ims", .complex, multiValued: true, description: "Instant messaging addresses.",
                          subAttributes: typedValues("instant messaging address",
                                                     types: ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"])),
            SCIMAttribute("photos", .complex, multiValued: true, description: "URLs of photos of the User.",
                          subAttributes: typedValues("photo URL", valueType: .reference, referenceTypes: ["external"],
                                                     types: ["photo", "thumbnail"])),
            SCIMAttribute("addresses", .complex, multiValued: true, description: "Physical mailing addresses.", subAttributes: [
                SCIMAttribute("formatted", description: "The full mailing address, formatted for display."),
                SCIMAttribute("streetAddress", description: "The street address."),
                SCIMAttribute("locality", description: "The city or locality."),
                SCIMAttribute("region", description: "The state or region."),
                SCIMAttribute("postalCode", description: "The zip code or postal code."),
                SCIMAttribute("country", description: "The country, as an ISO 3166-1 alpha-2 code."),
                SCIMAttribute("type", description: "A label indicating the function of the address.", canonicalValues: ["work", "home", "other"]),
                SCIMAttribute("primary", .boolean, description: "True for the primary address; at most one value is primary."),
            ]),
            SCIMAttribute("groups", .complex, multiValued: true,
                          description: "The Groups the user belongs to, directly or through nested Groups; managed through the Group resources.",
                          mutability: .readOnly, subAttributes: [
                              SCIMAttribute("value", description: "The id of the Group.", caseExact: true, mutability: .readOnly),
                              SCIMAttribute("$ref", .reference, description: "The URI of the Group.", caseExact: true, mutability: .readOnly,
                                            referenceTypes: ["Group"]),
                              SCIMAttribute("display", description: "The displayName of the Group.", mutability: .readOnly),
                              SCIMAttribute("type", description: "'direct' or 'indirect' (through a nested Group).", mutability: .readOnly,
                                            canonicalValues: ["direct", "indirect"]),
                          ]),
            SCIMAttribute("entitlements", .complex, multiValued: true, description: "Entitlements the User has.",
                          subAttributes: typedValues("entitlement")),
            SCIMAttribute("roles", .complex, multiValued: true, description: "Roles the User has.",
                          subAttributes: typedValues("role")),
            SCIMAttribute("x509Certificates", .complex, multiValued: true, description: "DER-encoded X.509 certificates, base64.",
                          subAttributes: typedValues("certificate", valueType: .binary)),
        ])

    /// The enterprise User extension.
    public static let enterpriseUser = SCIMSchema(
        id: enterpriseUserURN, name: "EnterpriseUser", description: "Enterprise User",
        attributes: [
            SCIMAttribute("employeeNumber", description: "The employee number; Tether correlates identities across sources by it."),
            SCIMAttribute("costCenter", description: "The cost center."),
            SCIMAttribute("organization", description: "The organization."),
            SCIMAttribute("division", description: "The division."),
            SCIMAttribute("department", description: "The department."),
            SCIMAttribute("manager", .complex, description: "The User's manager.", subAttributes: [
                SCIMAttribute("value", description: "The id of the manager's User resource.", required: true, caseExact: true),
                SCIMAttribute("$ref", .reference, description: "The URI of the manager's User resource.", caseExact: true,
                              referenceTypes: ["User"]),
            ]),
        ])

    /// The core Group schema.
    public static let group = SCIMSchema(
        id: groupURN, name: "Group", description: "Group",
        attributes: [
            SCIMAttribute("displayName", description: "The name of the Group; policies name Groups by it (memberOf).",
                          required: true),
            SCIMAttribute("members", .complex, multiValued: true, description: "The members of the Group: Users or Groups.",
                          subAttributes: [
                              SCIMAttribute("value", description: "The id of the member resource.", caseExact: true, mutability: .immutable),
                              SCIMAttribute("$ref", .reference, description: "The URI of the member resource.", caseExact: true,
                                            mutability: .immutable, referenceTypes: ["User", "Group"]),
                              SCIMAttribute("type", description: "The type of the member resource.", mutability: .immutable,
                                            canonicalValues: ["User", "Group"]),
                              SCIMAttribute("display", description: "A human-readable name for the member, as the client gave it."),
                          ]),
        ])
}

/// Attributes every resource has (RFC 7643 §3.1): `id`, `externalId`, `meta`.
enum SCIMCommonAttributes {
    static let id = SCIMAttribute(
        "id", description: "The service provider's unique, stable identifier for the resource.", caseExact: true,
        mutability: .readOnly, returned: .always, uniqueness: .server)
    static let externalId = SCIMAttribute(
        "externalId", description: "The client's identifier for the resource; Tether keys the identity by it.", caseExact: true)
    static let meta = SCIMAttribute(
        "meta", .complex, description: "Resource metadata.", mutability: .readOnly,
        subAttributes: [
            SCIMAttribute("resourceType", description: "The resource type.", caseExact: true, mutability: .readOnly),
            SCIMAttribute("created", .dateTime, description: "When the resource was created.", mutability: .readOnly),
            SCIMAttribute("lastModified", .dateTime, description: "When the resource was last changed.", mutability: .readOnly),
            SCIMAttribute("location", .reference, description: "The URI of the resource.", caseExact: true, mutability: .readOnly,
                          referenceTypes: ["uri"]),
            SCIMAttribute("version", description: "The weak ETag of the resource.", caseExact: true, mutability: .readOnly),
        ])
    static let all = [id, externalId, meta]
}

extension SCIMResourceType {
    /// `/Users`: core User with the optional enterprise extension.
    public static let user = SCIMResourceType(
        name: "User", endpoint: "/Users", description: "User Account", schema: .user,
        extensions: [Extension(schema: .enterpriseUser, required: false)])

    /// `/Groups`.
    public static let group = SCIMResourceType(
        name: "Group", endpoint: "/Groups", description: "Group", schema: .group, extensions: [])

    /// Every resource type served.
    public static let all: [SCIMResourceType] = [.user, .group]
}
