import App
import ArgumentParser
import Support

extension App.Render.Format: ExpressibleByArgument {}

/// The command line: `serve` (the default), `demo`, `render`, `check-config` and `version`. Parsing only; each
/// command calls into App.
struct KubeActionsRunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube-actions-runner",
        abstract:
            "kube-actions-runner \(KubeActionsRunnerVersion.current): GitHub workflow_job webhooks to ephemeral runner Jobs.",
        discussion: Configuration.environmentHelp,
        version: KubeActionsRunnerVersion.current,
        subcommands: [Serve.self, Demo.self, Render.self, CheckConfig.self, Version.self],
        defaultSubcommand: Serve.self
    )

    /// Runs the service until SIGTERM or SIGINT.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the service, configured by the environment.",
            discussion: Configuration.environmentHelp
        )

        func run() async throws {
            let outcome = await Application.serve(environment: ProcessEnvironment.current())
            if outcome != .stopped { throw ExitCode(outcome.rawValue) }
        }
    }

    /// One signed delivery against a dry-run server, then exit.
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one signed delivery to a dry-run server and show the Job it renders, then exit."
        )

        func run() async throws {
            guard try await App.Demo.run(environment: ProcessEnvironment.current()) else { throw ExitCode.failure }
        }
    }

    /// The Job and Secret a delivery or a label set would get, without GitHub or a cluster.
    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the runner Job and Secret a workflow_job would get with this configuration, then exit.",
            discussion: "Reads the configuration from the environment as `serve` does (no GitHub credentials needed)"
                + " and prints the Job, then its Secret (JIT config redacted, no ownerReferences: the Job's uid exists"
                + " only once it is created), ready for `kubectl apply --dry-run=server -f -`; with PROFILES_FILE, the"
                + " profile that takes the labels is named first. Exits 1 when the service would provision nothing"
                + " (labels matching no LABEL_MATCHERS matcher or no profile, a repository outside the"
                + " allow-list, an action other than queued), 2 for an invalid configuration."
        )

        @Option(
            help: ArgumentHelp(
                "A workflow_job delivery body as GitHub sends it; - reads standard input.",
                valueName: "file"
            )
        )
        var payload: String?

        @Option(
            help: ArgumentHelp("The job's runs-on labels, comma-separated (instead of --payload).", valueName: "labels")
        )
        var labels: String?

        @Option(help: "The repository's owner, with --labels.")
        var owner = "octo-org"

        @Option(help: "The repository, with --labels.")
        var repo = "octo-repo"

        @Option(name: .customLong("job-id"), help: "The job's id, with --labels.")
        var jobID: Int64 = 1

        @Option(help: "yaml (documents) or json (a v1 List).")
        var output: App.Render.Format = .yaml

        func validate() throws {
            guard (payload == nil) != (labels == nil) else {
                throw ValidationError("give either --payload or --labels")
            }
            if let labels, Self.split(labels).isEmpty {
                throw ValidationError("--labels needs at least one label")
            }
            guard jobID > 0 else { throw ValidationError("--job-id must be positive") }
        }

        func run() throws {
            let source: App.Render.Source
            do throws(App.Render.Failure) {
                if let labels {
                    source = .labels(Self.split(labels), owner: owner, repository: repo, jobID: jobID)
                } else if payload == "-" {
                    source = .payload(ProcessEnvironment.readStandardInput())
                } else {
                    source = .payload(try App.Render.payload(at: payload ?? ""))
                }
                print(
                    try App.Render.manifests(for: source, format: output, environment: ProcessEnvironment.current()),
                    terminator: ""
                )
            } catch {
                ProcessEnvironment.printError("kube-actions-runner render: \(error)")
                throw ExitCode(error.exitCode)
            }
        }

        static func split(_ labels: String) -> [String] {
            labels.split(separator: ",").map { String($0).trimmingOWS() }.filter { !$0.isEmpty }
        }
    }

    /// Validates the configuration in the environment and exits.
    struct CheckConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-config",
            abstract: "Check the configuration in the environment as serve would, without network, then exit.",
            discussion: "Prints \"configuration OK\" and a summary (exit 0), or every problem (exit 2)."
        )

        func run() throws {
            let check = ConfigurationCheck(environment: ProcessEnvironment.current())
            guard check.isValid else {
                ProcessEnvironment.printError(check.text)
                throw ExitCode(2)
            }
            print(check.text)
        }
    }

    /// The version, as `--version` prints it.
    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")

        func run() {
            print(KubeActionsRunnerVersion.current)
        }
    }

    /// Parses the command line and runs the command. A command line that does not parse (an unknown command or
    /// option) exits 2, as an invalid configuration does, rather than ArgumentParser's 64.
    static func runAsRoot() async -> Never {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            exit(withError: nil)
        } catch {
            if exitCode(for: error) == .validationFailure {
                ProcessEnvironment.printError(fullMessage(for: error))
                exit(withError: ExitCode(2))
            }
            exit(withError: error)
        }
    }
}
