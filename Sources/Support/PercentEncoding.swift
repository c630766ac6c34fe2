/// Percent-encodes everything but RFC 3986's unreserved characters (and `keeping`), escapes in upper case.
package func percentEncode(_ text: String, keeping extra: Set<UInt8> = []) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        let unreserved =
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == 45 || byte == 46 || byte == 95 || byte == 126 || extra.contains(byte)
        if unreserved {
            out.append(byte)
        } else {
            out.append(UInt8(ascii: "%"))
            Hex.append(byte, uppercase: true, to: &out)
        }
    }
    return String(decoding: out, as: UTF8.self)
}
