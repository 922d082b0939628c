import Crypto
import Foundation

/// The Ed25519 key that signs audit checkpoints (`audit.signingKeyFile`), read from PEM as
/// `openssl genpkey -algorithm ed25519` writes it: an unencrypted PKCS#8 `PRIVATE KEY`.
///
/// Errors name the file and what is wrong with it, never its content.
public struct AuditSigningKey: Sendable {
    let key: Curve25519.Signing.PrivateKey
    /// The public half, which verifies what this key signs.
    public let publicKey: AuditPublicKey

    /// The key in `pem`, the text of the file at `path` (which only names it in errors).
    public init(pem: some Collection<UInt8>, path: String) throws(AuditKeyProblem) {
        let block = try PEM.firstBlock(pem, path: path)
        switch block.label {
        case "PRIVATE KEY":
            let seed = try PKCS8.ed25519Seed(block.der, path: path)
            guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
                throw AuditKeyProblem(path: path, problem: .malformed)
            }
            self.key = key
            publicKey = AuditPublicKey(key.publicKey)
        case "PUBLIC KEY":
            throw AuditKeyProblem(path: path, problem: .publicOnly)
        case "ENCRYPTED PRIVATE KEY":
            throw AuditKeyProblem(path: path, problem: .encrypted)
        default:
            throw AuditKeyProblem(path: path, problem: .wrongType(PEM.kind(ofLabel: block.label)))
        }
    }

    /// Reads the key in the file at `path`.
    public static func read(_ path: String) throws(AuditKeyProblem) -> AuditSigningKey {
        try AuditSigningKey(pem: try PEM.file(path), path: path)
    }

    /// Signs the chain head `seq`/`hash` as of `time`: the checkpoint of docs/audit.md.
    public func checkpoint(seq: Int, hash: String, time: Date) -> AuditCheckpoint {
        let timeText = Timestamp.string(time)
        let message = AuditCheckpoint.signedMessage(seq: seq, hash: hash, time: timeText)
        // Signing only fails for a key that cannot exist here (BoringSSL's Ed25519 cannot fail).
        let signature = (try? key.signature(for: message)) ?? Data()
        return AuditCheckpoint(
            seq: seq, hash: hash, time: timeText, signature: signature.base64EncodedString(), key: publicKey.id)
    }
}

/// The public half of an audit signing key: what an auditor is given to verify checkpoints.
public struct AuditPublicKey: Sendable, Hashable, CustomStringConvertible {
    let key: Curve25519.Signing.PublicKey

    init(_ key: Curve25519.Signing.PublicKey) { self.key = key }

    /// The same key: the same 32 bytes.
    public static func == (lhs: AuditPublicKey, rhs: AuditPublicKey) -> Bool {
        lhs.key.rawRepresentation == rhs.key.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(key.rawRepresentation) }

    /// The DER `SubjectPublicKeyInfo` prefix of an Ed25519 key (RFC 8410): the 32 key bytes follow.
    static let spkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// The key as DER `SubjectPublicKeyInfo`: what `openssl pkey -pubout -outform DER` writes.
    public var der: [UInt8] { Self.spkiPrefix + Array(key.rawRepresentation) }

    /// `sha256:` and the hex SHA-256 of ``der``: the `key` of every checkpoint it verifies.
    /// `openssl pkey -pubin -in KEY.pem -outform DER | sha256sum` prints the same digits.
    public var id: String { "sha256:" + Hex.encode(SHA256.hash(data: der)) }

    /// The PEM text `openssl pkey -pubout` writes, ending in a line feed.
    public var pem: String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN PUBLIC KEY-----\n\(base64)\n-----END PUBLIC KEY-----\n"
    }

    public var description: String { id }

    /// The public key in `pem`, the text of the file at `path`: a `PUBLIC KEY`, or a signing
    /// key's `PRIVATE KEY`, whose public half is taken.
    public init(pem: some Collection<UInt8>, path: String) throws(AuditKeyProblem) {
        let block = try PEM.firstBlock(pem, path: path)
        switch block.label {
        case "PUBLIC KEY":
            let raw = try PKCS8.ed25519PublicKey(block.der, path: path)
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                throw AuditKeyProblem(path: path, problem: .malformed)
            }
            self.key = key
        default:
            self = try AuditSigningKey(pem: pem, path: path).publicKey
        }
    }

    /// Reads the public key in the file at `path` (a public key is no secret, but the file is
    /// read by the same rule).
    public static func read(_ path: String) throws(AuditKeyProblem) -> AuditPublicKey {
        try AuditPublicKey(pem: try PEM.file(path), path: path)
    }

    /// Whether `signature` (base64) is this key's Ed25519 signature of `message`.
    public func verifies(signature: String, of message: [UInt8]) -> Bool {
        guard let bytes = Data(base64Encoded: signature), bytes.count == 64 else { return false }
        return key.isValidSignature(bytes, for: message)
    }
}

/// Why an audit key file was refused: the path and the fault, never the content.
public struct AuditKeyProblem: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file.
    public let path: String
    /// What is wrong with it.
    public let problem: Problem

    /// What is wrong with a key file.
    public enum Problem: Sendable, Hashable {
        /// Missing, a directory, or not readable by this user.
        case unreadable
        /// Empty, or only whitespace.
        case empty
        /// No `-----BEGIN …-----` block.
        case notPEM
        /// A key of another algorithm (named).
        case wrongType(String)
        /// A passphrase-protected key; the daemon cannot ask for the passphrase.
        case encrypted
        /// A public key where the private key is needed.
        case publicOnly
        /// A block of the right kind whose content does not decode.
        case malformed
    }

    /// `problem` with the file at `path`.
    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    static let make = "openssl genpkey -algorithm ed25519 -out FILE"

    /// The path, what is wrong, and what to do about it.
    public var description: String {
        switch problem {
        case .unreadable: "\(path) cannot be read (missing, or not readable by this user)"
        case .empty: "\(path) is empty; write an Ed25519 key into it (\(Self.make))"
        case .notPEM: "\(path) holds no PEM key; write an Ed25519 key into it (\(Self.make))"
        case .wrongType(let kind): "\(path) holds \(kind), not an Ed25519 key; make one with \(Self.make)"
        case .encrypted: "\(path) holds a passphrase-protected key, which the daemon cannot open; make one without a passphrase (\(Self.make))"
        case .publicOnly: "\(path) holds a public key; the signing key is the private key (\(Self.make))"
        case .malformed: "\(path) holds a PEM block that is not a well-formed Ed25519 key (\(Self.make))"
        }
    }
}

/// The PEM armour (RFC 7468): labelled base64 blocks.
enum PEM {
    /// The bytes of the key file at `path`, read by the rule of ``SecretFile``.
    static func file(_ path: String) throws(AuditKeyProblem) -> [UInt8] {
        do throws(SecretFile.Unusable) {
            return try SecretFile.read(path)
        } catch {
            throw AuditKeyProblem(path: path, problem: error.problem == .empty ? .empty : .unreadable)
        }
    }

    /// The first block of `pem`, the text of the file at `path`.
    static func firstBlock(_ pem: some Collection<UInt8>, path: String) throws(AuditKeyProblem) -> (label: String, der: [UInt8]) {
        guard let block = blocks(String(decoding: pem, as: UTF8.self)).first else {
            throw AuditKeyProblem(path: path, problem: .notPEM)
        }
        return block
    }

    /// Every well-formed block in `text`, in order.
    static func blocks(_ text: String) -> [(label: String, der: [UInt8])] {
        var blocks: [(String, [UInt8])] = []
        var label: String?
        var body = ""
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                label = String(line.dropFirst(11).dropLast(5))
                body = ""
            } else if line.hasPrefix("-----END "), line.hasSuffix("-----") {
                if let open = label, String(line.dropFirst(9).dropLast(5)) == open, let der = Data(base64Encoded: body) {
                    blocks.append((open, Array(der)))
                }
                label = nil
            } else if label != nil, !line.contains(":") {
                // RFC 1421 headers (`Proc-Type:`, `DEK-Info:`) of legacy encrypted keys are skipped.
                body += line
            }
        }
        return blocks
    }

    /// The kind of key a PEM label names, for "holds an RSA key".
    static func kind(ofLabel label: String) -> String {
        switch label {
        case "RSA PRIVATE KEY", "RSA PUBLIC KEY": "an RSA key"
        case "EC PRIVATE KEY": "an elliptic-curve (ECDSA) key"
        case "DSA PRIVATE KEY": "a DSA key"
        case "OPENSSH PRIVATE KEY": "an OpenSSH-format key (convert it, or make a PEM key)"
        case "CERTIFICATE": "a certificate"
        default: "a '\(label)' block"
        }
    }
}

/// The few DER structures of RFC 8410 an Ed25519 key comes in.
enum PKCS8 {
    /// Ed25519 `1.3.101.112`, and the algorithms a wrong key is named by.
    static let ed25519: [UInt8] = [0x2B, 0x65, 0x70]
    static let algorithms: [[UInt8]: String] = [
        [0x2B, 0x65, 0x6E]: "an X25519 key (for key agreement, not signing)",
        [0x2B, 0x65, 0x71]: "an Ed448 key",
        [0x2B, 0x65, 0x6F]: "an X448 key",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]: "an RSA key",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A]: "an RSA-PSS key",
        [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]: "an elliptic-curve (ECDSA) key",
        [0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01]: "a DSA key",
    ]

    /// The 32-byte seed of a `PrivateKeyInfo` / `OneAsymmetricKey` holding an Ed25519 key.
    static func ed25519Seed(_ der: [UInt8], path: String) throws(AuditKeyProblem) -> [UInt8] {
        let malformed = AuditKeyProblem(path: path, problem: .malformed)
        var outer = DER(der[...])
        guard var info = outer.nested(0x30), outer.isAtEnd, let version = info.read(0x02), [[0], [1]].contains(Array(version)),
            var algorithm = info.nested(0x30), let oid = algorithm.read(0x06)
        else { throw malformed }
        try check(oid, path: path)
        guard var privateKey = info.nested(0x04), let seed = privateKey.read(0x04), privateKey.isAtEnd, seed.count == 32
        else { throw malformed }
        return Array(seed)
    }

    /// The 32 key bytes of a `SubjectPublicKeyInfo` holding an Ed25519 key.
    static func ed25519PublicKey(_ der: [UInt8], path: String) throws(AuditKeyProblem) -> [UInt8] {
        let malformed = AuditKeyProblem(path: path, problem: .malformed)
        var outer = DER(der[...])
        guard var info = outer.nested(0x30), outer.isAtEnd, var algorithm = info.nested(0x30), let oid = algorithm.read(0x06)
        else { throw malformed }
        try check(oid, path: path)
        guard let bits = info.read(0x03), info.isAtEnd, bits.count == 33, bits.first == 0 else { throw malformed }
        return Array(bits.dropFirst())
    }

    private static func check(_ oid: ArraySlice<UInt8>, path: String) throws(AuditKeyProblem) {
        guard Array(oid) != ed25519 else { return }
        throw AuditKeyProblem(path: path, problem: .wrongType(algorithms[Array(oid)] ?? "a key of another algorithm"))
    }
}

/// A reader of DER's tag-length-value elements, enough for key structures.
struct DER {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    var isAtEnd: Bool { bytes.isEmpty }

    /// The next element if it has `tag`, as a reader of its content; nil (nothing consumed) otherwise.
    mutating func nested(_ tag: UInt8) -> DER? {
        read(tag).map { DER($0) }
    }

    /// The content bytes of the next element if it has `tag`.
    mutating func read(_ tag: UInt8) -> ArraySlice<UInt8>? {
        var rest = bytes
        guard rest.popFirst() == tag, let first = rest.popFirst() else { return nil }
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard (1...3).contains(count), rest.count >= count else { return nil }
            for _ in 0..<count { length = length << 8 | Int(rest.popFirst()!) }
        }
        guard rest.count >= length else { return nil }
        let content = rest.prefix(length)
        bytes = rest.dropFirst(length)
        return content
    }
}
