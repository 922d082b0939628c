import CLDAP
import Foundation

/// A search in progress, read one page at a time with the Simple Paged Results control
/// (RFC 2696).
///
/// Only a search whose every page succeeded is complete; a failure on any page throws, and
/// the caller must then treat the whole read as unknown, never as a list of absences.
public struct PagedSearch: Sendable {
    /// What is searched.
    public let request: LDAPSearchRequest
    /// Entries per page; nil asks for everything in one answer.
    public let pageSize: Int?
    var messageID: Int32 = -1
    /// True once the last page was read.
    public internal(set) var isDone = false
    /// Pages read so far.
    public internal(set) var pages = 0
    /// Search continuation references seen and not followed (RFC 4511 §4.5.3).
    public internal(set) var references = 0
    /// The server's estimate of the whole result's size (RFC 2696), 0 when it gives none.
    public internal(set) var estimatedTotal = 0

    var layout: AttributeLayout { request.layout }

    init(request: LDAPSearchRequest, pageSize: Int?) {
        self.request = request
        self.pageSize = pageSize
    }
}

/// The OID of the Simple Paged Results control (RFC 2696).
let pagedResultsOID = "1.2.840.113556.1.4.319"
/// The OID of Active Directory's Show Deleted control (LDAP_SERVER_SHOW_DELETED_OID).
let showDeletedOID = "1.2.840.113556.1.4.417"

extension LDAPConnection {
    /// Sends the first page's request of `request`.
    ///
    /// - Parameter pageSize: entries per page (RFC 2696); nil for an unpaged search.
    public func startSearch(_ request: LDAPSearchRequest, pageSize: Int?) throws -> PagedSearch {
        // Not under a syncrepl session on this connection: its messages must come one by one.
        if sync == nil { readAhead(true) }
        var search = PagedSearch(request: request, pageSize: pageSize)
        search.messageID = try send(request, pageSize: pageSize, cookie: nil)
        return search
    }

    /// Waits for the next page and returns its entries; sets `isDone` after the last one.
    ///
    /// The next page is requested before this page's entries are decoded, so the server
    /// prepares it while Tether maps this one.
    ///
    /// - Throws: ``LDAPError`` (`.timeout` when a page takes longer than `timeout`,
    ///   `.unreachable` when the connection broke, `.referral`, `.search`), or
    ///   `CancellationError` when the calling task is cancelled.
    public func nextPage(_ search: inout PagedSearch) throws -> [LDAPEntry] {
        guard !search.isDone else { return [] }
        guard let ld = handle else { throw LDAPError(.unreachable, "the connection to \(options.url) is closed") }
        let what = "searching \(search.request.base) for \(search.request.filter)"
        let chain = try awaitPage(ld, messageID: search.messageID, what: what)
        defer { ldap_msgfree(chain) }

        var resultMessage: OpaquePointer?
        var message = ldap_first_message(ld, chain)
        while let current = message {
            if ber_tag_t(ldap_msgtype(current)) == LDAP_RES_SEARCH_RESULT { resultMessage = current }
            message = ldap_next_message(ld, current)
        }
        guard let resultMessage else {
            throw LDAPError(.search, "\(what): the answer ended without a result")
        }
        let (cookie, estimate) = try parseResult(ld, resultMessage, what: what)
        if estimate > 0 { search.estimatedTotal = estimate }
        search.pages += 1
        if let cookie, !cookie.isEmpty, search.pageSize != nil {
            search.messageID = try send(search.request, pageSize: search.pageSize, cookie: cookie)
        } else {
            search.isDone = true
        }

        var entries: [LDAPEntry] = []
        entries.reserveCapacity(search.pageSize ?? 16)
        message = ldap_first_message(ld, chain)
        while let current = message {
            switch ber_tag_t(ldap_msgtype(current)) {
            case LDAP_RES_SEARCH_ENTRY:
                // An entry that cannot be parsed at all is not left out (its person would look
                // deleted): the page fails, and with it the read.
                guard let entry = LDAPEntry.read(ld, current, layout: search.layout) else {
                    throw LDAPError(
                        .search, "the server sent an entry Tether cannot parse in the search of \(search.request.base)")
                }
                entries.append(entry)
            case LDAP_RES_SEARCH_REFERENCE:
                search.references += 1
            default:
                break
            }
            message = ldap_next_message(ld, current)
        }
        return entries
    }

    /// Abandons a search that will not be read to its end.
    public func abandon(_ search: PagedSearch) {
        guard let ld = handle, !search.isDone, search.messageID >= 0 else { return }
        ldap_abandon_ext(ld, search.messageID, nil, nil)
    }

    /// Sends one search request, with the paged results control when `pageSize` is set.
    func send(_ request: LDAPSearchRequest, pageSize: Int?, cookie: Data?) throws -> Int32 {
        guard let ld = handle else { throw LDAPError(.unreachable, "the connection to \(options.url) is closed") }
        var control: UnsafeMutablePointer<LDAPControl>?
        if let pageSize {
            var bytes = [UInt8](cookie ?? Data())
            let rc = bytes.withUnsafeMutableBytes { buffer -> Int32 in
                var value = berval(
                    bv_len: ber_len_t(buffer.count),
                    bv_val: buffer.baseAddress?.assumingMemoryBound(to: CChar.self))
                if cookie == nil { return ldap_create_page_control(ld, ber_int_t(pageSize), nil, 0, &control) }
                return ldap_create_page_control(ld, ber_int_t(pageSize), &value, 0, &control)
            }
            guard rc == LDAP_SUCCESS else { throw failure(.search, "cannot create the paged results control", rc) }
        }
        defer { if let control { ldap_control_free(control) } }
        var showDeleted: UnsafeMutablePointer<LDAPControl>?
        if request.showDeleted {
            // Critical: a server that cannot show deleted objects must say so, not answer as
            // if there were none.
            let rc = ldap_control_create(showDeletedOID, 1, nil, 0, &showDeleted)
            guard rc == LDAP_SUCCESS else { throw failure(.search, "cannot create the Show Deleted control", rc) }
        }
        defer { if let showDeleted { ldap_control_free(showDeleted) } }
        var messageID: Int32 = -1
        let attributes = request.requestedAttributes.map { strdup($0) } + [nil]
        defer { for pointer in attributes { free(pointer) } }
        var controls: [UnsafeMutablePointer<LDAPControl>?] = [control, showDeleted].compactMap { $0 } + [nil]
        let rc = attributes.withUnsafeBufferPointer { attrs in
            controls.withUnsafeMutableBufferPointer { controls in
                ldap_search_ext(
                    ld, request.base, request.scope.value, request.filter,
                    UnsafeMutablePointer(mutating: attrs.baseAddress), 0,
                    controls.count == 1 ? nil : controls.baseAddress, nil, nil, 0, &messageID)
            }
        }
        guard rc == LDAP_SUCCESS else {
            let code: LDAPError.Code = rc == LDAP_FILTER_ERROR ? .configuration : .search
            throw failure(code, "cannot send the search of \(request.base) for \(request.filter)", rc)
        }
        return messageID
    }

    /// Waits up to `timeout` for every message of one page, in short steps so that
    /// cancellation is noticed promptly.
    private func awaitPage(_ ld: OpaquePointer, messageID: Int32, what: String) throws -> OpaquePointer {
        let clock = ContinuousClock()
        let deadline = clock.now + options.timeout
        while true {
            if Task.isCancelled {
                ldap_abandon_ext(ld, messageID, nil, nil)
                throw CancellationError()
            }
            let remaining = deadline - clock.now
            var wait = Self.timeValue(min(.milliseconds(250), max(remaining, .milliseconds(1))))
            var chain: OpaquePointer?
            let rc = ldap_result(ld, messageID, LDAP_MSG_ALL, &wait, &chain)
            if rc > 0, let chain { return chain }
            if rc == 0 {
                if clock.now >= deadline {
                    ldap_abandon_ext(ld, messageID, nil, nil)
                    throw LDAPError(
                        .timeout, "\(what): no complete answer within \(options.timeout)", resultCode: LDAP_TIMEOUT)
                }
                continue
            }
            throw failure(.unreachable, "\(what) failed", lastResultCode())
        }
    }

    /// Checks a search result message; returns the paged results cookie, if any.
    private func parseResult(_ ld: OpaquePointer, _ message: OpaquePointer, what: String) throws -> (Data?, Int) {
        var code: Int32 = 0
        var matched: UnsafeMutablePointer<CChar>?
        var diagnostic: UnsafeMutablePointer<CChar>?
        var referrals: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
        let rc = ldap_parse_result(ld, message, &code, &matched, &diagnostic, &referrals, &controls, 0)
        defer {
            if let matched { ldap_memfree(matched) }
            if let diagnostic { ldap_memfree(diagnostic) }
            if let referrals { ldap_memvfree(UnsafeMutablePointer(OpaquePointer(referrals))) }
            if let controls { ldap_controls_free(controls) }
        }
        guard rc == LDAP_SUCCESS else { throw failure(.search, "\(what): unreadable result", rc) }
        guard code == LDAP_SUCCESS else {
            var urls: [String] = []
            if let referrals {
                var index = 0
                while let url = referrals[index] {
                    urls.append(String(cString: url))
                    index += 1
                }
            }
            throw LDAPError(
                .forResult(code, fallback: .search), what, resultCode: code,
                matchedDN: matched.map { String(cString: $0) }, diagnosticMessage: diagnostic.map { String(cString: $0) },
                referrals: urls)
        }
        guard let controls, let found = ldap_control_find(pagedResultsOID, controls, nil) else { return (nil, 0) }
        var count: ber_int_t = 0
        var cookie = berval()
        guard ldap_parse_pageresponse_control(ld, found, &count, &cookie) == LDAP_SUCCESS else {
            throw LDAPError(.search, "\(what): unreadable paged results control")
        }
        defer { if let bytes = cookie.bv_val { ber_memfree(bytes) } }
        return (Data(berval: cookie), Int(count))
    }
}
