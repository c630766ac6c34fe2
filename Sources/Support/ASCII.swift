/// Text helpers for protocol text (HTTP fields, environment values): ASCII only, no locale rules.
extension String {
    /// ASCII case-insensitive comparison, as HTTP field names and tokens need.
    package func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = self.utf8
        let b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            guard x | 0x20 == y | 0x20, (x | 0x20) >= UInt8(ascii: "a"), (x | 0x20) <= UInt8(ascii: "z") else {
                return false
            }
        }
        return true
    }

    /// ASCII lower-casing, without locale rules.
    package var asciiLowercased: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Drops leading and trailing spaces and tabs (OWS).
    package func trimmingOWS() -> String { self[...].trimmingOWS() }

    /// Drops trailing line breaks (a file's last newline, a log line's).
    package func droppingTrailingNewlines() -> String {
        var s = self[...]
        while let last = s.last, last == "\n" || last == "\r" || last == "\r\n" { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    /// Drops leading and trailing spaces and tabs (OWS).
    package func trimmingOWS() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
