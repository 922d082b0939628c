import Foundation
import Logging
import NIOCore
import PostgresNIO

/// One connection to PostgreSQL, used synchronously from a thread of the store's own pool
/// (never an event loop, never Swift's cooperative pool): what lets the backend answer
/// ``DecisionReads``, which is synchronous, inside one transaction.
///
/// SQL is written with `?` placeholders, numbered `$1, $2, …` here, so the backends' SQL
/// reads the same; no statement of the store has a `?` of its own.
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ sql: String, _ arguments: [any PostgresArgument] = []) throws -> [PostgresRandomAccessRow] {
        try run(sql, arguments).rows.map { $0.makeRandomAccess() }
    }

    /// Runs one statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any PostgresArgument] = []) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    /// Sends one statement without waiting for its answer: the connection answers statements
    /// in the order they were sent, so the next statement's answer comes after this one's.
    /// What a transaction's `BEGIN` is, saving a round trip; its answer is looked at later.
    @discardableResult
    func send(_ sql: String, _ arguments: [any PostgresArgument] = []) -> EventLoopFuture<PostgresQueryResult> {
        connection.query(Self.query(sql, arguments), logger: logger)
    }

    /// Runs several statements one after the other, without arguments: what a migration is.
    func script(_ sql: String) throws {
        for statement in Self.statements(sql) { try execute(statement) }
    }

    /// The statements of a script: each ends with a `;` at the end of a line outside a
    /// dollar-quoted body (a function's `$$ … $$`).
    static func statements(_ script: String) -> [String] {
        var statements: [String] = []
        var current: [Substring] = []
        var quoted = false
        for line in script.split(separator: "\n", omittingEmptySubsequences: false) {
            current.append(line)
            if line.components(separatedBy: "$$").count % 2 == 0 { quoted.toggle() }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !quoted, trimmed.hasSuffix(";") {
                statements.append(current.joined(separator: "\n"))
                current = []
            }
        }
        let rest = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }

    /// The first column of every row.
    func column<T: PostgresDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any PostgresArgument] = []) throws -> [T] {
        try run(sql, arguments).rows.map { try $0.makeRandomAccess()[0].decode(T.self) }
    }

    /// The first column of the first row, if there is one.
    func value<T: PostgresDecodable>(_ type: T.Type, _ sql: String, _ arguments: [any PostgresArgument] = []) throws -> T?
    where T._DecodableType == T {
        guard let row = try run(sql, arguments).rows.first else { return nil }
        return try row.makeRandomAccess()[0].decode(T?.self)
    }

    /// Calls `body` with the rows of `sql` in consecutive batches of at most `size`, read
    /// through a cursor, so a large table is never held at once. Inside a transaction only.
    func batches(
        _ sql: String, _ arguments: [any PostgresArgument] = [], size: Int = 8_192, _ body: ([PostgresRandomAccessRow]) throws -> Void
    ) throws {
        let cursor = "tether_cursor"
        try execute("DECLARE \(cursor) NO SCROLL CURSOR FOR \(sql)", arguments)
        defer { _ = try? execute("CLOSE \(cursor)") }
        while true {
            let rows = try query("FETCH FORWARD \(size) FROM \(cursor)")
            if rows.isEmpty { return }
            try body(rows)
            if rows.count < size { return }
        }
    }

    private func run(_ sql: String, _ arguments: [any PostgresArgument]) throws -> PostgresQueryResult {
        try wait(for: connection.query(Self.query(sql, arguments), logger: logger))
    }

    /// The answer of a statement sent on this connection, once it comes.
    ///
    /// postgres-nio drops a statement written to a connection the server has already closed
    /// (it ended a transaction left idle, or was restarted), and its answer never comes: the
    /// wait looks at the connection every second, and gives up a second after it closed.
    func wait(for answer: EventLoopFuture<PostgresQueryResult>) throws -> PostgresQueryResult {
        let done = DispatchSemaphore(value: 0)
        answer.whenComplete { _ in done.signal() }
        var closedSeen = false
        while done.wait(timeout: .now() + .seconds(1)) == .timedOut {
            guard connection.isClosed else { continue }
            if closedSeen { throw PostgresFailure(description: "the server closed the connection before it answered") }
            closedSeen = true
        }
        return try answer.wait()
    }

    static func query(_ sql: String, _ arguments: [any PostgresArgument]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments { argument.bind(into: &binds) }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: binds)
    }

    /// `sql` with each `?` replaced by `$1`, `$2`, … in order.
    static func numbered(_ sql: String) -> String {
        guard sql.contains("?") else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 8)
        var number = 0
        for character in sql {
            if character == "?" {
                number += 1
                out += "$\(number)"
            } else {
                out.append(character)
            }
        }
        return out
    }
}

/// The `WHERE` of a query made of the filters it was given: each a clause with at most one
/// placeholder, and its argument.
struct PostgresFilter {
    private(set) var clauses: [String] = []
    private(set) var arguments: [any PostgresArgument] = []

    /// Adds `clause` (one `?`) with `value`; nothing when `value` is nil.
    mutating func add(_ clause: String, _ value: (some PostgresArgument)?) {
        guard let value else { return }
        clauses.append(clause)
        arguments.append(value)
    }

    /// Adds `clause`, which takes no argument.
    mutating func add(_ clause: String) { clauses.append(clause) }

    /// `a AND b …`, or `TRUE` when no filter was given.
    var condition: String { clauses.isEmpty ? "TRUE" : clauses.joined(separator: " AND ") }

    /// ` WHERE a AND b …`, or nothing when no filter was given.
    var sql: String { clauses.isEmpty ? "" : " WHERE " + condition }
}

/// A value bound to a statement's placeholder.
protocol PostgresArgument: Sendable {
    func bind(into bindings: inout PostgresBindings)
}

extension String: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) { bindings.append(self) }
}

extension Int: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) { bindings.append(Int64(self)) }
}

extension Int64: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) { bindings.append(self) }
}

extension Bool: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) { bindings.append(self) }
}

extension Data: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) { bindings.append(ByteBuffer(bytes: self)) }
}

extension Array: PostgresArgument where Element == String {
    func bind(into bindings: inout PostgresBindings) { bindings.append(self) }
}

extension Optional: PostgresArgument where Wrapped: PostgresArgument {
    func bind(into bindings: inout PostgresBindings) {
        switch self {
        case .some(let value): value.bind(into: &bindings)
        case .none: bindings.appendNull()
        }
    }
}

extension PostgresRandomAccessRow {
    /// Column `index` (from 0), decoded as `T`.
    func get<T: PostgresDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T {
        try self[index].decode(T.self)
    }
}

/// A one-dimensional `text[]` or `bigint[]` whose elements may be NULL, bound in PostgreSQL's
/// binary array format: how a bulk insert passes a column of many rows in one statement.
struct PostgresArray: PostgresArgument, PostgresDynamicTypeEncodable {
    private enum Elements: Sendable {
        case text([String?])
        case bigint([Int64?])
    }

    private let elements: Elements

    init(_ values: [String?]) { elements = .text(values) }
    init(_ values: [String]) { elements = .text(values) }
    init(_ values: [Int64?]) { elements = .bigint(values) }

    var psqlType: PostgresDataType {
        switch elements {
        case .text: .textArray
        case .bigint: .int8Array
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    func bind(into bindings: inout PostgresBindings) { bindings.append(self) }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        switch elements {
        case .text(let values):
            header(count: values.count, hasNull: values.contains(nil), element: .text, into: &buffer)
            for value in values {
                guard let value else {
                    buffer.writeInteger(Int32(-1))
                    continue
                }
                buffer.writeInteger(Int32(value.utf8.count))
                buffer.writeString(value)
            }
        case .bigint(let values):
            header(count: values.count, hasNull: values.contains(nil), element: .int8, into: &buffer)
            for value in values {
                guard let value else {
                    buffer.writeInteger(Int32(-1))
                    continue
                }
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(value)
            }
        }
    }

    /// Dimensions, the null flag, the element type, and the one dimension's length and lower bound.
    private func header(count: Int, hasNull: Bool, element: PostgresDataType, into buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(count == 0 ? 0 : 1))
        buffer.writeInteger(Int32(hasNull ? 1 : 0))
        buffer.writeInteger(element.rawValue)
        guard count > 0 else { return }
        buffer.writeInteger(Int32(count))
        buffer.writeInteger(Int32(1))
    }
}
