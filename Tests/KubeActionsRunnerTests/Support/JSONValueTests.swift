import FoundationEssentials
import Testing

@testable import Support

@Suite struct JSONValueTests {
    let document: JSONValue = [
        "name": "runner-1-abcde",
        "labels": ["self-hosted", "linux"],
        "count": 3,
        "ready": false,
        "empty": [:],
        "none": [],
        "nothing": .null,
    ]

    @Test func rendersCompactWithKeysInOrder() {
        #expect(
            document.rendered()
                == #"{"name":"runner-1-abcde","labels":["self-hosted","linux"],"count":3,"ready":false,"empty":{},"none":[],"nothing":null}"#
        )
        #expect(document.renderedBytes() == Array(document.rendered().utf8))
    }

    @Test func rendersPrettyWithTwoSpaces() {
        let small: JSONValue = ["a": ["b": 1, "c": []], "d": ["x", true]]
        #expect(
            small.rendered(pretty: true) == """
                {
                  "a": {
                    "b": 1,
                    "c": []
                  },
                  "d": [
                    "x",
                    true
                  ]
                }
                """
        )
    }

    @Test(arguments: [
        "plain", "quote \" and backslash \\", "line\nfeed\rreturn\ttab", "\u{0}\u{1}\u{1f}\u{7f}", "ünïcödé ✓ 🚀",
        "\\u0041 stays literal", "",
    ])
    func escapesStringsSoThatAParserGetsThemBack(_ text: String) throws {
        let rendered = JSONValue.object([("key", .string(text))]).renderedBytes()
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(rendered))
        #expect(decoded["key"] == text)
        #expect(!rendered.contains { $0 < 0x20 }, "control characters must be escaped")
    }

    @Test func escapesControlCharactersAsShortFormsOrUnicodeEscapes() {
        #expect(JSONValue.string("a\"b\\c\n\u{1}").rendered() == #""a\"b\\c\n\u0001""#)
    }

    @Test func appendsToTextForLogLines() {
        var line = "msg="
        JSONValue.writeString("say \"hi\"", into: &line)
        #expect(line == #"msg="say \"hi\"""#)
    }
}
