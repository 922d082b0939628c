import Foundation
import TetherHTTP

// libFuzzer calls this once per input; a broken property traps (`precondition`) and
// libFuzzer saves the input as a crash.

/// The time the harness receives every request: 2026-11-18T12:00:00Z.
private let now = Date(timeIntervalSince1970: 1_795_003_200)
private let secret = Array("fuzz-secret".utf8)
private let secrets = WebhookSecrets([secret])!

/// The input's first line is the `Tether-Signature` header, the rest the body (the whole
/// input is the body when there is no line break). Holds: a header verifies only when it
/// carries the body's true HMAC; a body parses to an event or to a 400 naming its JSON path.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHREvent(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let newline = input.firstIndex(of: UInt8(ascii: "\n"))
    let header = newline.map { String(decoding: input[..<$0], as: UTF8.self) }
    let body = Array(newline.map { input[($0 + 1)...] } ?? input[...])

    do {
        try WebhookSignature.verify(header: header, body: body, secrets: secrets, now: now, tolerance: .seconds(300))
        // Accepted: the header must hold the MAC of this body at its own t, under the secret.
        let timestamp = header?.split(separator: ",").lazy.compactMap { field -> Date? in
            let pair = field.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix("t="), let seconds = Int64(pair.dropFirst(2)) else { return nil }
            return Date(timeIntervalSince1970: TimeInterval(seconds))
        }.first
        precondition(timestamp != nil, "accepted without a t: \(header ?? "")")
        let expected = WebhookSignature.header(body: body, secrets: [secret], time: timestamp!)
        let mac = expected.split(separator: ",").last!.dropFirst(3).lowercased()
        precondition(header!.lowercased().contains(mac), "accepted a header without the body's MAC: \(header!)")
    } catch {
        precondition(!error.description.isEmpty && !error.description.contains("fuzz-secret"), "signature: \(error)")
    }

    do {
        let event = try HREvent(json: body, now: now).event
        precondition(!event.id.isEmpty && event.facts.externalId?.isEmpty == false, "an event without its keys: \(event)")
    } catch {
        precondition(error.code == .malformed && error.path?.hasPrefix("$") == true, "body: \(error)")
    }
    return 0
}
