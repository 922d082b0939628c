import CLDAP
import Foundation
import Synchronization

/// OIDs of the Content Synchronization Operation (RFC 4533); libldap builds them by string
/// concatenation, which Swift does not import.
enum SyncOID {
    /// The Sync Request control a server lists in `supportedControl` when it offers syncrepl.
    static let request = "1.3.6.1.4.1.4203.1.9.1.1"
    /// The Sync Info intermediate response.
    static let info = "1.3.6.1.4.1.4203.1.9.1.4"
}

/// What one syncrepl message said (RFC 4533 §2.3–2.5), keyed by entryUUID.
public enum SyncEvent: Sendable, Hashable {
    /// An entry added or modified (a rename is a modification): its whole current state.
    case entry(uuid: String, LDAPEntry)
    /// An entry unchanged since the cookie (present phase).
    case present(uuid: String)
    /// An entry deleted or moved out of the searched scope.
    case delete(uuid: String)
    /// Entries unchanged since the cookie, as a syncIdSet.
    case presentIDs([String])
    /// Entries deleted, as a syncIdSet.
    case deleteIDs([String])
    /// A present phase ended before the refresh did: every entry neither present nor sent
    /// since the refresh began is gone (RFC 4533 §3.4).
    case presentPhaseEnded
    /// The refresh stage finished. With `presentPhase` true, every entry neither present nor
    /// sent in this refresh is gone (RFC 4533 §3.4); false, deletions were sent; nil, the
    /// Sync Info message could not be read, and nothing may be taken as deleted for it.
    case refreshDone(presentPhase: Bool?)
    /// The server ended the search with this result code (e.g. e-syncRefreshRequired, 4096).
    case searchDone(resultCode: Int32)
}

/// The choice a Sync Info message (`syncInfoValue`, RFC 4533 §2.5) carries.
enum SyncInfoKind: Sendable, Hashable {
    case newCookie, refreshDelete, refreshPresent, syncIdSet

    /// Reads the BER of a `syncInfoValue`; nil unless it is one well-formed element of a
    /// known choice, whose length matches the bytes exactly. A message that cannot be read
    /// is never taken for a refreshPresent, which would delete every entry not named in it.
    init?(_ bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard let (tag, content) = Self.element(bytes[...]), content.endIndex == bytes.endIndex else { return nil }
        switch tag {
        case 0x80: self = .newCookie
        case 0xA1, 0xA2:
            // SEQUENCE { cookie OCTET STRING OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE }
            var rest = content
            var expected: [UInt8] = [0x04, 0x01]
            while !rest.isEmpty {
                guard let (inner, value) = Self.element(rest), let position = expected.firstIndex(of: inner) else { return nil }
                if inner == 0x01, value.count != 1 { return nil }
                expected.removeFirst(position + 1)
                rest = rest[value.endIndex...]
            }
            self = tag == 0xA1 ? .refreshDelete : .refreshPresent
        case 0xA3: self = .syncIdSet
        default: return nil
        }
    }

    /// The tag and content of the BER element at the start of `bytes`, if its length fits.
    private static func element(_ bytes: ArraySlice<UInt8>) -> (tag: UInt8, content: ArraySlice<UInt8>)? {
        guard bytes.count >= 2 else { return nil }
        let tag = bytes[bytes.startIndex]
        var index = bytes.startIndex + 1
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard (1...4).contains(count), bytes.endIndex - index >= count else { return nil }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(bytes[index])
                index += 1
            }
        }
        guard length <= bytes.endIndex - index else { return nil }
        return (tag, bytes[index..<(index + length)])
    }
}

/// One syncrepl message and the cookie that covers it, when the message brought a new one.
public struct SyncMessage: Sendable, Hashable {
    /// What the message said.
    public var event: SyncEvent
    /// The resume point after this message; store it only once the message is applied.
    public var cookie: Data?
}

/// Hands a refresh stage's messages on in batches while it runs, so that a whole directory's
/// entries are never held at once: called on the thread that reads them.
public struct SyncDelivery: Sendable {
    /// Messages in a batch.
    public let every: Int
    public let deliver: @Sendable ([SyncMessage]) -> Void

    public init(every: Int, _ deliver: @escaping @Sendable ([SyncMessage]) -> Void) {
        self.every = max(1, every)
        self.deliver = deliver
    }
}

/// Counts syncrepl messages as they arrive, so a watchdog can tell a stalled refresh from
/// a long one.
final class SyncProgress: Sendable {
    let messages = Mutex<UInt64>(0)
    /// Told the count every `every` messages, on the thread that reads them.
    let report: (@Sendable (UInt64) -> Void)?
    let every: UInt64

    init(every: Int = 1_000, report: (@Sendable (UInt64) -> Void)? = nil) {
        self.every = UInt64(max(1, every))
        self.report = report
    }

    /// Counts one more message.
    func received() {
        let count = messages.withLock { count in
            count &+= 1
            return count
        }
        if let report, count % every == 0 { report(count) }
    }
}

/// A running libldap `ldap_sync_t` and the collector its C callbacks write into.
final class SyncState {
    let sync: UnsafeMutablePointer<ldap_sync_t>
    let collector: SyncCollector

    init(sync: UnsafeMutablePointer<ldap_sync_t>, collector: SyncCollector) {
        self.sync = sync
        self.collector = collector
    }

    private var destroyed = false

    /// Frees the sync structure (base, filter, attributes, cookie) but not the connection.
    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        sync.pointee.ls_ld = nil
        sync.pointee.ls_private = nil
        ldap_sync_destroy(sync, 1)
        Unmanaged.passUnretained(collector).release()
    }

    deinit { destroy() }
}

/// Receives libldap's syncrepl callbacks on the connection's thread and turns them into
/// ``SyncMessage`` values.
final class SyncCollector {
    let layout: AttributeLayout
    let progress: SyncProgress
    var messages: [SyncMessage] = []
    var lastCookie: Data?
    /// Where the refresh stage's messages go as they arrive; nil in the persist stage.
    var delivery: SyncDelivery?

    init(layout: AttributeLayout, progress: SyncProgress, cookie: Data?, delivery: SyncDelivery?) {
        self.layout = layout
        self.progress = progress
        self.lastCookie = cookie
        self.delivery = delivery
    }

    func take() -> [SyncMessage] {
        defer { messages = [] }
        return messages
    }

    func append(_ event: SyncEvent, _ sync: UnsafeMutablePointer<ldap_sync_t>) {
        var cookie: Data?
        let current = sync.pointee.ls_cookie
        if current.bv_val != nil {
            let value = Data(berval: current)
            if value != lastCookie {
                cookie = value
                lastCookie = value
            }
        }
        messages.append(SyncMessage(event: event, cookie: cookie))
        progress.received()
        if let delivery, messages.count >= delivery.every { delivery.deliver(take()) }
    }

    static func collector(_ sync: UnsafeMutablePointer<ldap_sync_t>) -> SyncCollector? {
        guard let context = sync.pointee.ls_private else { return nil }
        return Unmanaged<SyncCollector>.fromOpaque(context).takeUnretainedValue()
    }

    // libldap's callbacks: C function pointers that capture nothing; context comes through ls_private.

    static let onEntry: ldap_sync_search_entry_f = { sync, message, uuid, phase in
        guard let sync, let message, let ld = sync.pointee.ls_ld, let collector = collector(sync) else { return LDAP_OTHER }
        let id = uuid.map { uuidString($0.pointee) } ?? ""
        switch phase {
        case LDAP_SYNC_CAPI_ADD, LDAP_SYNC_CAPI_MODIFY:
            guard let entry = LDAPEntry.read(ld, message, layout: collector.layout) else { return LDAP_OTHER }
            collector.append(.entry(uuid: id, entry), sync)
        case LDAP_SYNC_CAPI_PRESENT:
            collector.append(.present(uuid: id), sync)
        case LDAP_SYNC_CAPI_DELETE:
            collector.append(.delete(uuid: id), sync)
        default:
            return LDAP_OTHER
        }
        return LDAP_SUCCESS
    }

    static let onIntermediate: ldap_sync_intermediate_f = { sync, message, uuids, phase in
        guard let sync, let collector = collector(sync) else { return LDAP_OTHER }
        var ids: [String] = []
        if let uuids {
            var index = 0
            while uuids[index].bv_val != nil {
                ids.append(uuidString(uuids[index]))
                index += 1
            }
        }
        switch phase {
        case LDAP_SYNC_CAPI_PRESENTS_IDSET:
            collector.append(.presentIDs(ids), sync)
        case LDAP_SYNC_CAPI_DELETES_IDSET:
            collector.append(.deleteIDs(ids), sync)
        case LDAP_SYNC_CAPI_DONE:
            let kind = sync.pointee.ls_ld.flatMap { ld in message.flatMap { syncInfoKind(ld, $0) } }
            let present: Bool? =
                switch kind {
                case .refreshPresent: true
                case .refreshDelete: false
                case .newCookie, .syncIdSet, nil: nil
                }
            collector.append(.refreshDone(presentPhase: present), sync)
        case LDAP_SYNC_CAPI_PRESENTS:
            collector.append(.presentPhaseEnded, sync)
        default:
            // The end of a delete phase within the refresh: its deletions were already sent.
            break
        }
        return LDAP_SUCCESS
    }

    static let onResult: ldap_sync_search_result_f = { sync, message, _ in
        guard let sync, let collector = collector(sync) else { return LDAP_OTHER }
        var code: Int32 = LDAP_OTHER
        if let ld = sync.pointee.ls_ld, let message {
            ldap_parse_result(ld, message, &code, nil, nil, nil, nil, 0)
        }
        collector.append(.searchDone(resultCode: code), sync)
        return LDAP_SUCCESS
    }

    /// What the Sync Info message that ended the refresh was, or nil when it cannot be read.
    static func syncInfoKind(_ ld: OpaquePointer, _ message: OpaquePointer) -> SyncInfoKind? {
        var oid: UnsafeMutablePointer<CChar>?
        var data: UnsafeMutablePointer<berval>?
        guard ldap_parse_intermediate(ld, message, &oid, &data, nil, 0) == LDAP_SUCCESS else { return nil }
        defer {
            if let oid { ldap_memfree(oid) }
            if let data { ber_bvfree(data) }
        }
        guard let data, let bytes = data.pointee.bv_val else { return nil }
        return SyncInfoKind(UnsafeRawBufferPointer(start: bytes, count: Int(data.pointee.bv_len)))
    }

    /// The text form of a 16-byte entryUUID, as OpenLDAP writes the `entryUUID` attribute.
    static func uuidString(_ value: berval) -> String {
        guard value.bv_len == 16, let bytes = value.bv_val else { return String(berval: value) }
        let raw = UnsafeRawBufferPointer(start: bytes, count: 16)
        return UUIDText.format(Array(raw), littleEndianFields: false)
    }
}

extension LDAPConnection {
    /// Starts a refreshAndPersist syncrepl search (RFC 4533) from `cookie` with libldap's
    /// `ldap_sync_*` helpers and returns the refresh stage's messages once the server says
    /// the refresh is done: all of them, or with `delivery` those it has not handed on yet.
    ///
    /// The refresh has no overall time limit (a first refresh of a large directory is long);
    /// a caller that sees no ``progress`` for `timeout` calls ``interrupt()``.
    ///
    /// - Throws: ``LDAPError`` with `.syncRefreshRequired` when the server asks for a full
    ///   reload, `.staleResumePoint` when it refuses to resume from `cookie` (its state is
    ///   older), `.unreachable` when the connection broke, `.search` otherwise.
    func startSync(
        _ request: LDAPSearchRequest, cookie: Data?, progress: SyncProgress, delivery: SyncDelivery? = nil
    ) throws -> [SyncMessage] {
        guard let ld = handle else { throw LDAPError(.unreachable, "the connection to \(options.url) is closed") }
        if let sync {
            sync.destroy()
            self.sync = nil
        }
        readAhead(false)
        guard tether_ldap_reads_ahead(ld) == 0 else {
            throw LDAPError(.search, "cannot start syncrepl: the connection still holds unread bytes of an earlier search")
        }
        guard let raw = ldap_sync_initialize(nil) else { throw LDAPError(.search, "cannot allocate a syncrepl session") }
        let collector = SyncCollector(layout: request.layout, progress: progress, cookie: cookie, delivery: delivery)
        let state = SyncState(sync: raw, collector: collector)
        raw.pointee.ls_base = strdup(request.base)
        raw.pointee.ls_scope = request.scope.value
        raw.pointee.ls_filter = strdup(request.filter)
        // ldap_sync_destroy releases ls_attrs with ldap_memfree (free): allocate it with malloc.
        let count = request.attributes.count + 1
        let attributes = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * count)!
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: count)
        for (index, name) in request.attributes.enumerated() { attributes[index] = strdup(name) }
        attributes[count - 1] = nil
        raw.pointee.ls_attrs = attributes
        raw.pointee.ls_timeout = 1
        raw.pointee.ls_ld = ld
        raw.pointee.ls_private = Unmanaged.passRetained(collector).toOpaque()
        raw.pointee.ls_search_entry = SyncCollector.onEntry
        raw.pointee.ls_intermediate = SyncCollector.onIntermediate
        raw.pointee.ls_search_result = SyncCollector.onResult
        if let cookie, !cookie.isEmpty {
            let bytes = malloc(cookie.count)!
            cookie.copyBytes(to: bytes.assumingMemoryBound(to: UInt8.self), count: cookie.count)
            raw.pointee.ls_cookie = berval(bv_len: ber_len_t(cookie.count), bv_val: bytes.assumingMemoryBound(to: CChar.self))
        }
        sync = state

        let rc = ldap_sync_init(raw, Int32(LDAP_SYNC_REFRESH_AND_PERSIST))
        collector.delivery = nil
        let messages = collector.take()
        if rc == LDAP_SUCCESS { return messages }
        let what = "syncrepl refresh of \(request.base) for \(request.filter)"
        if rc == LDAP_SYNC_REFRESH_REQUIRED {
            throw LDAPError(
                .syncRefreshRequired, "\(what): the directory asked for a full reload (e-syncRefreshRequired)",
                resultCode: rc, diagnosticMessage: diagnostic(ld))
        }
        if rc == -1 { throw failure(.unreachable, "\(what) failed", lastResultCode()) }
        let error = failure(.search, "\(what) failed", rc)
        if let cookie, !cookie.isEmpty, rc > 0, error.code == .search {
            // OpenLDAP answers unwillingToPerform, "consumer state is newer than provider!";
            // other servers other codes. Whatever the code, a refusal to resume is retried
            // once without the cookie, so one that is not the cookie's fault fails again then.
            throw LDAPError(
                .staleResumePoint,
                "\(what): the directory refused to resume from Tether's syncrepl cookie, most often because its "
                    + "state is older than the cookie (restored from a backup, or a crash lost its latest writes)",
                resultCode: rc, matchedDN: error.matchedDN, diagnosticMessage: error.diagnosticMessage)
        }
        throw error
    }

    /// Waits up to a second for persist-stage messages and returns them (often none).
    ///
    /// - Throws: ``LDAPError`` when the connection broke or the server ended the search.
    func pollSync() throws -> [SyncMessage] {
        guard let sync else { throw LDAPError(.search, "no syncrepl session is running") }
        let rc = ldap_sync_poll(sync.sync)
        let messages = sync.collector.take()
        if rc == -1 { throw failure(.unreachable, "the syncrepl session with \(options.url) broke", lastResultCode()) }
        if rc == LDAP_SYNC_REFRESH_REQUIRED {
            throw LDAPError(.syncRefreshRequired, "the server requires a full reload", resultCode: rc)
        }
        for message in messages {
            if case .searchDone(let code) = message.event {
                throw LDAPError(
                    .forResult(code, fallback: .search), "the server ended the syncrepl session", resultCode: code)
            }
        }
        if rc != LDAP_SUCCESS { throw failure(.search, "the syncrepl session with \(options.url) failed", rc) }
        return messages
    }
}
