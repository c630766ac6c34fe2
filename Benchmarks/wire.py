"""The service's own time per delivery, read off the wire: a packet capture of loopback (tcpdump) timestamps, in the
kernel, when each delivery arrived and was answered and when each upstream call left the service and its answer came
back. What remains of a delivery once its upstream calls are taken out is time the service held it: parsing,
verifying, deciding, waiting for a CPU. Unlike the fakes' own timeline it leaves out the time a request waits for the
fakes' event loop to read it, which is the harness's cost, not the service's.

Needs tcpdump and the right to capture (root or CAP_NET_RAW); `Capture.start` returns None without them.
"""
import bisect
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time

_JOB = re.compile(rb"runner-(\d+)|/jobs/(\d+)")  # as the fakes name the job of an upstream call
_DELIVERY = re.compile(rb"X-GitHub-Delivery: bench-(\d+)", re.IGNORECASE)


class Capture:
    def __init__(self, process, path):
        self.process, self.path, self.dropped = process, path, None

    @classmethod
    def start(cls, ports):
        if shutil.which("tcpdump") is None:
            return None
        path = tempfile.mkstemp(suffix=".pcap")[1]
        expression = " or ".join(f"tcp port {port}" for port in ports)
        process = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-s", "0", "-B", "131072", "--immediate-mode", "--time-stamp-precision=nano",
             "-U", "-w", path, expression],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = process.stderr.readline()  # "listening on lo, ..." once the capture runs, or why it cannot
        if "listening" not in line:
            process.wait()
            return None
        time.sleep(0.1)
        return cls(process, path)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate()
        match = re.search(r"(\d+) packets? dropped by kernel", err)
        self.dropped = int(match.group(1)) if match else None
        return self


def _packets(path):
    """(timestamp in s, source port, destination port, sequence number, payload) of each TCP packet on lo."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    linktype = struct.unpack("<I", data[20:24])[0]
    link = {1: 14, 113: 16, 276: 20}.get(linktype, 14)  # Ethernet (lo), Linux cooked v1, v2
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        ip = frame[link:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[(ip[0] & 0x0F) * 4:total]
        source, destination, sequence = struct.unpack("!HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            yield seconds + fraction * scale, source, destination, sequence, payload


def _messages(segments):
    """Splits one direction of a connection into HTTP messages: (first byte seen at, whole message there at, head and
    body). `segments` are (at, relative sequence number, payload) as captured: on a multi-core machine loopback
    packets are not always captured in sequence order, and TCP may send a byte twice."""
    data, times, position = bytearray(), [], 0  # times: (end offset, seen at, everything up to it seen at)
    latest = 0.0
    for at, sequence, payload in sorted(segments, key=lambda segment: segment[1]):
        if sequence + len(payload) <= position:
            continue  # all of it seen already
        payload = payload[max(0, position - sequence):]
        data += payload
        position += len(payload)
        latest = max(latest, at)
        times.append((position, at, latest))
    ends = [end for end, _, _ in times]

    def time_of(byte, complete):
        _, at, everything = times[min(bisect.bisect_right(ends, byte), len(times) - 1)]
        return everything if complete else at

    out, start = [], 0
    data = bytes(data)
    while start < len(data):
        head_end = data.find(b"\r\n\r\n", start)
        if head_end < 0:
            break
        head = data[start:head_end]
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        end = head_end + 4 + (int(match.group(1)) if match else 0)
        out.append((time_of(start, False), time_of(min(end, len(data)) - 1, True), data[start:end]))
        start = end
    return out


def service_overheads(path, service_port, upstream_ports):
    """For each delivery in the capture: (job id, ms the service held it, of which before its first upstream call,
    and after its last answer). A delivery's window runs from the last
    byte of its request to the first byte of its answer; its upstream calls (named by job id) are taken out from the
    first byte of each request to the last byte of its answer."""
    streams, first = {}, {}  # (source port, destination port) -> [(at, relative sequence number, payload)]
    for at, source, destination, sequence, payload in _packets(path):
        key = (source, destination)
        base = first.setdefault(key, sequence - 2**30)  # far enough below for any reordering; wraps at 2^32
        streams.setdefault(key, []).append((at, (sequence - base) % 2**32, payload))

    deliveries, calls = [], {}
    for (source, destination), stream in streams.items():
        if destination != service_port and destination not in upstream_ports:
            continue
        requests = _messages(stream)
        answers = _messages(streams.get((destination, source), []))
        for (sent, received, request), answer in zip(requests, answers):
            answered, complete, _ = answer
            if destination == service_port:
                match = _DELIVERY.search(request)
                if match:
                    deliveries.append((int(match.group(1)), received, answered))
            else:
                line_end = request.find(b"\r\n")
                body = request[request.find(b"\r\n\r\n") + 4:]
                match = _JOB.search(request[:line_end] + b" " + body)
                if match:
                    job = int(next(filter(None, match.groups())))
                    calls.setdefault(job, []).append((sent, complete))

    out = []
    for job, begin, end in deliveries:
        covered, current = 0.0, None
        inside = [(max(start, begin), min(stop, end)) for start, stop in sorted(calls.get(job, []))]
        inside = [(start, stop) for start, stop in inside if stop > start]
        for start, stop in inside:
            if current and start <= current[1]:
                current[1] = max(current[1], stop)
            else:
                covered += current[1] - current[0] if current else 0.0
                current = [start, stop]
        covered += current[1] - current[0] if current else 0.0
        first = (inside[0][0] - begin) * 1000 if inside else None
        last = (end - max(stop for _, stop in inside)) * 1000 if inside else None
        out.append((job, (end - begin - covered) * 1000, first, last))
    return out
