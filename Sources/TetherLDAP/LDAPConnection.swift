import CLDAP
import Foundation
import Logging
import Synchronization
import TetherConfig
import TetherCore

/// How to reach and authenticate to a directory server.
public struct LDAPConnectionOptions: Sendable, Hashable {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    public var url: String
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    public var startTLS: Bool
    /// Verify the server's certificate and name; off only when configured so (and logged).
    public var tlsVerify: Bool
    /// CA bundle that verifies the server; nil uses libldap's default (the system's).
    public var caFile: String?
    /// The DN to bind as; nil binds anonymously.
    public var bindDN: String?
    /// The file holding the bind password, read at each connection so rotation needs no restart.
    public var bindPasswordFile: String?
    /// Limit for connecting, binding, and waiting for each answer.
    public var timeout: Duration

    /// Creates connection options.
    public init(
        url: String, startTLS: Bool = false, tlsVerify: Bool = true, caFile: String? = nil,
        bindDN: String? = nil, bindPasswordFile: String? = nil, timeout: Duration = .seconds(30)
    ) {
        self.url = url
        self.startTLS = startTLS
        self.tlsVerify = tlsVerify
        self.caFile = caFile
        self.bindDN = bindDN
        self.bindPasswordFile = bindPasswordFile
        self.timeout = timeout
    }

    /// The connection part of an LDAP source's configuration.
    public init(_ configuration: LDAPConfiguration) {
        self.init(
            url: configuration.url, startTLS: configuration.startTLS, tlsVerify: configuration.tlsVerify,
            caFile: configuration.caFile, bindDN: configuration.bindDN,
            bindPasswordFile: configuration.bindPasswordFile, timeout: configuration.timeout)
    }

    /// Whether the URL is `ldaps://`.
    public var usesLDAPS: Bool { url.lowercased().hasPrefix("ldaps://") }
}

/// A search: base, scope, filter and the attributes to return.
public struct LDAPSearchRequest: Sendable, Hashable {
    /// How far below the base a search reaches.
    public enum Scope: Sendable, Hashable {
        case base, one, sub

        var value: Int32 {
            switch self {
            case .base: LDAP_SCOPE_BASE
            case .one: LDAP_SCOPE_ONELEVEL
            case .sub: LDAP_SCOPE_SUBTREE
            }
        }
    }

    /// The DN searched under, and how deep.
    public var base: String
    public var scope: Scope
    /// An RFC 4515 filter; values in it must have gone through ``LDAPFilter/escape(_:)``.
    public var filter: String
    /// Attributes to return; operational ones (`entryUUID`, `entryCSN`) must be named.
    public let attributes: [String]
    /// Attributes whose values are kept as bytes (lowercased names).
    public let binaryAttributes: Set<String>
    /// Where each asked-for attribute goes in the entries this search reads.
    let layout: AttributeLayout
    /// Attributes (lowercased) asked for in ranges of ``rangeSize`` values from the first
    /// request (`member;range=0-499`), as Active Directory's incremental retrieval of
    /// multi-valued attributes allows; entries still hold them under their plain names once
    /// ``RangedValues`` has followed the ranges.
    public var rangedAttributes: Set<String> = []
    /// Values per range request for ``rangedAttributes``, and for the requests that follow
    /// any range; nil lets the server choose (its `MaxValRange`).
    public var rangeSize: Int?
    /// Active Directory: also return deleted objects (the Show Deleted control), for reading
    /// tombstones in the Deleted Objects container.
    public var showDeleted = false

    /// Creates a search request.
    public init(base: String, scope: Scope = .sub, filter: String, attributes: [String], binaryAttributes: Set<String> = []) {
        self.base = base
        self.scope = scope
        self.filter = filter
        self.attributes = attributes
        self.binaryAttributes = binaryAttributes
        self.layout = AttributeLayout(attributes, binary: binaryAttributes)
    }

    /// Requests are equal when they search the same way, whatever their layout object.
    public static func == (a: LDAPSearchRequest, b: LDAPSearchRequest) -> Bool {
        a.base == b.base && a.scope == b.scope && a.filter == b.filter && a.attributes == b.attributes
            && a.binaryAttributes == b.binaryAttributes && a.rangedAttributes == b.rangedAttributes
            && a.rangeSize == b.rangeSize && a.showDeleted == b.showDeleted
    }

    /// The attribute descriptions sent to the server: ranged ones with their first range.
    var requestedAttributes: [String] {
        guard let rangeSize, !rangedAttributes.isEmpty else { return attributes }
        return attributes.map { name in
            rangedAttributes.contains(name.lowercased()) ? ValueRange.description(name, low: 0, size: rangeSize) : name
        }
    }

    /// Hashes what ``==`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(base)
        hasher.combine(filter)
        hasher.combine(attributes)
    }
}

/// One connection to a directory server, confined to a thread of its own.
///
/// Each `LDAP*` handle belongs to exactly one `LDAPConnection`; the actor runs on an
/// ``ThreadExecutor``, so libldap's blocking calls run on that thread and never on
/// Swift's cooperative pool. Every `LDAPMessage`, `BerElement` and `berval` libldap hands
/// out is freed before a method returns.
public actor LDAPConnection {
    nonisolated let executor: ThreadExecutor
    /// This actor runs on its own thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The options this connection was made with.
    public nonisolated let options: LDAPConnectionOptions
    let logger: Logger
    /// The open `LDAP*`, if any.
    var handle: OpaquePointer? { owner?.ld }
    private var owner: LDAPHandle?
    /// The socket, for ``interrupt()`` from any thread; -1 when closed.
    nonisolated let socket = Mutex<Int32>(-1)
    /// The syncrepl state of this connection, when one runs (see `LDAPConnection+Sync`).
    var sync: SyncState?

    /// Creates a connection; nothing happens on the network until ``open()``.
    ///
    /// The first connection makes the process ignore SIGPIPE: libldap writes to its sockets
    /// with plain `write`, and a server that went away must fail the operation, not kill
    /// the daemon.
    public init(options: LDAPConnectionOptions, logger: Logger) {
        _ = Self.ignoreBrokenPipes
        self.options = options
        self.logger = logger
        self.executor = ThreadExecutor(name: "tether-ldap")
    }

    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    // A plain deinit: `isolated deinit` makes Swift 6.3 fail with "circular reference" when
    // another module is built in release mode. The handle's owner unbinds on release, when
    // no call can be running any more.
    deinit {
        executor.stop()
    }

    /// Connects, sets up TLS (ldaps:// or StartTLS) and binds.
    ///
    /// - Throws: ``LDAPError`` with code `.configuration`, `.unreachable`, `.tls`, `.bind` or `.timeout`.
    public func open() throws {
        close()
        var ld: OpaquePointer?
        let rc = ldap_initialize(&ld, options.url)
        guard rc == LDAP_SUCCESS, let ld else {
            throw LDAPError(.configuration, "cannot use LDAP URL \(options.url)", resultCode: rc)
        }
        owner = LDAPHandle(ld)
        do {
            try configure(ld)
            if options.startTLS && !options.usesLDAPS {
                let connected = ldap_connect(ld)
                guard connected == LDAP_SUCCESS else {
                    throw failure(.unreachable, "cannot connect to \(options.url)", connected)
                }
                let started = ldap_start_tls_s(ld, nil, nil)
                guard started == LDAP_SUCCESS else {
                    var error = failure(.tls, "StartTLS with \(options.url) failed; \(trustHint)", started)
                    error.code = .tls
                    throw error
                }
            } else {
                let connected = ldap_connect(ld)
                guard connected == LDAP_SUCCESS else {
                    // libldap reports a refused certificate like a dead server; if the port
                    // answers plain TCP, it was the TLS handshake that failed.
                    if options.usesLDAPS, Self.acceptsTCP(options.url, timeout: options.timeout) {
                        var error = failure(.tls, "the TLS handshake with \(options.url) failed; \(trustHint)", connected)
                        error.code = .tls
                        throw error
                    }
                    throw failure(.unreachable, "cannot connect to \(options.url)", connected)
                }
            }
            try bind(ld)
            var fd: Int32 = -1
            ldap_get_option(ld, LDAP_OPT_DESC, &fd)
            socket.withLock { $0 = fd }
        } catch {
            close()
            throw error
        }
    }

    /// Whether the open connection reads the server's messages through a read-ahead buffer.
    package var readsAhead: Bool { handle.map { tether_ldap_reads_ahead($0) != 0 } ?? false }

    /// Reads the server's messages in blocks of 64 KiB, or message by message.
    ///
    /// Paged searches read ahead: a page of 500 entries then takes a few read(2) calls instead
    /// of 1,500 system calls. A syncrepl session must not: libldap's sync API hands each batch
    /// of received messages to its callbacks as if it were one message, and a buffer makes
    /// batches of many. Either way works the same, only with more or fewer system calls.
    func readAhead(_ on: Bool) {
        guard let ld = handle, tether_ldap_set_read_ahead(ld, on ? 65536 : 0) != 0 else { return }
        logger.debug("libldap kept its read-ahead buffer as it was", metadata: ["ldap.readAhead": "\(on)"])
    }

    /// Unbinds and closes the connection; safe to call when it is not open.
    public func close() {
        socket.withLock { $0 = -1 }
        if let sync {
            sync.destroy()
            self.sync = nil
        }
        owner?.unbind()
        owner = nil
    }

    /// Breaks a blocking call in progress (a page wait, a syncrepl poll) by shutting the socket
    /// down; the call then fails as `.unreachable`. Callable from any thread.
    public nonisolated func interrupt() {
        socket.withLock { fd in
            if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// The root DSE: `supportedControl`, `supportedExtension`, `namingContexts`, vendor and, on
    /// Active Directory, `highestCommittedUSN`.
    public func rootDSE() throws -> LDAPEntry {
        let request = LDAPSearchRequest(
            base: "", scope: .base, filter: "(objectClass=*)",
            attributes: [
                "supportedControl", "supportedExtension", "namingContexts", "vendorName", "vendorVersion",
                "highestCommittedUSN", "supportedLDAPVersion", "dsServiceName", "supportedCapabilities",
            ])
        var search = try startSearch(request, pageSize: nil)
        var entries: [LDAPEntry] = []
        while !search.isDone { entries += try nextPage(&search) }
        return entries.first ?? LDAPEntry(dn: "")
    }

    // MARK: Set-up

    private func configure(_ ld: OpaquePointer) throws {
        var version: Int32 = LDAP_VERSION3
        try set(ld, LDAP_OPT_PROTOCOL_VERSION, &version, "protocol version")
        // Referrals are never chased: a referral answer is an error the operator must see.
        guard ldap_set_option(ld, LDAP_OPT_REFERRALS, tether_ldap_opt_off()) == LDAP_OPT_SUCCESS,
            ldap_set_option(ld, LDAP_OPT_RESTART, tether_ldap_opt_on()) == LDAP_OPT_SUCCESS
        else { throw LDAPError(.configuration, "cannot set libldap options") }
        var limit = Self.timeValue(options.timeout)
        try set(ld, LDAP_OPT_NETWORK_TIMEOUT, &limit, "network timeout")
        try set(ld, LDAP_OPT_TIMEOUT, &limit, "operation timeout")
        // Notice a silently dead server on a long syncrepl session.
        var idle: Int32 = 60, probes: Int32 = 3, interval: Int32 = 10
        _ = ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_IDLE, &idle)
        _ = ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_PROBES, &probes)
        _ = ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, &interval)
        var userTimeout = UInt32(clamping: Self.milliseconds(options.timeout))
        _ = ldap_set_option(ld, LDAP_OPT_TCP_USER_TIMEOUT, &userTimeout)

        guard options.usesLDAPS || options.startTLS else { return }
        var require: Int32 = options.tlsVerify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER
        if !options.tlsVerify {
            logger.warning(
                "TLS certificate verification is off for the LDAP source (tlsVerify: false)",
                metadata: ["ldap.url": "\(options.url)"])
        }
        try set(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require, "TLS verification")
        if let caFile = options.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw LDAPError(.tls, "the CA file \(caFile) cannot be read; check caFile and its permissions")
            }
            let rc = caFile.withCString { ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, $0) }
            guard rc == LDAP_OPT_SUCCESS else { throw LDAPError(.tls, "libldap refused the CA file \(caFile)") }
        }
        // Per-handle TLS settings take effect only in a new TLS context.
        var isServer: Int32 = 0
        let rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &isServer)
        guard rc == LDAP_OPT_SUCCESS else {
            throw failure(.tls, "cannot create a TLS context (check caFile: \(options.caFile ?? "system default"))", rc)
        }
    }

    private func bind(_ ld: OpaquePointer) throws {
        guard let bindDN = options.bindDN else { return }
        var password: [UInt8] = []
        if let file = options.bindPasswordFile {
            do throws(SecretFile.Unusable) {
                password = try SecretFile.read(file)
            } catch {
                throw LDAPError(.bind, "the bind password file \(error.description)")
            }
        }
        defer { for index in password.indices { password[index] = 0 } }
        let rc = password.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var credentials = berval(
                bv_len: ber_len_t(buffer.count),
                bv_val: buffer.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) })
            return ldap_sasl_bind_s(ld, bindDN, nil, &credentials, nil, nil, nil)
        }
        guard rc == LDAP_SUCCESS else {
            throw failure(.bind, "binding to \(options.url) as \(bindDN) failed", rc)
        }
    }

    private func set(_ ld: OpaquePointer, _ option: Int32, _ value: UnsafeMutableRawPointer, _ what: String) throws {
        guard ldap_set_option(ld, option, value) == LDAP_OPT_SUCCESS else {
            throw LDAPError(.configuration, "cannot set the libldap \(what)")
        }
    }

    // MARK: Errors

    /// An error for result `rc`, with the handle's diagnostic message and matched DN.
    func failure(_ code: LDAPError.Code, _ message: String, _ rc: Int32) -> LDAPError {
        var matched: String?
        if let ld = handle {
            var text: UnsafeMutablePointer<CChar>?
            if ldap_get_option(ld, LDAP_OPT_MATCHED_DN, &text) == LDAP_OPT_SUCCESS, let text {
                matched = String(cString: text)
                ldap_memfree(text)
            }
        }
        return LDAPError(
            .forResult(rc, fallback: code), message, resultCode: rc, matchedDN: matched,
            diagnosticMessage: handle.flatMap(diagnostic))
    }

    /// The diagnostic message libldap or the server left on `ld`, if any.
    func diagnostic(_ ld: OpaquePointer) -> String? {
        var text: UnsafeMutablePointer<CChar>?
        guard ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text) == LDAP_OPT_SUCCESS, let text else { return nil }
        defer { ldap_memfree(text) }
        let message = String(cString: text)
        // GnuTLS's text for errors it has no name for says nothing useful.
        return message.isEmpty || message == "(unknown error code)" ? nil : message
    }

    /// The result code libldap recorded on the handle after a failed call.
    func lastResultCode() -> Int32 {
        guard let ld = handle else { return LDAP_SERVER_DOWN }
        var rc: Int32 = 0
        ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &rc)
        return rc == 0 ? LDAP_SERVER_DOWN : rc
    }

    /// What to check when a server's certificate is refused.
    private var trustHint: String {
        "the server's certificate is not signed by a CA in \(options.caFile ?? "the system's CA bundle") "
            + "or does not name the host in the URL (check caFile and the certificate's subjectAltName)"
    }

    /// Whether the host and port of `url` accept a TCP connection within `timeout`.
    static func acceptsTCP(_ url: String, timeout: Duration) -> Bool {
        var description: UnsafeMutablePointer<LDAPURLDesc>?
        guard ldap_url_parse(url, &description) == LDAP_SUCCESS, let description else { return false }
        defer { ldap_free_urldesc(description) }
        let host = description.pointee.lud_host.map { String(cString: $0) } ?? "localhost"
        let port = description.pointee.lud_port
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host.isEmpty ? "localhost" : host, String(port), &hints, &found) == 0, let found else {
            return false
        }
        defer { freeaddrinfo(found) }
        var candidate: UnsafeMutablePointer<addrinfo>? = found
        while let address = candidate {
            let fd = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            if fd >= 0 {
                var limit = timeValue(timeout)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                let connected = connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0
                Glibc.close(fd)
                if connected { return true }
            }
            candidate = address.pointee.ai_next
        }
        return false
    }

    static func timeValue(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Owns one `LDAP*` and unbinds it once, on ``unbind()`` or when released.
final class LDAPHandle {
    let ld: OpaquePointer
    private var bound = true

    init(_ ld: OpaquePointer) { self.ld = ld }

    func unbind() {
        guard bound else { return }
        bound = false
        ldap_unbind_ext(ld, nil, nil)
    }

    deinit { unbind() }
}
