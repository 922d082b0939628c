import Logging

/// Sends `READY=1` once every listener is bound, and remembers where each one listens.
package actor ListenerReadiness {
    let expected: Int
    let notifier: SystemdNotifier
    let logger: Logger
    private var ports: [String: Int?] = [:]

    init(expected: Int, notifier: SystemdNotifier, logger: Logger) {
        self.expected = expected
        self.notifier = notifier
        self.logger = logger
    }

    /// Whether every listener is bound.
    package var isReady: Bool { ports.count == expected }

    /// The TCP port `listener` is bound to (`http`: the one chosen when configured with port 0);
    /// nil before it is bound, or when it is not a TCP listener.
    package func port(of listener: String) -> Int? { ports[listener] ?? nil }

    func bound(_ name: String, address: String, port: Int? = nil) {
        ports[name] = port
        logger.notice("listening", metadata: ["listener": "\(name)", "address": "\(address)"])
        if ports.count == expected {
            notifier.notify("READY=1\nSTATUS=serving")
        }
    }
}
