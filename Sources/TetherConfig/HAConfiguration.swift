import Foundation

/// `ha`: how several daemons on one PostgreSQL store share the work (SPEC §14). Read only with
/// `store.postgres`.
public struct HAConfiguration: Sendable, Hashable {
    /// This node's name, unique among the daemons on the database. Default: the host's name.
    public var node: String
    /// Where the other nodes reach this one's public listener, to hand it the writes they
    /// receive while it leads (`http://HOST:PORT`). Default: `http://` and `http.listen`.
    public var address: String?
    /// How often the leader renews its lease, and a follower tries to take an expired one.
    public var renewInterval: Duration
    /// How long a lease holds without renewal: a leader that stops renewing (killed, frozen,
    /// cut off) is replaced after at most this long and one renewal.
    public var leaseDuration: Duration
    /// `/readyz` fails while this node's check index is further behind the store than this.
    public var maxLag: Duration
    /// The file holding the secret the nodes share to hand each other operator commands: a
    /// follower signs what an operator asks of it and the leader runs it under that
    /// operator's name. Nil: operator commands that change something are refused on a
    /// follower, naming the leader.
    public var peerSecretFile: String?

    public init(
        node: String = ProcessInfo.processInfo.hostName, address: String? = nil, renewInterval: Duration = .seconds(2),
        leaseDuration: Duration = .seconds(10), maxLag: Duration = .seconds(5)
    ) {
        self.node = node
        self.address = address
        self.renewInterval = renewInterval
        self.leaseDuration = leaseDuration
        self.maxLag = maxLag
    }
}

extension ConfigurationReader {
    func readHA(_ node: ConfigNode) -> HAConfiguration {
        var ha = HAConfiguration()
        guard let map = node.mapping(allowed: ["node", "address", "renewInterval", "leaseDuration", "maxLag", "peerSecretFile"])
        else { return ha }
        if let name = map.optional("node")?.string("a node name") {
            if name.isEmpty || name.contains(where: { $0.isWhitespace || $0.isNewline }) {
                map.value("node")?.error("a node name is one word, unique among the daemons on the database")
            } else {
                ha.node = name
            }
        }
        if let field = map.optional("address"), let text = field.string("http://HOST:PORT") {
            if let components = URLComponents(string: text), ["http", "https"].contains(components.scheme ?? ""),
                components.host?.isEmpty == false, components.path.isEmpty || components.path == "/"
            {
                ha.address = text.hasSuffix("/") ? String(text.dropLast()) : text
            } else {
                field.error("invalid address '\(text)'; expected http://HOST:PORT, where the other nodes reach this one's listener")
            }
        }
        if let value = map.optional("renewInterval")?.duration() { ha.renewInterval = value }
        if let value = map.optional("leaseDuration")?.duration() { ha.leaseDuration = value }
        if let value = map.optional("maxLag")?.duration() { ha.maxLag = value }
        ha.peerSecretFile = map.optional("peerSecretFile").flatMap(resolvedPath)
        if ha.leaseDuration < ha.renewInterval * 2 {
            (map.value("leaseDuration") ?? map.value("renewInterval"))?.error(
                "leaseDuration (\(ConfigurationDuration.format(ha.leaseDuration))) must be at least twice renewInterval "
                    + "(\(ConfigurationDuration.format(ha.renewInterval))), or a leader loses its lease between two renewals")
        }
        return ha
    }
}
