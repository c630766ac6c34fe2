import Synchronization

/// The answers of conditional GETs, by URL: a 304 (which costs nothing against GitHub's primary rate limit) is
/// served the body stored with its ETag. Bounded in bytes (URL, ETag and body each count), evicting the least
/// recently used answer first, so 1,000 repositories' lists fit while one huge list cannot grow it without end.
package final class ETagCache: Sendable {
    package struct Entry: Sendable, Equatable {
        package var etag: String
        package var body: [UInt8]
    }

    private struct Stored {
        var entry: Entry
        var bytes: Int
        var lastUsed: UInt64
    }

    private struct State {
        var entries: [String: Stored] = [:]
        var bytes = 0
        var tick: UInt64 = 0
    }

    /// The most bytes the stored answers take.
    package let byteLimit: Int
    private let state = Mutex(State())

    package init(byteLimit: Int) {
        self.byteLimit = byteLimit
    }

    /// Bytes stored now.
    package var bytes: Int { state.withLock { $0.bytes } }

    /// Answers stored now.
    package var count: Int { state.withLock { $0.entries.count } }

    /// The answer stored for `url`, which becomes the most recently used.
    package func entry(for url: String) -> Entry? {
        state.withLock { state in
            guard var stored = state.entries[url] else { return nil }
            state.tick += 1
            stored.lastUsed = state.tick
            state.entries[url] = stored
            return stored.entry
        }
    }

    /// Stores an answer (replacing the URL's last one); the least recently used go until the rest fit. An answer
    /// larger than the whole limit is not stored.
    package func store(_ entry: Entry, for url: String) {
        let bytes = url.utf8.count + entry.etag.utf8.count + entry.body.count
        state.withLock { state in
            if let old = state.entries.removeValue(forKey: url) { state.bytes -= old.bytes }
            guard bytes <= byteLimit else { return }
            if state.bytes + bytes > byteLimit {
                // Oldest first, until this answer fits.
                for (url, stored) in state.entries.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                    state.entries[url] = nil
                    state.bytes -= stored.bytes
                    if state.bytes + bytes <= byteLimit { break }
                }
            }
            state.tick += 1
            state.entries[url] = Stored(entry: entry, bytes: bytes, lastUsed: state.tick)
            state.bytes += bytes
        }
    }
}
