#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads small files (secrets mounted from a Kubernetes Secret, the service-account namespace).
package protocol FileReading: Sendable {
    /// The file's contents as UTF-8, or nil when it does not exist.
    func read(_ path: String) throws(FileReadError) -> String?
}

package struct FileReadError: Error, CustomStringConvertible, Equatable {
    package var path: String
    package var errno: Int32
    package var description: String { "cannot read \(path): errno \(errno)" }
}

/// Reads from the real file system.
package struct LocalFiles: FileReading {
    /// Files larger than this are refused: every file this service reads is small.
    package var maxBytes = 1024 * 1024

    package init() {}

    package func read(_ path: String) throws(FileReadError) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileReadError(path: path, errno: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileReadError(path: path, errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > maxBytes { throw FileReadError(path: path, errno: EFBIG) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An in-memory file system for tests and the demo.
package struct InMemoryFiles: FileReading {
    package var files: [String: String]

    package init(_ files: [String: String] = [:]) {
        self.files = files
    }

    package func read(_ path: String) throws(FileReadError) -> String? {
        files[path]
    }
}
