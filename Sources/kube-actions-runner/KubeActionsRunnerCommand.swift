import App
import ArgumentParser
import Support

/// The command line: `serve` (the default), `demo` and `version`. Parsing only; each command calls into App.
struct KubeActionsRunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube-actions-runner",
        abstract:
            "kube-actions-runner \(KubeActionsRunnerVersion.current): GitHub workflow_job webhooks to ephemeral runner Jobs.",
        discussion: Configuration.environmentHelp,
        version: KubeActionsRunnerVersion.current,
        // Room for `render` and `check-config`.
        subcommands: [Serve.self, Demo.self, Version.self],
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
