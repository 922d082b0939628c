import Yams

/// A marker inserted into the text so that a duplicated key no longer stops Yams.
///
/// Yams' composer throws at the first duplicate key of a mapping, which would end the pass
/// there. The loader renames the reported key in place and composes again, so that every
/// duplicate (and everything else) is reported together with its line and key path.
struct TextEdit: Sendable {
    let line: Int
    /// Column (in Unicode scalars) where `length` scalars were inserted, in the text as it was then.
    let column: Int
    let length: Int

    /// The column of `column` on `line` in the text before any edit.
    static func originalColumn(line: Int, column: Int, edits: [TextEdit]) -> Int {
        var column = column
        for edit in edits.reversed() where edit.line == line && column > edit.column {
            column -= min(edit.length, column - edit.column)
        }
        return column
    }
}

/// A composed YAML document: its root node and the edits made to get past duplicate keys.
struct YAMLDocument {
    let root: Node?
    let edits: [TextEdit]

    private static let markerPrefix = "__tether_duplicate_"
    private static let markerSuffix = "__"

    /// The key as written, without a duplicate marker.
    static func originalKey(_ key: String) -> String {
        guard key.hasPrefix(markerPrefix) else { return key }
        let rest = key.dropFirst(markerPrefix.count)
        guard let end = rest.range(of: markerSuffix) else { return key }
        return String(rest[end.upperBound...])
    }

    /// Parses `yaml` into a node tree; syntax errors become a located ``ConfigurationError``.
    static func compose(_ yaml: String, file: String) throws(ConfigurationError) -> YAMLDocument {
        var text = yaml
        var edits: [TextEdit] = []
        var lastDuplicate: (key: String, mark: Mark)?
        for attempt in 0..<maximumDuplicates {
            do {
                let root = try Yams.compose(yaml: text)
                return YAMLDocument(root: root, edits: edits)
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                let marker = markerPrefix + String(attempt) + markerSuffix
                lastDuplicate = (duplicates.first ?? "?", context.mark)
                if let edit = insert(marker, into: &text, at: context.mark) {
                    edits.append(edit)
                    continue
                }
                let key = duplicates.first ?? "?"
                throw syntaxError(
                    "duplicate key '\(key)' in a mapping; each key may appear only once", at: context.mark,
                    edits: edits, file: file)
            } catch let error as YamlError {
                throw located(error, edits: edits, file: file)
            } catch {
                throw ConfigurationError(
                    code: .invalidYAML, file: file,
                    findings: [
                        ConfigurationFinding(
                            severity: .error,
                            location: ConfigurationLocation(file: file, line: 0, column: 0, keyPath: ""),
                            message: "invalid YAML: \(error)")
                    ])
            }
        }
        // Every pass ended on a duplicate: report the last one found, so the finding has a line.
        let key = lastDuplicate?.key ?? "?"
        let message =
            "duplicate key '\(key)' in a mapping, one of at least \(maximumDuplicates) duplicate keys in the file; each key may appear only once"
        guard let mark = lastDuplicate?.mark else {
            throw ConfigurationError(
                code: .invalidYAML, file: file,
                findings: [
                    ConfigurationFinding(
                        severity: .error, location: ConfigurationLocation(file: file, line: 0, column: 0, keyPath: ""),
                        message: message)
                ])
        }
        throw syntaxError(message, at: mark, edits: edits, file: file)
    }

    /// How many duplicate keys one pass renames before it gives up (each one composes the text again).
    private static let maximumDuplicates = 100

    /// Inserts `marker` at the start of the key at `mark` (inside its quotes when quoted).
    private static func insert(_ marker: String, into text: inout String, at mark: Mark) -> TextEdit? {
        guard mark.line >= 1, mark.column >= 1 else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard mark.line <= lines.count else { return nil }
        var scalars = Array(lines[mark.line - 1].unicodeScalars)
        var index = mark.column - 1
        guard index < scalars.count else { return nil }
        let first = scalars[index]
        if first == "\"" || first == "'" {
            index += 1
        } else if "?*&!|>{}[],#".unicodeScalars.contains(first) {
            return nil  // an explicit, aliased or tagged key: leave it to the plain error
        }
        scalars.insert(contentsOf: marker.unicodeScalars, at: index)
        lines[mark.line - 1] = String(String.UnicodeScalarView(scalars))
        text = lines.joined(separator: "\n")
        return TextEdit(line: mark.line, column: index + 1, length: marker.unicodeScalars.count)
    }

    private static func located(_ error: YamlError, edits: [TextEdit], file: String) -> ConfigurationError {
        switch error {
        case .scanner(let context, let problem, let mark, let text),
            .parser(let context, let problem, let mark, let text),
            .composer(let context, let problem, let mark, let text):
            var message = "invalid YAML: \(problem)"
            if character(at: mark, in: text) == "\t" {
                return syntaxError(
                    "invalid YAML: a tab character; YAML indents with spaces only, replace the tab with spaces",
                    at: mark, edits: edits, file: file)
            }
            if let context {
                let column = TextEdit.originalColumn(line: context.mark.line, column: context.mark.column, edits: edits)
                message += " (\(context.text) at line \(context.mark.line), column \(column))"
            }
            message += "; check the indentation, quotes and brackets around here"
            // At the end of the input the problem mark is the last line; where the unfinished
            // construct (an open quote or bracket) began is where the fix belongs.
            let location = problem.contains("end of stream") ? context?.mark ?? mark : mark
            return syntaxError(message, at: location, edits: edits, file: file)
        case .reader(let problem, let offset, _, let yaml):
            var line = 0
            var column = 0
            if let offset {
                let prefix = yaml.prefix(offset)
                line = prefix.filter { $0 == "\n" }.count + 1
                column = (prefix.split(separator: "\n", omittingEmptySubsequences: false).last?.count ?? 0) + 1
            }
            return ConfigurationError(
                code: .invalidYAML, file: file,
                findings: [
                    ConfigurationFinding(
                        severity: .error,
                        location: ConfigurationLocation(file: file, line: line, column: column, keyPath: ""),
                        message: "invalid YAML: \(problem); the file must be UTF-8 text")
                ])
        default:
            return ConfigurationError(
                code: .invalidYAML, file: file,
                findings: [
                    ConfigurationFinding(
                        severity: .error, location: ConfigurationLocation(file: file, line: 0, column: 0, keyPath: ""),
                        message: "invalid YAML: \(error)")
                ])
        }
    }

    private static func character(at mark: Mark, in text: String) -> Unicode.Scalar? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard mark.line >= 1, mark.line <= lines.count, mark.column >= 1 else { return nil }
        let scalars = Array(lines[mark.line - 1].unicodeScalars)
        return mark.column <= scalars.count ? scalars[mark.column - 1] : nil
    }

    private static func syntaxError(_ message: String, at mark: Mark, edits: [TextEdit], file: String)
        -> ConfigurationError
    {
        let column = TextEdit.originalColumn(line: mark.line, column: mark.column, edits: edits)
        return ConfigurationError(
            code: .invalidYAML, file: file,
            findings: [
                ConfigurationFinding(
                    severity: .error,
                    location: ConfigurationLocation(file: file, line: mark.line, column: column, keyPath: ""),
                    message: message)
            ])
    }
}
