import Foundation
import Hummingbird
import Logging
import NIOCore
import TetherCore
#if canImport(Glibc)
import Glibc
#endif

/// The request context on the admin socket: it keeps the channel so a route can ask the
/// kernel who is on the other end (SO_PEERCRED), which names the operator in the audit log.
/// A command another node handed over (SPEC §14) carries the operator that node named.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?
    /// The operator a follower named when it handed this command to the leader, and the node.
    let forwarded: (actor: Actor, node: String)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        forwarded = nil
    }

    /// A command `node` handed over, asked there by `actor`: verified by ``PeerSignature``.
    init(forwardedBy node: String, actor: Actor, logger: Logger) {
        coreContext = .init(source: PeerSource(logger: logger))
        channel = nil
        forwarded = (actor, node)
    }

    struct PeerSource: RequestContextSource {
        var logger: Logger
    }

    /// The operator on the other end of the socket, as the audit log names them:
    /// `operator:<unix user>`. A peer that cannot be named is refused (``UnnamedPeer``), so no
    /// change is ever recorded as `unknown`, a bare uid or the overflow user.
    func operatorActor() async throws -> Actor {
        if let forwarded { return forwarded.actor }
        guard let provider = channel as? SocketOptionProvider else {
            throw UnnamedPeer(reason: "the admin connection carries no peer credentials")
        }
        let credentials: PeerCredentials
        do {
            credentials = try await provider.unsafeGetSocketOption(
                level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
            ).get()
        } catch {
            throw UnnamedPeer(reason: "the kernel did not give the peer's credentials (\(error))")
        }
        return .operator(try Self.userName(uid: credentials.uid, overflowUID: Self.overflowUID))
    }

    /// The user name of `uid`; throws when the uid is the kernel's overflow uid (a user that
    /// is not mapped into the daemon's user namespace) or has no entry in the user database.
    static func userName(uid: uid_t, overflowUID: uid_t) throws -> String {
        if uid == overflowUID {
            throw UnnamedPeer(
                reason: "the peer arrives as uid \(uid), the kernel's overflow uid: the caller's user is not mapped into "
                    + "the daemon's user namespace (remove PrivateUsers= from the unit)")
        }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let result, let name = result.pointee.pw_name else {
            throw UnnamedPeer(reason: "the peer's uid \(uid) has no user name on this host")
        }
        return String(cString: name)
    }

    /// `/proc/sys/kernel/overflowuid`: what the kernel reports for a uid the reader's user
    /// namespace does not map (65534 unless changed).
    static let overflowUID: uid_t = {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/overflowuid", encoding: .utf8)) ?? ""
        return uid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 65_534
    }()
}

/// A change requested by a peer the daemon cannot name: refused with 403 before anything is
/// applied or recorded, because the audit log must say which Unix user made each change.
struct UnnamedPeer: HTTPResponseError, CustomStringConvertible {
    let reason: String

    var status: HTTPResponse.Status { .forbidden }

    var description: String { "refused: the operator cannot be named; nothing was changed or recorded: \(reason)" }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try json(AdminModels.ErrorBody(error: "refused: tether cannot tell which Unix user is calling, and every change is audited by user name; nothing was changed", detail: reason), status: status)
    }
}

/// `struct ucred` from <sys/socket.h> (Linux), which Swift's Glibc module does not export
/// without `_GNU_SOURCE`: same layout, read by getsockopt(SO_PEERCRED).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
