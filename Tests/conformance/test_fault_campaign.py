"""Fault campaign: two replicas of the real binary (leader election over a Lease) against the loopback fakes,
while deliveries are dropped, duplicated and answered by failing upstreams, GitHub rate-limits, the Kubernetes
API drops connections and then goes down for a while, and one replica is killed with SIGKILL mid-burst and
restarted. Then runners take other jobs than their own, and finally every job ends elsewhere.

At the end of the burst: every job still queued has exactly one runner Job with its Secret and exactly one
registration; no registration without a Job; jobs cancelled before their delivery have nothing. A runner that took
another job gets its job a replacement at once. When nothing is left to run, every idle runner is removed after
RUNNER_IDLE_TIMEOUT with its Job. CAMPAIGN_JOBS sets the size (CI runs a small one; 300 for the full campaign).
"""
import concurrent.futures
import os
import pathlib
import random
import signal
import sys
import time

from conftest import Server, exchange, statuses
from test_provisioning import PAYLOAD, delivery

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from fakeapis import Fault, FakeGitHub, FakeKubernetes  # noqa: E402

NAMESPACE = "runners"
REPOS = [("octo", "api"), ("octo", "web"), ("solo", "tools")]


def replica(name, github, kube, config):
    return Server({
        "DRY_RUN": "false", "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url, "KUBECONFIG": str(config),
        "NAMESPACE": NAMESPACE, "RUNNER_MODE": "standard", "LOG_LEVEL": "notice", "POD_NAME": name,
        "RECONCILE_INTERVAL": "1", "RECONCILE_GRACE": "2", "RUNNER_IDLE_TIMEOUT": "2",
        "ALLOW_CLEARTEXT_CREDENTIALS": "true",  # the fakes speak plain HTTP on loopback
    })


def send(server, job_id, owner, repo):
    try:
        answers = statuses(exchange(server.port, delivery(job_id, owner=owner, repo=repo), timeout=15))
        return answers[0][0] if answers else 0
    except (OSError, TimeoutError):
        return 0  # the replica was killed under it: a lost delivery


def started_on(server, job_id, runner_name, owner, repo):
    """The in_progress delivery GitHub sends when job_id starts on runner_name."""
    import hashlib, hmac, json
    from conftest import SECRET
    payload = json.loads(json.dumps(PAYLOAD))
    payload["action"] = "in_progress"
    payload["workflow_job"].update(id=job_id, status="in_progress", runner_name=runner_name, labels=["self-hosted", "linux"])
    payload["repository"].update(name=repo, full_name=f"{owner}/{repo}")
    payload["repository"]["owner"]["login"] = owner
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    data = (f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n"
            f"X-GitHub-Delivery: started-{job_id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    import json as _json
    status, answer = statuses(exchange(server.port, data, timeout=15))[0]
    return status, _json.loads(answer)


def metric(server, name):
    raw = exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in raw.splitlines() if line.startswith(name))


def test_fault_campaign(tmp_path):
    size = int(os.environ.get("CAMPAIGN_JOBS", "60"))
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "5")))
    github, kube = FakeGitHub(), FakeKubernetes()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{kube.url}'}}}}]\n"
        f"contexts: [{{name: c, context: {{cluster: k, user: u, namespace: {NAMESPACE}}}}}]\n"
        f"users: [{{name: u, user: {{token: {kube.token}}}}}]\n")
    a, b = replica("replica-a", github, kube, config), replica("replica-b", github, kube, config)
    started = time.monotonic()
    faults = {}
    try:
        jobs = {}
        for i in range(size):
            owner, repo = REPOS[i % len(REPOS)]
            job_id = 50_000 + i
            # Jobs of a run share it: every fourth run has two jobs, the second queued behind the first.
            github.add_job(owner, repo, job_id, run_id=60_000 + i // 2 if i % 4 < 2 else 70_000 + i, age=5)
            jobs[job_id] = (owner, repo)
        ids = list(jobs)
        rng.shuffle(ids)
        dropped = set(ids[: size * 15 // 100])
        cancelled = set(ids[size * 15 // 100: size * 20 // 100])
        duplicated = set(ids[size * 20 // 100: size * 30 // 100])
        for job_id in cancelled:  # cancelled before GitHub even sent the delivery
            github.jobs[(*jobs[job_id], job_id)]["status"] = "completed"
        faults["dropped deliveries"] = len(dropped)
        faults["cancelled jobs"] = len(cancelled)
        faults["duplicate deliveries"] = len(duplicated)
        github.inject("POST", r".*/generate-jitconfig", *[Fault(502, {"message": "Server Error"}) for _ in range(max(2, size // 20))])
        faults["GitHub 502 on JIT"] = max(2, size // 20)
        github.inject("GET", r".*/actions/jobs/\d+", *[Fault(hang=5) for _ in range(2)])
        faults["GitHub hangs"] = 2
        kube.inject("POST", rf"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", *[Fault(drop=True) for _ in range(max(2, size // 20))])
        faults["Kubernetes dropped connections"] = max(2, size // 20)

        sends = [(job_id, *jobs[job_id]) for job_id in ids if job_id not in dropped]
        sends += [(job_id, *jobs[job_id]) for job_id in duplicated]
        rng.shuffle(sends)
        killed_at = len(sends) // 2
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            first = [pool.submit(send, a if n % 2 else b, *item) for n, item in enumerate(sends[:killed_at])]
            time.sleep(0.2)
            a.process.send_signal(signal.SIGKILL)  # mid-burst, deliveries in flight
            a.process.wait()
            faults["SIGKILL of a replica"] = 1
            with github.lock:  # a short primary rate limit, with a reset a few seconds ahead
                github.remaining, github.reset = 0, int(time.time()) + 3
            faults["rate-limit window (3 s)"] = 1
            kube.down_until = time.time() + 4  # the Kubernetes API unreachable for a while, every endpoint
            faults["Kubernetes API down (4 s)"] = 1
            second = [pool.submit(send, b, *item) for item in sends[killed_at:]]
            time.sleep(3.5)
            with github.lock:
                github.remaining = github.rate_limit
            results = [f.result() for f in first + second]
        a = replica("replica-a", github, kube, config)  # restarted
        answered = {s: results.count(s) for s in set(results)}

        def converged():
            with github.lock, kube.lock:
                job_names = set(kube.jobs(NAMESPACE))
                secret_names = set(kube.secrets(NAMESPACE))
                registrations = [r["name"] for r in github.runners.values()]
            queued = [j for j in jobs if github.jobs[(*jobs[j], j)]["status"] == "queued"]
            for j in queued:
                if f"runner-{j}" not in job_names or f"runner-{j}" not in secret_names:
                    return False, f"job {j} has no runner Job and Secret"
                if sum(1 for r in registrations if r.startswith(f"runner-{j}-")) != 1:
                    return False, f"job {j} has {sum(1 for r in registrations if r.startswith(f'runner-{j}-'))} registrations"
            for j in cancelled:
                if f"runner-{j}" in job_names:
                    return False, f"cancelled job {j} has a runner Job"
            orphans = [r for r in registrations if f"runner-{r.split('-')[1]}" not in job_names]
            if orphans:
                return False, f"registrations without a Job: {orphans[:3]}"
            if len(job_names) != len(queued):
                return False, f"{len(job_names)} runner Jobs for {len(queued)} queued jobs"
            return True, ""

        deadline = time.monotonic() + 120
        ok, why = converged()
        while not ok and time.monotonic() < deadline:
            time.sleep(1)
            ok, why = converged()
        elapsed = time.monotonic() - started
        recovered = metric(a, "reconciler_jobs_recovered_total") + metric(b, "reconciler_jobs_recovered_total")
        print(f"\ncampaign: {size} jobs in {len(REPOS)} repositories; faults: {faults}; answers: {answered};"
              f" recovered by the reconciler: {recovered:.0f}; converged: {ok} after {elapsed:.1f} s")
        assert ok, why
        assert recovered >= len(dropped)

        # Runners that take the wrong job: the runner made for X starts Y; X gets a replacement at once.
        # (Runners are registered to one repository, so X and Y share one.)
        pairs = []
        for owner, repo in REPOS:
            queued = sorted(j for j in jobs if jobs[j] == (owner, repo) and github.jobs[(owner, repo, j)]["status"] == "queued")
            pairs += list(zip(queued[0:2:2], queued[1:2:2]))
        for x, y in pairs:
            with github.lock:
                runner_id, runner = next((i, r) for i, r in github.runners.items() if r["name"].startswith(f"runner-{x}-"))
                runner["busy"] = True
                github.jobs[(*jobs[y], y)].update(status="in_progress", runner_name=runner["name"])
            status, answer = started_on(b, y, runner["name"], *jobs[y])
            assert status == 200 and answer["outcome"] == "runner_replaced", answer
            assert f"runner-{x}-after-{y}" in kube.jobs(NAMESPACE) and f"runner-{x}-after-{y}" in kube.secrets(NAMESPACE)
        faults["runners that took another job"] = len(pairs)

        # Everything ran elsewhere or was cancelled: GitHub deregisters the ephemeral runners that ran a job;
        # every other runner idles with nothing it could take and must be removed after RUNNER_IDLE_TIMEOUT.
        with github.lock:
            for job in github.jobs.values():
                job["status"] = "completed"
            ran = {r["name"][:-6] for r in github.runners.values() if r["busy"]}  # their Jobs complete by themselves
            for runner_id in [i for i, r in github.runners.items() if r["busy"]]:
                del github.runners[runner_id]
            idle = len(github.runners)
        deadline = time.monotonic() + 60
        while github.runners and time.monotonic() < deadline:
            time.sleep(0.5)
        reaped = metric(a, 'runners_reaped_total{reason="idle"}') + metric(b, 'runners_reaped_total{reason="idle"}')
        print(f"campaign: {len(pairs)} runners took another job and got replacements; {idle} idle runners,"
              f" {reaped:.0f} reaped as idle; left: {len(github.runners)}")
        assert not github.runners, f"idle runners left after the timeout: {[r['name'] for r in github.runners.values()][:5]}"
        # The idle runners' Jobs went with them; what is left are the Jobs whose runner ran a job.
        assert set(kube.jobs(NAMESPACE)) <= ran, sorted(set(kube.jobs(NAMESPACE)) - ran)[:5]
    finally:
        for server in (a, b):
            server.stop()
        github.stop()
        kube.stop()
