#!/usr/bin/env python3
"""Hostile load against the real server: memory must not follow the attacker, deliveries must still go through.

Starts the release binary (dry run) and runs three scenarios, each in a fresh process:

  hoard      HOARDERS unauthenticated connections each declare Content-Length MAX_BODY_BYTES, send
             MAX_BODY_BYTES - 1 body bytes as fast as the server reads them and park; a hoarder that is cut
             (503) reconnects and starts again, so the attack never lets go. Meanwhile signed deliveries are
             sent one after another on fresh connections, each timed from connect to its answer.
  + slowloris the same, plus SLOWLORIS connections sending one header byte per second each.
  descriptors the running server's RLIMIT_NOFILE is lowered (prlimit) to leave it SPARE descriptors; twice as
             many connections are opened and held; the refused ones are counted; the server must stay alive, and
             once they close /health, /ready and a delivery must answer 200.

Peak RSS is sampled from /proc every 20 ms over each scenario. Loopback only; every loop is bounded in time.

    swift build -c release --product kube-actions-runner --static-swift-stdlib
    python3 Benchmarks/hostile_load.py [--hoarders 400] [--slowloris 1000] [--deliveries 20] [--seconds 12]
"""
import argparse
import os
import pathlib
import resource
import select
import socket
import subprocess
import threading
import time

import http_isolation  # the signed delivery both benchmarks send

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECRET = "bench-secret-of-some-length"
MAX_BODY_BYTES = 1024 * 1024


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRSS(threading.Thread):
    """Samples the server's RSS every 20 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return
            time.sleep(0.02)


def delivery(n):
    return http_isolation.delivery(n, secret=SECRET, first=5000, tag="hostile", close=True)


def status_of(sock, deadline):
    data = b""
    while b"\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def timed_request(port, request, limit=5.0):
    """Connect, send, read the status; returns (status or None, seconds)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
            s.sendall(request)
            return status_of(s, start + limit), time.monotonic() - start
    except OSError:
        return None, time.monotonic() - start


class Hoarders(threading.Thread):
    """Keeps COUNT connections each pushing MAX_BODY_BYTES - 1 bytes of a MAX_BODY_BYTES body, reconnecting when cut."""

    HEAD = (f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {MAX_BODY_BYTES}\r\n\r\n").encode()
    CHUNK = b"x" * 65536

    def __init__(self, port, count):
        super().__init__(daemon=True)
        self.port, self.count, self.stop = port, count, threading.Event()
        self.cut = 0
        self.parked = 0

    def open(self):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        return s

    def run(self):
        total = len(self.HEAD) + MAX_BODY_BYTES - 1
        conns = {}
        for _ in range(self.count):
            s = self.open()
            conns[s.fileno()] = [s, 0]
        poller = select.poll()
        for fd in conns:
            poller.register(fd, select.POLLOUT | select.POLLIN)
        while not self.stop.is_set():
            for fd, events in poller.poll(50):
                entry = conns.get(fd)
                if entry is None:
                    continue
                s, sent = entry
                closed = False
                if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        closed = s.recv(65536, socket.MSG_DONTWAIT) == b"" or True  # any answer is a cut
                    except BlockingIOError:
                        closed = False
                    except OSError:
                        closed = True
                if not closed and events & select.POLLOUT and sent < total:
                    try:
                        if sent < len(self.HEAD):
                            sent += s.send(self.HEAD[sent:])
                        else:
                            sent += s.send(self.CHUNK[: min(len(self.CHUNK), total - sent)])
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed = True
                    entry[1] = sent
                    if sent >= total:
                        self.parked += 1
                        poller.modify(fd, select.POLLIN)
                if closed:
                    self.cut += 1
                    poller.unregister(fd)
                    del conns[fd]
                    s.close()
                    n = self.open()
                    conns[n.fileno()] = [n, 0]
                    poller.register(n.fileno(), select.POLLOUT | select.POLLIN)
        for s, _ in conns.values():
            s.close()


class Slowloris(threading.Thread):
    """COUNT connections each sending one header byte per second."""

    def __init__(self, port, count):
        super().__init__(daemon=True)
        self.port, self.count, self.stop = port, count, threading.Event()

    def run(self):
        conns = []
        for _ in range(self.count):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.setblocking(False)
                s.send(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                conns.append(s)
            except OSError:
                pass
        while not self.stop.wait(1.0):
            for s in conns:
                try:
                    s.send(b"a")
                except OSError:
                    pass
        for s in conns:
            s.close()


def start_server(binary, port, extra_env=None, nofile=None):
    env = {"WEBHOOK_SECRET": SECRET, "DRY_RUN": "true", "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1",
           "LOG_LEVEL": "warning", "LABEL_MATCHERS": "ubuntu-latest", **(extra_env or {})}

    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    server = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limit)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return server
        except OSError:
            time.sleep(0.01)
    raise SystemExit("server did not start")


def stop_server(server):
    server.terminate()
    try:
        out, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    return out.decode(errors="replace")


def hoard_scenario(binary, port, hoarders, slowloris, deliveries, seconds):
    server = start_server(binary, port)
    peak = PeakRSS(server.pid)
    peak.start()
    idle_rss = rss_mib(server.pid)
    attack = Hoarders(port, hoarders)
    loris = Slowloris(port, slowloris) if slowloris else None
    attack.start()
    if loris:
        loris.start()
    # Let the hoarders fill the budget and park (most have sent all they will be allowed to).
    time.sleep(3.0)
    results = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end and n < deliveries:
        results.append(timed_request(port, delivery(n)))
        n += 1
        time.sleep(max(0.0, (seconds - 1) / deliveries - results[-1][1]))
    health = timed_request(port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    attack.stop.set()
    if loris:
        loris.stop.set()
    attack.join(5)
    if loris:
        loris.join(5)
    peak.stop.set()
    peak.join()
    alive = server.poll() is None
    log = stop_server(server)
    ok = [t for s, t in results if s == 200]
    statuses = sorted({s for s, _ in results}, key=str)
    return {
        "idle_rss": idle_rss, "peak_rss": peak.peak, "deliveries": len(results), "ok": len(ok),
        "statuses": statuses, "max_s": max((t for _, t in results), default=0),
        "p50_s": sorted(t for _, t in results)[len(results) // 2] if results else 0,
        "cut": attack.cut, "ready": health[0], "alive": alive, "log_lines": log.count("\n"),
    }


def descriptor_scenario(binary, port, spare):
    """Leaves the running server SPARE descriptors, then opens and holds twice as many connections."""
    server = start_server(binary, port)
    in_use = len(os.listdir(f"/proc/{server.pid}/fd"))
    _, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (in_use + spare, hard))
    held, refused, failed = [], 0, 0
    for _ in range(2 * spare):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # a head that never ends: the connection stays
            held.append(s)
        except OSError:
            failed += 1
    time.sleep(0.5)
    still = []
    for s in held:
        s.setblocking(False)
        try:
            data = s.recv(65536)
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
                s.close()
                continue
        except BlockingIOError:
            pass
        still.append(s)
    alive_while_held = server.poll() is None
    for s in still:
        s.close()
    time.sleep(0.3)
    health = timed_request(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ready = timed_request(port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    after = timed_request(port, delivery(999))
    alive = server.poll() is None
    stop_server(server)
    return {"spare": spare, "attempted": 2 * spare, "held": len(still), "refused": refused, "failed": failed,
            "alive_while_held": alive_while_held, "health": health[0], "ready": ready[0],
            "delivery_after": after[0], "alive": alive}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hoarders", type=int, default=400)
    parser.add_argument("--slowloris", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--spare-descriptors", type=int, default=200)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/kube-actions-runner"))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = 19000 + os.getpid() % 1000

    print(f"machine: {os.cpu_count()} cores; binary: {args.binary}; MAX_BODY_BYTES {MAX_BODY_BYTES}, "
          f"MAX_INFLIGHT_BODY_BYTES default")
    for label, loris in [(f"{args.hoarders} hoarders", 0), (f"{args.hoarders} hoarders + {args.slowloris} slowloris",
                                                             args.slowloris)]:
        r = hoard_scenario(args.binary, port, args.hoarders, loris, args.deliveries, args.seconds)
        print(f"{label}: peak RSS {r['peak_rss']:.1f} MiB (idle {r['idle_rss']:.1f}); deliveries "
              f"{r['ok']}/{r['deliveries']} answered 200 (statuses {r['statuses']}), p50 {r['p50_s'] * 1000:.0f} ms, "
              f"max {r['max_s'] * 1000:.0f} ms; hoarders cut and reconnected {r['cut']}; /ready {r['ready']}; "
              f"alive {r['alive']}")
        port += 1
    d = descriptor_scenario(args.binary, port, args.spare_descriptors)
    print(f"descriptors ({d['spare']} left to the running server by prlimit): {d['attempted']} connections opened "
          f"and held; {d['held']} kept, {d['refused']} refused with 503, {d['failed']} failed to connect; server alive "
          f"while held: {d['alive_while_held']}; after they closed: /health {d['health']}, /ready {d['ready']}, "
          f"a signed delivery {d['delivery_after']}")


if __name__ == "__main__":
    main()
