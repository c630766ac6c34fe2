/// Readiness of a dependency, with a one-line reason when not ready.
package enum Readiness: Sendable, Equatable {
    case ready
    case notReady(String)
}
