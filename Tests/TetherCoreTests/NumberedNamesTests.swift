import Testing
import TetherCore

@Suite struct NumberedNamesTests {
    @Test func namesAreNumberedInOrderOnceAndNumbersAreNeverGivenTwice() {
        var names = NumberedNames<Int32>()
        #expect(names.number("ops") == 0 && names.number("support") == 1 && names.number("ops") == 0)
        #expect(names.count == 2 && names[1] == "support" && names.number(of: "sales") == nil)

        #expect(names.forget("ops") == 0)
        #expect(names.forget("ops") == nil)
        #expect(names[0] == nil && names.number(of: "ops") == nil)
        // Seen again, a forgotten name gets a new number; the old one stays unused.
        #expect(names.number("ops") == 2 && names.count == 3 && names[0] == nil)
    }
}
