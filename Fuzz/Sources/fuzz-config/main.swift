import TetherConfig

// libFuzzer calls this once per input; a broken property traps (`precondition`) and
// libFuzzer saves the input as a crash.

/// The file name findings carry; the loader never opens it (nor any path inside).
private let file = "/etc/tether/tether.yaml"

/// The input, as UTF-8 text, is a configuration file. Holds: it loads, or it is refused with
/// at least one error, every finding naming the file, and every finding about a value (not
/// about the YAML syntax) naming its line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let loaded = try ConfigurationLoader.load(yaml: text, file: file)
        precondition(loaded.warnings.allSatisfy { $0.file == file && $0.severity == .warning }, "warnings: \(loaded.warnings)")
    } catch {
        precondition(error.file == file && !error.errors.isEmpty, "refused without an error: \(error)")
        for finding in error.findings {
            precondition(finding.file == file && !finding.message.isEmpty, "finding: \(finding)")
            if error.code == .invalidConfiguration {
                precondition(finding.line >= 1 && finding.column >= 1, "a finding without a line: \(finding)")
            }
        }
    }
    return 0
}
