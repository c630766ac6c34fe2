import Support

extension RunnerJob {
    /// An HTTP(S) proxy for the runner, passed through as the proxy variables, in both spellings: the runner reads
    /// the lowercase ones (GitHub's "Using a proxy server with self-hosted runners" recommends them on Linux), many
    /// tools and dockerd the uppercase ones. dind's dockerd gets them too, for its image pulls.
    ///
    /// Proxy URLs may carry credentials (`http://user:password@proxy:3128`), so they never appear in the Job: they
    /// are keys of the runner's own Secret (`http_proxy`, `https_proxy`) and the variables read them from there.
    /// `NO_PROXY` is a plain value.
    package struct Proxy: Sendable, Equatable {
        /// `HTTP_PROXY`.
        package var http: Secret?
        /// `HTTPS_PROXY`.
        package var https: Secret?
        /// `NO_PROXY`: hosts (comma-separated) reached directly.
        package var noProxy: String?

        package init(http: Secret? = nil, https: Secret? = nil, noProxy: String? = nil) {
            self.http = http
            self.https = https
            self.noProxy = noProxy
        }

        /// The Secret's keys for the proxy URLs.
        var secretValues: [(String, Secret)] {
            [("http_proxy", http), ("https_proxy", https)].compactMap { key, value in value.map { (key, $0) } }
        }

        /// The variables, reading the URLs from the Secret `secretName` (the runner's).
        func environment(secretName: String) -> [JSONValue] {
            var env: [JSONValue] = []
            for (key, _) in secretValues {
                let fromSecret: JSONValue = .object([
                    ("secretKeyRef", .object([("name", .string(secretName)), ("key", .string(key))]))
                ])
                for name in [key.asciiUppercased, key] {
                    env.append(.object([("name", .string(name)), ("valueFrom", fromSecret)]))
                }
            }
            if let noProxy {
                for name in ["NO_PROXY", "no_proxy"] {
                    env.append(.object([("name", .string(name)), ("value", .string(noProxy))]))
                }
            }
            return env
        }
    }
}

extension String {
    /// ASCII upper-casing, without locale rules.
    fileprivate var asciiUppercased: String {
        String(decoding: utf8.map { $0 >= 97 && $0 <= 122 ? $0 & ~0x20 : $0 }, as: UTF8.self)
    }
}
