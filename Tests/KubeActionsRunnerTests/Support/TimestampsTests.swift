import Testing

@testable import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct TimestampsTests {
    /// 2023-11-14T22:13:20.125Z, a Tuesday (an eighth of a second: exact in a Double).
    static let instant = 1_700_000_000.125

    @Test func writesEachFormatTheServiceUses() {
        #expect(Timestamps.microTime(Self.instant) == "2023-11-14T22:13:20.125000Z")
        #expect(Timestamps.milliseconds(Self.instant) == "2023-11-14T22:13:20.125Z")
        #expect(Timestamps.seconds(1_700_000_000) == "2023-11-14T22:13:20Z")
        #expect(Timestamps.httpDate(1_700_000_000) == "Tue, 14 Nov 2023 22:13:20 GMT")
    }

    @Test func logTimestampsAreAlways24Characters() {
        for seconds in [0.0, 0.0005, 946_684_799.999_9, Self.instant, 4_102_444_800.5] {
            let text = Timestamps.milliseconds(seconds)
            #expect(text.count == 24 && text.hasSuffix("Z"), "\(text)")
        }
        #expect(Timestamps.milliseconds(0.0005) == "1970-01-01T00:00:00.000Z")  // truncated, not rounded
        #expect(Timestamps.milliseconds(946_684_799.999_9) == "1999-12-31T23:59:59.999Z")
    }

    @Test func theDateHeaderMatchesStrftimeOverAYear() {
        // Every day of 2024 (a leap year) at a time with every field two-digit or padded.
        for day in 0..<366 {
            var second = time_t(1_704_067_200 + day * 86_400 + 3_661)
            var parts = tm()
            gmtime_r(&second, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            let expected = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(Timestamps.httpDate(Int64(second)) == expected)
        }
    }

    @Test(arguments: [
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14T21:13:20-01:00", 1_700_000_000.0),
    ])
    func parsesRFC3339(text: String, seconds: Double) {
        #expect(Timestamps.parse(text) == seconds)
    }

    @Test(arguments: ["", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20+0100", "2023-11-14 22:13:2xZ"])
    func refusesAnythingElse(text: String) {
        #expect(Timestamps.parse(text) == nil)
    }

    @Test func readsBackWhatItWrites() {
        #expect(Timestamps.parse(Timestamps.seconds(1_700_000_000)) == 1_700_000_000)
        #expect(Timestamps.parse(Timestamps.microTime(Self.instant)) == Self.instant)
    }
}
