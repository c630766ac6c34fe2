"""Differential tests: the real server against h11 (Python's strict HTTP/1.1 library) on the same bytes.

Every case is followed by a pipelined `GET /health`, so agreement on the number of requests answered also
proves agreement on body framing. The rule: whatever h11 rejects, the server rejects; whatever h11 accepts,
the server accepts, unless the server's reason is one of the documented places where it is stricter.
"""
import os
import random

import h11
import pytest

from conftest import exchange, statuses

FOLLOW_UP = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
PROTOCOL_ERRORS = {400, 408, 413, 414, 417, 431, 501, 505}
# Where the server is deliberately stricter than h11 (see ARCHITECTURE.md, "HTTP server").
STRICTER = {
    b"obsolete line folding is not allowed\n",  # h11 unfolds obs-fold; RFC 9112 allows rejecting it
    b"invalid or conflicting Content-Length\n",  # h11 merges equal duplicates; we reject any duplicate
    b"malformed request line\n",  # bare LF line ends, which h11 tolerates
    b"malformed header field\n",  # bare LF or CR inside the header section
    b"invalid request target\n",  # h11 takes any visible bytes as a target
    b"only HTTP/1.0 and HTTP/1.1 are supported\n",  # h11 parses HTTP/1.2 or HTTP/0.9-style versions
    b"Transfer-Encoding in an HTTP/1.0 request\n",
    b"only Expect: 100-continue is supported\n",
    b"malformed chunked body\n",  # control bytes in chunk extensions
    b"both Content-Length and Transfer-Encoding\n",
    # Limits of our own: request line 8 KiB (414), header section 64 KiB and 100 fields (431). h11 has one
    # limit for the whole head, set here to their sum, and no field count.
    b"request line too long\n",
    b"header section too large\n",
    b"too many header fields\n",  # h11 lets chunked win; RFC 9112 §6.3 allows rejecting
}
MAX_HEAD = 8 * 1024 + 64 * 1024 + 4


def h11_verdict(data: bytes):
    """('ok' | 'incomplete' | 'error', number of complete requests before that)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(data)
    complete = 0
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "incomplete", complete
            if event is h11.PAUSED:
                return "ok", complete
            if isinstance(event, h11.EndOfMessage):
                complete += 1
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return "ok", complete
                conn.start_next_cycle()
    except h11.RemoteProtocolError:
        return "error", complete


def server_verdict(port: int, data: bytes):
    """(number of leading normal answers, the protocol-error answer after them or None)."""
    answers = statuses(exchange(port, data))
    complete = 0
    for status, body in answers:
        if status in PROTOCOL_ERRORS:
            return complete, (status, body)
        complete += 1
    return complete, None


def check(port: int, case: bytes):
    data = case + FOLLOW_UP
    h11_state, h11_complete = h11_verdict(data)
    ours_complete, error = server_verdict(port, data)
    context = f"case={case[:300]!r} h11={h11_state}/{h11_complete} ours={ours_complete}/{error}"
    assert ours_complete <= h11_complete, "server accepted more than h11: " + context
    if h11_state == "error":
        assert error is not None, "h11 rejects, the server does not: " + context
    if ours_complete < h11_complete:
        assert error is not None, "server stopped answering without an error: " + context
        assert error[1] in STRICTER, "server rejects what h11 accepts, for an undocumented reason: " + context
    if h11_state != "error" and error is None:
        assert ours_complete == h11_complete, context
    return h11_state, ours_complete, error


VALID = [
    b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    b"GET /health HTTP/1.0\r\n\r\n",
    b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Tab:\tv\t\r\nX-Obs: caf\xe9\r\nX-Empty:\r\n\r\n",
    b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://x/health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nhost: x\r\nCONTENT-LENGTH: 0\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(98)) + b"\r\n",
]

INVALID = [
    b"\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1 \r\nHost: x\r\n\r\n",
    b"GET /health\r\n\r\n",
    b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
    b"GET /health HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\nHost: x\n\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 70000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain port
]


@pytest.mark.parametrize("case", VALID, ids=range(len(VALID)))
def test_both_accept_valid_requests(server, case):
    h11_state, ours, error = check(server.port, case)
    assert error is None and h11_state != "error"
    assert ours >= 1


@pytest.mark.parametrize("case", INVALID, ids=range(len(INVALID)))
def test_server_rejects_invalid_requests(server, case):
    _, ours, error = check(server.port, case)
    assert ours == 0 and error is not None


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = rng.choice([b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b",", b"\x00", b"\x7f", b"\xff", b";"])
        elif op == 2 and data:
            del data[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                i = rng.randrange(1, len(lines) - 1)
                lines.insert(i, lines[i])
                data = bytearray(b"\r\n".join(lines))
        elif op == 4:
            data[pos:pos] = rng.choice(
                [b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"Host: y\r\n", b"Connection: close\r\n",
                 b"Expect: 100-continue\r\n", b"Content-Length: 1, 1\r\n"]
            )
        elif op == 5:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            data[pos:pos] = bytes(rng.choice(b"0123456789abcdefABCDEF") for _ in range(rng.randint(1, 3)))
    return bytes(data)


def test_mutated_requests_agree_with_h11(server):
    cases = int(os.environ.get("DIFFERENTIAL_CASES", "1500"))
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "9112")))
    tally = {}
    for _ in range(cases):
        case = mutate(rng, rng.choice(VALID))
        h11_state, ours, error = check(server.port, case)
        key = (h11_state, "error" if error else "ok")
        tally[key] = tally.get(key, 0) + 1
    print(f"differential: {cases} mutated streams, (h11, server) outcomes: {tally}")
    assert server.alive()
