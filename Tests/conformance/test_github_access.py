"""GitHub access end to end, from the user's side: the real binary configured as a GitHub App on a GHES-style
`/api/v3` prefix, registering organization runners in a runner group named by its name, behind an allow-list,
against the loopback GitHub fake (which verifies the App's RS256 JWT with the App's public key and issues
installation tokens that reach their own account only) and the loopback Kubernetes fake.
"""
import hashlib
import hmac
import json
import pathlib
import sys

import pytest

from conftest import SECRET, Server, exchange, statuses

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from fakeapis import FakeGitHub, FakeKubernetes, kubeconfig, make_tls  # noqa: E402

NAMESPACE = "github-runners"
PAYLOAD = json.loads(
    (pathlib.Path(__file__).resolve().parents[1]
     / "KubeActionsRunnerTests/Fixtures/github/workflow_job.queued.payload.json").read_text()
)


def delivery(job_id, owner, repo="api", installation_id=None):
    payload = json.loads(json.dumps(PAYLOAD))
    payload["workflow_job"].update(id=job_id, labels=["self-hosted", "linux"], status="queued")
    payload["repository"].update(name=repo, full_name=f"{owner}/{repo}")
    payload["repository"]["owner"]["login"] = owner
    if installation_id is not None:
        payload["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n"
        f"X-GitHub-Delivery: app-{job_id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def post(port, data):
    (status, body), = statuses(exchange(port, data, timeout=15))
    return status, json.loads(body)


@pytest.fixture(scope="module")
def app_world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("app")
    tls = make_tls(directory)
    github = FakeGitHub(tls=tls, prefix="/api/v3")
    kube = FakeKubernetes(tls=tls)
    key = directory / "app.pem"
    key.write_text(github.enable_app(app_id=4242, key_format="pkcs1"))
    installation = github.add_installation("octo-org")
    github.add_runner_group("octo-org", "linux-x64", group_id=7)
    config = directory / "kubeconfig"
    config.write_text(kubeconfig(kube, tls["ca"], namespace=NAMESPACE))
    server = Server({
        "DRY_RUN": "false", "GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_FILE": str(key),
        "GITHUB_API_URL": github.url, "GITHUB_CA_FILE": tls["ca"], "KUBECONFIG": str(config),
        "RUNNER_SCOPE": "org", "RUNNER_GROUP": "linux-x64", "ALLOWED_OWNERS": "octo-org", "RUNNER_MODE": "standard",
        "LOG_LEVEL": "info",
    })
    yield {"github": github, "kube": kube, "server": server, "installation": installation, "key": key}
    server.stop()
    github.stop()
    kube.stop()
    assert server.process.returncode == 0


def test_an_app_registers_an_organization_runner_in_its_named_group(app_world):
    github, kube, server = app_world["github"], app_world["kube"], app_world["server"]
    github.add_job("octo-org", "api", 5001)
    status, body = post(server.port, delivery(5001, "octo-org", installation_id=app_world["installation"]))
    assert status == 200 and body["outcome"] == "accepted", body
    assert "runner-5001" in kube.jobs(NAMESPACE)

    # Every JWT the service signed verified under the App's public key (RS256) with GitHub's claim rules.
    assert github.jwt_rejections == []
    assert github.installation_tokens, "no installation token was issued"
    # The organization endpoint, under the GHES prefix, with the group resolved from its name, and the
    # installation token (never the JWT) as the bearer.
    method, path, headers, sent = github.calls("POST", r".*/generate-jitconfig")[-1]
    assert path.startswith("/api/v3/orgs/octo-org/actions/runners/generate-jitconfig"), path
    assert json.loads(sent)["runner_group_id"] == 7
    bearer = headers["Authorization"].removeprefix("Bearer ")
    assert bearer in github.installation_tokens
    # Neither the key nor a token is logged.
    logs = server.logs()
    assert bearer not in logs
    assert "PRIVATE KEY" not in logs and app_world["key"].read_text().splitlines()[1] not in logs


def test_a_second_delivery_reuses_the_installation_token(app_world):
    github, server = app_world["github"], app_world["server"]
    issued = len(github.installation_tokens)
    github.add_job("octo-org", "api", 5002)
    status, body = post(server.port, delivery(5002, "octo-org", installation_id=app_world["installation"]))
    assert status == 200 and body["outcome"] == "accepted", body
    assert len(github.installation_tokens) == issued


def test_a_signed_delivery_from_an_owner_outside_the_allow_list_is_refused(app_world):
    github, kube, server = app_world["github"], app_world["kube"], app_world["server"]
    github.add_job("stranger", "api", 5003)
    calls = len(github.calls("POST", r".*"))
    status, body = post(server.port, delivery(5003, "stranger"))
    assert status == 403 and body["outcome"] == "not_allowed", body
    assert "runner-5003" not in kube.jobs(NAMESPACE)
    assert len(github.calls("POST", r".*")) == calls  # nothing registered, no token asked for
    raw = exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    assert 'webhook_outcomes_total{outcome="not_allowed"} 1' in raw
    assert 'owner="stranger"' not in raw  # a leaked secret cannot mint series


def test_ready_lists_what_the_credential_check_found(app_world):
    raw = exchange(app_world["server"].port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    assert raw.startswith("HTTP/1.1 200"), raw
    # The App is installed on the allowed owner with what organization runners need: nothing to report.
    assert "error:" not in raw
