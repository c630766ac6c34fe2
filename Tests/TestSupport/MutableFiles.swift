import Support
import Synchronization

/// Files a test changes while the code under test reads them (a rotated token, an updated ConfigMap volume).
package final class MutableFiles: FileReading {
    private let files: Mutex<[String: String]>

    package init(_ files: [String: String] = [:]) {
        self.files = Mutex(files)
    }

    /// Writes `contents` at `path`; nil removes the file.
    package func set(_ path: String, _ contents: String?) {
        files.withLock { $0[path] = contents }
    }

    package func read(_ path: String) throws(FileReadError) -> String? {
        files.withLock { $0[path] }
    }
}
