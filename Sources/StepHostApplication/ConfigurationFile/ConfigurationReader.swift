import Foundation
import Yams

/// Walks the nodes Yams composed from a configuration file, checking each key and value against what the file
/// may hold and naming the line and the key of anything refused. Yams' own decoding is not used: it would lose
/// the lines, and it would pass keys it does not know.
struct ConfigurationReader {
    /// The file as it was named, for errors.
    let file: String
    let text: String

    /// One key of a mapping with its value, and the key's path from the top of the file.
    struct Entry {
        let key: String
        let path: String
        let keyNode: Node
        let value: Node
    }

    func failure(
        _ code: ConfigurationFileError.Code,
        at node: Node?,
        _ path: String?,
        _ message: String
    ) -> ConfigurationFileError {
        ConfigurationFileError(code, file: file, line: node?.mark?.line, key: path, message)
    }

    // MARK: Composing

    /// The document's root, or `nil` for an empty file, after the guards against files that expand.
    func compose() throws(ConfigurationFileError) -> Node? {
        let aliases = Self.possibleAliases(in: text)
        guard aliases <= ConfigurationFile.maximumAliases else {
            throw failure(
                .tooComplex,
                at: nil,
                nil,
                "uses \(aliases) aliases (*name); a configuration file may use at most "
                    + "\(ConfigurationFile.maximumAliases), so that it cannot expand without bound"
            )
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxFailure(error)
        } catch {
            throw failure(.syntax, at: nil, nil, "is not valid YAML: \(error)")
        }
        guard let root else { return nil }
        var budget = ConfigurationFile.maximumNodes
        guard Self.fits(root, budget: &budget) else {
            throw failure(
                .tooComplex,
                at: nil,
                nil,
                "holds more than \(ConfigurationFile.maximumNodes) values once its aliases are expanded; "
                    + "a configuration file is a few dozen"
            )
        }
        return root
    }

    /// An upper bound of the aliases in `text`: every `*` that could start a token. Over-counting (a `*` in a
    /// comment or a quoted string) only refuses a file sooner; no alias can be missed.
    static func possibleAliases(in text: String) -> Int {
        var count = 0
        var previous: UInt8 = UInt8(ascii: "\n")
        let separators = Set(" \t\r\n[]{},:?-".utf8)
        for byte in text.utf8 {
            if byte == UInt8(ascii: "*") && separators.contains(previous) { count += 1 }
            previous = byte
        }
        return count
    }

    /// Whether `node` holds at most `budget` nodes, counting each use of an alias again; stops at the budget.
    private static func fits(_ node: Node, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch node {
        case .scalar, .alias: return true
        case .mapping(let mapping):
            return mapping.allSatisfy { fits($0.key, budget: &budget) && fits($0.value, budget: &budget) }
        case .sequence(let sequence):
            return sequence.allSatisfy { fits($0, budget: &budget) }
        }
    }

    private func syntaxFailure(_ error: YamlError) -> ConfigurationFileError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let while_ = context.map { " (\($0.text), line \($0.mark.line))" } ?? ""
            return ConfigurationFileError(
                .syntax,
                file: file,
                line: mark.line,
                "YAML syntax error: \(problem)\(while_)"
            )
        case .reader(let problem, let offset, _, let yaml):
            let line = offset.map { yaml.prefix($0).reduce(1) { $1 == "\n" ? $0 + 1 : $0 } }
            return ConfigurationFileError(.syntax, file: file, line: line, "cannot be read as YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            let first = context.mark
            let repeated = Self.repeatedLine(of: key, after: first, in: text)
            return ConfigurationFileError(
                .duplicateKey,
                file: file,
                line: repeated ?? first.line,
                key: Self.blockPath(of: key, line: first.line, column: first.column, in: text),
                "appears twice in the same mapping (first on line \(first.line)); keep one"
            )
        default:
            return ConfigurationFileError(.syntax, file: file, "is not valid YAML: \(error)")
        }
    }

    /// The line after `mark` where `key` starts at the same column again, as a repeated key of a block mapping.
    private static func repeatedLine(of key: String, after mark: Mark, in text: String) -> Int? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for index in mark.line..<lines.count {
            let line = lines[index].unicodeScalars
            guard line.count >= mark.column else { continue }
            let start = line.index(line.startIndex, offsetBy: mark.column - 1)
            guard line[..<start].allSatisfy({ $0 == " " || $0 == "-" }) else { continue }
            let rest = String(line[start...])
            if rest.hasPrefix(key + ":") || rest.hasPrefix(key + " :") { return index + 1 }
        }
        return nil
    }

    /// The dotted path of a block-style key at `line`/`column`, from the keys of the less indented lines above
    /// it; just the key when the file is not plainly indented.
    private static func blockPath(of key: String, line: Int, column: Int, in text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(line - 1)
        var path = [key]
        var indent = column - 1
        for line in lines.reversed() where indent > 0 {
            let content = line.drop { $0 == " " }
            let depth = line.count - content.count
            guard depth < indent, !content.isEmpty, !content.hasPrefix("#"), !content.hasPrefix("-") else { continue }
            guard let colon = content.firstIndex(of: ":") else { return key }
            path.insert(String(content[..<colon]).trimmingCharacters(in: .whitespaces), at: 0)
            indent = depth
        }
        return path.joined(separator: ".")
    }

    // MARK: Mappings

    /// The keys of the mapping `node` at `path` with their values. Every key is text and appears once; when
    /// `known` is given, every key is one of them. A key without a value (`key:`, `key: ~`) is left out: unset.
    func entries(of node: Node, at path: String?, known: [String]?) throws(ConfigurationFileError) -> [Entry] {
        if Self.isNull(node) { return [] }
        guard case .mapping(let mapping) = node else {
            let keys = known.map { " with the keys \($0.joined(separator: ", "))" } ?? ""
            throw failure(.wrongType, at: node, path, "expected a mapping\(keys); got \(Self.kind(of: node))")
        }
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode, !scalar.string.isEmpty else {
                throw failure(.wrongType, at: keyNode, path, "a key must be a name; got \(Self.kind(of: keyNode))")
            }
            let key = scalar.string
            let keyPath = path.map { "\($0).\(key)" } ?? key
            if let first = seen[key] {
                throw failure(.duplicateKey, at: keyNode, keyPath, "appears twice (first on line \(first)); keep one")
            }
            seen[key] = keyNode.mark?.line ?? 0
            if let known, !known.contains(key) {
                throw failure(.unknownKey, at: keyNode, keyPath, Self.unknownKeyMessage(key, known: known, in: path))
            }
            if Self.isNull(value) { continue }
            entries.append(Entry(key: key, path: keyPath, keyNode: keyNode, value: value))
        }
        return entries
    }

    private static func unknownKeyMessage(_ key: String, known: [String], in path: String?) -> String {
        let suggestion = known.map { ($0, distance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
        let hint = suggestion.flatMap { $0.1 <= max(2, key.count / 3) ? " (did you mean \($0.0)?)" : nil } ?? ""
        let place = path.map { "under \($0)" } ?? "at the top"
        return "unknown key\(hint); the keys \(place) are \(known.joined(separator: ", "))"
    }

    /// Levenshtein distance, for "did you mean".
    private static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var next = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                next[j] = min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            row = next
        }
        return row[b.count]
    }

    // MARK: Values

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func kind(of node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let scalar): "the value \(quoted(scalar.string))"
        case .alias: "an alias"
        }
    }

    /// `text` in quotes for a message, shortened when long.
    static func quoted(_ text: String) -> String {
        let short = text.count > 60 ? text.prefix(57) + "..." : Substring(text)
        return "\"\(short)\""
    }

    /// The entry's value as text: a single value, not a mapping or a list.
    func text(_ entry: Entry) throws(ConfigurationFileError) -> String {
        guard case .scalar(let scalar) = entry.value else {
            throw failure(
                .wrongType,
                at: entry.value,
                entry.path,
                "expected a value; got \(Self.kind(of: entry.value))"
            )
        }
        return scalar.string.trimmingCharacters(in: .whitespaces)
    }

    /// The entry's value, which must be text that is not empty.
    func nonEmptyText(_ entry: Entry) throws(ConfigurationFileError) -> String {
        let value = try text(entry)
        guard !value.isEmpty else { throw failure(.invalidValue, at: entry.value, entry.path, "must not be empty") }
        return value
    }

    /// The entry's value, a PostgreSQL URL; an error never repeats it (it may hold a password).
    func postgresURL(_ entry: Entry) throws(ConfigurationFileError) -> String {
        let value = try nonEmptyText(entry)
        guard HostStores.isPostgresURL(value), PostgresURLCheck.location(value) != nil else {
            throw failure(
                .invalidValue,
                at: entry.value,
                entry.path,
                "is not postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=disable|require[&sslrootcert=PATH]] (the value is not "
                    + "shown: it may hold a password)"
            )
        }
        return value
    }

    /// The entry's value, one of `T`'s raw values.
    func choice<T: RawRepresentable & CaseIterable>(
        _ entry: Entry,
        _ type: T.Type
    ) throws(ConfigurationFileError) -> T where T.RawValue == String {
        let value = try text(entry)
        guard let choice = T(rawValue: value) else {
            let choices = T.allCases.map(\.rawValue).joined(separator: " | ")
            throw failure(.invalidValue, at: entry.value, entry.path, "\(Self.quoted(value)) is not one of \(choices)")
        }
        return choice
    }

    /// The entry's value, `true` or `false` (YAML's `yes`, `on` and the like are refused: they read as text).
    func bool(_ entry: Entry) throws(ConfigurationFileError) -> Bool {
        let value = try text(entry)
        switch value {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            throw failure(.invalidValue, at: entry.value, entry.path, "\(Self.quoted(value)) is not true or false")
        }
    }
}
