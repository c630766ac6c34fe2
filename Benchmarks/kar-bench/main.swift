import HTTPClient
import HTTPServer
import Logging
import Runners
import Support
import Synchronization
import Webhook

// Benchmarks that need the library from inside: the libcurl client's memory over many requests, the cost of
// verify + decode + match on one delivery, and the HTTP server's cost per request on loopback. Benchmarks/run.py
// drives the first two; they print JSON lines.
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
    // kar-bench micro PAYLOAD_FILE ITERATIONS [full]: verify + decode + match, as the webhook path does them; with
    // `full`, decoding the whole payload with JSONDecoder (the path bodies that are not spelled plainly take).
    let decode = arguments.count > 4 && arguments[4] == "full" ? WorkflowJobEvent.fullDecode : WorkflowJobEvent.decode
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
        let event = try decode(body)
        if matcher.matches(event.workflowJob.labels) { matched += 1 }
    }
    let elapsed = ContinuousClock.now - started
    let perCall =
        (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(iterations)
    print(
        "{\"bytes\":\(body.count),\"iterations\":\(iterations),\"matched\":\(matched),\"microseconds_per_delivery\":\(perCall / 1000)}"
    )

case "server":
    // kar-bench server REQUESTS CONNECTIONS: the HTTP server on loopback, each connection a blocking client thread
    // sending a delivery-shaped POST (GitHub's headers, a 1 KiB body) and reading the answer, keep-alive. Prints the
    // process's CPU time per request (server and clients together) and the request rate.
    let requests = Int(arguments[2])!
    let connections = Int(arguments[3])!
    var router = Router()
    router.add("POST", "/webhook") { request in
        let event = request.headers["X-GitHub-Event"] ?? ""
        let delivery = request.headers["X-GitHub-Delivery"] ?? ""
        let signed = request.headers["X-Hub-Signature-256"] != nil && request.headers["Content-Type"] != nil
        return .text(signed ? 200 : 400, "\(event) \(delivery.count) \(request.body.count)")
    }
    var configuration = HTTPServer.Configuration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    let server = try HTTPServer(
        configuration: configuration,
        logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    ) { [router] request in await router.handle(request) }
    let body = String(repeating: "x", count: 1024)
    let head =
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GitHub-Hookshot/abc1234\r\nAccept: */*\r\n"
        + "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\nX-GitHub-Event: workflow_job\r\n"
        + "X-GitHub-Hook-ID: 292430182\r\nX-GitHub-Hook-Installation-Target-ID: 79929171\r\n"
        + "X-GitHub-Hook-Installation-Target-Type: repository\r\n"
        + "X-Hub-Signature: sha1=7d38cdd689735b008b3c702edd92eea23791c5f6\r\n"
        + "X-Hub-Signature-256: sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c\r\n"
        + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
    let message = Array((head + body).utf8)
    let port = server.port
    let serving = Task { try await server.run() }
    let done = Mutex(0)
    let perConnection = requests / connections
    func usage() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    let cpuBefore = usage()
    let started = ContinuousClock.now
    for _ in 0..<connections {
        LoopThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            precondition(connected == 0, "connect failed")
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var buffer = [UInt8](repeating: 0, count: 4096)
            for _ in 0..<perConnection {
                _ = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                // The answer is small and sent in one write: read until its body (after the blank line) is in.
                var have = 0
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + have, $0.count - have, 0) }
                    precondition(n > 0, "connection closed")
                    have += n
                    let text = buffer[0..<have]
                    if let end = text.firstRange(of: Array("\r\n\r\n".utf8)),
                        let lengthLine = String(decoding: text[..<end.lowerBound], as: UTF8.self)
                            .split(separator: "\r\n").first(where: { $0.hasPrefix("Content-Length: ") }),
                        let length = Int(lengthLine.dropFirst("Content-Length: ".count)),
                        have >= end.upperBound + length
                    {
                        precondition(text.starts(with: Array("HTTP/1.1 200".utf8)), "unexpected answer")
                        break
                    }
                }
            }
            close(fd)
            done.withLock { $0 += 1 }
        }.start()
    }
    while done.withLock({ $0 }) < connections { try await Task.sleep(for: .milliseconds(1)) }
    let elapsed = ContinuousClock.now - started
    let cpu = usage() - cpuBefore
    server.shutdown()
    try await serving.value
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let total = perConnection * connections
    print(
        "{\"requests\":\(total),\"connections\":\(connections),\"requests_per_second\":\(Double(total) / seconds),"
            + "\"cpu_microseconds_per_request\":\(cpu / Double(total) * 1e6)}"
    )

default:
    print(
        "usage: kar-bench client URL COUNT CONCURRENCY | kar-bench micro PAYLOAD_FILE ITERATIONS [full]"
            + " | kar-bench server REQUESTS CONNECTIONS"
    )
    exit(2)
}
