import Foundation

/// Runs `scripts/lib/NAME` of this repository to its end (the scripts that create and remove
/// throwaway 389-DS and Samba AD servers). Spawned with a clean signal mask, not through
/// `Process`: the server a script leaves running must take SIGTERM, and `Process` did not
/// notice the script's exit once it had left a server behind.
func runLibraryScript(_ name: String, _ arguments: [String], timeout: Duration) throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/lib/\(name)").path
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("tether-script-\(UUID().uuidString.prefix(8)).log").path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let pid = try spawn("/bin/bash", [script] + arguments, log: log)
    let deadline = ContinuousClock.now + timeout
    var status = exitStatus(pid)
    while status == nil, ContinuousClock.now < deadline {
        usleep(50_000)
        status = exitStatus(pid)
    }
    let output = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    guard let status else {
        kill(pid, SIGKILL)
        throw SlapdError("\(name) did not finish within \(timeout): \(output())")
    }
    guard status == 0 else { throw SlapdError("\(name) failed (\(status)): \(output())") }
}
