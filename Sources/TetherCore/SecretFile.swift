import Foundation

/// The one reader of secret files: HR webhook secrets, check and SCIM token files, target
/// secrets, the LDAP bind password (docs/service.md, "Secret files").
///
/// The rule: the file's bytes, less every carriage return and line feed at its end (the line
/// ending an editor or `echo` leaves). Nothing else is trimmed: spaces, tabs and inner line
/// breaks are part of the secret (a token file's lines are split by its reader). A file that
/// cannot be read, is empty or holds only whitespace is refused.
///
/// Errors name the file, never its content.
public enum SecretFile {
    /// Why a secret file was refused; names the path and the fault, never the content.
    public struct Unusable: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file named in the configuration.
        public let path: String
        /// What is wrong with it.
        public let problem: Problem

        /// What is wrong with a secret file.
        public enum Problem: Sendable, Hashable {
            /// Missing, a directory, or not readable by this user.
            case unreadable
            /// Empty, or only whitespace and line endings.
            case empty
        }

        /// `problem` with the file at `path`.
        public init(path: String, problem: Problem) {
            self.path = path
            self.problem = problem
        }

        /// The path and what to do about it.
        public var description: String {
            switch problem {
            case .unreadable: "\(path) cannot be read (missing, or not readable by this user)"
            case .empty: "\(path) is empty; write the secret into it"
            }
        }
    }

    /// The secret in the file at `path`, trimmed by the rule.
    public static func read(_ path: String) throws(Unusable) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let data = FileManager.default.contents(atPath: path)
        else { throw Unusable(path: path, problem: .unreadable) }
        let secret = Array(trimmed(data))
        guard !secret.allSatisfy(isWhitespace) else { throw Unusable(path: path, problem: .empty) }
        return secret
    }

    /// `bytes` less every carriage return and line feed at the end.
    public static func trimmed<Bytes: BidirectionalCollection<UInt8>>(_ bytes: Bytes) -> Bytes.SubSequence {
        var end = bytes.endIndex
        while end > bytes.startIndex {
            let before = bytes.index(before: end)
            guard bytes[before] == UInt8(ascii: "\n") || bytes[before] == UInt8(ascii: "\r") else { break }
            end = before
        }
        return bytes[bytes.startIndex..<end]
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == 0x0B || byte == 0x0C
    }
}
