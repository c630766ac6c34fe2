import Support

/// One configuration setting: its environment variable, what it accepts, its default, its documentation and how it
/// is read into `Configuration`.
///
/// `Configuration.settings` is the one table of them: parsing iterates it, and `--help` and README's configuration
/// table are rendered from it (a test compares README with the rendering).
struct Setting: Sendable {
    /// What a variable accepts, as README and `--help` say it.
    enum Kind: Sendable, Equatable {
        /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
        case boolean
        /// A whole number in a range.
        case integer(ClosedRange<Int>)
        /// A whole number of seconds in a range.
        case seconds(ClosedRange<Int>)
        /// Never printed; also read from the file that `<NAME>_FILE` names.
        case secret
        /// An `http://` or `https://` URL.
        case url
        /// The path of a file that must exist.
        case file
        /// One of a fixed set of values.
        case choice([String])
        /// Text whose form the documentation describes.
        case text
    }

    /// The default as documented: a value (README shows it as code) or a description of what applies.
    enum Default: Sendable, Equatable {
        case value(String)
        case described(String)
    }

    /// Reads one setting from the environment into a configuration, reporting problems to the reader.
    typealias Read = @Sendable (inout SettingsReader, inout Configuration) -> Void

    /// The environment variable.
    var name: String
    var kind: Kind
    var defaultValue: Default
    /// What the setting does, for README and `--help` (Markdown; README adds what `kind` accepts).
    var documentation: String
    /// Nil for a variable documented here but read by a lower layer (`KUBECONFIG`, read by `KubeConfig`).
    var read: Read?

    /// Secrets are never printed, and can come from a file.
    var isSecret: Bool { kind == .secret }
}

extension Setting {
    static func boolean(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Bool> & Sendable,
        default defaultValue: Bool,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .boolean,
            defaultValue: .value("\(defaultValue)"),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.bool(name, default: defaultValue)
            }
        )
    }

    static func integer(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Int> & Sendable,
        default defaultValue: Int,
        in range: ClosedRange<Int>,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .integer(range),
            defaultValue: .value("\(defaultValue)"),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.int(name, default: defaultValue, range: range)
            }
        )
    }

    /// An integer that may stay unset.
    static func integer(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Int?> & Sendable,
        unset: String,
        in range: ClosedRange<Int>,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .integer(range),
            defaultValue: .described(unset),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.optionalInt(name, range: range)
            }
        )
    }

    static func seconds(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Duration> & Sendable,
        default defaultValue: Int,
        in range: ClosedRange<Int>,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .seconds(range),
            defaultValue: .value("\(defaultValue)"),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = .seconds(reader.int(name, default: defaultValue, range: range))
            }
        )
    }

    /// A required secret.
    static func secret(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Secret> & Sendable,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .secret,
            defaultValue: .described("(required)"),
            documentation: documentation,
            read: { reader, configuration in
                if let secret = reader.secret(name, required: true) { configuration[keyPath: keyPath] = secret }
            }
        )
    }

    /// A secret that may stay unset (a rule after the table may still require it).
    static func secret(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Secret?> & Sendable,
        unset: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .secret,
            defaultValue: .described(unset),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.secret(name, required: false)
            }
        )
    }

    static func url(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, String> & Sendable,
        default defaultValue: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .url,
            defaultValue: .value(defaultValue),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.url(name, default: defaultValue)
            }
        )
    }

    /// The path of a file that must exist, or unset.
    static func file(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, String?> & Sendable,
        unset: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .file,
            defaultValue: .described(unset),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.existingFile(name)
            }
        )
    }

    /// One of an enumeration's raw values, compared case-insensitively.
    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, Value> & Sendable,
        default defaultValue: Value,
        _ documentation: String
    ) -> Setting where Value.RawValue == String {
        Setting(
            name: name,
            kind: .choice(Value.allCases.map(\.rawValue)),
            defaultValue: .value(defaultValue.rawValue),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.choice(name, default: defaultValue)
            }
        )
    }

    /// Text taken as it is.
    static func text(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, String> & Sendable,
        default defaultValue: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .text,
            defaultValue: .value(defaultValue),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.value(name) ?? defaultValue
            }
        )
    }

    /// Text that may stay unset.
    static func text(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, String?> & Sendable,
        unset: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .text,
            defaultValue: .described(unset),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.value(name)
            }
        )
    }

    /// A container image reference (no spaces or control characters).
    static func image(
        _ name: String,
        _ keyPath: WritableKeyPath<Configuration, String> & Sendable,
        default defaultValue: String,
        _ documentation: String
    ) -> Setting {
        Setting(
            name: name,
            kind: .text,
            defaultValue: .value(defaultValue),
            documentation: documentation,
            read: { reader, configuration in
                configuration[keyPath: keyPath] = reader.image(name, default: defaultValue)
            }
        )
    }

    /// A setting read by its own closure, for the few whose reading is particular to them.
    static func custom(
        _ name: String,
        kind: Kind = .text,
        default defaultValue: Default,
        _ documentation: String,
        read: @escaping Read
    ) -> Setting {
        Setting(name: name, kind: kind, defaultValue: defaultValue, documentation: documentation, read: read)
    }

    /// A variable read by a lower layer, listed here so that README and `--help` document it.
    static func documented(
        _ name: String,
        kind: Kind,
        default defaultValue: Default,
        _ documentation: String
    ) -> Setting {
        Setting(name: name, kind: kind, defaultValue: defaultValue, documentation: documentation, read: nil)
    }
}
