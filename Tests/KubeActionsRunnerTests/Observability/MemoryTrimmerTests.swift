import Foundation
import Testing

@testable import KubeActionsRunner

#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryTrimmerTests {
    /// Each tick's activity count, and whether the trimmer unmaps file pages then.
    @Test(arguments: [
        // A quiet first tick releases what start-up mapped; nothing new happened after it: no release.
        ([0, 0, 0], [true, false, false]),
        // Deliveries during a tick: the code in use is kept; the first quiet tick after them releases.
        ([0, 5, 9, 9, 9], [true, false, false, true, false]),
        // Busy from the start: wait for a quiet tick.
        ([3, 3, 3], [false, true, false]),
    ])
    func releasesFilePagesOnTheFirstQuietTickAfterStartUpOrDeliveries(ticks: [Int], expected: [Bool]) {
        var policy = MemoryTrimmer.FilePagePolicy(activity: 0)
        let decisions = ticks.map { policy.shouldRelease(activity: $0) }
        #expect(decisions == expected)
    }

    /// The real system call on real mappings of this process: a clean read-only file mapping is unmapped and reads
    /// back from the file; a private mapping written before it was made read-only (as the dynamic loader does with
    /// RELRO) keeps its own bytes, which the file does not hold.
    @Test func unmapsCleanReadOnlyFilePagesAndKeepsPrivateCopies() throws {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = 64 * pageSize
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("trimmer-\(UUID().uuidString)")
        try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 / pageSize + 1) }).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let fd = open(url.path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }

        let clean = try #require(mapFile(fd, size: size, protection: PROT_READ))
        let copied = try #require(mapFile(fd, size: size, protection: PROT_READ | PROT_WRITE))
        defer {
            munmap(clean, size)
            munmap(copied, size)
        }
        var sum = 0
        for page in 0..<64 { sum += Int(clean.load(fromByteOffset: page * pageSize, as: UInt8.self)) }
        #expect(sum == (1...64).reduce(0, +))
        for page in 0..<64 { copied.storeBytes(of: 0xEE, toByteOffset: page * pageSize, as: UInt8.self) }
        #expect(mprotect(copied, size, PROT_READ) == 0)
        #expect(residentKiB(of: clean) == size / 1024)

        let released = MemoryTrimmer.releaseFilePages()

        #expect(released >= size, "the clean mapping's pages count as released")
        #expect(residentKiB(of: clean) == 0, "the clean mapping is no longer resident")
        #expect(residentKiB(of: copied) == size / 1024, "the private copies stay")
        for page in 0..<64 {
            #expect(clean.load(fromByteOffset: page * pageSize, as: UInt8.self) == UInt8(page + 1))
            #expect(copied.load(fromByteOffset: page * pageSize, as: UInt8.self) == 0xEE)
        }
        #expect(residentKiB(of: clean) == size / 1024, "read back from the page cache")
    }

    private func mapFile(_ fd: Int32, size: Int, protection: Int32) -> UnsafeMutableRawPointer? {
        let pointer = mmap(nil, size, protection, MAP_PRIVATE, fd, 0)
        return pointer == MAP_FAILED ? nil : pointer
    }

    /// `Rss` of the mapping that holds `address`, from /proc/self/smaps.
    private func residentKiB(of address: UnsafeMutableRawPointer) -> Int? {
        // /proc files report size 0, so they are read to the end by hand.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps"), let data = try? handle.readToEnd() else {
            return nil
        }
        let target = UInt(bitPattern: address)
        var inMapping = false
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let range = line.prefix { $0 != " " }.split(separator: "-")
            if range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) {
                inMapping = start <= target && target < end
            } else if inMapping, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ")[1])
            }
        }
        return nil
    }
}
