import Observability

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Thin on purpose: process set-up, then the command line (KubeActionsRunnerCommand). Everything else is in App.
signal(SIGPIPE, SIG_IGN)
MemoryTrimmer.tuneAllocator()
await KubeActionsRunnerCommand.runAsRoot()
