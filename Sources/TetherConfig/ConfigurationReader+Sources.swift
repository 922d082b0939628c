import TetherCore

extension ConfigurationReader {
    /// Identity fields a policy, template or extra attribute may not redefine.
    static let identityFields = [
        "id", "externalId", "userName", "email", "displayName", "employeeNumber", "department", "title", "manager",
        "status", "groups",
    ]

    func readSources(_ node: ConfigNode) -> SourcesConfiguration {
        var sources = SourcesConfiguration()
        guard let map = node.mapping(allowed: ["ldap", "scim", "hr"]) else { return sources }
        sources.ldap = map.optional("ldap").flatMap(readLDAP)
        sources.scim = map.optional("scim").flatMap(readSCIM)
        sources.hr = map.optional("hr").flatMap(readHR)
        return sources
    }

    func readSCIM(_ node: ConfigNode) -> SCIMConfiguration? {
        guard let map = node.mapping(allowed: ["tokenFile"]),
            let tokenFile = map.required("tokenFile", hint: "the file holding the bearer token SCIM clients present")
                .flatMap(resolvedPath)
        else { return nil }
        return SCIMConfiguration(tokenFile: tokenFile)
    }

    func readHR(_ node: ConfigNode) -> HRConfiguration? {
        guard let map = node.mapping(allowed: ["secretFiles", "tolerance"]) else { return nil }
        var secretFiles: [String]?
        if let listNode = map.required("secretFiles", hint: "a list of files holding the webhook's HMAC secrets"),
            let items = listNode.list("a list of secret file paths")
        {
            if items.isEmpty {
                listNode.error("expected at least one secret file, found an empty list")
            } else {
                let paths = items.compactMap(resolvedPath)
                if paths.count == items.count { secretFiles = paths }
            }
        }
        var tolerance: Duration? = .seconds(300)
        if let toleranceNode = map.optional("tolerance") { tolerance = toleranceNode.duration() }
        guard let secretFiles, let tolerance else { return nil }
        return HRConfiguration(secretFiles: secretFiles, tolerance: tolerance)
    }

    // MARK: - LDAP

    static let ldapKeys = [
        "url", "startTLS", "tlsVerify", "caFile", "bindDN", "bindPasswordFile", "users", "groups", "mapping",
        "attributes", "suspendWhen", "changeDetection", "pollInterval", "fullScanInterval", "pageSize", "timeout",
        "rangeSize",
    ]

    func readLDAP(_ node: ConfigNode) -> LDAPConfiguration? {
        guard let map = node.mapping(allowed: Self.ldapKeys) else { return nil }
        var valid = true
        func take<Value>(_ value: Value?, default fallback: Value) -> Value {
            if value == nil { valid = false }
            return value ?? fallback
        }

        var url = ""
        var host = ""
        if let urlNode = map.required("url", hint: "e.g. ldap://127.0.0.1:389 or ldaps://ldap.example.com"),
            let text = urlNode.nonEmptyString("an ldap:// or ldaps:// URL")
        {
            if let parsedHost = Self.ldapHost(text) {
                url = text
                host = parsedHost
            } else {
                urlNode.error("invalid LDAP URL '\(text)'; expected ldap://host[:port] or ldaps://host[:port]")
                valid = false
            }
        } else {
            valid = false
        }
        let ldaps = url.lowercased().hasPrefix("ldaps://")

        let startTLS = map.optional("startTLS").map { take($0.bool(), default: false) } ?? false
        if startTLS, ldaps, let startTLSNode = map.value("startTLS") {
            startTLSNode.error(
                "startTLS upgrades an ldap:// connection; an ldaps:// URL is already TLS, remove startTLS")
            valid = false
        }
        let tlsVerify = map.optional("tlsVerify").map { take($0.bool(), default: true) } ?? true
        let usesTLS = ldaps || startTLS
        if !tlsVerify, usesTLS, let verifyNode = map.value("tlsVerify") {
            verifyNode.warning(
                "TLS certificate verification is off: anyone on the path can impersonate the directory and read the bind password"
            )
        }
        let caFile = map.optional("caFile").map { take(resolvedPath($0), default: "") }
        if caFile != nil, !usesTLS, let caNode = map.value("caFile") {
            caNode.warning("caFile is unused: the connection is plain ldap:// without startTLS")
        }

        let bindDN = map.optional("bindDN").map { take(readDN($0, what: "bind DN"), default: "") }
        let bindPasswordFile = map.optional("bindPasswordFile").map { take(resolvedPath($0), default: "") }
        if bindDN != nil, bindPasswordFile == nil {
            _ = map.required("bindPasswordFile", hint: "bindDN needs the file holding its password")
            valid = false
        }
        if bindPasswordFile != nil, bindDN == nil, let passwordNode = map.value("bindPasswordFile") {
            passwordNode.error("bindPasswordFile needs bindDN, the DN to bind as")
            valid = false
        }
        if bindPasswordFile != nil, !usesTLS, !Self.isLoopback(host), let passwordNode = map.value("bindPasswordFile") {
            passwordNode.warning(
                "the bind password travels in clear text to \(host): use ldaps:// or startTLS: true")
        }

        let users = map.required(
            "users", hint: "where people are found, e.g. { base: \"ou=people,dc=example,dc=com\" }"
        )
        .flatMap(readUsers)
        if users == nil { valid = false }
        var groups: LDAPGroupsConfiguration?
        if let groupsNode = map.optional("groups") {
            groups = readGroups(groupsNode)
            if groups == nil { valid = false }
        }
        let mapping =
            map.optional("mapping").map { take(readMapping($0), default: LDAPMappingConfiguration()) }
            ?? LDAPMappingConfiguration()
        let attributes = map.optional("attributes").map { take(readExtraAttributes($0), default: [:]) } ?? [:]
        var suspendWhen: LDAPSuspendConfiguration?
        if let suspendNode = map.optional("suspendWhen") {
            suspendWhen = readSuspendWhen(suspendNode)
            if suspendWhen == nil { valid = false }
        }
        let changeDetection =
            map.optional("changeDetection").map {
                take($0.oneOf(LDAPChangeDetection.self), default: .auto)
            } ?? .auto
        let pollInterval =
            map.optional("pollInterval").map { take($0.duration(), default: .seconds(30)) } ?? .seconds(30)
        let fullScanInterval =
            map.optional("fullScanInterval").map { take($0.duration(), default: .seconds(900)) }
            ?? .seconds(900)
        let pageSize =
            map.optional("pageSize").map {
                take($0.int(atLeast: 1, expected: "a number of entries per page"), default: 500)
            } ?? 500
        let timeout = map.optional("timeout").map { take($0.duration(), default: .seconds(30)) } ?? .seconds(30)
        // Active Directory's MaxValRange is 1,500 or 5,000; more than a million values per
        // answer is a typo, not a range.
        var rangeSize: Int?
        if let rangeNode = map.optional("rangeSize") {
            rangeSize = rangeNode.int(atLeast: 1, atMost: 1_000_000, expected: "a number of values per range request")
            if rangeSize == nil { valid = false }
        }

        guard valid, let users else { return nil }
        return LDAPConfiguration(
            url: url, startTLS: startTLS, tlsVerify: tlsVerify, caFile: caFile, bindDN: bindDN,
            bindPasswordFile: bindPasswordFile, users: users, groups: groups, mapping: mapping, attributes: attributes,
            suspendWhen: suspendWhen, changeDetection: changeDetection, pollInterval: pollInterval,
            fullScanInterval: fullScanInterval, pageSize: pageSize, timeout: timeout, rangeSize: rangeSize)
    }

    /// The host of `ldap://host[:port][/]` or `ldaps://…`, nil when the URL is anything else.
    static func ldapHost(_ url: String) -> String? {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("ldap://") {
            rest = url.dropFirst("ldap://".count)
        } else if lower.hasPrefix("ldaps://") {
            rest = url.dropFirst("ldaps://".count)
        } else {
            return nil
        }
        let authority = String(rest.hasSuffix("/") ? rest.dropLast() : rest)
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains(where: \.isWhitespace) else {
            return nil
        }
        if let (host, port) = hostAndPort(authority) {
            return port >= 1 ? host : nil
        }
        if authority.hasPrefix("["), authority.hasSuffix("]") {
            let host = authority.dropFirst().dropLast()
            return host.isEmpty ? nil : String(host)
        }
        return authority.contains(":") || authority.contains("[") ? nil : authority
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    func readUsers(_ node: ConfigNode) -> LDAPUsersConfiguration? {
        guard let map = node.mapping(allowed: ["base", "filter", "scope"]) else { return nil }
        let base = map.required("base", hint: "the DN people are found under").flatMap { readDN($0, what: "base DN") }
        let filter = map.optional("filter").map(readFilter) ?? LDAPUsersConfiguration.defaultFilter
        let scope = map.optional("scope").map { $0.oneOf(LDAPSearchScope.self) } ?? .sub
        guard let base, let filter, let scope else { return nil }
        return LDAPUsersConfiguration(base: base, filter: filter, scope: scope)
    }

    func readGroups(_ node: ConfigNode) -> LDAPGroupsConfiguration? {
        guard let map = node.mapping(allowed: ["base", "filter", "scope", "memberAttributes", "nested"]) else {
            return nil
        }
        let base = map.required("base", hint: "the DN groups are found under").flatMap { readDN($0, what: "base DN") }
        let filter = map.optional("filter").map(readFilter) ?? LDAPGroupsConfiguration.defaultFilter
        let scope = map.optional("scope").map { $0.oneOf(LDAPSearchScope.self) } ?? .sub
        var memberAttributes: [String]? = ["member", "uniqueMember"]
        if let listNode = map.optional("memberAttributes") {
            memberAttributes = nil
            if let items = listNode.list("a list of LDAP attribute names") {
                if items.isEmpty {
                    listNode.error("expected at least one member attribute, e.g. [member, uniqueMember]")
                } else {
                    let names = items.compactMap(readLDAPAttribute)
                    if names.count == items.count { memberAttributes = names }
                }
            }
        }
        let nested = map.optional("nested").map { $0.bool() } ?? true
        guard let base, let filter, let scope, let memberAttributes, let nested else { return nil }
        return LDAPGroupsConfiguration(
            base: base, filter: filter, scope: scope, memberAttributes: memberAttributes, nested: nested)
    }

    func readMapping(_ node: ConfigNode) -> LDAPMappingConfiguration? {
        guard
            let map = node.mapping(
                allowed: LDAPMappingConfiguration.fields, expected: "a mapping of identity field to LDAP attribute")
        else { return nil }
        var mapping = LDAPMappingConfiguration()
        var valid = true
        for entry in map.entries {
            if let attribute = readLDAPAttribute(entry.value) {
                mapping[entry.key] = attribute
            } else {
                valid = false
            }
        }
        return valid ? mapping : nil
    }

    func readExtraAttributes(_ node: ConfigNode) -> [String: String]? {
        guard let map = node.mapping(allowed: nil, expected: "a mapping of attribute name to LDAP attribute") else {
            return nil
        }
        var attributes: [String: String] = [:]
        var valid = true
        for entry in map.entries {
            if Self.identityFields.contains(entry.key) {
                entry.keyNode.error(
                    "'\(entry.key)' is an identity field, not an extra attribute; map it under sources.ldap.mapping")
                valid = false
                continue
            }
            guard Self.isAttributeName(entry.key) else {
                entry.keyNode.error(
                    "invalid attribute name '\(entry.key)'; use letters, digits, '_', '-' and '.', starting with a letter"
                )
                valid = false
                continue
            }
            if let attribute = readLDAPAttribute(entry.value) {
                attributes[entry.key] = attribute
            } else {
                valid = false
            }
        }
        return valid ? attributes : nil
    }

    func readSuspendWhen(_ node: ConfigNode) -> LDAPSuspendConfiguration? {
        guard let map = node.mapping(allowed: ["attribute"]),
            let attributeNode = map.required(
                "attribute", hint: "e.g. { attribute: { name: pwdAccountLockedTime, present: true } }"),
            let (name, test) = readAttributeTest(attributeNode)
        else { return nil }
        return LDAPSuspendConfiguration(attribute: name, test: test)
    }

    // MARK: - LDAP values

    /// A distinguished name: `attr=value` pairs separated by commas.
    func readDN(_ node: ConfigNode, what: String) -> String? {
        guard let text = node.nonEmptyString("a \(what) such as dc=example,dc=com") else { return nil }
        guard text.contains("="), !text.hasPrefix("="), !text.hasPrefix(",") else {
            node.error("invalid \(what) '\(text)'; expected a DN such as ou=people,dc=example,dc=com")
            return nil
        }
        return text
    }

    /// An RFC 4515 filter in parentheses; literal parentheses in values are escaped as `\28` and `\29`.
    func readFilter(_ node: ConfigNode) -> String? {
        guard let text = node.nonEmptyString("an LDAP filter such as (objectClass=inetOrgPerson)") else { return nil }
        var depth = 0
        var balanced = text.hasPrefix("(") && text.hasSuffix(")")
        for character in text where balanced {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if depth < 0 { balanced = false }
        }
        guard balanced, depth == 0 else {
            node.error(
                "invalid LDAP filter '\(text)'; expected balanced parentheses, e.g. (&(objectClass=person)(uid=*)); "
                    + "write a literal parenthesis as \\28 or \\29")
            return nil
        }
        return text
    }

    /// An LDAP attribute description: a name or OID, with options such as `;binary`.
    func readLDAPAttribute(_ node: ConfigNode) -> String? {
        guard let text = node.nonEmptyString("an LDAP attribute name") else { return nil }
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        let name = parts[0]
        let isName =
            name.first.map { $0.isASCII && $0.isLetter } == true
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        let isOID =
            !name.isEmpty
            && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
                !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber }
            }
        let optionsValid = parts.dropFirst().allSatisfy {
            !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
        guard isName || isOID, optionsValid else {
            node.error("invalid LDAP attribute name '\(text)'; expected a name such as mail or an OID such as 2.5.4.3")
            return nil
        }
        return text
    }

    static func isAttributeName(_ text: String) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
    }
}
