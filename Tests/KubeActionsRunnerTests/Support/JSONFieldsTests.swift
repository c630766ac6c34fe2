import Foundation
import Testing

@testable import Support

@Suite struct JSONFieldsTests {
    func fields(_ text: String, _ paths: [[String]]) -> JSONFields? {
        JSONFields(Array(text.utf8), paths: JSONFields.Paths(paths))
    }

    @Test func findsTheValuesAtThePathsAndSkipsTheRest() throws {
        let text = #"""
            {"kind": "Job", "spec": {"template": {"metadata": {"name": "not-this"}}, "n": [1, -2.5e+3, {"a": []}]},
             "metadata": {"name": "runner-1", "uid": "0b7f", "labels": ["a", "b"], "generation": 12, "x": null},
             "status": {}}
            """#
        let found = try #require(
            fields(
                text,
                [
                    ["metadata", "name"], ["metadata", "uid"], ["metadata", "labels"], ["metadata", "generation"],
                    ["metadata", "x"], ["metadata", "missing"], ["spec", "template"], ["kind"],
                ]
            )
        )
        #expect(found.string(0) == "runner-1" && found.string(1) == "0b7f")
        #expect(found.strings(2) == ["a", "b"])
        #expect(found.int64(3) == 12)
        #expect(found.contains(4) && found.isAbsentOrNull(4) && found.string(4) == nil)
        #expect(!found.contains(5) && found.isAbsentOrNull(5))
        #expect(found.isObject(6) && found.string(6) == nil)
        #expect(found.string(7) == "Job" && found.int64(7) == nil && found.strings(7) == nil)
    }

    @Test func readsOnlyThePlainestSpellings() throws {
        let text = #"{"a": "x\"y", "b": 1.0, "c": 1e2, "d": ["x", 1], "e": ["x\n"], "f": 9223372036854775808, "g": -0}"#
        let found = try #require(fields(text, [["a"], ["b"], ["c"], ["d"], ["e"], ["f"], ["g"]]))
        #expect(found.string(0) == nil)  // escaped: left to the full decoder
        #expect(found.int64(1) == nil && found.int64(2) == nil)
        #expect(found.strings(3) == nil && found.strings(4) == nil)
        #expect(found.int64(5) == nil)  // does not fit
        #expect(found.int64(6) == 0)
        #expect(fields(#"{"n": -9223372036854775808}"#, [["n"]])?.int64(0) == .min)
    }

    @Test(arguments: [
        "", "[]", "\"a\"", "{", "{}x", #"{"a" 1}"#, #"{"a": 1,}"#, #"{"a": [1,]}"#, #"{"a": 01}"#, #"{"a": 1.}"#,
        #"{"a": .5}"#, #"{"a": 1e}"#, #"{"a": tru}"#, #"{"a": nul}"#, #"{"a": "x"#, #"{"a": "\x"}"#,
        #"{"a": "\u12G4"}"#, "{\"a\": \"tab\there\"}", #"{"\u0061": 1}"#, #"{"a": "\ud800"}"#, #"{"a": 1, "a": 2}"#,
        #"{'a': 1}"#, #"{"a": +1}"#, #"{"a": -}"#,
    ])
    func refusesWhatItLeavesToTheFullDecoder(text: String) {
        #expect(fields(text, [["a"]]) == nil)
    }

    @Test func refusesBytesThatAreNotUTF8AndNestingPast256() {
        #expect(JSONFields(Array(#"{"a": "é"}"#.utf8), paths: JSONFields.Paths([["a"]]))?.string(0) == "é")
        #expect(
            JSONFields(Array(#"{"a": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), paths: JSONFields.Paths([["a"]]))
                == nil
        )
        let deep = String(repeating: "[", count: 255) + String(repeating: "]", count: 255)
        #expect(fields(#"{"a": \#(deep)}"#, [["a"]]) != nil)
        let deeper = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        #expect(fields(#"{"a": \#(deeper)}"#, [["a"]]) == nil)
    }

    /// Whatever it accepts, `JSONSerialization` accepts too, with the same string at the path: random edits of a
    /// real document, each either refused or read alike.
    @Test func acceptsOnlyWhatAFullParserAccepts() throws {
        let original = Array(
            #"{"metadata": {"name": "runner-1", "uid": "0b7f-11"}, "spec": {"n": [1, 2.5, true, null]}}"#.utf8
        )
        let alphabet = Array(#"{}[]",:0123456789-+.eE \tnultrfasx\"#.utf8)
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<(1 + next() % 3) {
                let position = next() % bytes.count
                switch next() % 3 {
                case 0: bytes[position] = alphabet[next() % alphabet.count]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[next() % alphabet.count], at: position)
                }
            }
            guard let found = JSONFields(bytes, paths: JSONFields.Paths([["metadata", "name"]])) else { continue }
            accepted += 1
            let parsed = try? JSONSerialization.jsonObject(with: Data(bytes))
            #expect(parsed != nil, "accepted: \(String(decoding: bytes, as: UTF8.self))")
            if let name = found.string(0) {
                let metadata = (parsed as? [String: Any])?["metadata"] as? [String: Any]
                #expect(metadata?["name"] as? String == name)
            }
        }
        #expect(accepted > 100)  // the edits left many documents valid
    }
}
