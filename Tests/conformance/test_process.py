"""The binary as an operator runs it: configuration errors, the demo, metrics checked by promtool, SIGTERM."""
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, SECRET, Server, binary, exchange, statuses

PAYLOAD = (ROOT / "Tests" / "KubeActionsRunnerTests" / "Fixtures" / "github" / "workflow_job.queued.payload.json").read_bytes()


def signed_delivery(body: bytes, delivery: str, event: str = "workflow_job") -> bytes:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: {event}\r\n"
        f"X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_invalid_configuration_exits_2_naming_every_key_and_no_secret():
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WEBHOOK_SECRET": "do-not-print-me",
        "GITHUB_TOKEN": "ghp_do_not_print_me_either",
        "RUNNER_MODE": "kubevirt",
        "PORT": "http",
        "LABEL_MATCHERS": "linux;;x64",
    }
    result = subprocess.run([binary()], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    for key in ["RUNNER_MODE", "PORT", "LABEL_MATCHERS"]:
        assert f"{key}: " in result.stderr
    assert "do-not-print-me" not in result.stderr + result.stdout
    assert "ghp_do_not_print_me_either" not in result.stderr + result.stdout


def test_demo_runs_the_flow_and_exits_0():
    result = subprocess.run([binary(), "demo"], env={"PATH": os.environ.get("PATH", "")}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '-> 200 {"outcome":"accepted"' in result.stdout
    assert '"kind": "Job"' in result.stdout and '"kind": "Secret"' in result.stdout


def test_command_line_help_version_and_unknown_commands():
    env = {"PATH": os.environ.get("PATH", "")}
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| Variable | Default | Description |")[1].split("\n\n")[0]
    variables = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert len(variables) >= 30
    for arguments in (["--help"], ["help"], ["serve", "--help"]):
        result = subprocess.run([binary(), *arguments], env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ") and line[2] != " "]
        assert [name for name in listed if name in variables] == variables, arguments
    version = re.search(r'static let current = "(.*)"', (ROOT / "Sources" / "Support" / "Version.swift").read_text())[1]
    for arguments in (["--version"], ["version"]):
        result = subprocess.run([binary(), *arguments], env=env, capture_output=True, text=True, timeout=30)
        assert (result.returncode, result.stdout) == (0, version + "\n")
    for arguments in (["bogus"], ["serve", "--bogus"]):
        result = subprocess.run([binary(), *arguments], env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert "bogus" in result.stderr and result.stdout == ""


def test_metrics_pass_promtool(server):
    answers = statuses(exchange(server.port, signed_delivery(PAYLOAD, "promtool-1")))
    assert answers and answers[0][0] == 200
    exchange(server.port, signed_delivery(b"{}", "promtool-2", event="ping"))
    exchange(server.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    raw = exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4" in head
    assert b"webhook_requests_total{" in body and b"webhook_latency_seconds_bucket{" in body
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_sigterm_finishes_and_exits_0():
    server = Server()
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(1000).startswith(b"HTTP/1.1 200 OK")
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 5
    assert idle.recv(1000) == b""  # the idle keep-alive connection was closed
    idle.close()
