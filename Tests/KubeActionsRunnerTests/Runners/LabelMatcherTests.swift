import Testing

@testable import Runners

@Suite struct LabelMatcherTests {
    @Test(
        arguments: [
            // (LABEL_MATCHERS, job labels, taken?)
            (nil, ["self-hosted", "linux"], true),
            (nil, ["ubuntu-latest"], false),
            (nil, ["Self-Hosted"], true),  // GitHub compares labels case-insensitively
            ("", ["self-hosted"], true),  // blank counts as unset
            ("linux,x64", ["linux"], true),
            ("linux,x64", ["x64", "gpu"], true),
            ("linux,x64", ["arm64"], false),
            ("linux+x64", ["self-hosted", "linux", "x64"], true),
            ("linux+x64", ["linux"], false),
            ("linux+x64;arm64", ["arm64"], true),
            ("linux+x64;arm64", ["linux", "arm"], false),
            (" Linux + X64 ; arm64 ", ["LINUX", "x64"], true),
            ("k8s", [], false),
        ] as [(String?, [String], Bool)]
    )
    func matchesAsTheOriginalDesignSays(matchers: String?, labels: [String], taken: Bool) throws {
        #expect(try LabelMatcher(parsing: matchers).matches(labels) == taken)
    }

    @Test(arguments: [
        ("linux;", LabelMatcherError.emptyMatcher(position: 2)),
        (";linux", .emptyMatcher(position: 1)),
        ("linux;;x64", .emptyMatcher(position: 2)),
        ("linux,", .emptyLabel(position: 1, matcher: "linux,")),
        ("a;+x64", .emptyLabel(position: 2, matcher: "+x64")),
        ("linux, ,x64", .emptyLabel(position: 1, matcher: "linux, ,x64")),
        ("linux+x64,arm", .mixedOperators(position: 1, matcher: "linux+x64,arm")),
    ])
    func rejectsEmptyMatchersAndLabels(matchers: String, error: LabelMatcherError) {
        #expect(throws: error) { try LabelMatcher(parsing: matchers) }
    }

    /// What `render` says about a job the service would not take: every matcher, with the labels it missed.
    @Test func namesWhatEachMatcherMissed() throws {
        let matcher = try LabelMatcher(parsing: "linux+x64+gpu;arm64,riscv;self-hosted")
        #expect(
            matcher.mismatches(for: ["Linux", "x64"]).map(\.description) == [
                "matcher 1 'linux+x64+gpu' needs all of linux, x64, gpu: missing gpu",
                "matcher 2 'arm64,riscv' needs any of arm64, riscv: none present",
                "matcher 3 'self-hosted' needs self-hosted: missing",
            ]
        )
        #expect(matcher.mismatches(for: ["self-hosted"]).isEmpty)
    }

    @Test func describesItselfInTheVariablesSyntax() throws {
        #expect(try LabelMatcher(parsing: "Linux+x64; arm64,gpu").description == "linux+x64;arm64,gpu")
        #expect(LabelMatcher.selfHosted.description == "self-hosted")
    }
}
