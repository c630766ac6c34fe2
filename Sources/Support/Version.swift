/// The service's version, sent in User-Agent headers and shown by `--version`.
package enum KubeActionsRunnerVersion {
    package static let current = "0.1.0"
}
