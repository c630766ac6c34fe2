"""Provisioning end to end: the real binary, its real libcurl clients, and loopback fakes of GitHub and
Kubernetes that serve HTTPS with a throw-away CA (trusted through GITHUB_CA_FILE and the kubeconfig's
certificate-authority-data, which proves per-client CAs work).
"""
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import pathlib
import socket
import sys
import time

import pytest

from conftest import SECRET, Server, exchange, statuses

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from fakeapis import Fault, FakeGitHub, FakeKubernetes, kubeconfig, make_tls  # noqa: E402

NAMESPACE = "github-runners"
PAYLOAD = json.loads(
    (pathlib.Path(__file__).resolve().parents[1] / "KubeActionsRunnerTests/Fixtures/github/workflow_job.queued.payload.json").read_text()
)
_delivery = [0]


def delivery(job_id, labels=("self-hosted", "linux"), delivery_id=None, owner="octo", repo="repo"):
    payload = json.loads(json.dumps(PAYLOAD))
    payload["workflow_job"].update(id=job_id, labels=list(labels), status="queued")
    payload["repository"].update(name=repo, full_name=f"{owner}/{repo}")
    payload["repository"]["owner"]["login"] = owner
    body = json.dumps(payload).encode()
    _delivery[0] += 1
    delivery_id = delivery_id or f"delivery-{job_id}-{_delivery[0]}"
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n"
        f"X-GitHub-Delivery: {delivery_id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def post(port, data, timeout=15):
    started = time.monotonic()
    answers = statuses(exchange(port, data, timeout=timeout))
    assert answers, "no answer"
    status, body = answers[0]
    return status, json.loads(body) if body.startswith(b"{") else body.decode(), time.monotonic() - started


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    tls = make_tls(directory)
    github = FakeGitHub(tls=tls)
    kube = FakeKubernetes(tls=tls)
    config = directory / "kubeconfig"
    config.write_text(kubeconfig(kube, tls["ca"], namespace=NAMESPACE))
    server = Server({
        "DRY_RUN": "false", "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url, "GITHUB_CA_FILE": tls["ca"],
        "KUBECONFIG": str(config), "RUNNER_MODE": "dind", "LOG_LEVEL": "info",
    })
    yield {"github": github, "kube": kube, "server": server, "tls": tls, "dir": directory}
    server.stop()
    github.stop()
    kube.stop()
    assert server.process.returncode == 0


@pytest.fixture(autouse=True)
def clean(world):
    world["github"].faults.clear()
    world["kube"].faults.clear()
    world["kube"].denied.clear()
    world["github"].remaining = world["github"].rate_limit
    yield


def test_queued_job_gets_one_runner_job_and_secret(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1001)
    status, body, elapsed = post(server.port, delivery(1001))
    assert status == 200 and body["outcome"] == "accepted" and body["runner_job"] == "runner-1001", body

    job = kube.jobs(NAMESPACE)["runner-1001"]
    secret = kube.secrets(NAMESPACE)["runner-1001"]
    runners = [r for r in github.runners.values() if r["name"].startswith("runner-1001-")]
    assert len(runners) == 1
    runner = runners[0]
    # The job's labels, and this deployment's marker (default kar-<namespace>).
    assert runner["labels"] == ["self-hosted", "linux", "kar-github-runners"]
    assert job["metadata"]["labels"]["app.kubernetes.io/instance"] == "kar-github-runners"
    # The Secret records the registration it was made for.
    assert secret["metadata"]["labels"]["kube-actions-runner/runner-name"] == runner["name"]
    assert int(secret["metadata"]["labels"]["kube-actions-runner/runner-id"]) == next(
        i for i, r in github.runners.items() if r is runner)
    # The Secret holds exactly the JIT config GitHub issued, and is owned by the Job.
    assert base64.b64decode(secret["data"]["jitconfig"]).decode() == runner["jit"]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "Job"
    # The Job references it and never carries it.
    assert runner["jit"] not in json.dumps(job)
    pod = job["spec"]["template"]["spec"]
    runner_env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert runner_env["ACTIONS_RUNNER_INPUT_JITCONFIG"]["valueFrom"]["secretKeyRef"] == {"name": "runner-1001", "key": "jitconfig"}
    assert job["metadata"]["labels"]["kube-actions-runner/mode"] == "dind"
    assert job["spec"]["ttlSecondsAfterFinished"] == 300 and job["spec"]["backoffLimit"] == 0
    # GitHub saw the documented headers.
    method, path, headers, sent = github.calls("POST", r".*/generate-jitconfig")[-1]
    assert headers["Authorization"] == f"Bearer {github.token}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["User-Agent"].startswith("kube-actions-runner/")
    assert json.loads(sent)["runner_group_id"] == 1 and json.loads(sent)["work_folder"] == "_work"
    # Nothing secret in the logs.
    assert runner["jit"] not in server.logs() and github.token not in server.logs() and kube.token not in server.logs()
    print(f"webhook to Job and Secret over TLS, fakes without latency: {elapsed * 1000:.1f} ms")


def test_metrics_count_github_calls_and_rate_limit(world):
    raw = exchange(world["server"].port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    assert 'github_api_requests_total{endpoint="POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig",status="201"}' in raw
    assert 'github_api_requests_total{endpoint="GET /repos/{owner}/{repo}/actions/jobs/{job_id}",status="200"}' in raw
    assert "github_api_rate_limit_remaining -1" not in raw


def test_job_no_longer_queued_leaves_nothing_behind(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1002, status="in_progress")
    status, body, _ = post(server.port, delivery(1002))
    assert status == 200 and body["outcome"] == "not_queued", body
    assert "runner-1002" not in kube.jobs(NAMESPACE)
    assert not [r for r in github.runners.values() if r["name"].startswith("runner-1002-")]


def test_second_delivery_for_a_job_registers_nothing_more(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1003)
    assert post(server.port, delivery(1003))[1]["outcome"] == "accepted"
    status, body, _ = post(server.port, delivery(1003))
    assert status == 200 and body["outcome"] == "already_provisioned", body
    assert len([r for r in github.runners.values() if r["name"].startswith("runner-1003-")]) == 1


def test_concurrent_deliveries_for_one_job_create_one_job(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1004)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: post(server.port, delivery(1004)), range(10)))
    outcomes = sorted(body["outcome"] for _, body, _ in results)
    assert outcomes.count("accepted") == 1 and outcomes.count("already_provisioned") == 9, outcomes
    assert len([r for r in github.runners.values() if r["name"].startswith("runner-1004-")]) == 1
    assert "runner-1004" in kube.jobs(NAMESPACE)


def test_rbac_denial_is_explained_and_registers_no_runner(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1005)
    kube.denied.add(("create", "jobs"))
    status, body, _ = post(server.port, delivery(1005))
    assert status == 502 and body["outcome"] == "upstream_error"
    assert body["message"] == f"Kubernetes RBAC denies create jobs.batch in {NAMESPACE}"
    assert not [r for r in github.runners.values() if r["name"].startswith("runner-1005-")]
    assert "cannot create resource" in server.logs()


def test_invalid_job_is_reported_with_its_causes(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1006)
    invalid = json.loads((pathlib.Path(__file__).resolve().parents[1] / "KubeActionsRunnerTests/Fixtures/k8s/status.422.invalid.job.json").read_text())
    kube.inject("POST", rf"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", Fault(422, invalid))
    status, body, _ = post(server.port, delivery(1006))
    assert status == 502 and "rejected the jobs.batch" in body["message"], body
    assert "spec.template.spec.restartPolicy" in server.logs()
    assert not [r for r in github.runners.values() if r["name"].startswith("runner-1006-")]


def test_secret_failure_removes_the_runner_registration_and_the_job(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1007)
    etcd = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}
    kube.inject("POST", rf"/api/v1/namespaces/{NAMESPACE}/secrets", Fault(500, etcd), Fault(500, etcd))  # one retry
    status, body, _ = post(server.port, delivery(1007))
    assert status == 503 and body["outcome"] == "upstream_error", body
    assert "runner-1007" not in kube.jobs(NAMESPACE)
    assert not [r for r in github.runners.values() if r["name"].startswith("runner-1007-")]
    assert github.calls("DELETE", r"/repos/octo/repo/actions/runners/\d+")


def test_one_transient_failure_is_retried(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1013)
    github.inject("POST", r".*/generate-jitconfig", Fault(502, {"message": "Server Error"}))
    status, body, _ = post(server.port, delivery(1013))
    assert status == 200 and body["outcome"] == "accepted", body
    assert len(github.calls("POST", r".*/generate-jitconfig")) >= 2


def test_github_failure_removes_the_job(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1008)
    github.inject("POST", r".*/generate-jitconfig", Fault(502, {"message": "Server Error"}), Fault(502, {"message": "Server Error"}))
    status, body, _ = post(server.port, delivery(1008))
    assert status == 502 and body["message"] == "GitHub answered 502", body
    assert "runner-1008" not in kube.jobs(NAMESPACE)


def test_github_hang_is_answered_within_githubs_window(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1009)
    github.inject("POST", r".*/generate-jitconfig", Fault(hang=12), Fault(hang=12))  # the call and its retry
    status, body, elapsed = post(server.port, delivery(1009), timeout=20)
    assert status == 503 and body["message"] in ("provisioning timed out", "GitHub did not answer: Timeout was reached"), body
    assert elapsed < 9.5
    # The deadline cancelled the request; its cleanup runs on in the background and removes the Job.
    deadline = time.monotonic() + 5
    while "runner-1009" in kube.jobs(NAMESPACE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "runner-1009" not in kube.jobs(NAMESPACE)


def test_rate_limit_fails_fast_with_503_and_says_when_it_resets(world):
    github, kube, server = world["github"], world["kube"], world["server"]
    github.add_job("octo", "repo", 1010)
    github.remaining = 0
    status, body, elapsed = post(server.port, delivery(1010))
    assert status == 503 and body["message"].startswith("GitHub rate limit reached; resets at "), body
    assert elapsed < 2
    assert "runner-1010" not in kube.jobs(NAMESPACE)
    assert '"msg":"GitHub rate limit reached"' in server.logs()


def test_ready_reflects_the_kubernetes_api(world, tmp_path):
    raw = exchange(world["server"].port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw
    # A kubeconfig pointing where nothing answers: running, but not ready, with the reason.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    config = tmp_path / "dead-kubeconfig"
    config.write_text(kubeconfig(world["kube"], world["tls"]["ca"]).replace(world["kube"].url, f"https://127.0.0.1:{dead_port}"))
    server = Server({"DRY_RUN": "false", "GITHUB_TOKEN": "t", "KUBECONFIG": str(config)})
    try:
        raw = exchange(server.port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
        assert raw.startswith("HTTP/1.1 503") and "not ready: Kubernetes API has not answered" in raw, raw
        health = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert health.startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


def test_untrusted_certificate_is_refused(world, tmp_path):
    """Without the test CA the same fake is refused: the CA really comes from the kubeconfig."""
    text = kubeconfig(world["kube"], world["tls"]["ca"])
    config = tmp_path / "no-ca"
    config.write_text("\n".join(line for line in text.splitlines() if "certificate-authority-data" not in line) + "\n")
    server = Server({"DRY_RUN": "false", "GITHUB_TOKEN": "t", "KUBECONFIG": str(config)})
    try:
        raw = exchange(server.port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
        assert raw.startswith("HTTP/1.1 503"), raw
        assert "certificate" in raw.lower() or "SSL" in raw, raw
    finally:
        server.stop()


def test_unsupported_kubeconfig_is_a_startup_error_naming_the_field(tmp_path):
    config = tmp_path / "exec-kubeconfig"
    config.write_text("""apiVersion: v1
kind: Config
current-context: c
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}}}]
""")
    from conftest import binary
    import subprocess
    result = subprocess.run([binary()], env={"PATH": os.environ.get("PATH", ""), "WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t",
                                             "KUBECONFIG": str(config)}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "users[u].user.exec" in result.stderr and "not supported" in result.stderr


class ConnectProxy:
    """A forward proxy that tunnels CONNECT requests and remembers their targets."""

    def __init__(self):
        import socketserver
        import threading

        self.targets = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, target = head.split(b" ")[:2]
                if method != b"CONNECT":
                    self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                host, port = target.decode().rsplit(":", 1)
                proxy.targets.append(f"{host}:{port}")
                upstream = socket.create_connection((host, int(port)))
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

                def pipe(source, sink):
                    try:
                        while data := source.recv(65536):
                            sink.sendall(data)
                    except OSError:
                        pass
                    finally:
                        sink.close()

                threading.Thread(target=pipe, args=(upstream, self.request), daemon=True).start()
                pipe(self.request, upstream)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_outbound_calls_honour_https_proxy_and_no_proxy(world):
    github, kube = world["github"], world["kube"]
    proxy = ConnectProxy()
    config = world["dir"] / "kubeconfig"
    base = {"DRY_RUN": "false", "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url,
            "GITHUB_CA_FILE": world["tls"]["ca"], "KUBECONFIG": str(config), "RUNNER_MODE": "standard"}
    server = Server({**base, "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"})
    try:
        github.add_job("octo", "repo", 1011)
        status, body, _ = post(server.port, delivery(1011))
        assert status == 200 and body["outcome"] == "accepted", body
        assert f"127.0.0.1:{github.port}" in proxy.targets and f"127.0.0.1:{kube.port}" in proxy.targets
    finally:
        server.stop()
    seen = len(proxy.targets)
    server = Server({**base, "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "127.0.0.1"})
    try:
        github.add_job("octo", "repo", 1012)
        status, body, _ = post(server.port, delivery(1012))
        assert status == 200 and body["outcome"] == "accepted", body
        assert len(proxy.targets) == seen  # NO_PROXY: straight to the servers
    finally:
        server.stop()
    proxy.server.shutdown()
