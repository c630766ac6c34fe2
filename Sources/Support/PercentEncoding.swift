/// Percent-encodes everything but RFC 3986's unreserved characters (and `keeping`).
package func percentEncode(_ text: String, keeping extra: Set<UInt8> = []) -> String {
    var out = ""
    for byte in text.utf8 {
        let unreserved =
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == 45 || byte == 46 || byte == 95 || byte == 126 || extra.contains(byte)
        if unreserved {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16, uppercase: true)
            out += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return out
}
