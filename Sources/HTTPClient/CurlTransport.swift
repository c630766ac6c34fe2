import CCurl
import Support
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `HTTPTransport` over libcurl's multi interface, driven by one thread of its own.
///
/// Why libcurl and not URLSession: on Linux, URLSession cannot trust a CA for one client only (the cluster's
/// service-account CA, a GHES private CA) and leaks memory per request. Here each transport has its own TLS
/// settings and its own connection cache (keep-alive, and HTTP/2 multiplexing where the server offers it).
///
/// HTTP/2: a request that finds a connection to its host still being set up waits for it (`CURLOPT_PIPEWAIT`), so a
/// cold burst shares one connection and one TLS handshake instead of opening one per request. A server limits the
/// streams of one connection (nghttpd and GitHub 100, Go's default for the API server 250); past that libcurl opens
/// a connection per request again. So once the server has answered over HTTP/2, connections per host are capped at
/// `Configuration.multiplexedConnectionsPerHost` and further requests queue for a free stream; an answer over
/// HTTP/1.1 lifts the cap, since there each request in flight needs a connection of its own. The cap is the
/// transport's (libcurl's multi handle's), for every host it talks to: each API client has a transport of its own.
/// Proxies come from the standard variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), which libcurl reads.
///
/// Requests are handed to the transport's thread under a mutex and the thread is woken through an eventfd;
/// callers await a continuation, so no Swift concurrency thread ever blocks on I/O. Many requests are in flight
/// at once: the thread drives libcurl's socket interface on an epoll set (`kar_curl_driver` in CCurl), so a
/// wake-up costs what the ready sockets cost, not a poll(2) over every transfer in flight. Cancelling the
/// awaiting task aborts its transfer.
package final class CurlTransport: HTTPTransport, @unchecked Sendable {
    package struct Configuration: Sendable {
        package var tls = TLSConfiguration()
        package var connectTimeout: Duration = .seconds(3)
        /// Connections kept open for reuse.
        package var maxCachedConnections = 256
        /// Connections open at once over all hosts; further requests wait for one (0: no limit).
        package var maxTotalConnections = 0
        /// Connections to one host once it has answered over HTTP/2 (each carries up to the server's stream limit).
        package var multiplexedConnectionsPerHost = 8
        /// The largest answer body read (after decompression); a larger one is aborted as it arrives (or at once,
        /// when its Content-Length says so) and the call fails with `tooLarge`. An upstream must never decide how
        /// much memory we use.
        package var maxAnswerBytes = Configuration.defaultMaxAnswerBytes
        /// 16 MiB: a page of 500 objects' metadata is well under 1 MiB, a GitHub answer under 1 MiB.
        package static let defaultMaxAnswerBytes = 16 * 1024 * 1024

        package init(tls: TLSConfiguration = TLSConfiguration(), connectTimeout: Duration = .seconds(3)) {
            self.tls = tls
            self.connectTimeout = connectTimeout
        }
    }

    private struct Inbox {
        var added: [CurlRequest] = []
        var cancelled: [UInt64] = []
        var stopping = false
    }

    private let configuration: Configuration
    private let multi: UnsafeMutableRawPointer
    private let driver: OpaquePointer
    private let inbox = Mutex(Inbox())
    private let nextID = Atomic<UInt64>(1)
    private let stopped = Atomic<Bool>(false)
    /// Loop-thread state: transfers in progress by id.
    private var active: [UInt64: CurlRequest] = [:]
    /// Loop-thread state: whether connections per host are capped (the last answer came over HTTP/2 or later).
    private var multiplexing = false

    package init(configuration: Configuration = Configuration()) {
        CurlGlobal.initialize()
        self.configuration = configuration
        multi = curl_multi_init()!
        kar_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections)
        kar_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxTotalConnections)
        guard let driver = kar_curl_driver_create(multi) else {
            fatalError("cannot create the HTTP client's epoll set (errno \(errno))")
        }
        self.driver = driver
        let thread = LoopThread { [self] in self.loop() }
        thread.start()
    }

    /// Stops the transport's thread; requests in flight fail with `cancelled`.
    package func shutdown() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        inbox.withLock { $0.stopping = true }
        kar_curl_driver_wake(driver)
    }

    deinit {
        // Only here, when no caller can wake the thread any more.
        curl_multi_cleanup(multi)
        kar_curl_driver_destroy(driver)
    }

    package func send(_ request: HTTPClientRequest) async throws(HTTPTransportError) -> HTTPClientResponse {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let transfer: CurlRequest
        do {
            transfer = try CurlRequest(id: id, request: request, configuration: configuration)
        } catch {
            throw error
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPTransportError>, Never>) in
                transfer.continuation = continuation
                // The cancellation check and the hand-over share the inbox's lock with `onCancel`: a cancellation
                // either comes before (the transfer is never handed over) or is queued after the transfer, so the
                // loop always finds what it cancels. (Checked outside the lock, a cancellation that the loop
                // drained before the transfer arrived was lost, and the call ran to its timeout.)
                let verdict = inbox.withLock { inbox -> HTTPTransportError? in
                    guard !inbox.stopping else {
                        return HTTPTransportError(kind: .cancelled, message: "transport stopped")
                    }
                    guard !Task.isCancelled else {
                        return HTTPTransportError(kind: .cancelled, message: "request cancelled")
                    }
                    inbox.added.append(transfer)
                    return nil
                }
                if let verdict {
                    transfer.finish(.failure(verdict))
                } else {
                    kar_curl_driver_wake(driver)
                }
            }
        } onCancel: {
            inbox.withLock { $0.cancelled.append(id) }
            kar_curl_driver_wake(driver)
        }
        return try result.get()
    }

    // MARK: - The transport's thread

    private func loop() {
        while true {
            let (added, cancelled, stopping) = inbox.withLock { inbox in
                defer {
                    inbox.added.removeAll()
                    inbox.cancelled.removeAll()
                }
                return (inbox.added, inbox.cancelled, inbox.stopping)
            }
            for transfer in added {
                active[transfer.id] = transfer
                curl_multi_add_handle(multi, transfer.easy)
            }
            for id in cancelled {
                guard let transfer = active.removeValue(forKey: id) else { continue }
                curl_multi_remove_handle(multi, transfer.easy)
                transfer.finish(.failure(HTTPTransportError(kind: .cancelled, message: "request cancelled")))
            }
            if stopping {
                for transfer in active.values {
                    curl_multi_remove_handle(multi, transfer.easy)
                    transfer.finish(.failure(HTTPTransportError(kind: .cancelled, message: "transport stopped")))
                }
                active.removeAll()
                return
            }
            if !added.isEmpty || !cancelled.isEmpty {
                kar_curl_driver_kick(driver)
            }
            completeFinishedTransfers()
            if kar_curl_driver_run(driver, 1000) < 0 {
                // epoll_wait on our own epoll set fails only on a programming error; do not spin.
                usleep(10_000)
            }
            completeFinishedTransfers()
        }
    }

    private func completeFinishedTransfers() {
        var code = CURLE_OK
        while let easy = kar_curl_multi_done(multi, &code) {
            var privateValue: UnsafeMutableRawPointer?
            kar_curl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &privateValue)
            let id = UInt64(UInt(bitPattern: privateValue))
            if code == CURLE_OK { noteProtocol(of: easy) }
            curl_multi_remove_handle(multi, easy)
            active.removeValue(forKey: id)?.complete(code)
        }
    }

    /// Caps connections per host while the server multiplexes, lifts the cap when it answers over HTTP/1.
    private func noteProtocol(of easy: UnsafeMutableRawPointer) {
        var version = 0
        kar_curl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
        guard version != 0 else { return }
        let multiplexed = version >= Int(CURL_HTTP_VERSION_2_0)
        guard multiplexed != multiplexing else { return }
        multiplexing = multiplexed
        let cap = multiplexed ? configuration.multiplexedConnectionsPerHost : 0
        kar_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap)
    }
}

/// One transfer: its easy handle, the bytes received, and the continuation waiting for them.
/// Created on the caller's thread, then touched only by the transport's thread.
final class CurlRequest: @unchecked Sendable {
    let id: UInt64
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    var continuation: CheckedContinuation<Result<HTTPClientResponse, HTTPTransportError>, Never>?
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    /// The answer cap, and whether the answer went over it (the transfer was then aborted).
    let maxAnswerBytes: Int
    private(set) var answerTooLarge = false
    /// The request's URL; what an error may show of it is `redacted(url)`, made only then.
    private let url: String

    init(id: UInt64, request: HTTPClientRequest, configuration: CurlTransport.Configuration) throws(HTTPTransportError)
    {
        guard let easy = curl_easy_init() else {
            throw HTTPTransportError(kind: .other, message: "curl_easy_init failed")
        }
        self.id = id
        self.easy = easy
        self.maxAnswerBytes = configuration.maxAnswerBytes
        self.url = request.url
        var ok = true
        func set(_ result: CURLcode) { ok = ok && result == CURLE_OK }

        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_URL, request.url))
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(kar_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(kar_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
        set(kar_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(request.timeout.milliseconds)))
        set(kar_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.milliseconds)))
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_ACCEPT_ENCODING, ""))
        // An announced Content-Length over the limit fails before any of the body is read.
        set(kar_curl_easy_setopt_long(easy, CURLOPT_MAXFILESIZE, configuration.maxAnswerBytes))
        // HTTP/2 where TLS negotiates it, and wait for a connection being set up rather than open another (see above).
        set(kar_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
        set(kar_curl_easy_setopt_long(easy, CURLOPT_PIPEWAIT, 1))
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, UnsafeRawPointer(bitPattern: UInt(id))))

        switch request.method {
        case "GET": set(kar_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
        case "HEAD": set(kar_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        default: set(kar_curl_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, request.method))
        }
        if let body = request.body {
            set(kar_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.count))
            set(body.withUnsafeBytes { kar_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) })
            if request.method != "POST" {
                set(kar_curl_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, request.method))
            }
        }
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip for small bodies
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, headerList))

        let tls = configuration.tls
        /// A PEM credential from its bytes (a blob option) or else from a file.
        func setPEM(_ bytes: [UInt8]?, blob: CURLoption, _ file: String?, file fileOption: CURLoption) {
            if let bytes {
                set(bytes.withUnsafeBytes { kar_curl_easy_setopt_blob(easy, blob, $0.baseAddress, $0.count) })
            } else if let file {
                set(kar_curl_easy_setopt_pointer(easy, fileOption, file))
            }
        }
        setPEM(tls.caData, blob: CURLOPT_CAINFO_BLOB, tls.caFile, file: CURLOPT_CAINFO)
        setPEM(tls.clientCertificate, blob: CURLOPT_SSLCERT_BLOB, tls.clientCertificateFile, file: CURLOPT_SSLCERT)
        setPEM(tls.clientKey, blob: CURLOPT_SSLKEY_BLOB, tls.clientKeyFile, file: CURLOPT_SSLKEY)
        if tls.insecureSkipVerify {
            set(kar_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0))
            set(kar_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0))
        }

        let context = Unmanaged.passUnretained(self).toOpaque()
        set(
            kar_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                let transfer = Unmanaged<CurlRequest>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                // Chunked or compressed answers announce no size: count what arrives, and stop at the cap
                // (returning less than `length` makes libcurl abort the transfer).
                guard length <= transfer.maxAnswerBytes - transfer.body.count else {
                    transfer.answerTooLarge = true
                    return 0
                }
                data!.withMemoryRebound(to: UInt8.self, capacity: length) {
                    transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                }
                return length
            }
        )
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context))
        set(
            kar_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                let transfer = Unmanaged<CurlRequest>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                data!.withMemoryRebound(to: UInt8.self, capacity: length) {
                    transfer.receivedHeaderLine(UnsafeBufferPointer(start: $0, count: length))
                }
                return length
            }
        )
        set(kar_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context))
        guard ok else {
            cleanUp()
            throw HTTPTransportError(
                kind: .other,
                message: "libcurl rejected an option (URL \(Self.redacted(request.url)))"
            )
        }
    }

    /// One header line as libcurl hands it over (CRLF included); only names and values become strings.
    private func receivedHeaderLine(_ line: UnsafeBufferPointer<UInt8>) {
        if line.starts(with: "HTTP/".utf8) {
            headers.removeAll()  // a new response (after 100 Continue or similar) starts over
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\n")
        }
        var start = colon + 1
        var end = line.count
        while start < end, isSpace(line[start]) { start += 1 }
        while end > start, isSpace(line[end - 1]) { end -= 1 }
        headers.append(
            (
                String(decoding: UnsafeBufferPointer(rebasing: line[..<colon]), as: UTF8.self),
                String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
            )
        )
    }

    /// Called on the transport's thread when libcurl is done with the transfer.
    func complete(_ code: CURLcode) {
        if answerTooLarge || code == CURLE_FILESIZE_EXCEEDED {
            body = []
            finish(
                .failure(
                    HTTPTransportError(
                        kind: .tooLarge,
                        message: "answer from \(Self.redacted(url)) is larger than \(maxAnswerBytes) bytes; aborted"
                    )
                )
            )
            return
        }
        guard code == CURLE_OK else {
            finish(
                .failure(
                    HTTPTransportError(kind: Self.kind(of: code), message: String(cString: curl_easy_strerror(code)))
                )
            )
            return
        }
        var status = 0
        kar_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        finish(.success(HTTPClientResponse(status: status, headers: headers, body: body)))
    }

    func finish(_ result: Result<HTTPClientResponse, HTTPTransportError>) {
        cleanUp()
        continuation?.resume(returning: result)
        continuation = nil
    }

    private func cleanUp() {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        headerList = nil
    }

    private static func kind(of code: CURLcode) -> HTTPTransportError.Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_GOT_NOTHING,
            CURLE_SEND_ERROR, CURLE_RECV_ERROR:
            .connect
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            .tls
        default: .other
        }
    }

    /// The URL without its query string, for messages.
    static func redacted(_ url: String) -> String {
        guard let query = url.utf8.firstIndex(of: UInt8(ascii: "?")) else { return url }
        return String(url[..<query])
    }
}

/// `curl_global_init` must run once before any other libcurl call.
enum CurlGlobal {
    private static let done = Mutex(false)

    static func initialize() {
        done.withLock { done in
            guard !done else { return }
            curl_global_init(Int(CURL_GLOBAL_ALL))
            done = true
        }
    }
}
