import Foundation
import TetherConfig

/// A complete read of the directory: every page of groups and people, mapped into a
/// ``DirectoryModel`` as the pages arrive.
///
/// Multi-valued attributes that come back in ranges (Active Directory's `MaxValRange`) are
/// followed to their last value before their page is mapped (``RangedValues``).
///
/// The connection fetches and decodes the next page while this one is mapped, so the
/// mapping runs beside the server's work instead of after it. Only a read whose every page
/// succeeded returns; any failure throws and the partial model is dropped.
public struct DirectoryReader: Sendable {
    /// Maps each entry as it arrives.
    public let mapper: EntryMapper
    /// Called after each page is mapped, with where the read stands.
    public var onPage: (@Sendable (ReadProgress) async -> Void)?
    /// Called after each range of a multi-valued attribute read in ranges (the entry's DN,
    /// the first value's index); the read waits for it.
    package var onRange: (@Sendable (_ dn: String, _ low: Int) async -> Void)?

    /// Creates a reader for `configuration`.
    public init(configuration: LDAPConfiguration) {
        self.mapper = EntryMapper(configuration)
    }

    /// Reads groups, then people, and returns the model with every person's index built.
    ///
    /// - Returns: the model, and the people entries that are in the directory but cannot be
    ///   mapped (no externalId, text that is not UTF-8): the read is incomplete for them.
    public func read(_ connection: LDAPConnection) async throws -> (model: DirectoryModel, unreadable: [UnreadableEntry]) {
        let configuration = mapper.configuration
        var groups: [DirectoryGroup] = []
        if let request = mapper.groupsRequest {
            try await pages(connection, request, kind: "groups") { entries, _ in
                for entry in entries { groups.append(mapper.group(entry)) }
            }
        }
        var model = DirectoryModel(nested: configuration.groups?.nested ?? true, users: [], groups: groups)
        var unreadable: [UnreadableEntry] = []
        try await pages(connection, mapper.usersRequest, kind: "users") { entries, estimate in
            if estimate > model.userCount + entries.count { model.reserveUsers(estimate) }
            // By index: each entry is read where it lies, not copied out of the page first.
            for index in entries.indices {
                switch mapper.mapUser(entries[index]) {
                case .user(let user): _ = model.upsertUser(user, collectAffected: false)
                case .unreadable(let entry): unreadable.append(entry)
                }
            }
        }
        return (model, unreadable)
    }

    /// Reads every page of `request`, handing each to `body` (with the server's estimate of
    /// the total, 0 when it gives none) while the next one is fetched.
    func pages(
        _ connection: LDAPConnection, _ request: LDAPSearchRequest, kind: String,
        _ body: ([LDAPEntry], Int) throws -> Void
    ) async throws {
        let pageSize = mapper.configuration.pageSize
        let handoff = PageHandoff()
        let producer = Task {
            var search: PagedSearch?
            do {
                search = try await connection.startSearch(request, pageSize: pageSize)
                while var current = search, !current.isDone {
                    var page = try await withTaskCancellationHandler {
                        try await connection.nextPage(&current)
                    } onCancel: {
                        connection.interrupt()
                    }
                    search = current
                    try await RangedValues.complete(&page, of: request, on: connection, afterRange: onRange)
                    try await handoff.put(page, estimate: current.estimatedTotal, isLast: current.isDone)
                }
            } catch {
                if let search { await connection.abandon(search) }
                await handoff.close()
                throw error
            }
        }
        do {
            var number = 0
            var read = 0
            while let (page, estimate) = try await withTaskCancellationHandler(
                operation: { try await handoff.take() }, onCancel: { producer.cancel() })
            {
                number += 1
                read += page.count
                try body(page, estimate)
                if let onPage {
                    await onPage(ReadProgress(search: kind, page: number, entries: page.count, read: read, estimate: estimate > 0 ? estimate : nil))
                }
            }
            try await producer.value
        } catch {
            producer.cancel()
            await handoff.close()
            _ = await producer.result
            throw error
        }
    }
}

/// Where a complete read stands after one page.
public struct ReadProgress: Sendable, Hashable {
    /// `users` or `groups`.
    public var search: String
    /// The page just mapped, from 1.
    public var page: Int
    /// The entries on that page.
    public var entries: Int
    /// The entries of this search read so far.
    public var read: Int
    /// The server's estimate of the search's entries; nil when it gives none (OpenLDAP does not).
    public var estimate: Int?
}

/// Hands pages from the reading task to the mapping one, one page ahead at most.
actor PageHandoff {
    typealias Page = (entries: [LDAPEntry], estimate: Int)
    private var page: Page?
    private var finished = false
    private var closed = false
    private var taker: CheckedContinuation<Page?, Never>?
    private var putter: CheckedContinuation<Void, Never>?

    /// Waits until the previous page was taken, then leaves this one.
    func put(_ entries: [LDAPEntry], estimate: Int, isLast: Bool) async throws {
        while page != nil, !closed {
            await withCheckedContinuation { putter = $0 }
        }
        if closed { throw CancellationError() }
        if let taker {
            self.taker = nil
            taker.resume(returning: (entries, estimate))
        } else {
            page = (entries, estimate)
        }
        if isLast { finish() }
    }

    /// The next page, or nil after the last one (or once closed).
    func take() async throws -> Page? {
        if let page {
            self.page = nil
            putter?.resume()
            putter = nil
            return page
        }
        if finished || closed { return nil }
        return await withCheckedContinuation { taker = $0 }
    }

    private func finish() {
        finished = true
        if page == nil, let taker {
            self.taker = nil
            taker.resume(returning: nil)
        }
    }

    /// Ends the exchange: a waiting producer fails, a waiting consumer gets nil.
    func close() {
        closed = true
        putter?.resume()
        putter = nil
        taker?.resume(returning: nil)
        taker = nil
    }
}
