import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A failed connection to a target, told as one sentence an operator can act on:
/// `cannot connect to 127.0.0.1:9400: connection refused`. NIO's own errors print as
/// nested structure dumps; this names the address and the cause instead.
struct ConnectionFailure: Error, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var underlying: any Error

    var description: String {
        "cannot connect to \(Self.address(host, port)): \(Self.cause(of: underlying))"
    }

    /// `host:port`, with an IPv6 literal in brackets.
    static func address(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The cause of a connection-level failure in a few lowercase words ("connection refused",
    /// "name not resolved", "no connection within 10 s").
    static func cause(of error: any Error) -> String {
        switch error {
        case let failure as ConnectionFailure:
            return cause(of: failure.underlying)
        case let failure as NIOConnectionError:
            // Happy eyeballs tried every address: the first failure speaks for them.
            if let first = failure.connectionErrors.first { return cause(of: first.error) }
            if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "name not resolved (\(cause(of: dns)))" }
            return "name not resolved"
        case let io as IOError:
            return String(cString: strerror(io.errnoCode)).lowercased()
        case let channel as ChannelError:
            switch channel {
            case .connectTimeout(let amount): return "no connection within \(seconds(amount))"
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: return "connection closed"
            default: return "\(channel)"
            }
        case is SocketAddressError.UnknownHost:
            return "name not resolved"
        case let tls as NIOSSLError:
            return "TLS failed (\(tls))"
        case let tls as BoringSSLError:
            return "TLS failed (\(tls))"
        default:
            return "\(error)"
        }
    }

    static func seconds(_ amount: TimeAmount) -> String {
        let value = Double(amount.nanoseconds) / 1_000_000_000
        return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}
