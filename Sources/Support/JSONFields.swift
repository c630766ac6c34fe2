/// Chosen fields of a JSON document, found in one pass that skips everything else without building it.
///
/// Decoding a whole answer to read two of its fields (a created Job's name and uid out of 8 KB with `managedFields`,
/// a delivery's twenty fields out of 8 KB of URLs) spends most of its time on the fields it throws away. This scanner
/// checks the whole document's syntax as `JSONDecoder` does but keeps only where the values at the asked-for paths
/// are; the typed readers then take those values in the plainest spelling only (a string without escapes, an
/// integer in digits). It is a fast path: a nil from any of them means "not that simple", and the caller decodes the
/// document the ordinary way, which then gives the same value or the same error it always did.
package struct JSONFields {
    /// The document, and where each asked-for path's value is in it (nil: not in the document).
    private let bytes: [UInt8]
    private let ranges: [Range<Int>?]

    /// The paths to read (keys from the top-level object down, through objects only), prepared once: a `static
    /// let` beside the reader that uses them.
    package struct Paths: Sendable {
        fileprivate let keys: [[[UInt8]]]

        package init(_ paths: [[String]]) {
            precondition(paths.count <= 64, "at most 64 paths")
            keys = paths.map { $0.map { Array($0.utf8) } }
        }
    }

    /// Scans `bytes` for the values at `paths`. Nil when the document is not valid JSON with an object at the top,
    /// uses a form the scanner leaves to the full decoder (an escaped key, bytes beyond ASCII that are not UTF-8,
    /// nesting deeper than 256), or repeats a key on a path.
    package init?(_ bytes: [UInt8], paths: Paths) {
        var found: [Range<Int>?] = []
        var beyondASCII = false
        let valid = bytes.withUnsafeBufferPointer { buffer -> Bool in
            var scanner = Scanner(bytes: buffer, paths: paths.keys)
            guard scanner.document() else { return false }
            found = scanner.found
            beyondASCII = scanner.beyondASCII
            return true
        }
        guard valid else { return nil }
        if beyondASCII, String(validating: bytes, as: UTF8.self) == nil { return nil }
        self.bytes = bytes
        self.ranges = found
    }

    /// Whether path `index` is in the document (with any value, `null` included).
    package func contains(_ index: Int) -> Bool { ranges[index] != nil }

    /// Whether the value at path `index` is absent or `null` (an optional field with no value).
    package func isAbsentOrNull(_ index: Int) -> Bool {
        guard let range = ranges[index] else { return true }
        return bytes[range.lowerBound] == UInt8(ascii: "n")
    }

    /// Whether the value at path `index` is an object.
    package func isObject(_ index: Int) -> Bool {
        guard let range = ranges[index] else { return false }
        return bytes[range.lowerBound] == UInt8(ascii: "{")
    }

    /// The string at path `index`; nil when absent, not a string, or written with escapes.
    package func string(_ index: Int) -> String? {
        guard let range = ranges[index] else { return nil }
        return Self.plainString(bytes, range)
    }

    /// The integer at path `index` when it is written as digits (an optional minus) and fits; else nil.
    package func int64(_ index: Int) -> Int64? {
        guard let range = ranges[index] else { return nil }
        var value: Int64 = 0
        var position = range.lowerBound
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard position < range.upperBound else { return nil }
        while position < range.upperBound {
            let digit = bytes[position] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(negative ? -Int64(digit) : Int64(digit))
            guard !overflow, !overflow2 else { return nil }
            value = sum
            position += 1
        }
        return value
    }

    /// The array of strings at path `index`; nil when absent, not an array, or holding anything but plain strings.
    package func strings(_ index: Int) -> [String]? {
        guard let range = ranges[index], bytes[range.lowerBound] == UInt8(ascii: "[") else { return nil }
        var strings: [String] = []
        var position = range.lowerBound + 1
        while position < range.upperBound {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ","),
                UInt8(ascii: "]"):
                position += 1
            case UInt8(ascii: "\""):
                var end = position + 1
                while bytes[end] != UInt8(ascii: "\"") { end += 1 }  // the scan checked it ends
                guard let string = Self.plainString(bytes, position..<(end + 1)) else { return nil }
                strings.append(string)
                position = end + 1
            default:
                return nil
            }
        }
        return strings
    }

    private static func plainString(_ bytes: [UInt8], _ range: Range<Int>) -> String? {
        guard bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        let inside = (range.lowerBound + 1)..<(range.upperBound - 1)
        guard !bytes[inside].contains(UInt8(ascii: "\\")) else { return nil }
        return String(decoding: bytes[inside], as: UTF8.self)
    }

    // MARK: - The scan

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        let paths: [[[UInt8]]]
        var found: [Range<Int>?]
        var position = 0
        var depth = 0
        /// A string holds a byte beyond ASCII (outside strings such a byte is a syntax error).
        var beyondASCII = false

        init(bytes: UnsafeBufferPointer<UInt8>, paths: [[[UInt8]]]) {
            self.bytes = bytes
            self.paths = paths
            found = Array(repeating: nil, count: paths.count)
        }

        mutating func document() -> Bool {
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "{") else { return false }
            let all: UInt64 = paths.count == 64 ? .max : (1 << UInt64(paths.count)) - 1
            guard object(candidates: all, level: 0) else { return false }
            skipSpace()
            return position == bytes.count
        }

        mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
                default: return
                }
            }
        }

        /// A value; inside an object whose path may lead to asked-for ones (`candidates`, at `level`).
        mutating func value(candidates: UInt64, level: Int) -> Bool {
            guard position < bytes.count else { return false }
            switch bytes[position] {
            case UInt8(ascii: "{"): return object(candidates: candidates, level: level)
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""): return string(isKey: false) != nil
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        mutating func object(candidates: UInt64, level: Int) -> Bool {
            depth += 1
            guard depth <= 256 else { return false }
            defer { depth -= 1 }
            position += 1  // {
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return true
            }
            while true {
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\""),
                    let key = string(isKey: true)
                else { return false }
                skipSpace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return false }
                position += 1
                skipSpace()
                // The paths that go on through this key, and the one that ends at it.
                var next: UInt64 = 0
                var ending: Int?
                if candidates != 0 {
                    var rest = candidates
                    while rest != 0 {
                        let index = rest.trailingZeroBitCount
                        rest &= rest - 1
                        let path = paths[index]
                        guard path.count > level, Self.equal(path[level], bytes, key) else { continue }
                        if path.count == level + 1 {
                            if found[index] != nil { return false }  // a repeated key: left to the full decoder
                            ending = index
                        } else {
                            next |= 1 << UInt64(index)
                        }
                    }
                }
                let start = position
                guard value(candidates: next, level: level + 1) else { return false }
                if let ending { found[ending] = start..<position }
                skipSpace()
                guard position < bytes.count else { return false }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    skipSpace()
                    continue
                }
                guard bytes[position] == UInt8(ascii: "}") else { return false }
                position += 1
                return true
            }
        }

        mutating func array() -> Bool {
            depth += 1
            guard depth <= 256 else { return false }
            defer { depth -= 1 }
            position += 1  // [
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return true
            }
            while true {
                guard value(candidates: 0, level: 0) else { return false }
                skipSpace()
                guard position < bytes.count else { return false }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    skipSpace()
                    continue
                }
                guard bytes[position] == UInt8(ascii: "]") else { return false }
                position += 1
                return true
            }
        }

        /// A string from its opening quote; the range of its content. A key with an escape is refused (it could
        /// spell an asked-for key differently).
        mutating func string(isKey: Bool) -> Range<Int>? {
            position += 1  // "
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return start..<(position - 1)
                }
                if byte < 0x20 { return nil }
                if byte >= 0x80 { beyondASCII = true }
                if byte == UInt8(ascii: "\\") {
                    if isKey { return nil }
                    position += 1
                    guard position < bytes.count else { return nil }
                    switch bytes[position] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        position += 1
                    case UInt8(ascii: "u"):
                        guard position + 4 < bytes.count else { return nil }
                        for offset in 1...4 where !Self.isHexDigit(bytes[position + offset]) { return nil }
                        // A surrogate (\uD800–\uDFFF) is left to the full decoder, which checks its pairing.
                        if bytes[position + 1] | 0x20 == UInt8(ascii: "d"), bytes[position + 2] >= UInt8(ascii: "8") {
                            return nil
                        }
                        position += 5
                    default:
                        return nil
                    }
                    continue
                }
                position += 1
            }
            return nil
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[position + offset] != word.utf8Start[offset] { return false }
            position += count
            return true
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() -> Bool {
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, Self.isDigit(bytes[position]) else { return false }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard position < bytes.count, Self.isDigit(bytes[position]) else { return false }
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
                {
                    position += 1
                }
                guard position < bytes.count, Self.isDigit(bytes[position]) else { return false }
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
            return true
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") <= 9 }

        static func isHexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") <= 5
        }

        static func equal(_ key: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
            guard key.count == range.count else { return false }
            var offset = 0
            while offset < key.count {
                if key[offset] != bytes[range.lowerBound + offset] { return false }
                offset += 1
            }
            return true
        }
    }
}
