import Testing

@testable import Support

@Suite struct HexTests {
    @Test func readsEveryDigitInEitherCase() {
        for (offset, digit) in "0123456789abcdef".utf8.enumerated() {
            #expect(Hex.value(of: digit) == UInt8(offset))
            #expect(Hex.lowercaseValue(of: digit) == UInt8(offset))
        }
        for (offset, digit) in "ABCDEF".utf8.enumerated() {
            #expect(Hex.value(of: digit) == UInt8(10 + offset))
        }
    }

    @Test func lowercaseOnlyRefusesUpperCaseLetters() {
        for digit in "ABCDEF".utf8 {
            #expect(Hex.lowercaseValue(of: digit) == nil)
        }
    }

    @Test func acceptsNothingElse() {
        let digits = Set("0123456789abcdefABCDEF".utf8)
        for byte in UInt8.min...UInt8.max where !digits.contains(byte) {
            #expect(Hex.value(of: byte) == nil, "byte \(byte)")
            #expect(Hex.lowercaseValue(of: byte) == nil, "byte \(byte)")
        }
    }

    @Test func writesDigitsInTheCaseAskedFor() {
        #expect((0..<16).map { Hex.digit(UInt8($0)) } == Array("0123456789abcdef".utf8))
        #expect((0..<16).map { Hex.digit(UInt8($0), uppercase: true) } == Array("0123456789ABCDEF".utf8))
        var out: [UInt8] = []
        Hex.append(0x0A, uppercase: true, to: &out)
        Hex.append(0xF1, to: &out)
        #expect(out == Array("0Af1".utf8))
    }

    @Test func encodesAndDecodesEveryByte() {
        let bytes = (UInt8.min...UInt8.max).map { $0 }
        let text = Hex.encode(bytes)
        #expect(text.count == 512)
        #expect(text.hasPrefix("000102") && text.hasSuffix("fdfeff"))
        #expect(Hex.decode(Array(text.utf8)) == bytes)
        #expect(Hex.decode(Array(text.utf8), lowercaseOnly: true) == bytes)
        #expect(Hex.decode(Array(text.uppercased().utf8)) == bytes)
    }

    @Test(arguments: ["0", "abc", "0g", "zz", " 0", "0 "])
    func refusesMalformedDigitStrings(text: String) {
        #expect(Hex.decode(Array(text.utf8)) == nil)
    }

    @Test func lowercaseOnlyDecodingRefusesAnyUpperCaseLetter() {
        #expect(Hex.decode(Array("ab".utf8), lowercaseOnly: true) == [0xAB])
        #expect(Hex.decode(Array("aB".utf8), lowercaseOnly: true) == nil)
        #expect(Hex.decode(Array("aB".utf8)) == [0xAB])
    }

    @Test func decodesAnEmptyString() {
        #expect(Hex.decode([UInt8]()) == [])
    }
}
