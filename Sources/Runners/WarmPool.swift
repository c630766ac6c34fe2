/// Runners registered ahead of any job, so a job that fits starts at once instead of after a pod's start: a
/// profile's `minIdle` idle runners in each of its repositories (ARC's `minRunners`).
///
/// A pool's runner is an ordinary runner of ours (`runner-warm-<id>`, its Job labelled with the pool): GitHub gives
/// it whichever fitting job comes first, and the delivery of that job still provisions the job's own runner, which
/// then stays idle in its place, until the idle reaper removes what the pool does not need. So a pool never leaves a
/// job without a runner, and it costs at most `minIdle` idle runners per repository.
package struct WarmPool: Sendable, Equatable {
    /// The profile's name; the `kube-actions-runner/pool` label of its runner Jobs.
    package var name: String
    /// Idle runners to keep in each repository.
    package var minIdle: Int
    /// The labels its runners register with.
    package var labels: [String]
    /// Where its runners wait (in organization scope, registered at the organization of each).
    package var repositories: [RepositoryRegistry.Repository]
    /// The profile's cap on live runners of every kind (`maxRunners`); nil: none.
    package var maxRunners: Int?

    package init(
        name: String,
        minIdle: Int,
        labels: [String],
        repositories: [RepositoryRegistry.Repository],
        maxRunners: Int? = nil
    ) {
        self.name = name
        self.minIdle = minIdle
        self.labels = labels
        self.repositories = repositories
        self.maxRunners = maxRunners
    }
}
