import Foundation
import Testing
import TetherCore

@Suite struct AuditChainTests {
    static func chain(_ count: Int) -> [AuditRecord] {
        var records: [AuditRecord] = []
        var prev = AuditRecord.genesis
        for seq in 1...count {
            let entry = AuditEntry(
                action: .grantRevoked, actor: .hr, time: Date(timeIntervalSince1970: 1_795_000_000 + Double(seq)),
                fields: ["subject": "alice", "grant": "g_\(seq)", "reason": "identity terminated \"quoted\"\n"])
            let record = entry.sealed(seq: seq, prev: prev)
            records.append(record)
            prev = record.hash
        }
        return records
    }

    @Test func exportIsCanonicalAndMatchesTheSpecifiedHash() throws {
        let record = Self.chain(1)[0]
        #expect(record.line == #"{"action":"grant.revoked","actor":"hr","grant":"g_1","hash":"\#(record.hash)","prev":"0000000000000000000000000000000000000000000000000000000000000000","reason":"identity terminated \"quoted\"\n","seq":1,"subject":"alice","time":"2026-11-18T11:06:41.000Z"}"#)
        // hash = hex SHA-256(prev + "\n" + canonical JSON of the record without hash)
        let body = #"{"action":"grant.revoked","actor":"hr","grant":"g_1","prev":"0000000000000000000000000000000000000000000000000000000000000000","reason":"identity terminated \"quoted\"\n","seq":1,"subject":"alice","time":"2026-11-18T11:06:41.000Z"}"#
        #expect(record.body == body)
        let expected = sha256Hex(AuditRecord.genesis + "\n" + body)
        #expect(record.hash == expected)
    }

    @Test func intactChainVerifies() {
        #expect(AuditChain.verify(lines: Self.chain(5).map(\.line)) == .intact(records: 5))
        #expect(AuditChain.verify(lines: []) == .intact(records: 0))
    }

    @Test func flippingAnyByteOfAnyRecordBreaksTheChain() {
        let lines = Self.chain(3).map(\.line)
        for (index, line) in lines.enumerated() {
            let bytes = Array(line.utf8)
            for position in bytes.indices {
                var tampered = bytes
                tampered[position] ^= 0x01
                var copy = lines
                copy[index] = String(decoding: tampered, as: UTF8.self)
                guard case .broken(let seq, _) = AuditChain.verify(lines: copy) else {
                    Issue.record("flipping byte \(position) of record \(index + 1) went unnoticed")
                    return
                }
                #expect(seq == index + 1)
            }
        }
    }

    @Test func removingOrReorderingRecordsBreaksTheChain() {
        let lines = Self.chain(3).map(\.line)
        #expect(AuditChain.verify(lines: [lines[0], lines[2]]) == .broken(seq: 2, reason: "expected seq 2, found 3"))
        #expect(AuditChain.verify(lines: [lines[1], lines[0], lines[2]]).isBroken)
    }

    @Test func timestampsAreFixedWidthUTC() {
        #expect(Timestamp.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.string(Date(timeIntervalSince1970: 1_795_000_000.1234)) == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp.version(Date(timeIntervalSince1970: 1_795_000_000.123456)) == "2026-11-18T11:06:40.123456Z")
        #expect(Timestamp.parse("2026-11-28T10:00:00Z") == Date(timeIntervalSince1970: 1_795_860_000))
        #expect(Timestamp.parse("2026-11-28T10:00:00.500+01:00") == Date(timeIntervalSince1970: 1_795_856_400.5))
    }
}

extension ChainVerification {
    var isBroken: Bool { if case .broken = self { true } else { false } }
}

import Crypto

func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

@Suite struct SealedLineTests {
    @Test(arguments: [
        ["grant": "g_1", "subject": "alice", "reason": "a \"quoted\"\nline", "zeta": "z", "agent": "a"],
        [:],
        ["action": "spoofed", "seq": "x", "hash": "h", "plan": "p_1"],
        ["a": "1", "hasg": "before", "hasi": "after", "h": "", "ü": "é\u{01}"],
    ])
    func theStoredLineIsTheSealedRecordsLine(_ fields: [String: String]) {
        let entry = AuditEntry(action: .grantGranted, actor: .hr, time: Date(timeIntervalSince1970: 1_800_000_000.5), fields: fields)
        let record = entry.sealed(seq: 7, prev: AuditRecord.genesis)
        let stored = entry.sealedLine(seq: 7, prev: AuditRecord.genesis)
        #expect(stored.hash == record.hash)
        #expect(stored.line == record.line)
    }
}

/// The one builder of `identity.*` records, used for events and directory reads alike.
@Suite struct IdentityTransitionRecordTests {
    let alice = Identity(id: "i_1", userName: "alice")
    let time = Date(timeIntervalSince1970: 1_795_000_000)

    @Test func anEventsRecordNamesTheEventAndADirectoryReadsDoesNot() throws {
        let event = try #require(AuditEntry.identityTransition(
            .terminated, of: alice, source: .hr, reason: "hr leaver", event: "evt-9", actor: .hr, time: time))
        #expect(event == AuditEntry(
            action: .identityTerminated, actor: .hr, time: time,
            fields: ["event": "evt-9", "identity": "i_1", "subject": "alice", "source": "hr", "reason": "hr leaver"]))
        let read = try #require(AuditEntry.identityTransition(
            .joined, of: alice, source: .ldap, reason: "ldap joiner", event: nil, actor: .source(.ldap), time: time))
        #expect(read == AuditEntry(
            action: .identityJoined, actor: .source(.ldap), time: time,
            fields: ["identity": "i_1", "subject": "alice", "source": "ldap", "reason": "ldap joiner"]))
    }

    @Test func anUnchangedIdentityIsNotAudited() {
        #expect(AuditEntry.identityTransition(.unchanged, of: alice, source: .hr, reason: "", event: "e", actor: .hr, time: time) == nil)
    }
}
