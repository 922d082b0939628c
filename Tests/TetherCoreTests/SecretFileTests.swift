import Foundation
import Testing
import TetherCore

/// The one rule every secret file is read by (docs/service.md, "Secret files").
@Suite struct SecretFileTests {
    /// A file in a fresh temporary folder holding `bytes`; its path.
    private func file(_ bytes: [UInt8]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("hr.secret").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    @Test(arguments: [
        ("s3cret", "s3cret"),
        ("s3cret\n", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        ("s3cret\n\n\r\n", "s3cret"),
        // Only line endings at the end go: spaces, tabs and inner breaks are the secret's.
        (" s3 cret\t\n", " s3 cret\t"),
        ("line one\nline two\n", "line one\nline two"),
    ])
    func trailingLineEndingsAreNotPartOfTheSecret(_ content: String, _ secret: String) throws {
        let path = try file(Array(content.utf8))
        #expect(try SecretFile.read(path) == Array(secret.utf8))
        #expect(Array(SecretFile.trimmed(Array(content.utf8))) == Array(secret.utf8))
    }

    @Test(arguments: ["", "\n", "\r\n", "  \t\n", " \u{0B}\u{0C}\r"])
    func anEmptyOrWhitespaceOnlyFileIsRefusedByPath(_ content: String) throws {
        let path = try file(Array(content.utf8))
        #expect(throws: SecretFile.Unusable(path: path, problem: .empty)) { try SecretFile.read(path) }
    }

    @Test func aMissingFileOrAFolderIsNamedAndTheContentNever() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString)").path
        #expect(throws: SecretFile.Unusable(path: missing, problem: .unreadable)) { try SecretFile.read(missing) }
        let error = SecretFile.Unusable(path: missing, problem: .unreadable)
        #expect(error.description.contains(missing))

        let path = try file(Array("top-secret-value\n".utf8))
        let folder = (path as NSString).deletingLastPathComponent
        #expect(throws: SecretFile.Unusable(path: folder, problem: .unreadable)) { try SecretFile.read(folder) }

        let whitespace = try file(Array("   \n".utf8))
        do {
            _ = try SecretFile.read(whitespace)
            Issue.record("a whitespace-only file was accepted")
        } catch {
            #expect(error.description.contains(whitespace))
            #expect(error.description.contains("empty"))
        }
    }
}
