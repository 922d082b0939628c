import Foundation
import Testing
import TetherCore

/// The one `Tether-Signature` signer and verifier: what the signer writes the verifier
/// accepts, and nothing else.
@Suite struct TetherSignatureTests {
    let secret = TetherSignature(secret: Array("gateway-secret".utf8))
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    private func header(
        _ signer: TetherSignature, method: String = "DELETE", target: String = "/grants/g1", key: String? = "gw:1",
        body: [UInt8] = Array("{}".utf8), at time: Date
    ) -> String {
        let t = TetherSignature.timestamp(time)
        return TetherSignature.header(
            timestamp: t, v1: [signer.v1(timestamp: String(t), body: body)],
            v2: signer.v2(timestamp: String(t), method: method, target: target, idempotencyKey: key, body: body))
    }

    private func verifies(
        _ header: String, method: String = "DELETE", target: String = "/grants/g1", key: String? = "gw:1",
        body: [UInt8] = Array("{}".utf8), with secrets: [TetherSignature]? = nil
    ) -> Bool {
        do {
            let parsed = try TetherSignature.Header(parsing: header, requiring: .v2, now: now, tolerance: .seconds(300))
            try parsed.verifyV2(method: method, target: target, idempotencyKey: key, body: body, secrets: secrets ?? [secret])
            return true
        } catch {
            return false
        }
    }

    @Test func aSignedRequestVerifiesAndAnyChangeDoesNot() throws {
        let signed = header(secret, at: now)
        #expect(verifies(signed))
        #expect(!verifies(signed, method: "PUT"))
        #expect(!verifies(signed, target: "/grants/g2"))
        #expect(!verifies(signed, target: "/grants/g1?x=1"))
        #expect(!verifies(signed, key: "gw:2"))
        #expect(!verifies(signed, key: nil))
        #expect(!verifies(signed, body: Array("{ }".utf8)))
        #expect(!verifies(signed, with: [TetherSignature(secret: Array("other-secret".utf8))]))
        // Another time: the same request signed a second later is another signature.
        let later = header(secret, at: now.addingTimeInterval(1))
        #expect(verifies(later))
        let t = String(TetherSignature.timestamp(now))
        let moved = later.replacingOccurrences(of: "t=\(Int64(t)! + 1)", with: "t=\(t)")
        #expect(moved != later)
        #expect(!verifies(moved))
        // One of several secrets in rotation is enough.
        #expect(verifies(signed, with: [TetherSignature(secret: Array("other-secret".utf8)), secret]))
    }

    @Test func v1CoversTheTimeAndTheBody() throws {
        let body = Array(#"{"id":"e1"}"#.utf8)
        let signed = header(secret, body: body, at: now)
        func verifiesV1(_ header: String, _ body: [UInt8]) -> Bool {
            do {
                try TetherSignature.Header(parsing: header, requiring: .v1, now: now, tolerance: .seconds(300))
                    .verifyV1(body: body, secrets: [secret])
                return true
            } catch {
                return false
            }
        }
        #expect(verifiesV1(signed, body))
        #expect(!verifiesV1(signed, Array(#"{"id":"e2"}"#.utf8)))
        let t = TetherSignature.timestamp(now)
        #expect(!verifiesV1(signed.replacingOccurrences(of: "t=\(t)", with: "t=\(t - 1)"), body))
    }

    @Test func theHeaderIsCheckedBeforeAnyCode() {
        func failure(_ header: String?, _ scheme: TetherSignature.Scheme = .v1) -> TetherSignature.Failure? {
            do {
                _ = try TetherSignature.Header(parsing: header, requiring: scheme, now: now, tolerance: .seconds(300))
                return nil
            } catch {
                return error
            }
        }
        let zeros = String(repeating: "0", count: 64)
        #expect(failure(nil) == .missing)
        #expect(failure("t=1700000000") == .malformed("no v1 signature"))
        #expect(failure("t=1700000000,v1=\(zeros)", .v2) == .malformed("no v2 signature"))
        #expect(failure("v1=\(zeros)") == .malformed("no t"))
        #expect(failure("t=1700000000,t=1700000000,v1=\(zeros)") == .malformed("more than one t"))
        #expect(failure("t=-1,v1=\(zeros)") == .malformed("t is not a count of seconds"))
        #expect(failure("t=1699999699,v1=\(zeros)") == .outsideTolerance(skew: -301, tolerance: 300))
        let nine = (0..<9).map { _ in "v1=\(zeros)" }.joined(separator: ",")
        #expect(failure("t=1700000000,\(nine)") == .malformed("more than 8 v1 signatures"))
        // Another scheme's surplus is not read, and refuses nothing.
        #expect(failure("t=1700000000,v1=\(zeros),\(nine.replacingOccurrences(of: "v1", with: "v2"))") == nil)
    }
}
