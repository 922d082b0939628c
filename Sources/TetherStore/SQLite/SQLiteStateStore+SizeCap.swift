import GRDB

extension SQLiteStateStore {
    /// Caps the store at its current size plus `extraPages` pages (SQLite's `max_page_count`
    /// on the writer connection), or lifts the cap when `extraPages` is nil. A write past the
    /// cap fails as on a full disk: `SQLITE_FULL`, the whole transaction rolled back. Fault
    /// tests use it to fill the "disk" of a running daemon.
    /// - Returns: the store's page count when the cap was set.
    @discardableResult
    public func capSize(extraPages: Int?) async throws -> Int {
        do {
            return try await pool.writeWithoutTransaction { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                // SQLite's largest page count; max_page_count never drops below the file's size.
                let cap = extraPages.map { pages + max(0, $0) } ?? 4_294_967_294
                try db.execute(sql: "PRAGMA max_page_count = \(cap)")
                return pages
            }
        } catch {
            throw StoreError(.write, "capping the store at \(path) failed", underlying: error)
        }
    }
}
