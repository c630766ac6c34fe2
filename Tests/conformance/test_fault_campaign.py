"""Fault campaign: two replicas of the real binary (leader election over a Lease) against the loopback fakes,
while deliveries are dropped, duplicated and answered by failing upstreams, GitHub rate-limits, the Kubernetes
API drops connections and then goes down for a while, and one replica is killed with SIGKILL mid-burst and
restarted. Then runners take other jobs than their own, and finally every job ends elsewhere.

Also: registrations named like ours that this deployment did not make (hand-made runners, another deployment's,
whose Job sits in the same namespace), JIT calls that register the runner and then answer 500 (so a leftover
registration sits beside the retry's), runners at work (busy) while the reapers run, and a ResourceQuota that
refuses every pod for a minute after the burst (CAMPAIGN_QUOTA_SECONDS).

First assertions: nothing at work killed, nothing foreign touched, one registration per job. Then: every job still
queued has exactly one runner Job with its Secret; no registration of ours without a Job; jobs cancelled before their
delivery have nothing; no Job was reaped for the quota, and every Job has its pod once the quota frees. A runner that
took another job gets its job a replacement at once. When nothing is left to run, every idle runner is removed after
RUNNER_IDLE_TIMEOUT with its Job, while the runners at work keep theirs. CAMPAIGN_JOBS sets the size (CI runs a small
one; 300 for the full campaign).
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
# How long the pod quota refuses every pod after the burst: a minute, as a quota that frees only after a while.
QUOTA_SECONDS = float(os.environ.get("CAMPAIGN_QUOTA_SECONDS", "60"))
REPOS = [("octo", "api"), ("octo", "web"), ("solo", "tools")]
MARKER = f"kar-{NAMESPACE}"  # the default RUNNER_OWNER_LABEL


def replica(name, github, kube, config):
    return Server({
        "DRY_RUN": "false", "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url, "KUBECONFIG": str(config),
        "NAMESPACE": NAMESPACE, "RUNNER_MODE": "standard", "LOG_LEVEL": "notice", "POD_NAME": name,
        "RECONCILE_INTERVAL": "1", "RECONCILE_GRACE": "2", "RUNNER_IDLE_TIMEOUT": "2",
        # Cycles every second, and 50 idle runners reaped within a minute (a look and a deletion each, 6 points):
        # far more than the default 300 points a minute, against a fake that enforces no secondary limit.
        "RECONCILE_POINTS_PER_MINUTE": "20000",
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
    try:
        raw = exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in raw.splitlines() if line.startswith(name))


def kubeconfig(directory, kube):
    """A kubeconfig for the plain-HTTP Kubernetes fake, its token and the campaign's namespace."""
    config = directory / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{kube.url}'}}}}]\n"
        f"contexts: [{{name: c, context: {{cluster: k, user: u, namespace: {NAMESPACE}}}}}]\n"
        f"users: [{{name: u, user: {{token: {kube.token}}}}}]\n")
    return config


def ours(runner):
    return MARKER in runner["labels"]


def job_of(name):
    """The job id of a registration `runner-<id>-<suffix>` (the campaign makes no other shape)."""
    return int(name.split("-")[1])


def test_fault_campaign(tmp_path):
    size = int(os.environ.get("CAMPAIGN_JOBS", "60"))
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "5")))
    github, kube = FakeGitHub(), FakeKubernetes()
    config = kubeconfig(tmp_path, kube)
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
        github.effective_failures = max(2, size // 20)  # registered, then answered 500: the retry registers another
        faults["failed-but-effective JIT calls"] = github.effective_failures
        foreign = {}
        for owner, repo in REPOS:  # named like ours, not ours: hand-made runners, another deployment's (at work too)
            for name, labels, busy in [("runner-1-linux", ["self-hosted", "linux"], False),
                                       ("runner-2-build", ["self-hosted", "linux"], True),
                                       ("runner-900000001-k3x9q", ["self-hosted", "linux", "kar-elsewhere"], False)]:
                foreign[github.register(owner, repo, name, labels, busy=busy)] = name
        kube._store(("jobs", NAMESPACE, "runner-900000001"), {  # the other deployment's Job, in the same namespace
            "apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]},
            "metadata": {"name": "runner-900000001", "namespace": NAMESPACE, "uid": "other-deployment-uid",
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app.kubernetes.io/managed-by": "kube-actions-runner",
                                    "app.kubernetes.io/instance": "kar-elsewhere", "kube-actions-runner/job-id": "900000001"}}})
        faults["foreign registrations named like ours"] = len(foreign)
        kube.pod_quota = 0  # a ResourceQuota refusing every pod, lifted below
        faults[f"pod quota 0 (the burst + {QUOTA_SECONDS:g} s)"] = 1
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

        # Runners at work while the reapers run: where a failed-but-effective JIT call left a second registration
        # for a job, the runner recorded on the Job takes the job (the case that killed a working runner before);
        # and a few more.
        at_work = {}  # job id -> registration id
        at_work_jobs = {}  # job id -> its runner Job's name
        with github.lock, kube.lock:
            for secret_name, secret in kube.secrets(NAMESPACE).items():
                job = int(secret["metadata"]["labels"]["kube-actions-runner/job-id"])
                recorded = int(secret["metadata"]["labels"]["kube-actions-runner/runner-id"])
                doubled = sum(1 for r in github.runners.values() if ours(r) and r["name"].startswith(f"runner-{job}-")) > 1
                if recorded in github.runners and github.jobs[(*jobs[job], job)]["status"] == "queued" and (
                        doubled or len(at_work) < 3):
                    at_work[job] = recorded
                    at_work_jobs[job] = secret_name
            for job, runner_id in at_work.items():
                github.runners[runner_id].update(busy=True, status="online")
                github.jobs[(*jobs[job], job)].update(status="in_progress", runner_name=github.runners[runner_id]["name"])
        faults["runners at work during reaping"] = len(at_work)

        quota_seen = 0.0
        deadline = time.monotonic() + QUOTA_SECONDS
        while time.monotonic() < deadline:  # the quota refuses pods; the Jobs must wait, not go
            quota_seen = max(quota_seen, metric(a, 'runner_jobs_waiting{reason="quota"}') + metric(b, 'runner_jobs_waiting{reason="quota"}'))
            time.sleep(0.5)
        with kube.lock:
            refused = sum(1 for (r, ns, _), e in kube.objects.items() if r == "events" and "exceeded quota" in e.get("message", ""))
            kube.pod_quota = None  # the quota frees

        def first_assertions():
            """Nothing at work killed, nothing foreign touched, one registration per job."""
            with github.lock, kube.lock:
                job_names = set(kube.jobs(NAMESPACE))
                for job, runner_id in at_work.items():
                    assert runner_id in github.runners, f"the registration at work on job {job} was deleted"
                    assert at_work_jobs[job] in job_names, f"the Job of the runner at work on job {job} was deleted"
                for runner_id, name in foreign.items():
                    assert github.runners.get(runner_id, {}).get("name") == name, f"foreign registration {name} touched"
                assert "runner-900000001" in job_names, "another deployment's Job was deleted"

        def converged():
            first_assertions()
            with github.lock, kube.lock:
                by_job = {}  # job id -> names of its live runner Jobs (runner-<id>, or -r<n> after a removal)
                for n, o in kube.jobs(NAMESPACE).items():
                    if o["metadata"]["labels"].get("app.kubernetes.io/instance") == MARKER and not o.get("status", {}).get("conditions"):
                        by_job.setdefault(int(o["metadata"]["labels"]["kube-actions-runner/job-id"]), []).append(n)
                job_names = {n for names in by_job.values() for n in names}
                secret_names = set(kube.secrets(NAMESPACE))
                registrations = [r["name"] for r in github.runners.values() if ours(r)]
                podded = {p["metadata"]["labels"]["batch.kubernetes.io/job-name"] for (r, _, _), p in kube.objects.items() if r == "pods"}
            queued = [j for j in jobs if github.jobs[(*jobs[j], j)]["status"] == "queued"]
            for j in queued + list(at_work):
                names = by_job.get(j, [])
                if len(names) != 1 or names[0] not in secret_names:
                    return False, f"job {j} has runner Jobs {names}, not one with its Secret"
                if sum(1 for r in registrations if job_of(r) == j) != 1:
                    return False, f"job {j} has {sum(1 for r in registrations if job_of(r) == j)} registrations"
            for j in cancelled:
                if j in by_job:
                    return False, f"cancelled job {j} has a runner Job"
            orphans = [r for r in registrations if job_of(r) not in by_job]
            if orphans:
                return False, f"registrations without a Job: {orphans[:3]}"
            if len(job_names) != len(queued) + len(at_work):
                return False, f"{len(job_names)} runner Jobs for {len(queued)} queued jobs and {len(at_work)} at work"
            if job_names - podded:
                return False, f"Jobs without a pod after the quota freed: {sorted(job_names - podded)[:3]}"
            return True, ""

        deadline = time.monotonic() + 120
        ok, why = converged()
        while not ok and time.monotonic() < deadline:
            time.sleep(1)
            ok, why = converged()
        elapsed = time.monotonic() - started
        recovered = metric(a, "reconciler_jobs_recovered_total") + metric(b, "reconciler_jobs_recovered_total")
        failed_create = metric(a, 'runners_reaped_total{reason="failed_create"}') + metric(b, 'runners_reaped_total{reason="failed_create"}')
        leftovers = metric(a, 'runners_reaped_total{reason="leftover_registration"}') + metric(b, 'runners_reaped_total{reason="leftover_registration"}')
        print(f"\ncampaign: {size} jobs in {len(REPOS)} repositories; faults: {faults}; answers: {answered};"
              f" recovered by the reconciler: {recovered:.0f}; pods refused by the quota: {refused} (waiting seen:"
              f" {quota_seen:.0f}); leftover registrations deleted: {leftovers:.0f}; converged: {ok} after {elapsed:.1f} s")
        assert ok, why  # includes: one registration per job, for every job queued or at work
        assert recovered >= len(dropped)
        assert failed_create == 0, "a Job was reaped for the quota"
        assert refused > 0 and quota_seen > 0, "the quota refused nothing, or the wait was not reported"

        # Runners that take the wrong job: the runner made for X starts Y; X gets a replacement at once.
        # (Runners are registered to one repository, so X and Y share one.)
        pairs = []
        for owner, repo in REPOS:
            queued = sorted(j for j in jobs if jobs[j] == (owner, repo) and github.jobs[(owner, repo, j)]["status"] == "queued"
                            and j not in at_work)
            pairs += list(zip(queued[0:2:2], queued[1:2:2]))
        for x, y in pairs:
            with github.lock:
                runner_id, runner = next((i, r) for i, r in github.runners.items() if ours(r) and r["name"].startswith(f"runner-{x}-"))
                runner["busy"] = True
                github.jobs[(*jobs[y], y)].update(status="in_progress", runner_name=runner["name"])
            status, answer = started_on(b, y, runner["name"], *jobs[y])
            assert status == 200 and answer["outcome"] == "runner_replaced", answer
            assert f"runner-{x}-after-{y}" in kube.jobs(NAMESPACE) and f"runner-{x}-after-{y}" in kube.secrets(NAMESPACE)
        faults["runners that took another job"] = len(pairs)
        # A runner named like ours that no Job of ours records took a job: no replacement for the job in its name.
        paired = {j for pair in pairs for j in pair}
        free = [j for j in jobs if github.jobs[(*jobs[j], j)]["status"] == "queued" and j not in at_work and j not in paired]
        victim, taker = free[0], next(j for j in free[1:] if jobs[j] == jobs[free[0]])
        status, answer = started_on(b, taker, f"runner-{victim}-zz9zz", *jobs[taker])
        assert status == 200 and answer["outcome"] == "ignored_action", answer
        assert not [n for n in kube.jobs(NAMESPACE) if n.startswith(f"runner-{victim}-after-")]

        # Every other job ends; the runners at work keep working. Every idle runner has nothing it could take and
        # must be removed after RUNNER_IDLE_TIMEOUT; the runners at work (ours and the foreign one) must stay.
        with github.lock:
            for key, job in github.jobs.items():
                if job["status"] != "in_progress":
                    job["status"] = "completed"
            working = {i for i, r in github.runners.items() if r["busy"]}
            idle = sum(1 for i, r in github.runners.items() if ours(r) and i not in working)
        deadline = time.monotonic() + 60
        while any(ours(r) and i not in working for i, r in list(github.runners.items())) and time.monotonic() < deadline:
            time.sleep(0.5)
        first_assertions()  # nothing at work killed, nothing foreign touched
        with github.lock:
            assert working <= set(github.runners), "a runner at work lost its registration"
            left = [r["name"] for i, r in github.runners.items() if ours(r) and i not in working]
            ran = {r["name"][:-6] for r in github.runners.values() if r["busy"] and ours(r)}
        reaped = metric(a, 'runners_reaped_total{reason="idle"}') + metric(b, 'runners_reaped_total{reason="idle"}')
        print(f"campaign: {len(pairs)} runners took another job and got replacements; {idle} idle runners,"
              f" {reaped:.0f} reaped as idle; {len(working)} at work kept; left: {len(left)}")
        assert not left, f"idle runners left after the timeout: {left[:5]}"
        # The idle runners' Jobs went with them; what is left are the Jobs whose runner is at work (and the other
        # deployment's).
        ours_left = {n for n, o in kube.jobs(NAMESPACE).items() if o["metadata"]["labels"].get("app.kubernetes.io/instance") == MARKER}
        assert ours_left <= ran, sorted(ours_left - ran)[:5]
        assert "runner-900000001" in kube.jobs(NAMESPACE)
    finally:
        for server in (a, b):
            server.stop()
        github.stop()
        kube.stop()


def test_github_retry_after_is_honoured_by_every_path(tmp_path):
    """A secondary rate limit (429 with retry-after) answered to a delivery's JIT call: no path of the process (the
    other deliveries, the reconciler's lists and reapers) calls GitHub again before the window ends."""
    github, kube = FakeGitHub(), FakeKubernetes()
    config = kubeconfig(tmp_path, kube)
    server = Server({
        "DRY_RUN": "false", "GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url, "KUBECONFIG": str(config),
        "NAMESPACE": NAMESPACE, "RUNNER_MODE": "standard", "LOG_LEVEL": "notice", "POD_NAME": "only",
        "RECONCILE_INTERVAL": "1", "RECONCILE_GRACE": "0", "REPOSITORIES": "octo/api",
        "ALLOW_CLEARTEXT_CREDENTIALS": "true",  # the fakes are plain HTTP on loopback
    })
    window = 3
    try:
        for job_id in range(80_000, 80_013):
            github.add_job("octo", "api", job_id, age=5)
        github.inject("POST", r".*/generate-jitconfig",
                      Fault(429, {"message": "You have exceeded a secondary rate limit."}, headers={"retry-after": str(window)}))
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda j: send(server, j, "octo", "api"), range(80_000, 80_012)))
            time.sleep(window + 0.5)  # the reconciler keeps cycling through and after the window
        after = send(server, 80_012, "octo", "api")  # once the window is over, a delivery is served again
        with github.lock:
            timeline = list(github.timeline)
        limited = [answered for method, path, _, _, answered in timeline if method == "POST" and "generate-jitconfig" in path]
        assert limited, "no JIT call reached GitHub"
        first = min(answered for method, path, _, _, answered in timeline
                    if method == "POST" and "generate-jitconfig" in path)
        # The fault is the first JIT answer; nothing may arrive while its window runs. Allowance: 100 ms for calls
        # the service had sent before it read the 429, which the fakes' one event loop may read late on a loaded
        # machine (one arrived 18 ms after the answer in a full suite run beside other builds). A path that ignored
        # the window would call throughout it: the reconciler cycles every second.
        inside = [(method, path, round(arrived - first, 3)) for method, path, _, arrived, _ in timeline
                  if first + 0.1 < arrived < first + window]
        print(f"\nretry-after {window} s: {len(timeline)} GitHub calls; deliveries answered {sorted(set(results))};"
              f" calls inside the window: {len(inside)}")
        assert not inside, inside[:5]
        assert after == 200
    finally:
        server.stop()
        github.stop()
        kube.stop()
