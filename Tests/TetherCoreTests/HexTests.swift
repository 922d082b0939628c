import Testing
import TetherCore

/// The one hex codec: what ids, digests and signatures are spelt in.
@Suite struct HexTests {
    @Test func encodingIsLowerCaseTwoDigitsAByte() {
        #expect(Hex.encode([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode([0xde, 0xad, 0xbe, 0xef], count: 2) == "dead")
        var out = Array("\\u00".utf8)
        Hex.append(0x1f, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "\\u001f")
        #expect(Hex.encode(prefix: "g_", high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210) == "g_0123456789abcdeffedcba9876543210")
    }

    @Test func decodingTakesEitherCaseAndRoundTrips() throws {
        let bytes: [UInt8] = Array(0...255)
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode(Hex.encode(bytes).uppercased()) == bytes)
        #expect(Hex.decode("") == [])
        #expect(try Hex.number(Array("00aF".utf8)) == 0xaf)
    }

    @Test func notHexSaysWhere() {
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("0g") == nil)
        #expect(throws: Hex.InvalidDigit(offset: 3)) { try Hex.bytes("abc") }
        #expect(throws: Hex.InvalidDigit(offset: 2)) { try Hex.bytes("00 1") }
        #expect(throws: Hex.InvalidDigit(offset: 2)) { try Hex.number(Array("12x4".utf8)) }
        // Ids are lower case only.
        #expect(throws: Hex.InvalidDigit(offset: 1)) { try Hex.number(Array("aB".utf8), lowercaseOnly: true) }
    }
}
