import Runners

/// A runner request and runner Job settings shared by tests that render or provision runners.
package enum Samples {
    package static let request = RunnerRequest(
        owner: "octo-org",
        repository: "hello.world_repo",
        jobID: 289782451,
        runID: 2202229078,
        jobName: "build (linux)",
        labels: ["self-hosted", "linux"],
        deliveryID: "d-1"
    )

    package static let ownerLabel = "kar-github-runners"

    package static func settings(_ mode: RunnerMode, mtu: Int? = nil) -> RunnerJob.Settings {
        RunnerJob.Settings(
            namespace: "github-runners",
            mode: mode,
            runnerImage: "ghcr.io/actions/actions-runner:latest",
            dindImage: "docker:dind",
            dindMTU: mtu,
            ttlSecondsAfterFinished: 300,
            ownerLabel: ownerLabel
        )
    }
}
