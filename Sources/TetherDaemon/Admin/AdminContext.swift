import Foundation
import Hummingbird
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The request context on the admin socket: it keeps the channel so a route can ask the
/// kernel who is on the other end (SO_PEERCRED), which names the operator in the audit log.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The unix user name of the peer process, from its socket credentials.
    func peerUser() async -> String {
        guard let provider = channel as? SocketOptionProvider else { return "unknown" }
        do {
            let credentials: PeerCredentials = try await provider.unsafeGetSocketOption(
                level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
            ).get()
            return Self.userName(uid: credentials.uid)
        } catch {
            return "unknown"
        }
    }

    static func userName(uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let result, let name = result.pointee.pw_name {
            return String(cString: name)
        }
        return "uid\(uid)"
    }
}

/// `struct ucred` from <sys/socket.h> (Linux), which Swift's Glibc module does not export
/// without `_GNU_SOURCE`: same layout, read by getsockopt(SO_PEERCRED).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
