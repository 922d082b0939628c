import ArgumentParser
import Foundation
import Synchronization
import TetherDaemon
#if canImport(Glibc)
import Glibc
#endif

/// Shows the daemon's long work while a command waits for it, on stderr so that stdout keeps
/// only the command's answer: a progress bar with rate and time left, redrawn in place, when
/// stderr is a terminal; otherwise a plain line when the phase changes and every few seconds.
struct ProgressDisplay {
    /// True when stderr is a terminal: the bar is drawn.
    let terminal: Bool
    /// The least time between two plain lines of the same phase.
    let plainInterval: TimeInterval
    private var lastPhase: String?
    private var lastPlain: Date?
    private var drawn = false

    init(terminal: Bool = isatty(STDERR_FILENO) == 1, plainInterval: TimeInterval = 5) {
        self.terminal = terminal
        self.plainInterval = plainInterval
    }

    /// Shows the work that counts entries (a read), else the oldest; nothing when none runs.
    mutating func show(_ works: [AdminModels.ProgressRow]?, now: Date = Date()) {
        guard let row = works?.first(where: { $0.done != nil }) ?? works?.first else { return }
        if terminal {
            write("\r\u{1B}[2K" + Self.bar(row))
            drawn = true
            return
        }
        let phase = "\(row.work): \(row.phase)"
        if phase != lastPhase || lastPlain.map({ now.timeIntervalSince($0) >= plainInterval }) ?? true {
            write(row.summary + "\n")
            lastPhase = phase
            lastPlain = now
        }
    }

    /// Clears the bar, so the command's answer starts on a clean line.
    mutating func finish() {
        if drawn { write("\r\u{1B}[2K") }
        drawn = false
    }

    /// `directory read: people [#######.............] 1200/5000 24% 800/s ETA 5s`.
    static func bar(_ row: AdminModels.ProgressRow, width: Int = 24) -> String {
        var text = "\(row.work): \(row.phase) "
        if let done = row.done, let total = row.total, total > 0 {
            let filled = min(width, done * width / total)
            text += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            text += "\(done)/\(total) \(min(100, done * 100 / total))%"
        } else if let done = row.done {
            text += "\(done)"
        } else {
            text += "…"
        }
        if let rate = row.ratePerSecond { text += " \(Int(rate))/s" }
        if let eta = row.etaSeconds { text += " ETA \(Int(eta.rounded(.up)))s" }
        return text
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

extension GlobalOptions {
    /// Sends a request that waits for long work, showing that work's progress from
    /// `tether status` until the answer comes.
    func callShowingProgress(_ method: String, _ path: String, interval: Duration = .milliseconds(250)) async throws
        -> AdminClient.Reply
    {
        let client = client()
        let answer = Mutex<Result<AdminClient.Reply, any Error>?>(nil)
        // The request blocks its thread until the daemon answers: a thread of its own.
        let thread = Thread {
            let result = Result { try client.request(method, path) }
            answer.withLock { $0 = result }
        }
        thread.start()
        var display = ProgressDisplay()
        while true {
            if let result = answer.withLock({ $0 }) {
                display.finish()
                do {
                    return try result.get()
                } catch {
                    Output.error("\(error)")
                    throw ExitCode(1)
                }
            }
            if let reply = try? client.request("GET", "/v1/status"), reply.status == 200,
                let status = try? JSONDecoder().decode(AdminModels.Status.self, from: reply.body)
            {
                display.show(status.progress)
            }
            try await Task.sleep(for: interval)
        }
    }
}
