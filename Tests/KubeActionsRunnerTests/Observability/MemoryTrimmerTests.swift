import Foundation
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Observability
@testable import TestSupport

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

    /// One tick per interval of its clock (each reads the delivery count), and none once shutdown began.
    @Test func ticksOnceEveryIntervalAndStopsWithinASecondOfShutdown() async throws {
        final class Deliveries: Sendable {
            private let count = Mutex(0)
            var reads: Int { count.withLock { $0 } }
            /// A new count at every read: deliveries keep coming, so no tick unmaps file pages.
            func read() -> Int {
                count.withLock {
                    $0 += 1; return $0
                }
            }
        }
        let deliveries = Deliveries()
        let time = ManualClock()
        let trimmer = MemoryTrimmer(interval: .seconds(7), clock: time) { deliveries.read() }
        try await testGracefulShutdown { trigger in
            let loop = Task { try await trimmer.run() }
            try await time.waitForSleepers(1)
            #expect(time.sleeps == [.seconds(7)] && deliveries.reads == 1)
            time.advance(by: .seconds(6))
            #expect(time.sleepers == 1 && deliveries.reads == 1)
            time.advance(by: .seconds(1))
            try await time.waitForSleepers(1)
            #expect(deliveries.reads == 2)
            trigger.triggerGracefulShutdown()
            await expectEnds(loop, within: .seconds(1), "the trimmer's loop")
        }
        #expect(time.sleepers == 0)
    }

    /// Releasing the binary's code pages is opt-in: a quiet tick releases them only when the setting asks for it.
    @Test(arguments: [false, true])
    func releasesFilePagesOnAQuietTickOnlyWhenAsked(enabled: Bool) async throws {
        let releases = Mutex(0)
        let time = ManualClock()
        let trimmer = MemoryTrimmer(
            interval: .seconds(7),
            releaseFilePages: enabled,
            clock: time,
            releaser: { releases.withLock { $0 += 1 } }
        ) { 42 }  // no deliveries: every tick is quiet
        try await testGracefulShutdown { trigger in
            let loop = Task { try await trimmer.run() }
            for _ in 0..<3 {
                try await time.waitForSleepers(1)
                time.advance(by: .seconds(7))
            }
            try await time.waitForSleepers(1)
            trigger.triggerGracefulShutdown()
            await expectEnds(loop, within: .seconds(1), "the trimmer's loop")
        }
        // Once after start-up, not again while nothing happens; never when off.
        #expect(releases.withLock { $0 } == (enabled ? 1 : 0))
    }

    /// The real system call on real mappings of this process: a clean read-only mapping of a shared library is
    /// unmapped and reads back from the file; a private mapping written before it was made read-only (as the dynamic
    /// loader does with RELRO) keeps its own bytes, which the file does not hold; a data file's mapping (which the
    /// process could unmap at any time) is left alone.
    @Test func unmapsCleanReadOnlyLibraryPagesAndKeepsPrivateCopiesAndDataFiles() throws {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = 64 * pageSize
        let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 / pageSize + 1) })
        let directory = FileManager.default.temporaryDirectory
        let library = directory.appendingPathComponent("libtrimmer-\(UUID().uuidString).so.1")
        let dataFile = directory.appendingPathComponent("trimmer-\(UUID().uuidString).data")
        try bytes.write(to: library)
        try bytes.write(to: dataFile)
        defer {
            try? FileManager.default.removeItem(at: library)
            try? FileManager.default.removeItem(at: dataFile)
        }
        let fd = open(library.path, O_RDONLY)
        let dataFD = open(dataFile.path, O_RDONLY)
        #expect(fd >= 0 && dataFD >= 0)
        defer {
            close(fd)
            close(dataFD)
        }

        let clean = try #require(mapFile(fd, size: size, protection: PROT_READ))
        let copied = try #require(mapFile(fd, size: size, protection: PROT_READ | PROT_WRITE))
        let data = try #require(mapFile(dataFD, size: size, protection: PROT_READ))
        defer {
            munmap(clean, size)
            munmap(copied, size)
            munmap(data, size)
        }
        for page in 0..<64 { _ = data.load(fromByteOffset: page * pageSize, as: UInt8.self) }
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
        #expect(residentKiB(of: data) == size / 1024, "the data file's mapping stays")
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
