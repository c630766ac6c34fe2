extension Configuration {
    /// `--help`'s list of environment variables, from `settings`, in lines of at most 78 columns.
    package static let environmentHelp: String = {
        var lines = ["Configured by environment variables (blank counts as unset):"]
        for setting in settings {
            lines.append("  \(setting.name)" + (setting.kind.helpText(for: setting.name).map { "  (\($0))" } ?? ""))
            lines += wrapped("\(setting.documentation) Default: \(setting.defaultValue.helpText).", indent: 6)
        }
        return lines.joined(separator: "\n")
    }()

    /// README's configuration table, from `settings` (a test compares README with it).
    static var markdownTable: String {
        var lines = ["| Variable | Default | Description |", "|---|---|---|"]
        for setting in settings {
            let description = [setting.documentation, setting.kind.sentence(for: setting.name)]
                .compactMap { $0 }.joined(separator: " ")
            lines.append("| `\(setting.name)` | \(setting.defaultValue.markdown) | \(description) |")
        }
        return lines.joined(separator: "\n")
    }

    /// Words in lines of at most 78 columns (`--help`'s text is wrapped again only on narrower terminals), each line
    /// indented; a longer word stands on a line of its own.
    static func wrapped(_ text: String, indent: Int, width: Int = 78) -> [String] {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        // UTF-8 lengths: columns for the ASCII this text is, and never fewer (the parser builds this text at start).
        for word in text.split(separator: " ") {
            if !line.isEmpty, indent + line.utf8.count + 1 + word.utf8.count > width {
                lines.append(margin + line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        if !line.isEmpty { lines.append(margin + line) }
        return lines
    }
}

extension Setting.Kind {
    /// What the variable accepts, for `--help`; nil for text (the documentation says what it is).
    func helpText(for name: String) -> String? {
        switch self {
        case .boolean: "true or false"
        case .integer(let range): "integer \(range.lowerBound)...\(range.upperBound)"
        case .seconds(let range): "seconds \(range.lowerBound)...\(range.upperBound)"
        case .secret: "secret, or a file: \(name)_FILE"
        case .url: "http(s) URL"
        case .file: "file path"
        case .choice(let values): values.joined(separator: ", ")
        case .text: nil
        }
    }

    /// What the variable accepts, as a sentence after its documentation in README; nil for text.
    func sentence(for name: String) -> String? {
        switch self {
        case .boolean: "`true` or `false`."
        case .integer(let range): "A whole number from \(range.lowerBound) to \(range.upperBound)."
        case .seconds(let range): "Seconds, a whole number from \(range.lowerBound) to \(range.upperBound)."
        case .secret: "Or `\(name)_FILE`, the path of a file holding it."
        case .url: "An `http://` or `https://` URL."
        case .file: "The path of a file."
        case .choice(let values):
            "One of "
                + values.dropLast().map { "`\($0)`" }.joined(separator: ", ")
                + (values.count > 1 ? " or " : "") + "`\(values.last ?? "")`."
        case .text: nil
        }
    }
}

extension Setting.Default {
    /// A value as code, a description as it is.
    var markdown: String {
        switch self {
        case .value(let value): "`\(value)`"
        case .described(let text): text
        }
    }

    var helpText: String {
        switch self {
        case .value(let value): value
        case .described(let text): text
        }
    }
}
