import Logging

/// Sends `READY=1` once every listener is bound (and, among several daemons, once the node
/// knows which leads), and remembers where each one listens.
package actor ListenerReadiness {
    let expected: Int
    /// What else must be settled before `READY=1`, besides the listeners.
    private var pending: Set<String>
    let notifier: SystemdNotifier
    let logger: Logger
    private var ports: [String: Int?] = [:]

    init(expected: Int, awaiting pending: Set<String> = [], notifier: SystemdNotifier, logger: Logger) {
        self.expected = expected
        self.pending = pending
        self.notifier = notifier
        self.logger = logger
    }

    /// Whether every listener is bound and nothing else is awaited.
    package var isReady: Bool { ports.count == expected && pending.isEmpty }

    /// The TCP port `listener` is bound to (`http`: the one chosen when configured with port 0);
    /// nil before it is bound, or when it is not a TCP listener.
    package func port(of listener: String) -> Int? { ports[listener] ?? nil }

    func bound(_ name: String, address: String, port: Int? = nil) {
        ports[name] = port
        logger.notice("listening", metadata: ["listener": "\(name)", "address": "\(address)"])
        notifyIfReady()
    }

    /// `condition`, one of those awaited, is settled.
    func settled(_ condition: String) {
        guard pending.remove(condition) != nil else { return }
        notifyIfReady()
    }

    private func notifyIfReady() {
        if isReady { notifier.notify("READY=1\nSTATUS=serving") }
    }
}
