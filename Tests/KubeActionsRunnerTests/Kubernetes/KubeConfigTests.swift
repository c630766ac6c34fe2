import Testing

@testable import Kubernetes
@testable import Support
@testable import TestSupport

@Suite struct KubeConfigTests {
    static let ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="  // "-----BEGIN CERTIFICATE-----\n"

    static func kubeconfig(
        user: String,
        cluster: String = "server: https://127.0.0.1:6443\n    certificate-authority-data: \(ca)"
    )
        -> String
    {
        """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: other
          cluster:
            server: https://other:6443
        - name: kind
          cluster:
            \(cluster)
        contexts:
        - name: dev
          context:
            cluster: kind
            user: dev-user
            namespace: ci
        users:
        - name: dev-user
          user:
            \(user)
        """
    }

    func load(_ text: String, path: String = "/home/me/.kube/config") throws(KubeConfigError) -> KubernetesConnection {
        try KubernetesConnection.load(environment: ["HOME": "/home/me"], files: InMemoryFiles([path: text]))
    }

    @Test func usesTheServiceAccountInACluster() throws {
        let files = InMemoryFiles([
            "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt": "CA PEM",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace": "github-runners\n",
        ])
        let connection = try KubernetesConnection.load(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            files: files
        )
        #expect(connection.server == "https://10.96.0.1:443")
        #expect(connection.tls.caData == Array("CA PEM".utf8))
        #expect(connection.credentials == .tokenFile("/var/run/secrets/kubernetes.io/serviceaccount/token"))
        #expect(connection.namespace == "github-runners")
        let v6 = try KubernetesConnection.load(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"],
            files: files
        )
        #expect(v6.server == "https://[fd00::1]:443")
    }

    @Test func readsTheCurrentContextWithATokenAndCAData() throws {
        let connection = try load(Self.kubeconfig(user: "token: abc"))
        #expect(connection.server == "https://127.0.0.1:6443")
        #expect(connection.tls.caData == Array("-----BEGIN CERTIFICATE-----\n".utf8))
        #expect(connection.credentials == .token(Secret("abc")))
        #expect(connection.namespace == "ci")
        #expect(connection.source == "kubeconfig /home/me/.kube/config, context dev")
    }

    @Test func resolvesRelativeFilesAgainstTheKubeconfigsDirectory() throws {
        let connection = try load(
            Self.kubeconfig(
                user: "client-certificate: certs/me.crt\n    client-key: /abs/me.key\n    tokenFile: token",
                cluster: "server: https://127.0.0.1:6443\n    certificate-authority: ca.crt"
            )
        )
        #expect(connection.tls.caFile == "/home/me/.kube/ca.crt")
        #expect(connection.tls.clientCertificateFile == "/home/me/.kube/certs/me.crt")
        #expect(connection.tls.clientKeyFile == "/abs/me.key")
        #expect(connection.credentials == .tokenFile("/home/me/.kube/token"))
    }

    @Test func takesKUBECONFIGAndInsecureSkipVerify() throws {
        let text = Self.kubeconfig(user: "token: t", cluster: "server: https://h:1\n    insecure-skip-tls-verify: true")
        let connection = try KubernetesConnection.load(
            environment: ["KUBECONFIG": "/etc/k.yaml"],
            files: InMemoryFiles(["/etc/k.yaml": text])
        )
        #expect(connection.tls.insecureSkipVerify)
    }

    @Test(arguments: [
        (kubeconfig(user: "exec:\n      command: aws"), "users[dev-user].user.exec"),
        (kubeconfig(user: "auth-provider:\n      name: gcp"), "users[dev-user].user.auth-provider"),
        (kubeconfig(user: "username: admin\n    password: p"), "users[dev-user].user.username"),
        (
            kubeconfig(user: "token: t", cluster: "server: https://h:1\n    proxy-url: http://proxy:3128"),
            "clusters[kind].cluster.proxy-url"
        ),
        (
            kubeconfig(user: "token: t", cluster: "server: https://h:1\n    certificate-authority-data: '%%%'"),
            "clusters[kind].cluster.certificate-authority-data"
        ),
        (kubeconfig(user: "token: t", cluster: "server: ftp://h"), "clusters[kind].cluster.server"),
        (
            kubeconfig(user: "token: t").replacingOccurrences(
                of: "current-context: dev",
                with: "current-context: gone"
            ), "contexts"
        ),
        (kubeconfig(user: "token: t").replacingOccurrences(of: "current-context: dev", with: ""), "current-context"),
        ("[not, a, kubeconfig", ""),
    ])
    func namesTheFieldItCannotUse(text: String, field: String) {
        do {
            _ = try load(text)
            Issue.record("expected an error")
        } catch {
            #expect(error.field == field)
            #expect(error.description.hasPrefix("kubeconfig /home/me/.kube/config"))
        }
    }

    @Test func explainsWhyNoClusterWasFound() {
        #expect(throws: KubeConfigError.self) {
            try KubernetesConnection.load(environment: [:], files: InMemoryFiles())
        }
        let none = #expect(throws: KubeConfigError.self) {
            _ = try KubernetesConnection.load(environment: ["HOME": "/h"], files: InMemoryFiles())
        }
        #expect(
            none?.description.contains("not in a cluster (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig") == true
        )
        let several = #expect(throws: KubeConfigError.self) {
            _ = try KubernetesConnection.load(environment: ["KUBECONFIG": "/a:/b"], files: InMemoryFiles())
        }
        #expect(several?.message.contains("kubectl config view --flatten") == true)
    }
}
