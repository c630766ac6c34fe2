import Support

extension RunnerJob {
    /// A private CA the runner must trust — GHES with a certificate of its own CA, or a proxy that inspects TLS —
    /// taken from a key of a ConfigMap or Secret in the runners' namespace (PEM, one or more certificates).
    ///
    /// What trusts what in the runner image (actions/runner `docs/checks/sslcert.md`): the runner (.NET) reads the
    /// system's OpenSSL bundle, or `SSL_CERT_FILE`; Git reads `GIT_SSL_CAINFO` (`http.sslCAInfo`); Node.js actions
    /// add `NODE_EXTRA_CA_CERTS` to their built-in store. The runner's own remedy, `RUNNER_UPDATE_CA_CERTS` (run.sh
    /// runs `sudo update-ca-certificates`), cannot work here: the runner container may not escalate privileges.
    /// So an init container (`ca-bundle`, the runner image) writes the image's system bundle followed by the
    /// private CA into an emptyDir, and the runner gets:
    /// - `SSL_CERT_FILE` and `GIT_SSL_CAINFO`: that combined bundle (public CAs keep working for job steps);
    /// - `NODE_EXTRA_CA_CERTS`: the private CA alone (Node adds it to its own store).
    /// Both volumes are mounted read-only in the runner.
    package struct CABundle: Sendable, Equatable {
        package enum Source: Sendable, Equatable {
            case configMap(String)
            case secret(String)
        }

        package var source: Source
        /// The key holding the PEM certificates (`ca.crt`, say).
        package var key: String

        package init(_ source: Source, key: String) {
            self.source = source
            self.key = key
        }

        /// Where the given CA is mounted in the runner (and the init container).
        package static let caPath = "/etc/kube-actions-runner/ca/ca.crt"
        /// Where the combined bundle (system CAs, then the given ones) is.
        package static let bundlePath = "/etc/kube-actions-runner/ca-bundle/ca-certificates.crt"
        /// The runner image's system bundle (Ubuntu's `ca-certificates`).
        static let systemBundle = "/etc/ssl/certs/ca-certificates.crt"

        var volumes: [JSONValue] {
            let items: JSONValue = [.object([("key", .string(key)), ("path", "ca.crt")])]
            let source: JSONValue =
                switch self.source {
                case .configMap(let name):
                    .object([
                        ("name", "ca-bundle-source"),
                        ("configMap", .object([("name", .string(name)), ("items", items)])),
                    ])
                case .secret(let name):
                    .object([
                        ("name", "ca-bundle-source"),
                        ("secret", .object([("secretName", .string(name)), ("items", items)])),
                    ])
                }
            return [source, .object([("name", "ca-bundle"), ("emptyDir", .object([]))])]
        }

        /// Writes the combined bundle; a runner image without a system bundle gets the given CAs alone.
        func initContainer(image: String, security: JSONValue) -> JSONValue {
            let script =
                "{ cat \(Self.systemBundle) 2>/dev/null || true; echo; cat \(Self.caPath); } > \(Self.bundlePath)"
            return .object([
                ("name", "ca-bundle"),
                ("image", .string(image)),
                ("command", ["/bin/sh", "-c", .string(script)]),
                ("securityContext", security),
                (
                    "volumeMounts",
                    [
                        .object([
                            ("name", "ca-bundle-source"), ("mountPath", "/etc/kube-actions-runner/ca"),
                            ("readOnly", true),
                        ]),
                        .object([("name", "ca-bundle"), ("mountPath", "/etc/kube-actions-runner/ca-bundle")]),
                    ]
                ),
            ])
        }

        var runnerMounts: [JSONValue] {
            [
                .object([
                    ("name", "ca-bundle-source"), ("mountPath", "/etc/kube-actions-runner/ca"), ("readOnly", true),
                ]),
                .object([
                    ("name", "ca-bundle"), ("mountPath", "/etc/kube-actions-runner/ca-bundle"), ("readOnly", true),
                ]),
            ]
        }

        var environment: [JSONValue] {
            [
                .object([("name", "NODE_EXTRA_CA_CERTS"), ("value", .string(Self.caPath))]),
                .object([("name", "SSL_CERT_FILE"), ("value", .string(Self.bundlePath))]),
                .object([("name", "GIT_SSL_CAINFO"), ("value", .string(Self.bundlePath))]),
            ]
        }
    }
}
