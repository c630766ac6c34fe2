import App
import Logging
import Observability
import Support

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Thin on purpose: read the configuration, build the application, run it. Everything else is in the library.
signal(SIGPIPE, SIG_IGN)
MemoryTrimmer.tuneAllocator()
let environment = ProcessEnvironment.current()

switch CommandLine.arguments.dropFirst().first {
case "demo":
    let ok = try await Demo.run(environment: environment)
    exit(ok ? 0 : 1)
case "--version", "version":
    print(KubeActionsRunnerVersion.current)
    exit(0)
case "--help", "-h", "help":
    print(Help.text)
    exit(0)
case nil, "serve":
    break
case let other?:
    ProcessEnvironment.printError("unknown command '\(other)'; try --help")
    exit(2)
}

var configuration: Configuration
do {
    configuration = try Configuration(environment: environment)
} catch {
    ProcessEnvironment.printError("invalid configuration:\n\(error)")
    exit(2)
}
let (logLevel, logFormat) = (configuration.logLevel, configuration.logFormat)
let logger = Logger(label: "kube-actions-runner") { label in
    JSONLogHandler(label: label, level: logLevel, format: logFormat)
}
StartupChecks.apply(
    to: &configuration,
    descriptorLimit: StartupChecks.raiseDescriptorLimit(),
    files: LocalFiles(),
    logger: logger
)
do {
    let app = try Application.build(
        configuration: configuration,
        upstreams: .environment(environment, files: LocalFiles()),
        logger: logger
    )
    try await app.run()
} catch {
    ProcessEnvironment.printError("kube-actions-runner: \(error)")
    exit(1)
}
