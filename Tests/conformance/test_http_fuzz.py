"""Fuzz run: random and mutated byte streams, split at random points and sent from many connections at
once. The server must answer or close every connection promptly (no hang), never crash, and keep serving.
"""
import concurrent.futures
import os
import random
import socket
import time

from conftest import exchange
from test_http_differential import VALID, INVALID, mutate


def random_stream(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 2048)))
    if kind == 1:
        alphabet = b"GETPOST /HTTP1.0\r\n:;,=-chunkedContent-LengthTransfer-Encoding0123456789abcdef\t "
        return bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 4096)))
    if kind == 2:
        data = rng.choice(VALID + INVALID)
        for _ in range(rng.randint(1, 6)):
            data = mutate(rng, data)
        return data
    # A chunked body with random sizes and extensions.
    chunks = b"".join(
        b"%x%s\r\n%s\r\n" % (n, rng.choice([b"", b";x=1", b" ;y"]), bytes(rng.randrange(256) for _ in range(n)))
        for n in (rng.randint(1, 300) for _ in range(rng.randint(0, 5)))
    )
    return b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + rng.choice([b"0\r\n\r\n", b""])


def send_in_pieces(port: int, data: bytes, rng: random.Random) -> float:
    """Sends data in random pieces, half-closes, waits for the server to finish; returns seconds taken."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            offset = 0
            while offset < len(data):
                n = rng.randint(1, 512)
                s.sendall(data[offset : offset + n])
                offset += n
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        while True:
            try:
                if not s.recv(65536):
                    break
            except ConnectionResetError:
                break
    return time.monotonic() - start


def test_random_and_mutated_streams_never_crash_or_hang(server):
    cases = int(os.environ.get("FUZZ_CASES", "3000"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    streams = [(random_stream(random.Random(seed * 1_000_003 + i)), i) for i in range(cases)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        durations = list(pool.map(lambda item: send_in_pieces(server.port, item[0], random.Random(item[1])), streams))
    elapsed = time.monotonic() - started
    slowest = max(durations)
    print(f"fuzz: {cases} streams ({sum(len(s) for s, _ in streams)} bytes) in {elapsed:.1f}s, slowest {slowest:.2f}s")
    assert slowest < 5, "a connection took longer than 5 s to be answered or closed after the client finished"
    assert server.alive()
    assert exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n")
