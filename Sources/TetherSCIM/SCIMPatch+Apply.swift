extension SCIMPatch {
    /// Applies every operation to a copy of `resource` (its stored attributes) and returns the
    /// result, canonical and validated; the first failing operation throws and nothing changes.
    public func apply(to resource: SCIMJSON.Object, type: SCIMResourceType) throws(SCIMError) -> SCIMJSON.Object {
        var working = resource
        for (index, operation) in operations.enumerated() {
            do {
                try operation.apply(to: &working, type: type)
            } catch {
                let label = operation.path.map { "\(operation.op.rawValue) \"\($0.text)\"" } ?? operation.op.rawValue
                throw SCIMError(status: error.status, error.scimType, "operation \(index + 1) (\(label)): \(error.detail)")
            }
        }
        let result = SCIMResourceBody.canonical(working, type: type)
        try SCIMValues.validate(result, type: type)
        return result
    }
}

/// Where an operation lands: an extension's whole object, or an attribute of the core
/// resource or of an extension, optionally narrowed by a value filter and a sub-attribute.
private enum Target {
    case extensionObject(SCIMSchema)
    case attribute(container: String?, attribute: SCIMAttribute, filter: (SCIMFilter, CompiledSCIMFilter.Node)?, sub: SCIMAttribute?)
}

extension SCIMPatch.Operation {
    fileprivate func apply(to resource: inout SCIMJSON.Object, type: SCIMResourceType) throws(SCIMError) {
        guard let path else {
            // No path: the value's members are the attributes to add or replace (RFC 7644
            // §3.5.2.1, §3.5.2.3). A member name may itself be a path (`name.givenName`, an
            // extension attribute's full URN); read-only and unknown names are ignored.
            guard case .object(let object)? = value else { return }
            for member in object {
                if ["schemas", "id", "meta"].contains(where: { $0.caseInsensitiveEquals(member.name) }) { continue }
                if let ext = type.extensions.first(where: { $0.schema.id.caseInsensitiveEquals(member.name) }) {
                    try perform(on: .extensionObject(ext.schema), value: member.value, in: &resource, type: type)
                    continue
                }
                guard let parsed = SCIMAttributePath.parse(member.name, knownSchemas: type.schemaURNs),
                    let resolved = type.resolve(parsed), let attribute = resolved.attribute,
                    attribute.mutability != .readOnly, resolved.subAttribute?.mutability != .readOnly
                else { continue }
                try perform(
                    on: .attribute(container: resolved.extensionURN, attribute: attribute, filter: nil, sub: resolved.subAttribute),
                    value: member.value, in: &resource, type: type)
            }
            return
        }
        try perform(on: try target(of: path, type: type), value: value, in: &resource, type: type)
    }

    private func target(of path: SCIMPatch.Path, type: SCIMResourceType) throws(SCIMError) -> Target {
        guard let resolved = type.resolve(path.attribute) else {
            throw SCIMError.invalidPath("\"\(path.text)\" names no attribute of a \(type.name)")
        }
        guard let attribute = resolved.attribute else {
            guard let ext = type.extensions.first(where: { $0.schema.id == resolved.extensionURN }), path.filter == nil else {
                throw SCIMError.invalidPath("\"\(path.text)\" names no attribute of a \(type.name)")
            }
            return .extensionObject(ext.schema)
        }
        if attribute.mutability == .readOnly {
            throw SCIMError.mutability("\(resolved.description) is read-only")
        }
        var sub = resolved.subAttribute
        var filter: (SCIMFilter, CompiledSCIMFilter.Node)?
        if let valueFilter = path.filter {
            guard attribute.isMultiValuedComplex else {
                throw SCIMError.invalidPath("\(attribute.name) is not a multi-valued complex attribute; it takes no value filter")
            }
            let within = ResolvedPath(extensionURN: resolved.extensionURN, attribute: attribute, subAttribute: nil)
            let node: CompiledSCIMFilter.Node
            do {
                node = try CompiledSCIMFilter.node(valueFilter, type: type, within: within)
            } catch {
                throw SCIMError.invalidPath(error.detail)
            }
            filter = (valueFilter, node)
            if let name = path.subAttribute {
                guard let found = attribute.subAttribute(name) else {
                    throw SCIMError.invalidPath("\(attribute.name) has no sub-attribute \"\(name)\"")
                }
                sub = found
            }
        }
        if let sub, sub.mutability == .readOnly {
            throw SCIMError.mutability("\(attribute.name).\(sub.name) is read-only")
        }
        return .attribute(container: resolved.extensionURN, attribute: attribute, filter: filter, sub: sub)
    }

    private func perform(on target: Target, value: SCIMJSON?, in resource: inout SCIMJSON.Object, type: SCIMResourceType) throws(SCIMError) {
        switch target {
        case .extensionObject(let schema):
            if op == .remove {
                resource[schema.id] = nil
                return
            }
            guard case .object(let object)? = value else {
                throw SCIMError.invalidValue("the value for \(schema.id) must be an object of its attributes")
            }
            for member in object {
                guard let attribute = schema.attribute(member.name), attribute.mutability != .readOnly else { continue }
                try perform(
                    on: .attribute(container: schema.id, attribute: attribute, filter: nil, sub: nil), value: member.value,
                    in: &resource, type: type)
            }
        case .attribute(let container, let attribute, let filter, let sub):
            var holder = container.map { resource[$0]?.objectValue ?? SCIMJSON.Object() } ?? resource
            let before = holder[attribute.name]
            let after = try change(before, of: attribute, filter: filter, sub: sub, value: value)
            holder[attribute.name] = after
            if let container {
                resource[container] = .object(holder)
            } else {
                resource = holder
            }
        }
    }

    /// The attribute's new value after this operation; nil removes it.
    private func change(
        _ current: SCIMJSON?, of attribute: SCIMAttribute, filter: (SCIMFilter, CompiledSCIMFilter.Node)?,
        sub: SCIMAttribute?, value: SCIMJSON?
    ) throws(SCIMError) -> SCIMJSON? {
        let name = attribute.name
        if !attribute.multiValued {
            if let sub {
                // `name.givenName`, `manager.value`.
                var object = current?.objectValue ?? SCIMJSON.Object()
                switch op {
                case .remove:
                    object[sub.name] = nil
                case .add, .replace:
                    let normalized = try SCIMValues.normalize(value ?? .null, as: sub, path: "\(name).\(sub.name)")
                    try checkImmutable(sub, old: object[sub.name], new: normalized, label: "\(name).\(sub.name)")
                    object[sub.name] = normalized
                }
                return object.isEmpty ? nil : .object(object)
            }
            switch op {
            case .remove:
                if attribute.required { throw SCIMError.invalidValue("\(name) is required and cannot be removed") }
                try checkImmutable(attribute, old: current, new: nil, label: name)
                return nil
            case .add, .replace:
                let normalized = try SCIMValues.normalize(value ?? .null, as: attribute, path: name)
                if attribute.type == .complex {
                    // Sub-attributes not given are left as they are (RFC 7644 §3.5.2.1, §3.5.2.3).
                    var object = current?.objectValue ?? SCIMJSON.Object()
                    for member in normalized?.objectValue ?? SCIMJSON.Object() {
                        if let subDefinition = attribute.subAttribute(member.name) {
                            try checkImmutable(subDefinition, old: object[member.name], new: member.value, label: "\(name).\(member.name)")
                        }
                        object[member.name] = member.value
                    }
                    return object.isEmpty ? nil : .object(object)
                }
                try checkImmutable(attribute, old: current, new: normalized, label: name)
                return normalized
            }
        }

        var items = current?.arrayValue ?? []
        var touched = Set<Int>()
        if let filter {
            let (filterText, node) = filter
            let matching = items.indices.filter { index in
                guard let element = items[index].objectValue else { return false }
                return CompiledSCIMFilter.evaluate(node, in: SCIMJSON.Object(), element: element)
            }
            if matching.isEmpty {
                // Entra adds or replaces `emails[type eq "work"].value` on a user without a work
                // email: the equalities of the filter seed a new value. A replace of whole values
                // that match nothing is noTarget, as RFC 7644 §3.5.2.3 says.
                guard op == .add || (op == .replace && sub != nil), let seed = Self.equalities(filterText, in: attribute) else {
                    throw SCIMError.noTarget("no value of \(name) matches [\(filterText)]")
                }
                var element = seed
                if let sub {
                    element[sub.name] = try SCIMValues.normalize(value ?? .null, as: sub, path: "\(name).\(sub.name)")
                } else {
                    for member in try elementObject(value, of: attribute) { element[member.name] = member.value }
                }
                items.append(.object(element))
                touched.insert(items.count - 1)
            } else {
                for index in matching.reversed() {
                    var element = items[index].objectValue ?? SCIMJSON.Object()
                    switch (op, sub) {
                    case (.remove, nil):
                        items.remove(at: index)
                        continue
                    case (.remove, let sub?):
                        try checkImmutable(sub, old: element[sub.name], new: nil, label: "\(name).\(sub.name)")
                        element[sub.name] = nil
                    case (.add, let sub?), (.replace, let sub?):
                        let normalized = try SCIMValues.normalize(value ?? .null, as: sub, path: "\(name).\(sub.name)")
                        try checkImmutable(sub, old: element[sub.name], new: normalized, label: "\(name).\(sub.name)")
                        element[sub.name] = normalized
                    case (.add, nil):
                        for member in try elementObject(value, of: attribute) {
                            if let subDefinition = attribute.subAttribute(member.name) {
                                try checkImmutable(subDefinition, old: element[member.name], new: member.value, label: "\(name).\(member.name)")
                            }
                            element[member.name] = member.value
                        }
                    case (.replace, nil):
                        let replacement = try elementObject(value, of: attribute)
                        for subDefinition in attribute.subAttributes where subDefinition.mutability == .immutable {
                            try checkImmutable(subDefinition, old: element[subDefinition.name], new: replacement[subDefinition.name],
                                               label: "\(name).\(subDefinition.name)")
                        }
                        element = replacement
                    }
                    items[index] = .object(element)
                    touched.insert(index)
                }
            }
        } else if let sub {
            // `emails.type` without a filter: every value.
            switch op {
            case .remove:
                items = items.map { item in
                    var element = item.objectValue ?? SCIMJSON.Object()
                    element[sub.name] = nil
                    return .object(element)
                }
            case .add, .replace:
                let normalized = try SCIMValues.normalize(value ?? .null, as: sub, path: "\(name).\(sub.name)")
                if items.isEmpty { items = [.object(SCIMJSON.Object())] }
                for index in items.indices {
                    var element = items[index].objectValue ?? SCIMJSON.Object()
                    try checkImmutable(sub, old: element[sub.name], new: normalized, label: "\(name).\(sub.name)")
                    element[sub.name] = normalized
                    items[index] = .object(element)
                    touched.insert(index)
                }
            }
        } else {
            switch op {
            case .remove:
                if attribute.required { throw SCIMError.invalidValue("\(name) is required and cannot be removed") }
                guard let value, value != .null else { return nil }
                // Azure AD removes members by value: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
                let doomed = value.arrayValue ?? [value]
                let doomedValues = Set(doomed.compactMap { $0["value"] })
                let doomedWhole = Set(doomed.filter { $0["value"] == nil })
                items.removeAll { item in
                    if let mine = item["value"], doomedValues.contains(mine) { return true }
                    return doomedWhole.contains(item)
                }
            case .add:
                var positions = Dictionary(items.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })
                for element in try elements(value, of: attribute) {
                    if let existing = positions[element] {
                        touched.insert(existing)
                    } else {
                        items.append(element)
                        positions[element] = items.count - 1
                        touched.insert(items.count - 1)
                    }
                }
            case .replace:
                items = try elements(value, of: attribute)
                touched = Set(items.indices)
            }
        }
        // A value added or replaced as primary demotes the others (RFC 7644 §3.5.2).
        if attribute.subAttribute("primary") != nil, touched.contains(where: { items.indices.contains($0) && items[$0]["primary"] == .bool(true) }) {
            for index in items.indices where !touched.contains(index) && items[index]["primary"] == .bool(true) {
                var element = items[index].objectValue ?? SCIMJSON.Object()
                element["primary"] = .bool(false)
                items[index] = .object(element)
            }
        }
        return items.isEmpty ? nil : .array(items)
    }

    /// The values an add or replace gives a multi-valued attribute: an array, or one value.
    private func elements(_ value: SCIMJSON?, of attribute: SCIMAttribute) throws(SCIMError) -> [SCIMJSON] {
        let given = value ?? .null
        let normalized = try SCIMValues.normalize(
            given.arrayValue == nil ? .array([given]) : given, as: attribute, path: attribute.name)
        return normalized?.arrayValue ?? []
    }

    /// One element of a multi-valued complex attribute, as an object.
    private func elementObject(_ value: SCIMJSON?, of attribute: SCIMAttribute) throws(SCIMError) -> SCIMJSON.Object {
        guard let normalized = try SCIMValues.normalize(value ?? .null, as: attribute, path: attribute.name, element: true),
            let object = normalized.objectValue
        else {
            throw SCIMError.invalidValue("the value for a value of \(attribute.name) must be an object")
        }
        return object
    }

    private func checkImmutable(_ attribute: SCIMAttribute, old: SCIMJSON?, new: SCIMJSON?, label: String) throws(SCIMError) {
        guard attribute.mutability == .immutable, let old, old != .null, old != new else { return }
        throw SCIMError.mutability("\(label) is immutable once set")
    }

    /// `type eq "work"` (or several joined by `and`) as the sub-attributes of a new value; nil
    /// when the filter says anything else.
    static func equalities(_ filter: SCIMFilter, in attribute: SCIMAttribute) -> SCIMJSON.Object? {
        switch filter {
        case .compare(let path, .eq, let value):
            guard path.schema == nil, path.subAttribute == nil, let name = path.attribute,
                let sub = attribute.subAttribute(name), value != .null
            else { return nil }
            return SCIMJSON.Object([.init(sub.name, value)])
        case .and(let a, let b):
            guard var left = equalities(a, in: attribute), let right = equalities(b, in: attribute) else { return nil }
            for member in right { left[member.name] = member.value }
            return left
        default:
            return nil
        }
    }
}
