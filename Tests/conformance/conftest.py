"""Starts the real kube-actions-runner binary (dry run, loopback) for the process-level tests.

The binary is taken from KAR_BINARY, else .build/debug/kube-actions-runner (scripts/test builds it).
"""
import os
import pathlib
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "conformance-secret"


def binary() -> str:
    path = os.environ.get("KAR_BINARY") or str(ROOT / ".build" / "debug" / "kube-actions-runner")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no binary at {path}: run `swift build` first (scripts/test does)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, extra_env=None, preexec_fn=None):
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "WEBHOOK_SECRET": SECRET,
            "DRY_RUN": "true",
            "LISTEN_ADDRESS": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "warning",
        }
        env.update(extra_env or {})
        # Logs go to a file: a pipe nobody reads fills up and blocks the server's log writes.
        self.log = tempfile.NamedTemporaryFile(prefix="kube-actions-runner-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [binary()], env=env, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(100).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not become healthy")

    def logs(self) -> str:
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()
    assert s.process.returncode == 0, "server did not exit 0 on SIGTERM"


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends data, half-closes, and returns everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"server neither answered nor closed within {timeout}s")
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise TimeoutError(f"server neither answered nor closed within {timeout}s")
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def statuses(raw: bytes):
    """Parses the status codes and bodies of the responses in raw (which the server sent)."""
    out = []
    rest = raw
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body, rest = rest[:length], rest[length:]
        if 100 <= status < 200:
            continue
        out.append((status, body))
    return out
