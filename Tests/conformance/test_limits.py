"""Limits of the real binary that need a process of their own: descriptors and the descriptor limit."""
import os
import resource
import socket
import time

from conftest import Server, exchange, statuses


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_refuses_connections_when_descriptors_run_out_and_stays_alive_and_ready():
    server = Server()
    try:
        # Leave the running server 20 descriptors more than it has: the 21st connection finds none.
        in_use = open_descriptors(server.process.pid)
        _, hard = resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (in_use + 20, hard))
        held, answers = [], []
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
            held.append(s)
        time.sleep(0.3)
        for s in held:
            s.setblocking(False)
            try:
                answers.append(s.recv(4096))
            except BlockingIOError:
                answers.append(None)
        refused = [a for a in answers if a is not None and a.startswith(b"HTTP/1.1 503")]
        assert len(refused) >= 30, answers
        assert all(b"out of descriptors" in a for a in refused)
        assert server.alive()
        assert "out of descriptors: refusing connections" in server.logs()
        for s in held:
            s.close()
        time.sleep(0.3)
        assert statuses(exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))[0][0] == 200
        assert statuses(exchange(server.port, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"))[0][0] == 200
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_clamps_max_connections_under_a_low_descriptor_limit_and_says_so():
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    server = Server(preexec_fn=low_limit)
    try:
        logs = server.logs()
        assert "MAX_CONNECTIONS clamped under the descriptor limit" in logs
        assert '"max_connections":"32"' in logs.replace(" ", "")
        assert statuses(exchange(server.port, b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"))[0][0] == 200
    finally:
        server.stop()


def test_raises_the_soft_descriptor_limit_to_the_hard_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def low_soft_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    server = Server(preexec_fn=low_soft_limit)
    try:
        soft, raised_hard = resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE)
        assert (soft, raised_hard) == (hard, hard)
        assert "MAX_CONNECTIONS clamped" not in server.logs() or hard < 4096 + 576
    finally:
        server.stop()
