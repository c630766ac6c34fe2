"""The benchmark's packet-capture reader (Benchmarks/wire.py), on captures written here: the figures in
BENCHMARKS.md for the service's own time depend on it reassembling TCP as the kernel does.
"""
import pathlib
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "Benchmarks"))
import wire  # noqa: E402

SERVICE, GITHUB = 8080, 9000


def pcap(path, packets):
    """A pcap (nanosecond timestamps, Ethernet as Linux's lo) of (at in ns, source port, destination port,
    sequence number, payload)."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    for at, source, destination, sequence, payload in packets:
        tcp = struct.pack("!HHIIBBHHH", source, destination, sequence % 2**32, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, bytes([127, 0, 0, 1]),
                         bytes([127, 0, 0, 1])) + tcp
        frame = bytes(14) + ip
        out.append(struct.pack("<IIII", at // 10**9, at % 10**9, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return str(path)


def request(target, body=b"", headers=""):
    return f"POST {target} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


def answer(body=b"{}"):
    return f"HTTP/1.1 201 Created\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


MS = 10**6


def test_the_service_holds_a_delivery_for_what_its_upstream_calls_do_not_cover(tmp_path):
    delivery = request("/webhook", b"{}", "X-GitHub-Delivery: bench-7\r\n")
    call = request("/repos/o/r/actions/runners/generate-jitconfig", b'{"name":"runner-7"}')
    path = pcap(tmp_path / "one.pcap", [
        (0 * MS, 40000, SERVICE, 1, delivery),
        (2 * MS, 40001, GITHUB, 1, call),           # 2 ms in the service before its first call
        (102 * MS, GITHUB, 40001, 1, answer()),     # 100 ms at GitHub
        (103 * MS, SERVICE, 40000, 1, answer()),    # 1 ms after the answer
    ])
    [(job, held, before, after)] = wire.service_overheads(path, SERVICE, [GITHUB])
    assert job == 7
    assert abs(held - 3.0) < 1e-6 and abs(before - 2.0) < 1e-6 and abs(after - 1.0) < 1e-6


def test_out_of_order_retransmitted_and_wrapping_segments_reassemble(tmp_path):
    """A large answer captured out of sequence order, with a retransmitted segment, its sequence numbers
    crossing 2^32: the answer must end when its last byte is seen, and the next exchange on the connection must
    stay in step."""
    delivery = request("/webhook", b"{}", "X-GitHub-Delivery: bench-8\r\n")
    first_call = request("/apis/batch/v1/namespaces/n/jobs", b'{"name":"runner-8"}')
    second_call = request("/api/v1/namespaces/n/secrets", b'{"name":"runner-8"}')
    big = answer(b"x" * 150_000)
    a, b, c = big[:65_000], big[65_000:130_000], big[130_000:]
    start = 2**32 - 70_000  # the answer's sequence numbers wrap inside segment b
    path = pcap(tmp_path / "wrap.pcap", [
        (0 * MS, 40000, SERVICE, 1, delivery),
        (1 * MS, 40001, GITHUB, 5, first_call),
        (100 * MS, GITHUB, 40001, start + 65_000, b),       # seen before a
        (101 * MS, GITHUB, 40001, start, a),
        (101 * MS, GITHUB, 40001, start + 65_000, b[:1000]),  # retransmitted
        (110 * MS, GITHUB, 40001, start + 130_000, c),      # the whole answer is there at 110 ms
        (111 * MS, 40001, GITHUB, 5 + len(first_call), second_call),
        (211 * MS, GITHUB, 40001, start + len(big), answer()),
        (212 * MS, SERVICE, 40000, 1, answer()),
    ])
    [(job, held, before, after)] = wire.service_overheads(path, SERVICE, [GITHUB])
    assert job == 8
    # 1 ms before the first call, 1 ms between the first answer's last byte and the second call, 1 ms after.
    assert abs(before - 1.0) < 1e-6 and abs(after - 1.0) < 1e-6
    assert abs(held - 3.0) < 1e-6


def test_a_delivery_without_an_answer_is_left_out(tmp_path):
    delivery = request("/webhook", b"{}", "X-GitHub-Delivery: bench-9\r\n")
    path = pcap(tmp_path / "none.pcap", [(0, 40000, SERVICE, 1, delivery)])
    assert wire.service_overheads(path, SERVICE, [GITHUB]) == []
