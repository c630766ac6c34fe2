import Kubernetes
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

extension Samples {
    /// A KubeVirt VM per runner: the VM boots a runner image and reads its JIT config from cloud-init, which
    /// KubeVirt takes from the runner's Secret (`cloudInitNoCloud.secretRef`, key `userdata`); the VM powers off
    /// once the runner exits.
    package static let virtualMachineInstances = KubernetesResource(
        group: "kubevirt.io",
        version: "v1",
        plural: "virtualmachineinstances",
        kind: "VirtualMachineInstance"
    )

    package static func kubeVirtBackend() throws -> CustomBackend {
        try CustomBackend(
            resource: virtualMachineInstances,
            template: [
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachineInstance",
                "metadata": ["labels": ["kubevirt.io/os": "linux"]],
                "spec": [
                    "domain": [
                        "cpu": ["cores": 2],
                        "memory": ["guest": "4Gi"],
                        "devices": [
                            "disks": [
                                ["name": "rootdisk", "disk": ["bus": "virtio"]],
                                ["name": "cloudinit", "disk": ["bus": "virtio"]],
                            ]
                        ],
                    ],
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [
                        ["name": "rootdisk", "containerDisk": ["image": "ghcr.io/example/runner-vm:ubuntu-24.04"]],
                        ["name": "cloudinit", "cloudInitNoCloud": ["secretRef": ["name": "${SECRET_NAME}"]]],
                    ],
                ],
            ],
            secretData: [
                CustomBackend.SecretEntry(
                    key: "userdata",
                    text: """
                        #cloud-config
                        runcmd:
                          - [sh, -c, "sudo -u runner /home/runner/run.sh --jitconfig ${JIT_CONFIG}; poweroff"]
                        """
                )
            ]
        )
    }
}
