import Logging
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler that writes one JSON object (or one plain line) per event.
///
/// Each line goes out in a single `write(2)`, so lines from concurrent requests never interleave.
package struct JSONLogHandler: LogHandler {
    package typealias Sink = @Sendable (String) -> Void

    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    package var logLevel: Logger.Level
    private let label: String
    private let format: LogFormat
    private let sink: Sink

    package init(
        label: String,
        level: Logger.Level,
        format: LogFormat,
        sink: @escaping Sink = standardOutput
    ) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let timestamp = Self.timestamp()
        var line = ""
        switch format {
        case .json:
            line = "{\"ts\":\"\(timestamp)\",\"level\":\"\(event.level.rawValue)\",\"msg\":"
            JSONValue.writeString(event.message.description, into: &line)
            line += ",\"logger\":"
            JSONValue.writeString(label, into: &line)
            for key in merged.keys.sorted() {
                line += ","
                JSONValue.writeString(key, into: &line)
                line += ":"
                JSONValue.writeString(merged[key]!.description, into: &line)
            }
            line += "}\n"
        case .text:
            line = "\(timestamp) \(event.level.rawValue) \(event.message)"
            for key in merged.keys.sorted() {
                line += " \(key)=\(merged[key]!)"
            }
            line += "\n"
        }
        sink(line)
    }

    /// Writes to standard output.
    package static let standardOutput: Sink = { line in
        var remaining = Array(line.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            remaining = remaining.dropFirst(written)
        }
    }

    /// UTC, RFC 3339 with milliseconds.
    static func timestamp() -> String {
        Timestamps.milliseconds(Timestamps.now())
    }
}

/// How log lines are written: one JSON object per line, or plain text for a terminal (`LOG_FORMAT`).
package enum LogFormat: String, Sendable, CaseIterable {
    case json
    case text
}
