import HTTPClient
import Support
import Yams

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where the Kubernetes API is and how to authenticate to it.
package struct KubernetesConnection: Sendable, Equatable {
    package enum Credentials: Sendable, Equatable {
        case none
        case token(Secret)
        /// Read on every call: projected service-account tokens rotate.
        case tokenFile(String)
    }

    /// `https://host:port`, no trailing slash.
    package var server: String
    package var tls: TLSConfiguration
    package var credentials: Credentials
    /// The namespace the environment implies (service account's, or the kubeconfig context's).
    package var namespace: String?
    /// Where it came from, for the startup log line: "in-cluster" or the kubeconfig path and context.
    package var source: String

    package static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// In a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted service account. Elsewhere: `KUBECONFIG`, else
    /// `~/.kube/config`, using its current context.
    package static func load(
        environment: [String: String],
        files: some FileReading
    ) throws(KubeConfigError)
        -> KubernetesConnection
    {
        if let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        {
            let ca = try? files.read(serviceAccountDirectory + "/ca.crt")
            let namespace = (try? files.read(serviceAccountDirectory + "/namespace")).flatMap { $0 }?.trimmingOWS()
                .droppingTrailingNewlines()
            let hostPart = host.contains(":") ? "[\(host)]" : host
            return KubernetesConnection(
                server: "https://\(hostPart):\(port)",
                tls: TLSConfiguration(caData: ca.flatMap { $0 }.map { Array($0.utf8) }),
                credentials: .tokenFile(serviceAccountDirectory + "/token"),
                namespace: namespace,
                source: "in-cluster service account"
            )
        }
        let path: String
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            let paths = list.split(separator: ":").map(String.init)
            guard paths.count == 1 else {
                throw KubeConfigError(
                    path: list,
                    field: "KUBECONFIG",
                    message: "lists several files; merge them into one with `kubectl config view --flatten`"
                )
            }
            path = paths[0]
        } else if let home = environment["HOME"], !home.isEmpty {
            path = home + "/.kube/config"
        } else {
            throw KubeConfigError(
                path: "",
                field: "KUBECONFIG",
                message: "not in a cluster (KUBERNETES_SERVICE_HOST is unset) and neither KUBECONFIG nor HOME is set"
            )
        }
        let text: String?
        do {
            text = try files.read(path)
        } catch {
            throw KubeConfigError(path: path, field: "", message: "\(error)")
        }
        guard let text else {
            throw KubeConfigError(
                path: path,
                field: "",
                message: "not in a cluster (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig at this path"
            )
        }
        return try parse(text, path: path, files: files)
    }

    /// Reads a kubeconfig's current context. Unsupported authentication (exec plugins, auth providers, basic
    /// auth) is an error naming the field.
    package static func parse(
        _ text: String,
        path: String,
        files: some FileReading
    ) throws(KubeConfigError) -> KubernetesConnection {
        let file: KubeConfigFile
        do {
            file = try YAMLDecoder().decode(KubeConfigFile.self, from: text)
        } catch {
            throw KubeConfigError(path: path, field: "", message: "not a valid kubeconfig: \(error)")
        }
        guard let contextName = file.currentContext, !contextName.isEmpty else {
            throw KubeConfigError(
                path: path,
                field: "current-context",
                message: "is not set (kubectl config use-context NAME)"
            )
        }
        guard let context = file.contexts?.first(where: { $0.name == contextName })?.context else {
            throw KubeConfigError(path: path, field: "contexts", message: "has no context named '\(contextName)'")
        }
        guard let cluster = file.clusters?.first(where: { $0.name == context.cluster })?.cluster else {
            throw KubeConfigError(path: path, field: "clusters", message: "has no cluster named '\(context.cluster)'")
        }
        let user = context.user.flatMap { name in file.users?.first(where: { $0.name == name })?.user }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        func resolve(_ file: String) -> String {
            file.hasPrefix("/") || directory.isEmpty ? file : directory + "/" + file
        }
        func decode(_ base64: String, field: String) throws(KubeConfigError) -> [UInt8] {
            guard let data = Data(base64Encoded: base64.trimmingOWS()) else {
                throw KubeConfigError(path: path, field: field, message: "is not valid base64")
            }
            return Array(data)
        }

        guard let server = cluster.server,
            server.lowercased().hasPrefix("https://") || server.lowercased().hasPrefix("http://")
        else {
            throw KubeConfigError(
                path: path,
                field: "clusters[\(context.cluster)].cluster.server",
                message: "must be an http(s) URL"
            )
        }
        if cluster.proxyURL != nil {
            throw KubeConfigError(
                path: path,
                field: "clusters[\(context.cluster)].cluster.proxy-url",
                message: "is not supported; set HTTPS_PROXY (and NO_PROXY) instead"
            )
        }
        var tls = TLSConfiguration(insecureSkipVerify: cluster.insecureSkipTLSVerify ?? false)
        if let data = cluster.certificateAuthorityData {
            tls.caData = try decode(data, field: "clusters[\(context.cluster)].cluster.certificate-authority-data")
        } else if let file = cluster.certificateAuthority {
            tls.caFile = resolve(file)
        }

        var credentials = KubernetesConnection.Credentials.none
        if let user {
            let field = "users[\(context.user ?? "")].user"
            if user.exec != nil {
                throw KubeConfigError(
                    path: path,
                    field: field + ".exec",
                    message:
                        "exec credential plugins are not supported; use a service-account token (token or tokenFile)"
                )
            }
            if user.authProvider != nil {
                throw KubeConfigError(
                    path: path,
                    field: field + ".auth-provider",
                    message: "is not supported; use a token"
                )
            }
            if user.username != nil || user.password != nil {
                throw KubeConfigError(
                    path: path,
                    field: field + ".username",
                    message: "basic authentication is not supported"
                )
            }
            if let token = user.token {
                credentials = .token(Secret(token))
            } else if let file = user.tokenFile {
                credentials = .tokenFile(resolve(file))
            }
            if let data = user.clientCertificateData {
                tls.clientCertificate = try decode(data, field: field + ".client-certificate-data")
            } else if let file = user.clientCertificate {
                tls.clientCertificateFile = resolve(file)
            }
            if let data = user.clientKeyData {
                tls.clientKey = try decode(data, field: field + ".client-key-data")
            } else if let file = user.clientKey {
                tls.clientKeyFile = resolve(file)
            }
        }
        let trimmed = server.hasSuffix("/") ? String(server.dropLast()) : server
        return KubernetesConnection(
            server: trimmed,
            tls: tls,
            credentials: credentials,
            namespace: context.namespace,
            source: "kubeconfig \(path), context \(contextName)"
        )
    }
}

/// A kubeconfig that cannot be used, naming the field.
package struct KubeConfigError: Error, CustomStringConvertible, Equatable {
    package var path: String
    package var field: String
    package var message: String

    package var description: String {
        field.isEmpty ? "kubeconfig \(path): \(message)" : "kubeconfig \(path): \(field) \(message)"
    }
}

/// The parts of a kubeconfig file the service reads.
struct KubeConfigFile: Decodable {
    var currentContext: String?
    var clusters: [NamedCluster]?
    var contexts: [NamedContext]?
    var users: [NamedUser]?

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, contexts, users
    }

    struct NamedCluster: Decodable {
        var name: String
        var cluster: Cluster
    }

    struct NamedContext: Decodable {
        var name: String
        var context: Context
    }

    struct NamedUser: Decodable {
        var name: String
        var user: User?
    }

    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var proxyURL: String?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case proxyURL = "proxy-url"
        }
    }

    struct Context: Decodable {
        var cluster: String
        var user: String?
        var namespace: String?
    }

    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var username: String?
        var password: String?
        var exec: Ignored?
        var authProvider: Ignored?

        enum CodingKeys: String, CodingKey {
            case token, tokenFile, username, password, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    /// Any value; only its presence matters.
    struct Ignored: Decodable {
        init(from decoder: any Decoder) throws {}
    }
}
