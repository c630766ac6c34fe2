import Testing

@testable import TestSupport

// A waiting helper that records a test issue; it lives in the test target, which alone links Swift Testing (the
// TestSupport target also builds in release, for the benchmarks).

/// Fails the test unless `task` ends within `limit` of real time (how long a shutdown may take); cancels it then.
func expectEnds(
    _ task: Task<Void, any Error>,
    within limit: Duration,
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    let ended = await withTaskGroup(of: Bool.self) { group in
        group.addTask {
            _ = await task.result
            return true
        }
        group.addTask {
            try? await Task.sleep(for: limit)
            return false
        }
        let first = await group.next() ?? false
        if !first { task.cancel() }
        group.cancelAll()
        return first
    }
    if !ended { Issue.record("\(what) did not end within \(limit)", sourceLocation: sourceLocation) }
}
