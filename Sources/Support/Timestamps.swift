#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Wall-clock times as text, in one place: RFC 3339 as Kubernetes (`MicroTime`), GitHub (`created_at`) and our log
/// lines write it, always UTC, and the HTTP `Date` header's IMF-fixdate.
package enum Timestamps {
    /// Seconds since the epoch, wall clock.
    package static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// `2026-11-24T09:50:00.123456Z` (Kubernetes `MicroTime`).
    package static func microTime(_ seconds: Double) -> String {
        format(seconds, fractionDigits: 6)
    }

    /// `2026-11-24T09:50:00.123Z`: log lines' `ts`, always 24 characters.
    package static func milliseconds(_ seconds: Double) -> String {
        format(seconds, fractionDigits: 3)
    }

    /// `2023-11-14T22:23:20Z`: a whole second, such as GitHub's rate-limit reset.
    package static func seconds(_ epochSeconds: Int64) -> String {
        format(Double(epochSeconds), fractionDigits: 0)
    }

    /// RFC 3339 in UTC with `fractionDigits` digits of the second, truncated (none: no fraction and no dot).
    package static func format(_ seconds: Double, fractionDigits: Int) -> String {
        let whole = seconds.rounded(.down)
        var scale = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let parts = civil(Int64(whole))
        var out: [UInt8] = []
        out.reserveCapacity(21 + fractionDigits)
        append(parts.year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        append(parts.month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        append(parts.day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        append(parts.hour, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        append(parts.minute, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        append(parts.second, width: 2, to: &out)
        if fractionDigits > 0 {
            out.append(UInt8(ascii: "."))
            append(Int((seconds - whole) * Double(scale)), width: fractionDigits, to: &out)
        }
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`: the HTTP `Date` header's IMF-fixdate (RFC 9110 §5.6.7), in English
    /// whatever the locale.
    package static func httpDate(_ epochSeconds: Int64) -> String {
        let parts = civil(epochSeconds)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out.append(contentsOf: weekdays[parts.weekday].utf8)
        out.append(contentsOf: ", ".utf8)
        append(parts.day, width: 2, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: months[parts.month - 1].utf8)
        out.append(UInt8(ascii: " "))
        append(parts.year, width: 4, to: &out)
        out.append(UInt8(ascii: " "))
        append(parts.hour, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        append(parts.minute, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        append(parts.second, width: 2, to: &out)
        out.append(contentsOf: " GMT".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nil for anything else.
    package static func parse(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            guard let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6) else {
                return nil
            }
            offset = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
        } else if index >= bytes.count || bytes[index] != UInt8(ascii: "Z") {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Double(timegm(&parts) - offset) + fraction
    }

    // MARK: - Calendar

    private struct Civil {
        var year: Int
        var month: Int
        var day: Int
        var hour: Int
        var minute: Int
        var second: Int
        /// 0 is Sunday.
        var weekday: Int
    }

    /// The UTC calendar fields of an epoch second.
    private static func civil(_ epochSeconds: Int64) -> Civil {
        var time = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return Civil(
            year: Int(parts.tm_year) + 1900,
            month: Int(parts.tm_mon) + 1,
            day: Int(parts.tm_mday),
            hour: Int(parts.tm_hour),
            minute: Int(parts.tm_min),
            second: Int(parts.tm_sec),
            weekday: Int(parts.tm_wday)
        )
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Appends `value` (not negative) in decimal, zero-padded to at least `width` digits.
    private static func append(_ value: Int, width: Int, to out: inout [UInt8]) {
        var rest = max(value, 0)
        var count = 1
        var probe = rest
        while probe >= 10 {
            probe /= 10
            count += 1
        }
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(width, count)))
        var index = out.count - 1
        repeat {
            out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        } while rest > 0
    }
}
