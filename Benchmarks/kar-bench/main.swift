import HTTPClient
import Runners
import Support
import Webhook

// Benchmarks that need the library from inside: the libcurl client's memory over many requests, and the cost of
// verify + decode + match on one delivery. Benchmarks/run.py drives them; they print JSON lines.
#if canImport(Glibc)
import Glibc
#endif

func residentMiB() -> Double {
    guard let file = fopen("/proc/self/statm", "r") else { return -1 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    _ = withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &resident) { r in withVaList([s, r]) { vfscanf(file, "%ld %ld", $0) } }
    }
    return Double(resident * Int(sysconf(Int32(_SC_PAGESIZE)))) / 1_048_576
}

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "client":
    // kar-bench client URL COUNT CONCURRENCY
    let url = arguments[2]
    let count = Int(arguments[3])!
    let concurrency = Int(arguments[4])!
    let transport = CurlTransport()
    let started = ContinuousClock.now
    var failures = 0
    var done = 0
    print("{\"requests\":0,\"rss_mib\":\(residentMiB())}")
    await withTaskGroup(of: Bool.self) { group in
        var issued = 0
        func issue() {
            issued += 1
            group.addTask {
                do {
                    return try await transport.send(HTTPClientRequest(method: "GET", url: url)).status == 200
                } catch {
                    return false
                }
            }
        }
        while issued < min(concurrency, count) { issue() }
        for await ok in group {
            done += 1
            if !ok { failures += 1 }
            if done % (count / 10) == 0 {
                print("{\"requests\":\(done),\"rss_mib\":\(residentMiB())}")
            }
            if issued < count { issue() }
        }
    }
    let seconds =
        Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        + Double((ContinuousClock.now - started).components.seconds)
    print("{\"done\":\(done),\"failures\":\(failures),\"seconds\":\(seconds)}")
    transport.shutdown()

case "micro":
    // kar-bench micro PAYLOAD_FILE ITERATIONS: verify + decode + match, as the webhook path does them.
    let path = arguments[2]
    let iterations = Int(arguments[3])!
    guard let text = try LocalFiles().read(path) else { fatalError("no payload at \(path)") }
    let body = Array(text.utf8)
    let secret = Secret("benchmark-secret")
    let verifier = SignatureVerifier(secrets: [secret])
    let signature = SignatureVerifier.sign(body, secret: secret)
    let matcher = try LabelMatcher(parsing: "linux+x64;ubuntu-latest")
    var matched = 0
    for _ in 0..<1000 {  // warm up
        _ = verifier.isValid(signatureHeader: signature, body: body)
    }
    let started = ContinuousClock.now
    for _ in 0..<iterations {
        guard verifier.isValid(signatureHeader: signature, body: body) else { fatalError("signature") }
        let event = try WorkflowJobEvent.decode(body)
        if matcher.matches(event.workflowJob.labels) { matched += 1 }
    }
    let elapsed = ContinuousClock.now - started
    let perCall =
        (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(iterations)
    print(
        "{\"bytes\":\(body.count),\"iterations\":\(iterations),\"matched\":\(matched),\"microseconds_per_delivery\":\(perCall / 1000)}"
    )

default:
    print("usage: kar-bench client URL COUNT CONCURRENCY | kar-bench micro PAYLOAD_FILE ITERATIONS")
    exit(2)
}
