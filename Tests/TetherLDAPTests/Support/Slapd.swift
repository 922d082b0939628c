import Foundation
import Testing

/// A throwaway OpenLDAP server for one test: its own folder, configuration, database and
/// free loopback port; started in the foreground so that its PID is ours to stop or kill.
final class Slapd: @unchecked Sendable {
    struct Options {
        /// Load syncprov (syncrepl) and memberof.
        var syncprov = true
        /// Keep member and manager DNs right after renames and deletions.
        var refint = true
        /// Serve ldaps:// (and StartTLS) with these files.
        var tls: TLSFiles?
    }

    struct TLSFiles {
        var ca: String
        var certificate: String
        var key: String
    }

    static let suffix = "dc=example,dc=com"
    static let rootDN = "cn=admin,dc=example,dc=com"
    static let rootPassword = "secret"

    let folder: URL
    let port: Int
    let tlsPort: Int?
    let options: Options
    private let lock = NSLock()
    private var process: Process?

    var url: String { "ldap://127.0.0.1:\(port)/" }
    var ldapsURL: String { "ldaps://127.0.0.1:\(tlsPort ?? 0)/" }
    var configFile: String { folder.appendingPathComponent("slapd.conf").path }

    private init(folder: URL, options: Options) throws {
        self.folder = folder
        self.options = options
        self.port = try freePort()
        self.tlsPort = options.tls == nil ? nil : try freePort()
    }

    /// Writes the configuration, loads `ldif` with `slapadd -q`, starts the server and
    /// waits until it answers.
    static func start(ldif: String, options: Options = Options()) async throws -> Slapd {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-slapd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("db"), withIntermediateDirectories: true)
        let slapd = try Slapd(folder: folder, options: options)
        try slapd.configuration().write(toFile: slapd.configFile, atomically: true, encoding: .utf8)
        let ldifFile = folder.appendingPathComponent("data.ldif").path
        try ldif.write(toFile: ldifFile, atomically: true, encoding: .utf8)
        try run("/usr/sbin/slapadd", ["-q", "-f", slapd.configFile, "-l", ldifFile])
        try await slapd.launch()
        return slapd
    }

    private func configuration() -> String {
        var modules = ["back_mdb", "ppolicy"]
        if options.syncprov { modules += ["syncprov", "memberof"] }
        if options.refint { modules.append("refint") }
        var text = """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            modulepath /usr/lib/ldap
            \(modules.map { "moduleload \($0)" }.joined(separator: "\n"))
            pidfile \(folder.path)/slapd.pid
            sizelimit unlimited

            """
        if let tls = options.tls {
            text += """
                TLSCACertificateFile \(tls.ca)
                TLSCertificateFile \(tls.certificate)
                TLSCertificateKeyFile \(tls.key)

                """
        }
        text += """
            database mdb
            directory \(folder.path)/db
            suffix "\(Self.suffix)"
            rootdn "\(Self.rootDN)"
            rootpw \(Self.rootPassword)
            maxsize 1073741824
            dbnosync
            index objectClass,uid,cn,mail,member,memberOf,entryCSN,entryUUID eq
            overlay ppolicy

            """
        if options.syncprov { text += "overlay memberof\n" }
        if options.refint { text += "overlay refint\nrefint_attributes member uniqueMember manager\n" }
        if options.syncprov { text += "overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 1000\n" }
        return text
    }

    private func launch() async throws {
        var listeners = url
        if let tlsPort { listeners += " ldaps://127.0.0.1:\(tlsPort)/" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/slapd")
        process.arguments = ["-f", configFile, "-h", listeners, "-d", "0"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: logFile())
        try process.run()
        lock.withLock { self.process = process }
        try await waitUntilAnswering()
    }

    private func logFile() throws -> URL {
        let file = folder.appendingPathComponent("slapd.log")
        if !FileManager.default.fileExists(atPath: file.path) {
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        }
        return file
    }

    /// Polls with a root DSE search until the server answers, for at most 15 seconds.
    private func waitUntilAnswering() async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if (try? Self.run("/usr/bin/ldapsearch", ["-x", "-H", url, "-b", "", "-s", "base", "-LLL", "objectClass"])) != nil {
                return
            }
            if let process = lock.withLock({ self.process }), !process.isRunning {
                let log = (try? String(contentsOf: folder.appendingPathComponent("slapd.log"), encoding: .utf8)) ?? ""
                throw SlapdError("slapd exited with \(process.terminationStatus): \(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SlapdError("slapd did not answer on \(url) within 15 s")
    }

    /// Starts the server again on the same port and database, after ``kill()`` or ``stop()``.
    func restart() async throws {
        try await launch()
    }

    /// SIGTERM, then waits for the process to end.
    func stop() {
        signal(SIGTERM)
    }

    /// SIGKILL, then waits for the process to end: a crash, as far as clients can tell.
    func kill() {
        signal(SIGKILL)
    }

    private func signal(_ signal: Int32) {
        guard let process = lock.withLock({ () -> Process? in
            defer { self.process = nil }
            return self.process
        }) else { return }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }
    }

    /// Applies LDIF changes with `ldapmodify` as the root DN.
    func modify(_ ldif: String) throws {
        try Self.run(
            "/usr/bin/ldapmodify", ["-x", "-H", url, "-D", Self.rootDN, "-w", Self.rootPassword], input: ldif)
    }

    /// Stops the server and removes its folder.
    func destroy() {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    deinit {
        destroy()
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SlapdError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                    + String(decoding: err, as: UTF8.self))
        }
        return String(decoding: out, as: UTF8.self)
    }
}

struct SlapdError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A loopback TCP port nobody listens on right now (bound to port 0, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SlapdError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SlapdError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SlapdError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}
