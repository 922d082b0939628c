import Foundation
import TetherCore
import TetherHTTP

// libFuzzer calls this once per input; a broken property traps (`precondition`) and
// libFuzzer saves the input as a crash.

/// The body of `POST /v1/check`. Holds: whatever the hot-path reader reads, `JSONDecoder` reads
/// the same; whatever it refuses is left to the decoder. No input exhausts the stack.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckQuestion(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let read = CheckQuestion.read(bytes) else { return 0 }
    let decoded = try? JSONDecoder().decode(CheckRequest.self, from: Data(bytes))
    precondition(decoded == read, "read \(read), decoder \(String(describing: decoded))")
    return 0
}
