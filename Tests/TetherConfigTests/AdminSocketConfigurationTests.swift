import Testing
import TetherConfig

/// `admin.group`: the group that owns the admin socket, so operators need not share the
/// daemon's group (which reads the secret files).
@Suite("admin socket group")
struct AdminSocketConfigurationTests {
    @Test func theGroupIsReadWithTheSocketAndMode() throws {
        let yaml = """
            admin: { socket: /run/tether/admin.sock, mode: "0660", group: tether-operators }
            """
        let admin = try #require(loaded(yaml)).configuration.admin
        #expect(admin.group == "tether-operators")
        #expect(admin.mode == 0o660)
        #expect(admin.socket == "/run/tether/admin.sock")
    }

    @Test func withoutAGroupTheSocketKeepsTheDaemonsGroup() throws {
        #expect(try #require(loaded("admin: { mode: \"0600\" }")).configuration.admin.group == nil)
        #expect(try #require(loaded("")).configuration.admin.group == nil)
    }

    @Test(arguments: ["", "tether operators", "-ops", "9ops", "ops;rm", "a-name-that-is-far-too-long-for-a-group"])
    func aNameThatIsNoGroupNameIsALocatedError(_ name: String) {
        let error = rejection("admin:\n  group: \"\(name)\"\n")
        expectSingleError(error, keyPath: "admin.group", line: 2, "group name")
    }

    @Test func aGroupThatIsNoStringIsALocatedError() {
        let error = rejection("admin:\n  group: [a, b]\n")
        expectSingleError(error, keyPath: "admin.group", line: 2, "group name")
    }
}
