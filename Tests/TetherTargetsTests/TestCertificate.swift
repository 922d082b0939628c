import Foundation
import NIOSSL

/// A throwaway self-signed certificate for an IP address and localhost, made with `openssl`.
enum TestCertificate {
    static func make(ip: String) throws -> (server: TLSConfiguration, certificate: NIOSSLCertificate) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let key = folder.appendingPathComponent("key.pem").path
        let cert = folder.appendingPathComponent("cert.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:\(ip),DNS:localhost",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CertificateError.openssl(process.terminationStatus) }
        guard let certificate = try NIOSSLCertificate.fromPEMFile(cert).first else { throw CertificateError.openssl(0) }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        let server = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(privateKey))
        return (server, certificate)
    }

    enum CertificateError: Error {
        case openssl(Int32)
    }
}
