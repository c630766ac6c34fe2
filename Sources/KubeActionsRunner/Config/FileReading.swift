#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads small files (secrets mounted from a Kubernetes Secret, the service-account namespace).
public protocol FileReading: Sendable {
    /// The file's contents as UTF-8, or nil when it does not exist.
    func read(_ path: String) throws(FileReadError) -> String?
}

public struct FileReadError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var errno: Int32
    public var description: String { "cannot read \(path): errno \(errno)" }
}

/// Reads from the real file system.
public struct LocalFiles: FileReading {
    /// Files larger than this are refused: every file this service reads is small.
    public var maxBytes = 1024 * 1024

    public init() {}

    public func read(_ path: String) throws(FileReadError) -> String? {
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
public struct InMemoryFiles: FileReading {
    public var files: [String: String]

    public init(_ files: [String: String] = [:]) {
        self.files = files
    }

    public func read(_ path: String) throws(FileReadError) -> String? {
        files[path]
    }
}
