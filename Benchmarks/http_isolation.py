#!/usr/bin/env python3
"""What idle and trickling connections cost the real server, and whether they delay a real delivery.

Starts the release binary (dry run), measures signed-delivery latency alone, then again while it holds
IDLE keep-alive connections and TRICKLE connections that send one header byte per second (slowloris),
and reports RSS and thread count from /proc. Also times how long a trickling connection survives.

    swift build -c release && python3 Benchmarks/http_isolation.py [--idle 2000] [--trickle 1000]
"""
import argparse
import hashlib
import hmac
import os
import pathlib
import resource
import select
import socket
import statistics
import subprocess
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
PAYLOAD = (ROOT / "Tests/KubeActionsRunnerTests/Fixtures/github/workflow_job.queued.payload.json").read_bytes()


def proc_status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def delivery(n, secret=SECRET, first=1000, tag="bench", close=False):
    """A signed queued delivery for job `first + n` (a delivery id of its own), as bytes to send."""
    body = PAYLOAD.replace(b'"id": 289782451', b'"id": %d' % (first + n))
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    connection = "Connection: close\r\n" if close else ""
    return (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n"
        f"X-GitHub-Delivery: {tag}-{n}-{time.monotonic_ns()}\r\nX-Hub-Signature-256: {sig}\r\n"
        f"Content-Length: {len(body)}\r\n{connection}\r\n"
    ).encode() + body


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b" ")[1]


def latencies(port, count, offset):
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count):
            request = delivery(offset + i)
            start = time.perf_counter()
            s.sendall(request)
            status = read_response(s)
            samples.append((time.perf_counter() - start) * 1000)
            assert status == b"200", status
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1], samples[-1]


def is_open(sock):
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--trickle", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/kube-actions-runner"))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port = 18000 + os.getpid() % 1000
    env = {"WEBHOOK_SECRET": SECRET, "DRY_RUN": "true", "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1",
           "LOG_LEVEL": "error", "LABEL_MATCHERS": "ubuntu-latest"}
    server = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.01)
        latencies(port, 50, 0)  # warm up
        rss0, threads0 = proc_status(server.pid)
        base = latencies(port, args.samples, 10_000)

        idle = []
        for _ in range(args.idle):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(s)
            idle.append(s)
        stop = threading.Event()
        trickle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.trickle)]
        opened = time.monotonic()
        cut = {}

        def drip():
            # One header byte per connection per second; a connection counts as cut when the server's
            # 408 (or its close) becomes readable, checked every 50 ms.
            poller = select.poll()
            by_fd = {s.fileno(): i for i, s in enumerate(trickle)}
            for s in trickle:
                poller.register(s, select.POLLIN)
            next_drip = 0.0
            while not stop.is_set() and len(cut) < len(trickle):
                now = time.monotonic()
                if now >= next_drip:
                    for i, s in enumerate(trickle):
                        if i not in cut:
                            try:
                                s.send(b"X")
                            except OSError:
                                pass
                    next_drip = now + 1.0
                for fd, _ in poller.poll(50):
                    if by_fd[fd] not in cut:
                        cut[by_fd[fd]] = time.monotonic() - opened
                        poller.unregister(fd)

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1.5)
        rss1, threads1 = proc_status(server.pid)
        loaded = latencies(port, args.samples, 20_000)
        # Wait for the header deadline (10 s) to cut every trickling connection.
        while len(cut) < len(trickle) and time.monotonic() - opened < 20:
            time.sleep(0.2)
        stop.set()
        print(f"machine: {os.cpu_count()} cores; binary: {args.binary}")
        print(f"alone:                       p50 {base[0]:.3f} ms  p99 {base[1]:.3f} ms  max {base[2]:.3f} ms"
              f"  (RSS {rss0:.1f} MiB, {threads0} threads)")
        print(f"+{args.idle} idle +{args.trickle} trickling: p50 {loaded[0]:.3f} ms  p99 {loaded[1]:.3f} ms"
              f"  max {loaded[2]:.3f} ms  (RSS {rss1:.1f} MiB, {threads1} threads)")
        print(f"added p99: {loaded[1] - base[1]:+.3f} ms; per held connection: "
              f"{(rss1 - rss0) * 1024 / max(1, args.idle + args.trickle):.2f} KiB")
        if cut:
            print(f"trickling connections cut: {len(cut)}/{len(trickle)}, after {min(cut.values()):.1f}-"
                  f"{max(cut.values()):.1f} s (header deadline 10 s, swept every 100 ms)")
        idle_alive = sum(1 for s in idle if is_open(s))
        print(f"idle keep-alive connections still open after {time.monotonic() - opened:.0f} s: {idle_alive}/{len(idle)}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
