import Foundation
import Testing
import TetherCore

/// Signed checkpoints (docs/audit.md): the key as openssl writes it, the bytes signed, and the
/// chain checked against checkpoints: cut off, rewritten, or signed by another key.
@Suite struct AuditCheckpointTests {
    /// `openssl genpkey -algorithm ed25519`, and its public half (`openssl pkey -pubout`).
    static let signingPEM = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIG7bJaE9AFH1Sgh1UUNZB1da0bCbhMUeKzGDxWuNkiaE
        -----END PRIVATE KEY-----

        """
    static let publicPEM = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAtc8sdapS8L6qB2YG2CcpTudon8nMPEq7uDBTJWA0RFw=
        -----END PUBLIC KEY-----

        """
    /// `openssl pkey -pubin -in KEY.pub -outform DER | sha256sum`.
    static let keyID = "sha256:96dce69f3949727760c81519a1204bf9d2cbd69d7cf6f65db8585798f2aa3ec4"

    static func key() throws -> AuditSigningKey { try AuditSigningKey(pem: Array(signingPEM.utf8), path: "audit.key") }

    @Test func theKeyReadsAsOpenSSLWritesItAndNamesItselfAsOpenSSLDigestsIt() throws {
        let key = try Self.key()
        #expect(key.publicKey.id == Self.keyID)
        #expect(key.publicKey.pem == Self.publicPEM)
        let fromPublic = try AuditPublicKey(pem: Array(Self.publicPEM.utf8), path: "audit.pub")
        #expect(fromPublic == key.publicKey)
        // A signing key given where a public key is asked for stands for its public half.
        #expect(try AuditPublicKey(pem: Array(Self.signingPEM.utf8), path: "audit.key") == key.publicKey)
    }

    /// Ed25519 is deterministic: the signature is exactly what
    /// `printf 'tether-audit-checkpoint-v1\n3\nHASH\nTIME\n' | openssl pkeyutl -sign -inkey KEY -rawin` gives.
    @Test func theSignedBytesAreTheDocumentedLinesAndOpenSSLSignsThemAlike() throws {
        let hash = String(repeating: "a", count: 64)
        let time = try #require(Timestamp.parse("2026-11-28T10:00:00.123Z"))
        let checkpoint = try Self.key().checkpoint(seq: 3, hash: hash, time: time)
        #expect(checkpoint.signedMessage == Array("tether-audit-checkpoint-v1\n3\n\(hash)\n2026-11-28T10:00:00.123Z\n".utf8))
        #expect(checkpoint.signature == "CwUz46R944C1MaHNbtG2dOnHJDwZqEYnP55NmkmxrA1O1P0yo3H92xFKgG4seCrruz8m2vIxRo591NPUEbGkCA==")
        #expect(checkpoint.key == Self.keyID)
        #expect(
            checkpoint.line
                == #"{"hash":"\#(hash)","key":"\#(Self.keyID)","seq":3,"signature":"\#(checkpoint.signature)","time":"2026-11-28T10:00:00.123Z"}"#)
        #expect(try AuditCheckpoint(line: checkpoint.line) == checkpoint)
    }

    @Test(arguments: [
        (#"{"hash":"h","key":"k","signature":"s","time":"t"}"#, "\"seq\""),
        (#"{"hash":"h","key":"k","seq":"3","signature":"s","time":"t"}"#, "\"seq\""),
        (#"{"hash":"h","key":"k","seq":0,"signature":"s","time":"t"}"#, "\"seq\""),
        (#"{"hash":"h","key":"k","seq":3,"time":"t"}"#, "\"signature\""),
        (#"{"hash":"h","seq":3,"signature":"s","time":"t"}"#, "\"key\""),
        (#"[1,2]"#, "JSON object"),
        ("grant.revoked seq=3", "JSON object"),
    ])
    func aLineThatIsNoCheckpointSaysWhatIsWrong(_ line: String, _ named: String) {
        #expect(throws: AuditCheckpoint.Unreadable.self) { try AuditCheckpoint(line: line) }
        do {
            _ = try AuditCheckpoint(line: line)
        } catch {
            #expect(error.description.contains(named), "\(error)")
        }
    }

    static let otherKinds: [(String, String)] = [
        (
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIGDGUQKk+qBWPamNz2VoroEX1EwX7PFUw2rFP1/RQ3xI\n-----END PRIVATE KEY-----\n",
            "X25519"
        ),
        (
            """
            -----BEGIN PRIVATE KEY-----
            MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgz1E2KCryIuFU3UN/
            nUu276aOB/VZD5zhx9NBg7P5vjOhRANCAARm0DhzsPpiqmqYB4e8WzDhQNUqJxsX
            RapCxW5mW01Jr7jO+sGLNfSyrE2XGInIvHld5+9SvzKv7SK8aln9zw+r
            -----END PRIVATE KEY-----
            """, "elliptic-curve"
        ),
        (
            """
            -----BEGIN EC PRIVATE KEY-----
            MHcCAQEEIBWP04MFG2/qYc0ENmnpoRcNMztgpxLNXYgL350WbvvroAoGCCqGSM49
            AwEHoUQDQgAEMrYNJte5+zA+icdUMFTnmsLeEaExF0xhSobr950ai2AwyqyClB1h
            C8+CzQnOUjY4RztiurjRFFL6UbtX02I5Xw==
            -----END EC PRIVATE KEY-----
            """, "elliptic-curve"
        ),
        (
            """
            -----BEGIN ENCRYPTED PRIVATE KEY-----
            MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAieQbiVhrTQsgICCAAw
            DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEM34ZFvJ6Ld6YtcM+gTjSoQEQDJY
            NbpN9W/r37I1nET74fA8MDsJp2XdOuvW/OQ/Q/4MOfR44SiewP/TNjGJfnxs5Gpi
            nF1NoxS/lxuBFVnCZBY=
            -----END ENCRYPTED PRIVATE KEY-----
            """, "passphrase"
        ),
        (publicPEM, "public key"),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIG7bJaE9AFH1\n-----END PRIVATE KEY-----\n", "not a well-formed"),
        ("hunter2-is-not-a-key\n", "no PEM key"),
    ]

    @Test(arguments: otherKinds)
    func aKeyOfAnotherKindIsRefusedByNameWithoutItsContent(_ pem: String, _ said: String) {
        do {
            _ = try AuditSigningKey(pem: Array(pem.utf8), path: "/etc/tether/audit.key")
            Issue.record("accepted \(said)")
        } catch {
            #expect(error.description.contains("/etc/tether/audit.key"), "\(error)")
            #expect(error.description.contains(said), "\(error)")
            #expect(error.description.contains("openssl genpkey -algorithm ed25519"), "\(error)")
            for line in pem.split(separator: "\n") where line.count > 20 && !line.hasPrefix("-----") {
                #expect(!error.description.contains(line), "the error shows the file's content")
            }
        }
    }

    // MARK: - The chain against checkpoints

    /// A chain of `count` records, each about `subject(seq)`.
    static func chain(_ count: Int, subject: (Int) -> String = { "user\($0)" }) -> [(line: String, seq: Int)] {
        var prev = AuditRecord.genesis
        let time = Date(timeIntervalSince1970: 1_795_000_000)
        return (1...count).map { seq in
            let entry = AuditEntry(action: .identityJoined, actor: .hr, time: time, fields: ["subject": subject(seq)])
            let sealed = entry.sealedLine(seq: seq, prev: prev)
            prev = sealed.hash
            return (sealed.line, seq)
        }
    }

    /// Checkpoints of `chain` at `seqs`, signed by `key`.
    static func checkpoints(of chain: [(line: String, seq: Int)], at seqs: [Int], key: AuditSigningKey) throws -> [AuditCheckpoint] {
        try seqs.map { seq in
            let values = try JSONDecoder().decode([String: AuditValue].self, from: Data(chain[seq - 1].line.utf8))
            return key.checkpoint(seq: seq, hash: try #require(values["hash"]?.string), time: Date(timeIntervalSince1970: 1_795_000_000 + Double(seq)))
        }
    }

    @Test func aChainThatHoldsEveryCheckpointPasses() throws {
        let key = try Self.key()
        let chain = Self.chain(8)
        let checkpoints = try Self.checkpoints(of: chain, at: [5, 3, 8], key: key)
        #expect(AuditChain.verify(chain, against: checkpoints, trusting: key.publicKey) == .intact(records: 8))
        // Records added after the last checkpoint are not covered by it, and do not fail it.
        #expect(AuditChain.verify(Self.chain(10), against: checkpoints, trusting: key.publicKey) == .intact(records: 10))
    }

    @Test func aChainWithItsLastRecordsCutOffFailsAtTheFirstMissingCheckpointedSeq() throws {
        let key = try Self.key()
        let checkpoints = try Self.checkpoints(of: Self.chain(8), at: [3, 6, 8], key: key)
        let cut = Array(Self.chain(8).prefix(5))
        #expect(AuditChain.verify(cut) == .intact(records: 5), "the chain alone cannot tell")
        guard case .broken(let seq, let reason) = AuditChain.verify(cut, against: checkpoints, trusting: key.publicKey) else {
            Issue.record("a cut-off chain passed")
            return
        }
        #expect(seq == 6)
        #expect(reason.contains("ends at seq 5") && reason.contains("cut off"), "\(reason)")
    }

    @Test func aChainRewrittenFromItsFirstRecordFailsAtTheFirstCheckpoint() throws {
        let key = try Self.key()
        let checkpoints = try Self.checkpoints(of: Self.chain(8), at: [4, 8], key: key)
        // The same number of records with one changed: every hash from seq 1 on is fresh.
        let rewritten = Self.chain(8) { $0 == 2 ? "mallory" : "user\($0)" }
        #expect(AuditChain.verify(rewritten) == .intact(records: 8), "the rewritten chain verifies internally")
        guard case .broken(let seq, let reason) = AuditChain.verify(rewritten, against: checkpoints, trusting: key.publicKey) else {
            Issue.record("a rewritten chain passed")
            return
        }
        #expect(seq == 4)
        #expect(reason.contains("rewritten"), "\(reason)")
        // A chain rewritten and extended past the last checkpoint fails there too.
        let longer = Self.chain(12) { $0 == 2 ? "mallory" : "user\($0)" }
        #expect(AuditChain.verify(longer, against: checkpoints, trusting: key.publicKey).brokenSeq == 4)
    }

    @Test func aCheckpointSignedByAnotherKeyIsRefusedNamingThatKey() throws {
        let key = try Self.key()
        let other = try AuditSigningKey(pem: Array(Self.anotherPEM.utf8), path: "other.key")
        let chain = Self.chain(6)
        // The other key's checkpoint is true to the chain: it is refused for its signer alone.
        let checkpoints = try Self.checkpoints(of: chain, at: [2], key: key) + Self.checkpoints(of: chain, at: [5], key: other)
        guard case .broken(let seq, let reason) = AuditChain.verify(chain, against: checkpoints, trusting: key.publicKey) else {
            Issue.record("another key's checkpoint was accepted")
            return
        }
        #expect(seq == 5)
        #expect(reason.contains(other.publicKey.id) && reason.contains("refused"), "\(reason)")

        // Trusting the other key instead refuses the first key's checkpoint.
        let theOther = AuditChain.verify(chain, against: checkpoints, trusting: other.publicKey)
        #expect(theOther.brokenSeq == 2)

        // A checkpoint that names the trusted key but was signed by another does not verify.
        var forged = try Self.checkpoints(of: chain, at: [4], key: other)[0]
        forged.key = key.publicKey.id
        let refused = AuditChain.verify(chain, against: [forged], trusting: key.publicKey)
        #expect(refused.brokenSeq == 4)
    }

    @Test func aCheckpointAlteredAfterSigningIsRefused() throws {
        let key = try Self.key()
        let chain = Self.chain(6)
        var moved = try Self.checkpoints(of: chain, at: [6], key: key)[0]
        // Claiming an earlier head, as a truncation's accomplice would.
        moved.seq = 3
        moved.hash = try Self.checkpoints(of: chain, at: [3], key: key)[0].hash
        guard case .broken(3, let reason) = AuditChain.verify(chain, against: [moved], trusting: key.publicKey) else {
            Issue.record("an altered checkpoint was accepted")
            return
        }
        #expect(reason.contains("does not verify"), "\(reason)")
    }

    @Test func aChainBrokenInsideFailsWhereItBreaksUnlessACheckpointDisagreesFirst() throws {
        let key = try Self.key()
        var chain = Self.chain(8)
        let checkpoints = try Self.checkpoints(of: chain, at: [2, 7], key: key)
        chain[4].line = chain[4].line.replacingOccurrences(of: "user5", with: "userX")
        #expect(AuditChain.verify(chain, against: checkpoints, trusting: key.publicKey).brokenSeq == 5)
    }

    static let anotherPEM = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIK21QXdOTmsgNdASHKVgFKhzE8oFs0uZttZMWnGcM/ce
        -----END PRIVATE KEY-----
        """
}

extension ChainVerification {
    /// The seq it is broken at; nil when intact.
    var brokenSeq: Int? {
        if case .broken(let seq, _) = self { return seq }
        return nil
    }
}
