/// Hexadecimal digits, read and written in one place: HTTP chunk sizes, percent-escapes, JSON `\u00XX` escapes and
/// GitHub's signatures.
package enum Hex {
    /// The value of one hex digit, either case (`0-9`, `a-f`, `A-F`); nil for any other byte.
    ///
    /// Chunk sizes (RFC 9112 §7.1) and percent-escapes (RFC 3986 §2.1) may be written in either case.
    @inlinable
    package static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    /// The value of one lower-case hex digit (`0-9`, `a-f`); nil for any other byte, upper-case letters included.
    ///
    /// For GitHub's `X-Hub-Signature-256`, which GitHub writes in lower case: a signature is accepted in the one
    /// spelling GitHub sends.
    @inlinable
    package static func lowercaseValue(of digit: UInt8) -> UInt8? {
        digit >= UInt8(ascii: "A") && digit <= UInt8(ascii: "F") ? nil : value(of: digit)
    }

    /// The digit for `value` (0 to 15), lower case unless `uppercase`.
    @inlinable
    package static func digit(_ value: UInt8, uppercase: Bool = false) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") &+ value : (uppercase ? UInt8(ascii: "A") : UInt8(ascii: "a")) &+ value &- 10
    }

    /// Appends the two digits of `byte`, high nibble first.
    @inlinable
    package static func append(_ byte: UInt8, uppercase: Bool = false, to out: inout [UInt8]) {
        out.append(digit(byte >> 4, uppercase: uppercase))
        out.append(digit(byte & 0x0F, uppercase: uppercase))
    }

    /// `bytes` as lower-case hex, two digits a byte.
    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes { append(byte, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes an even number of lower-case hex digits (`lowercaseOnly`) or digits of either case; nil for anything
    /// else.
    package static func decode(_ digits: some Collection<UInt8>, lowercaseOnly: Bool = false) -> [UInt8]? {
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index != digits.endIndex {
            let next = digits.index(after: index)
            let high = lowercaseOnly ? lowercaseValue(of: digits[index]) : value(of: digits[index])
            let low = lowercaseOnly ? lowercaseValue(of: digits[next]) : value(of: digits[next])
            guard let high, let low else { return nil }
            out.append(high << 4 | low)
            index = digits.index(after: next)
        }
        return out
    }
}
