"""Lost deliveries end to end, small and quick: the real binary against the GitHub fake's repositories, its
organization hook and that hook's deliveries, with GitHub's secondary limit enforced. The same setup at scale (1,000
repositories, 20 lost jobs, 50 ms a call) is Benchmarks/reconciler_scale.py; this keeps the fake and the service's
use of it honest in CI, in seconds.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import SECRET, Server

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from fakeapis import FakeGitHub, FakeKubernetes  # noqa: E402

OWNER = "octo-org"
NAMESPACE = "runners"
PAYLOAD = json.loads(
    (pathlib.Path(__file__).resolve().parents[1] / "KubeActionsRunnerTests/Fixtures/github/workflow_job.queued.payload.json").read_text()
)


def payload(action, repo, repo_id, job_id):
    body = json.loads(json.dumps(PAYLOAD))
    body.pop("installation", None)
    body["action"] = action
    body["workflow_job"].update(id=job_id, run_id=job_id, labels=["self-hosted", "linux"], runner_name=None,
                                status="completed" if action == "completed" else "queued",
                                created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    body["repository"].update(id=repo_id, name=repo, full_name=f"{OWNER}/{repo}")
    body["repository"]["owner"]["login"] = OWNER
    return body


class World:
    """Five repositories of one organization with one organization hook, and the service watching them."""

    def __init__(self, tmp_path, denied=None, grace="60"):
        self.github = FakeGitHub()
        self.kube = FakeKubernetes(job_controller=False)
        self.github.secondary_limit = 900
        self.repos = [f"repo-{i}" for i in range(5)]
        self.ids = {repo: self.github.add_repository(OWNER, repo) for repo in self.repos}
        self.hook = self.github.add_hook("organization", OWNER)
        self.github.hooks_denied = denied
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            f"clusters: [{{name: fake, cluster: {{server: '{self.kube.url}'}}}}]\n"
            f"contexts: [{{name: t, context: {{cluster: fake, user: sa, namespace: {NAMESPACE}}}}}]\n"
            f"users: [{{name: sa, user: {{token: {self.kube.token}}}}}]\n")
        self.server = Server({
            "DRY_RUN": "false", "GITHUB_TOKEN": self.github.token, "GITHUB_API_URL": self.github.url,
            "KUBECONFIG": str(config), "ALLOW_CLEARTEXT_CREDENTIALS": "true", "LOG_LEVEL": "info",
            "REPOSITORIES": ",".join(f"{OWNER}/{repo}" for repo in self.repos),
            "RECONCILE_INTERVAL": "1", "RECONCILE_GRACE": grace,
        })
        self.github.webhook_url = f"http://127.0.0.1:{self.server.port}/webhook"
        self.github.webhook_secret = SECRET
        # The hook becomes known as in production: a verified delivery came through it.
        seen = self.github.deliver(self.hook, "workflow_job", payload("completed", self.repos[0], self.ids[self.repos[0]], 1))
        assert seen["status_code"] == 200, seen

    def lose(self, repo, job_id):
        self.github.add_job(OWNER, repo, job_id, labels=("self-hosted", "linux"))
        self.github.deliver(self.hook, "workflow_job", payload("queued", repo, self.ids[repo], job_id), lost=True)

    def wait_for_runner_job(self, job_id, seconds=20):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if f"runner-{job_id}" in self.kube.jobs(NAMESPACE):
                return
            time.sleep(0.1)
        raise AssertionError(f"no runner Job for {job_id}: {self.server.logs()[-3000:]}")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.server.port}{path}") as answer:
                return answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.read().decode()

    def stop(self):
        self.server.stop()
        self.github.stop()
        self.kube.stop()


def test_a_lost_delivery_listed_as_failed_is_redelivered_and_gets_its_runner_job(tmp_path):
    world = World(tmp_path)
    try:
        world.lose("repo-0", 77)
        world.wait_for_runner_job(77)  # within the 60 s grace: by the redelivery, not by polling
        metrics = world.get("/metrics")
        assert 'reconciler_lost_jobs_recovered_total{how="redelivery"} 1' in metrics
        assert 'reconciler_lost_jobs_recovered_total{how="poll"} 0' in metrics
        assert f'webhook_failed_deliveries_seen_total{{owner="{OWNER}"}} 1' in metrics
        # The organization hook lists the repository by id, known from the delivery that came through it.
        signs = [line for line in world.server.logs().splitlines() if "a sign of loss" in line]
        assert len(signs) == 1 and f'"repo":"{OWNER}/repo-0"' in signs[0]
        redelivered = [d for d in world.hook["deliveries"] if d["redelivery"]]
        assert len(redelivered) == 1 and redelivered[0]["status_code"] == 200
        assert world.github.calls("POST", rf"/orgs/{OWNER}/hooks/\d+/deliveries/\d+/attempts")
        assert world.github.secondary_answers == 0
        check_with_promtool(metrics)
    finally:
        world.stop()


def check_with_promtool(metrics):
    """The exposition with the series only these paths create (the signs of loss, the redeliveries)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=metrics.encode(), capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_without_access_to_deliveries_it_says_so_at_start_and_polling_finds_the_job(tmp_path):
    world = World(tmp_path, denied=403, grace="0")
    try:
        world.lose("repo-2", 78)
        world.wait_for_runner_job(78)
        metrics = world.get("/metrics")
        assert 'reconciler_lost_jobs_recovered_total{how="poll"} 1' in metrics
        logs = world.server.logs()
        warnings = [line for line in logs.splitlines() if "cannot read the webhooks of" in line]
        assert len(warnings) == 1 and "repository_hooks=read" in warnings[0], logs[-3000:]
        assert "cannot read the webhooks of" in world.get("/ready")
        assert world.github.secondary_answers == 0
        assert world.github.token not in logs
    finally:
        world.stop()
