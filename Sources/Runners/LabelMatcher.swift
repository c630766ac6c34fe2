/// Decides which jobs this service takes, from `LABEL_MATCHERS`.
///
/// Syntax (the original design's): matchers separated by `;`, a job is taken if any matcher matches.
/// `linux,x64` matches a job carrying any of the labels; `linux+x64` one carrying all of them. Labels
/// compare case-insensitively, as GitHub compares runner labels; whitespace around them is ignored.
/// Unset (or empty): the job must carry `self-hosted`.
package struct LabelMatcher: Sendable, Equatable, CustomStringConvertible {
    package enum Rule: Sendable, Equatable {
        case anyOf([String])
        case allOf([String])
    }

    package let rules: [Rule]

    /// The default: jobs that carry `self-hosted`.
    package static let selfHosted = LabelMatcher(rules: [.anyOf(["self-hosted"])])

    init(rules: [Rule]) {
        self.rules = rules
    }

    package init(parsing text: String?) throws(LabelMatcherError) {
        guard let text, !text.trimmingOWS().isEmpty else {
            self = .selfHosted
            return
        }
        var rules: [Rule] = []
        for (index, part) in text.split(separator: ";", omittingEmptySubsequences: false).enumerated() {
            let position = index + 1
            let matcher = part.trimmingOWS()
            if matcher.isEmpty { throw .emptyMatcher(position: position) }
            let hasAny = matcher.contains(",")
            let hasAll = matcher.contains("+")
            if hasAny && hasAll { throw .mixedOperators(position: position, matcher: matcher) }
            let labels = matcher.split(separator: hasAll ? "+" : ",", omittingEmptySubsequences: false)
                .map { $0.trimmingOWS().asciiLowercased }
            if labels.contains(where: \.isEmpty) { throw .emptyLabel(position: position, matcher: matcher) }
            rules.append(hasAll ? .allOf(labels) : .anyOf(labels))
        }
        self.rules = rules
    }

    /// Whether a job with these `runs-on` labels is ours.
    package func matches(_ jobLabels: [String]) -> Bool {
        let labels = Set(jobLabels.map { $0.trimmingOWS().asciiLowercased })
        return rules.contains { rule in
            switch rule {
            case .anyOf(let wanted): wanted.contains { labels.contains($0) }
            case .allOf(let wanted): wanted.allSatisfy { labels.contains($0) }
            }
        }
    }

    /// Why a job with these `runs-on` labels is not ours: each matcher with the labels it missed, in
    /// `LABEL_MATCHERS` order; empty when `matches(_:)` holds.
    package func mismatches(for jobLabels: [String]) -> [Mismatch] {
        guard !matches(jobLabels) else { return [] }
        let labels = Set(jobLabels.map { $0.trimmingOWS().asciiLowercased })
        return rules.enumerated().map { index, rule in
            switch rule {
            case .anyOf(let wanted): Mismatch(position: index + 1, rule: rule, missing: wanted)
            case .allOf(let wanted):
                Mismatch(position: index + 1, rule: rule, missing: wanted.filter { !labels.contains($0) })
            }
        }
    }

    /// One matcher that a job's labels do not satisfy, and the labels it wanted and did not find.
    package struct Mismatch: Sendable, Equatable, CustomStringConvertible {
        /// 1-based, as `LabelMatcherError` counts.
        package var position: Int
        package var rule: Rule
        package var missing: [String]

        package var description: String {
            switch rule {
            case .anyOf(let labels) where labels.count == 1:
                "matcher \(position) '\(labels[0])' needs \(labels[0]): missing"
            case .anyOf(let labels):
                "matcher \(position) '\(labels.joined(separator: ","))' needs any of \(labels.joined(separator: ", ")): none"
                    + " present"
            case .allOf(let labels):
                "matcher \(position) '\(labels.joined(separator: "+"))' needs all of \(labels.joined(separator: ", ")):"
                    + " missing \(missing.joined(separator: ", "))"
            }
        }
    }

    package var description: String {
        rules.map { rule in
            switch rule {
            case .anyOf(let labels): labels.joined(separator: ",")
            case .allOf(let labels): labels.joined(separator: "+")
            }
        }.joined(separator: ";")
    }
}

package enum LabelMatcherError: Error, Equatable, CustomStringConvertible {
    case emptyMatcher(position: Int)
    case emptyLabel(position: Int, matcher: String)
    case mixedOperators(position: Int, matcher: String)

    package var description: String {
        switch self {
        case .emptyMatcher(let position):
            "matcher \(position) is empty (remove the extra ';')"
        case .emptyLabel(let position, let matcher):
            "matcher \(position) '\(matcher)' has an empty label"
        case .mixedOperators(let position, let matcher):
            "matcher \(position) '\(matcher)' mixes ',' (any of) and '+' (all of); split it into two matchers with ';'"
        }
    }
}
