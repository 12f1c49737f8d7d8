#!/usr/bin/env python3
"""Media benchmark: concurrent relayed G.711 calls through softswitch, on loopback.

One Python process (this one) plays both ends of every call:

* the *caller* (the carrier trunk): INVITE to softswitch for +18005550100 with an
  SDP offer (PCMU/8000) naming one of its caller-side RTP sockets, ACK, BYE;
* the receiving number *R1*: a minimal UAS on its own SIP port that answers
  100 and 200 with an SDP naming one of its callee-side RTP sockets, and handles
  ACK and BYE.

softswitch runs with a copy of conf/lab.yaml whose R1 points at that UAS and whose
``media:`` says ``mode: relay`` (every call anchored), so each call's RTP goes
caller -> softswitch leg A -> softswitch leg B -> callee and back.  For each step
of N concurrent calls the bench

1. runs a *baseline*: the same N calls' streams, same sockets, same packet rate,
   with the two RTP ends sending to each other directly (no softswitch);
2. sets up N calls through softswitch (INVITEs paced at --setup-rate), starting
   each call's RTP in both directions as soon as it is answered;
3. measures a window of --media-seconds once all calls are up: every stream sends
   172-byte packets (12-byte RTP header + 160 bytes of payload) 50 times a second
   on an absolute 20 ms grid, calls staggered over 20 slots of 1 ms; each payload
   carries the stream id, a per-stream sequence number and the send time, so the
   receiving end computes loss, transit times and the RFC 3550 interarrival
   jitter per stream;
4. sends BYE for every call and checks that each one ended at both ends and that
   softswitch closed its RTP sockets.

Jitter is RFC 3550 §6.4.1 (J += (|D| - J)/16) computed in *real time*, in ms: S is
the send time stamped in the payload just before sendto (time.time_ns), R the
kernel's receive timestamp of the packet (SO_TIMESTAMPNS, the same clock), so the
generator's own scheduling delays on the receive side do not count.  A stream's
jitter is the mean of its J over the window (sampled at every packet).  A step
passes when all N calls were set up and ended, packet loss < 0.1 % and the p99
across streams of that per-stream jitter, minus the baseline's p99, is < 5 ms.
The ceiling is the largest passing N; stepping stops after two failing steps in
a row.  A step that failed while other processes competed for the CPUs (Linux
PSI, /proc/pressure/cpu, above --max-pressure) is repeated, up to --retries
times; a contended pass stands (contention only makes softswitch look worse).

The generator's RTP sockets are non-blocking and drained in a loop (recvmsg_into
until EAGAIN).  By default (--rx poll) the 1 ms pacer drains them after sending;
--rx event registers them with loop.add_reader instead, which costs the
generator a wake-up per packet at low load.

Standard library only (uvloop is used when importable).  Run it with the
project's venv:

    .venv/bin/python bench/media.py [--calls 100,200,...] [--media-seconds 10]
                                    [--port-base 15060]

softswitch is pinned to CPU 0 and the generator to CPU 1 (os.sched_setaffinity)
so that "one core" is literal.  Only 127.0.0.1 is ever addressed.  It prints a
Markdown table and a summary, and writes bench/results/media-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import ipaddress
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from procstat import (
    cpu_ticks,
    options_probe,
    port_free,
    proc_tree,
    status_kib,
    stop,
    udp_port_bound,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LAB_CONF = ROOT / "conf" / "lab.yaml"

HOST = "127.0.0.1"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
NUMBER = "+18005550100"  # routes to R1 in conf/lab.yaml
MEDIA_PORTS = (30000, 39999)  # softswitch's RTP range in the config copy
FORBIDDEN = {5060, 8088, *range(5071, 5075)}
FORBIDDEN_RANGES = [(20000, 29999), MEDIA_PORTS]
DEFAULT_CALLS = "100,200,300,400,500,600,800,1000,1100,1200,1300,1400,1500,1600,1800"
PASS_LOSS_PCT = 0.1
PASS_ADDED_JITTER_MS = 5.0
STOP_AFTER_FAILS = 2
SATURATED_CPU = 97.0  # softswitch at or above this % of its core: saturated
GEN_CPU_LIMIT = 90.0  # generator above this % of its core: its numbers are suspect
GEN_LATE_LIMIT_MS = 5.0  # ... or its p99 send lateness above this
CLK_TCK = os.sysconf("SC_CLK_TCK")

# RTP: 20 ms of G.711 per packet, 50 packets/s per direction.
PERIOD_NS = 20_000_000
SLOTS = 20  # calls are staggered over 20 slots of 1 ms in each period
SLOT_NS = PERIOD_NS // SLOTS
PAYLOAD = 160
PKT_LEN = 12 + PAYLOAD
# One pack per packet: RTP seq, timestamp, SSRC (offset 2), then payload
# stream id, sequence and send time (offset 12).
TX = struct.Struct("!HIIIIQ")
RX = struct.Struct("!IIQ")
TIMESPEC = struct.Struct("@qq")  # struct timespec of SO_TIMESTAMPNS (64-bit Linux)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SLOW_TRANSIT_NS = 5_000_000  # packets slower than this are listed by arrival time
HIST_BUCKET_NS = 10_000  # transit-time histogram: 10 us buckets ...
HIST_N = 20_000  # ... up to 200 ms (the last bucket holds everything above)
LATE_BUCKET_NS = 100_000  # send-lateness histogram: 0.1 ms buckets up to 1 s
LATE_N = 10_000


# --------------------------------------------------------------------------
# /proc helpers (the shared ones are in bench/procstat.py)


def steal_ticks() -> dict[int, int]:
    """Per CPU: jiffies stolen by the hypervisor (/proc/stat "steal")."""
    out: dict[int, int] = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                parts = line.split()
                if len(parts) > 8:
                    out[int(parts[0][3:])] = int(parts[8])
    except (OSError, ValueError):
        pass
    return out


def psi_cpu_some_us() -> int | None:
    """Total µs some task waited for a CPU (/proc/pressure/cpu): other load shows here."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some "):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def udp_table() -> list[tuple[int, int, int, int]]:
    """(local port, inode, rx_queue bytes, drops) of every IPv4 UDP socket."""
    rows: list[tuple[int, int, int, int]] = []
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return rows
    for line in lines:
        f = line.split()
        if len(f) < 13:
            continue
        port = int(f[1].rsplit(":", 1)[1], 16)
        rxq = int(f[4].split(":")[1], 16)
        rows.append((port, int(f[9]), rxq, int(f[12])))
    return rows


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    for p in proc_tree(pid):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    return inodes


def udp_snmp() -> dict[str, int]:
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return {}
    udp = [line.split()[1:] for line in lines if line.startswith("Udp:")]
    if len(udp) < 2:
        return {}
    return {k: int(v) for k, v in zip(udp[0], udp[1], strict=False)}


def forbidden(port: int) -> bool:
    return port in FORBIDDEN or any(lo <= port <= hi for lo, hi in FORBIDDEN_RANGES)


def on_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in LOOPBACK
    except ValueError:
        return False


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-pct * len(s) // 100)) - 1))
    return s[k]


def hist_percentile(hist: list[int], pct: float, bucket_ns: int) -> float:
    """The pct percentile of a histogram, in ms (upper edge of the bucket)."""
    total = sum(hist)
    if not total:
        return 0.0
    need = pct / 100 * total
    acc = 0
    for i, n in enumerate(hist):
        acc += n
        if acc >= need:
            return (i + 1) * bucket_ns / 1e6
    return len(hist) * bucket_ns / 1e6


def hist_max(hist: list[int], bucket_ns: int) -> float:
    for i in range(len(hist) - 1, -1, -1):
        if hist[i]:
            return (i + 1) * bucket_ns / 1e6
    return 0.0


# --------------------------------------------------------------------------
# SIP: just enough to be a trunk and a phone


COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}


@dataclass
class Sip:
    first: str
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def is_response(self) -> bool:
        return self.first.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first.split()[1])

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0]

    @property
    def cseq(self) -> tuple[int, str]:
        num, _, method = (self.get("cseq") or "0 ?").partition(" ")
        return int(num), method.strip()


def parse_sip(data: bytes) -> Sip | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded line
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        if name == "via":  # comma-separated Vias are separate hops
            headers.extend(("via", v.strip()) for v in value.split(","))
        else:
            headers.append((name, value.strip()))
    return Sip(lines[0], headers, body)


def uri_of(name_addr: str) -> str:
    m = re.search(r"<([^>]*)>", name_addr)
    return m.group(1) if m else name_addr.split(";", 1)[0].strip()


def tag_of(name_addr: str) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", name_addr.split(">", 1)[-1])
    return m.group(1) if m else None


def sdp_audio(body: bytes) -> tuple[str, int] | None:
    text = body.decode("utf-8", "replace")
    host = None
    port = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("c=IN IP4 ") and (host is None or port is not None):
            host = line.split()[2].split("/")[0]
        elif line.startswith("m=audio ") and port is None:
            port = int(line.split()[1])
    if host is None or not port:
        return None
    return host, port


def sdp_body(port: int, sid: int) -> bytes:
    return (
        "v=0\r\n"
        f"o=bench {sid} 1 IN IP4 {HOST}\r\n"
        "s=bench-media\r\n"
        f"c=IN IP4 {HOST}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    ).encode()


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def caller_number(i: int) -> str:
    return f"+1212555{i:04d}"


# --------------------------------------------------------------------------
# RTP streams


class Stream:
    """One direction of one call: the sending end's state and the receiving end's."""

    __slots__ = (
        "sid",
        "buf",
        "sendto",
        "dest",
        "seq",
        "ssrc",
        "wstart",
        "sent_w",
        "send_err",
        "recv_w",
        "seen",
        "maxseq",
        "reorder",
        "dup",
        "lt",
        "j",
        "jsum",
        "jn",
        "jmax",
    )

    def __init__(self, sid: int, sock: socket.socket, dest: tuple[str, int]) -> None:
        if not on_loopback(dest[0]):
            raise RuntimeError(f"refusing to send RTP to {dest}: not in 127.0.0.0/8")
        self.sid = sid
        self.buf = bytearray(b"\x80\x00" + bytes(10) + b"\xff" * PAYLOAD)
        self.sendto = sock.sendto
        self.dest = dest
        self.seq = 0
        self.ssrc = random.getrandbits(32)
        self.wstart = 1 << 40  # nothing counts until a window starts
        self.sent_w = 0
        self.send_err = 0
        self.recv_w = 0
        self.seen = bytearray()
        self.maxseq = -1
        self.reorder = 0
        self.dup = 0
        self.lt = -1  # previous transit time, ns
        self.j = 0.0  # RFC 3550 jitter estimate, ns
        self.jsum = 0.0
        self.jn = 0
        self.jmax = 0.0

    def begin_window(self, capacity: int) -> None:
        self.wstart = self.seq
        self.sent_w = self.send_err = self.recv_w = 0
        self.seen = bytearray(capacity)
        self.maxseq = -1
        self.reorder = self.dup = 0
        self.jsum = 0.0
        self.jn = 0
        self.jmax = 0.0


@dataclass
class PhaseStats:
    """What one measured window saw (a baseline or a relay phase)."""

    kind: str
    streams: int = 0
    window_s: float = 0.0
    sent: int = 0
    received: int = 0
    lost: int = 0
    loss_pct: float = 0.0
    send_errors: int = 0
    streams_with_loss: int = 0
    worst_stream_loss_pct: float = 0.0
    reordered: int = 0
    duplicates: int = 0
    misdelivered: int = 0
    bad_packets: int = 0
    jitter_mean_ms: float = 0.0
    jitter_p50_ms: float = 0.0
    jitter_p99_ms: float = 0.0
    jitter_max_ms: float = 0.0
    jitter_peak_p99_ms: float = 0.0  # p99 across streams of each stream's largest J
    transit_p50_ms: float = 0.0
    transit_p99_ms: float = 0.0
    transit_p999_ms: float = 0.0
    transit_max_ms: float = 0.0
    send_late_p99_ms: float = 0.0
    send_late_max_ms: float = 0.0
    gen_cpu_pct: float = 0.0
    gen_drops: int = 0  # drops in the generator's own receive buffers
    softswitch_drops: int = 0  # drops in softswitch's RTP sockets' receive buffers
    softswitch_sockets: int = 0
    udp_snmp_delta: dict[str, int] = field(default_factory=dict)
    cpu_pressure_pct: float | None = None  # PSI "some": a task waited for a CPU
    steal_pct: dict[str, float] = field(default_factory=dict)  # hypervisor steal per CPU
    slow_packets: int = 0  # transit above SLOW_TRANSIT_NS
    slow_episodes: int = 0  # distinct 100 ms intervals holding such packets
    slow_episode_gap_s: float | None = None  # median time between those episodes
    gen_late_episodes: int = 0  # 100 ms intervals where the generator sent > 5 ms late
    # per 100 ms interval with slow packets or late sends, from the window start
    slow_timeline: list[dict[str, float]] = field(default_factory=list)
    rx_without_timestamp: int = 0
    negative_transit: int = 0
    softswitch_cpu_pct: float | None = None
    softswitch_rss_mib: float | None = None
    softswitch_hwm_mib: float | None = None


# --------------------------------------------------------------------------
# the generator


@dataclass
class Call:
    index: int
    call_id: str
    from_tag: str
    caller_sock: int
    invite: bytes = b""
    to_header: str = ""
    remote_target: str = ""
    routes: list[str] = field(default_factory=list)
    ack: bytes | None = None
    status: int | None = None
    provisional: bool = False
    answered: asyncio.Future[int] | None = None
    bye_done: asyncio.Future[int] | None = None
    bye_status: int | None = None
    ended_by_softswitch: bool = False
    caller_stream: Stream | None = None
    invite_sent: int = 0


@dataclass
class Callee:
    index: int
    call_id: str
    to_tag: str
    source: tuple[str, int]
    ok: bytes = b""
    cseq: int = 0
    acked: bool = False
    bye: bool = False
    stream: Stream | None = None
    resends: int = 0


class Generator:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, args: argparse.Namespace, ports: dict[str, Any]
    ) -> None:
        self.loop = loop
        self.args = args
        self.ports = ports
        self.sut = (HOST, ports["softswitch"])
        self.K = args.gen_sockets
        self.streams: list[Stream | None] = []
        self.slots: list[list[Stream]] = [[] for _ in range(SLOTS)]
        self.hist = [0] * HIST_N
        self.late = [0] * LATE_N
        self.sending = False
        self.misdelivered = 0
        self.rx_bad = 0
        self.rx_errors = 0
        self.rx_no_ts = 0
        self.negative_transit = 0
        # per 100 ms of wall clock (time.time_ns // 1e8): [packets, max transit ns] of
        # packets slower than SLOW_TRANSIT_NS, and the largest send lateness above it
        self.slow: dict[int, list[int]] = {}
        self.slow_sends: dict[int, int] = {}
        self.sip_errors: list[str] = []
        self.calls: dict[str, Call] = {}
        self.by_index: dict[int, Call] = {}
        self.callees: dict[str, Callee] = {}
        self.uas_invites = 0
        self.uas_byes = 0
        self.uas_unmatched = 0
        self.uac_unexpected: list[str] = []
        self.invite_retrans = 0
        self.sockets: list[socket.socket] = []
        self.caller_socks: list[socket.socket] = []
        self.callee_socks: list[socket.socket] = []
        self.uac = self._udp(ports["uac"])
        self.uas = self._udp(ports["uas"])
        loop.add_reader(self.uac.fileno(), self._sip_readable, self.uac, self._uac_message)
        loop.add_reader(self.uas.fileno(), self._sip_readable, self.uas, self._uas_message)
        self.poll = args.rx == "poll"
        self.readers: list[Callable[[], None]] = []
        self._pacer: asyncio.TimerHandle | None = None
        for socks, key, parity in (
            (self.caller_socks, "caller_rtp", 1),
            (self.callee_socks, "callee_rtp", 0),
        ):
            for k in range(self.K):
                s = self._udp(ports[key][k], big=True)
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                socks.append(s)
                drain = self._rtp_reader(s, k, parity)
                self.readers.append(drain)
                if not self.poll:
                    loop.add_reader(s.fileno(), drain)
        self.rtp_inodes = {
            os.fstat(s.fileno()).st_ino for s in self.caller_socks + self.callee_socks
        }

    def _udp(self, port: int, big: bool = False) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if big:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                s.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        s.bind((HOST, port))
        s.setblocking(False)
        self.sockets.append(s)
        return s

    def close(self) -> None:
        self.halt()
        for s in self.sockets:
            try:
                self.loop.remove_reader(s.fileno())
            except (ValueError, OSError):
                pass
            s.close()
        self.sockets.clear()

    # ---- RTP receive (the hot path) ----------------------------------------------

    def _rtp_reader(self, sock: socket.socket, k: int, parity: int) -> Callable[[], None]:
        """Drain one socket: recvmsg_into with the kernel's receive timestamp."""
        recvmsg_into = sock.recvmsg_into
        buf = bytearray(2048)
        bufs = [buf]
        streams = self.streams
        unpack = RX.unpack_from
        unts = TIMESPEC.unpack
        clock = time.time_ns
        hist = self.hist
        K = self.K
        last = HIST_N - 1
        slow_ns = SLOW_TRANSIT_NS
        slow = self.slow

        def drain() -> None:
            for _ in range(4000):  # bounded: the pacer and other sockets get their turn
                try:
                    n, anc, _flags, _addr = recvmsg_into(bufs, 64)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    self.rx_errors += 1
                    continue
                if anc:
                    sec, nsec = unts(anc[0][2])
                    now = sec * 1_000_000_000 + nsec
                else:  # no kernel timestamp (should not happen): our own clock
                    now = clock()
                    self.rx_no_ts += 1
                if n != PKT_LEN:
                    self.rx_bad += 1
                    continue
                sid, seq, sent = unpack(buf, 12)
                if sid >= len(streams) or (sid & 1) != parity or (sid >> 1) % K != k:
                    self.misdelivered += 1
                    continue
                st = streams[sid]
                if st is None:
                    self.misdelivered += 1
                    continue
                transit = now - sent
                lt = st.lt
                st.lt = transit
                j = st.j
                if lt != -1:
                    d = transit - lt
                    if d < 0:
                        d = -d
                    j += (d - j) / 16.0
                    st.j = j
                idx = seq - st.wstart
                if idx < 0:
                    continue
                seen = st.seen
                if idx < len(seen):
                    if seen[idx]:
                        st.dup += 1
                        continue
                    seen[idx] = 1
                st.recv_w += 1
                if seq < st.maxseq:
                    st.reorder += 1
                else:
                    st.maxseq = seq
                st.jsum += j
                st.jn += 1
                if j > st.jmax:
                    st.jmax = j
                if transit < 0:
                    self.negative_transit += 1
                    transit = 0
                h = transit // HIST_BUCKET_NS
                hist[h if h < last else last] += 1
                if transit > slow_ns:
                    b = now // 100_000_000
                    e = slow.get(b)
                    if e is None:
                        slow[b] = [1, transit]
                    else:
                        e[0] += 1
                        if transit > e[1]:
                            e[1] = transit

        return drain

    # ---- RTP send: the pacer -----------------------------------------------------

    def add_stream(self, st: Stream, slot: int) -> None:
        while len(self.streams) <= st.sid:
            self.streams.append(None)
        self.streams[st.sid] = st
        self.slots[slot % SLOTS].append(st)

    def reset_streams(self) -> None:
        self.streams[:] = []
        for s in self.slots:
            s.clear()

    def start_sending(self) -> None:
        """Start the pacer: every 1 ms slot of the 20 ms grid it sends the slot's
        packets and (in poll mode) drains every RTP socket."""
        self.sending = True
        now = time.monotonic_ns()
        self.t0 = now - now % PERIOD_NS + PERIOD_NS
        self.tick = 0
        self.slot = 0
        self.next_due = self.t0
        if self._pacer is None:
            self._schedule()

    def stop_sending(self) -> None:
        """Stop sending; in poll mode the pacer keeps draining until halt()."""
        self.sending = False

    def halt(self) -> None:
        self.sending = False
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None

    def _schedule(self) -> None:
        delay = (self.next_due - time.monotonic_ns()) / 1e9
        self._pacer = self.loop.call_later(max(0.0, delay), self._pace)

    def _pace(self) -> None:
        self._pacer = None
        mono = time.monotonic_ns
        if not self.sending:
            if self.poll:  # keep draining (late packets) until halt()
                for drain in self.readers:
                    drain()
                self.next_due = mono() + SLOT_NS
                self._schedule()
            return
        clock = time.time_ns
        pack = TX.pack_into
        late_hist = self.late
        last = LATE_N - 1
        now = mono()
        due = self.next_due
        while due <= now + 200_000:  # send every slot that is due (absolute grid)
            late = now - due
            if late > 0:
                b = late // LATE_BUCKET_NS
                late_hist[b if b < last else last] += 1
                if late > SLOW_TRANSIT_NS:
                    b = clock() // 100_000_000
                    if late > self.slow_sends.get(b, 0):
                        self.slow_sends[b] = late
            else:
                late_hist[0] += 1
            for st in self.slots[self.slot]:
                seq = st.seq
                buf = st.buf
                pack(buf, 2, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, st.ssrc, st.sid, seq, clock())
                try:
                    st.sendto(buf, st.dest)
                except OSError:
                    st.send_err += 1
                else:
                    if seq >= st.wstart:
                        st.sent_w += 1
                st.seq = seq + 1
            self.slot += 1
            if self.slot == SLOTS:
                self.slot = 0
                self.tick += 1
            due = self.t0 + self.tick * PERIOD_NS + self.slot * SLOT_NS
            now = mono()
        if self.poll:
            for drain in self.readers:
                drain()
        self.next_due = due
        self._schedule()

    def drain(self) -> None:
        """Discard whatever is queued on the RTP sockets (between phases)."""
        for s in self.caller_socks + self.callee_socks:
            while True:
                try:
                    s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue

    # ---- measuring a window ------------------------------------------------------

    async def measure(
        self,
        kind: str,
        seconds: float,
        sut_pid: int | None,
        sut_inodes: Callable[[], set[int]] | None,
    ) -> PhaseStats:
        cap = int(seconds * 50) + 200
        live = [st for st in self.streams if st is not None]
        # What blocks the loop for a while (reading /proc/net/udp and softswitch's fd
        # table, a full collection) happens before the window, and the pacer then gets
        # a second to catch up: a stall here would be a burst inside the window.
        table0 = udp_table()
        ss_inodes = sut_inodes() if sut_inodes else set()
        snmp0 = udp_snmp()
        gc.collect()
        gc.disable()  # no collector pauses in the generator while it measures
        await asyncio.sleep(1.0)
        self.hist[:] = [0] * HIST_N
        self.late[:] = [0] * LATE_N
        mis0, bad0 = self.misdelivered, self.rx_bad
        self.slow.clear()
        self.slow_sends.clear()
        ts0, neg0 = self.rx_no_ts, self.negative_transit
        psi0 = psi_cpu_some_us()
        steal0 = steal_ticks()
        w0 = time.time_ns()
        g0 = cpu_ticks(os.getpid(), tree=False)
        s0 = cpu_ticks(sut_pid) if sut_pid else 0
        for st in live:
            st.begin_window(cap)
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        self.stop_sending()
        wall = time.monotonic() - t0
        g1 = cpu_ticks(os.getpid(), tree=False)
        s1 = cpu_ticks(sut_pid) if sut_pid else 0
        psi1 = psi_cpu_some_us()
        steal1 = steal_ticks()
        ps = PhaseStats(kind=kind, streams=len(live), window_s=round(wall, 3))
        if sut_pid:
            ps.softswitch_cpu_pct = round(100.0 * (s1 - s0) / CLK_TCK / wall, 1)
            ps.softswitch_rss_mib = round(status_kib(sut_pid, "VmRSS") / 1024, 1)
            ps.softswitch_hwm_mib = round(status_kib(sut_pid, "VmHWM") / 1024, 1)
        ps.gen_cpu_pct = round(100.0 * (g1 - g0) / CLK_TCK / wall, 1)
        if psi0 is not None and psi1 is not None:
            ps.cpu_pressure_pct = round((psi1 - psi0) / 1e4 / wall, 2)
        ps.steal_pct = {
            f"cpu{c}": round(100.0 * (v - steal0.get(c, v)) / CLK_TCK / wall, 2)
            for c, v in steal1.items()
        }
        await asyncio.sleep(self.args.drain_seconds)  # late packets still count
        self.halt()
        gc.enable()
        ps.rx_without_timestamp = self.rx_no_ts - ts0
        ps.negative_transit = self.negative_transit - neg0
        ps.slow_packets = sum(e[0] for e in self.slow.values())
        bins = sorted(self.slow)
        ps.slow_episodes = len(bins)
        if len(bins) >= 3:
            gaps = sorted(b - a for a, b in zip(bins, bins[1:], strict=False))
            ps.slow_episode_gap_s = round(gaps[len(gaps) // 2] / 10, 1)
        base = w0 // 100_000_000
        for b in sorted(set(bins) | set(self.slow_sends))[:60]:
            e = self.slow.get(b, [0, 0])
            ps.slow_timeline.append(
                {
                    "t_s": round((b - base) / 10, 1),
                    "slow_packets": e[0],
                    "max_transit_ms": round(e[1] / 1e6, 1),
                    "gen_send_late_ms": round(self.slow_sends.get(b, 0) / 1e6, 1),
                }
            )
        ps.gen_late_episodes = len(self.slow_sends)
        table1 = udp_table()
        snmp1 = udp_snmp()
        drops0 = {inode: d for _, inode, _, d in table0}
        for _, inode, _, d in table1:
            delta = d - drops0.get(inode, 0)
            if inode in self.rtp_inodes:
                ps.gen_drops += delta
            elif inode in ss_inodes:
                ps.softswitch_drops += delta
                ps.softswitch_sockets += 1
        ps.udp_snmp_delta = {
            k: snmp1[k] - snmp0.get(k, 0)
            for k in (
                "InDatagrams",
                "OutDatagrams",
                "InErrors",
                "RcvbufErrors",
                "SndbufErrors",
                "NoPorts",
            )
            if k in snmp1
        }
        per_j: list[float] = []
        per_peak: list[float] = []
        worst = 0.0
        for st in live:
            ps.sent += st.sent_w
            ps.received += st.recv_w
            ps.send_errors += st.send_err
            ps.reordered += st.reorder
            ps.duplicates += st.dup
            lost = st.sent_w - st.recv_w
            if lost > 0:
                ps.streams_with_loss += 1
                if st.sent_w:
                    worst = max(worst, 100.0 * lost / st.sent_w)
            if st.jn:
                per_j.append(st.jsum / st.jn / 1e6)
                per_peak.append(st.jmax / 1e6)
        ps.lost = ps.sent - ps.received
        ps.loss_pct = round(100.0 * ps.lost / ps.sent, 4) if ps.sent else 100.0
        ps.worst_stream_loss_pct = round(worst, 2)
        ps.misdelivered = self.misdelivered - mis0
        ps.bad_packets = self.rx_bad - bad0
        if per_j:
            ps.jitter_mean_ms = round(sum(per_j) / len(per_j), 3)
            ps.jitter_p50_ms = round(percentile(per_j, 50), 3)
            ps.jitter_p99_ms = round(percentile(per_j, 99), 3)
            ps.jitter_max_ms = round(max(per_j), 3)
            ps.jitter_peak_p99_ms = round(percentile(per_peak, 99), 3)
        ps.transit_p50_ms = round(hist_percentile(self.hist, 50, HIST_BUCKET_NS), 3)
        ps.transit_p99_ms = round(hist_percentile(self.hist, 99, HIST_BUCKET_NS), 3)
        ps.transit_p999_ms = round(hist_percentile(self.hist, 99.9, HIST_BUCKET_NS), 3)
        ps.transit_max_ms = round(hist_max(self.hist, HIST_BUCKET_NS), 3)
        ps.send_late_p99_ms = round(hist_percentile(self.late, 99, LATE_BUCKET_NS), 2)
        ps.send_late_max_ms = round(hist_max(self.late, LATE_BUCKET_NS), 2)
        return ps

    # ---- baseline: the two ends talk directly --------------------------------------

    async def baseline(self, n: int) -> PhaseStats:
        self.reset_streams()
        self.drain()
        for i in range(n):
            k = i % self.K
            a = Stream(2 * i, self.caller_socks[k], (HOST, self.ports["callee_rtp"][k]))
            b = Stream(2 * i + 1, self.callee_socks[k], (HOST, self.ports["caller_rtp"][k]))
            self.add_stream(a, i)
            self.add_stream(b, i + SLOTS // 2)
        self.start_sending()
        await asyncio.sleep(self.args.settle_seconds)
        ps = await self.measure("baseline", self.args.media_seconds, None, None)
        self.reset_streams()
        return ps

    # ---- SIP plumbing ------------------------------------------------------------

    def _sip_readable(
        self, sock: socket.socket, handler: Callable[[Sip, tuple[str, int]], None]
    ) -> None:
        for _ in range(256):
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if len(data) < 16:  # keep-alive CRLFs
                continue
            msg = parse_sip(data)
            if msg is None:
                self._sip_error(f"unparseable datagram from {source}: {data[:80]!r}")
                continue
            try:
                handler(msg, source[:2])
            except Exception as exc:  # a bug here must not stop the loop
                self._sip_error(f"{type(exc).__name__}: {exc} handling {msg.first!r}")

    def _sip_error(self, text: str) -> None:
        if len(self.sip_errors) < 50:
            self.sip_errors.append(text)

    def _send_sip(self, sock: socket.socket, data: bytes, dest: tuple[str, int]) -> None:
        if not on_loopback(dest[0]):
            self._sip_error(f"refused to send SIP to {dest}")
            return
        try:
            sock.sendto(data, dest)
        except OSError as exc:
            self._sip_error(f"sendto {dest}: {exc}")

    @staticmethod
    def _response(
        req: Sip, status: int, reason: str, to_tag: str | None, extra: list[str], body: bytes = b""
    ) -> bytes:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        lines += [f"Record-Route: {v}" for v in req.all("record-route")]
        lines.append(f"From: {req.get('from')}")
        to = req.get("to") or ""
        if to_tag and tag_of(to) is None:
            to = f"{to};tag={to_tag}"
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.get('call-id')}")
        lines.append(f"CSeq: {req.get('cseq')}")
        lines += extra
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    # ---- the caller (UAC) --------------------------------------------------------

    def _via(self) -> str:
        return f"SIP/2.0/UDP {HOST}:{self.ports['uac']};branch=z9hG4bK{new_id()};rport"

    def _from(self, call: Call) -> str:
        return f"<sip:{caller_number(call.index)}@{HOST}:{self.ports['uac']}>;tag={call.from_tag}"

    def _request(self, call: Call, method: str, cseq: int) -> bytes:
        lines = [
            f"{method} {call.remote_target} SIP/2.0",
            f"Via: {self._via()}",
            "Max-Forwards: 70",
        ]
        lines += [f"Route: {r}" for r in call.routes]
        lines += [
            f"From: {self._from(call)}",
            f"To: {call.to_header}",
            f"Call-ID: {call.call_id}",
            f"CSeq: {cseq} {method}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def place_call(self, i: int) -> Call:
        k = i % self.K
        call = Call(index=i, call_id=f"bench-{new_id()}@{HOST}", from_tag=new_id(), caller_sock=k)
        call.answered = self.loop.create_future()
        self.calls[call.call_id] = call
        self.by_index[i] = call
        body = sdp_body(self.ports["caller_rtp"][k], i)
        sut = f"{HOST}:{self.ports['softswitch']}"
        call.invite = (
            f"INVITE sip:{NUMBER}@{sut} SIP/2.0\r\n"
            f"Via: {self._via()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{caller_number(i)}@{HOST}:{self.ports['uac']}>;tag={call.from_tag}\r\n"
            f"To: <sip:{NUMBER}@{sut}>\r\n"
            f"Call-ID: {call.call_id}\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:bench@{HOST}:{self.ports['uac']}>\r\n"
            "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self._send_sip(self.uac, call.invite, self.sut)
        call.invite_sent = 1
        deadline = self.loop.time() + self.args.setup_timeout
        interval = 0.5
        while not call.answered.done():
            left = deadline - self.loop.time()
            if left <= 0:
                call.status = call.status or 408
                call.answered.set_result(408)
                break
            try:
                await asyncio.wait_for(asyncio.shield(call.answered), min(interval, left))
            except TimeoutError:
                if not call.provisional:  # RFC 3261 timer A: resend until any response
                    self._send_sip(self.uac, call.invite, self.sut)
                    call.invite_sent += 1
                    self.invite_retrans += 1
                    interval = min(interval * 2, 4.0)
        return call

    def _uac_message(self, msg: Sip, source: tuple[str, int]) -> None:
        if not msg.is_response:
            self._uac_request(msg, source)
            return
        call = self.calls.get(msg.get("call-id") or "")
        if call is None:
            self._sip_error(f"response for an unknown call: {msg.first}")
            return
        _, method = msg.cseq
        status = msg.status
        if method == "INVITE":
            if status < 200:
                call.provisional = True
                return
            if call.ack is not None:  # a retransmitted final response
                self._send_sip(self.uac, call.ack, self.sut)
                return
            call.status = status
            call.to_header = msg.get("to") or ""
            if 200 <= status < 300:
                contact = msg.get("contact")
                call.remote_target = uri_of(contact) if contact else f"sip:{HOST}"
                call.routes = list(reversed(msg.all("record-route")))
                call.ack = self._request(call, "ACK", 1)
                self._send_sip(self.uac, call.ack, self.sut)
                media = sdp_audio(msg.body)
                if media is None:
                    self._sip_error(f"200 OK without usable SDP for {call.call_id}")
                else:
                    k = call.caller_sock
                    st = Stream(2 * call.index, self.caller_socks[k], media)
                    call.caller_stream = st
                    self.add_stream(st, call.index)
            else:
                # ACK for a failure final response (same branch as the INVITE)
                via = re.search(r"^Via: (.*)$", call.invite.decode(), re.M)
                call.ack = (
                    f"ACK sip:{NUMBER}@{HOST}:{self.ports['softswitch']} SIP/2.0\r\n"
                    f"Via: {via.group(1) if via else self._via()}\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: {self._from(call)}\r\n"
                    f"To: {call.to_header}\r\n"
                    f"Call-ID: {call.call_id}\r\n"
                    "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                self._send_sip(self.uac, call.ack, self.sut)
            if call.answered is not None and not call.answered.done():
                call.answered.set_result(status)
        elif method == "BYE":
            if status >= 200 and call.bye_done is not None and not call.bye_done.done():
                call.bye_status = status
                call.bye_done.set_result(status)

    def _uac_request(self, msg: Sip, source: tuple[str, int]) -> None:
        method = msg.method
        if method == "ACK":
            return
        call = self.calls.get(msg.get("call-id") or "")
        if method == "BYE" and call is not None:
            if call.bye_done is None:  # softswitch hung up on us: note it
                call.ended_by_softswitch = True
                if len(self.uac_unexpected) < 20:
                    self.uac_unexpected.append(f"BYE from softswitch for call {call.index}")
        elif len(self.uac_unexpected) < 20:
            self.uac_unexpected.append(f"{method} from softswitch")
        self._send_sip(self.uac, self._response(msg, 200, "OK", None, []), source)

    async def hang_up(self, call: Call) -> int:
        call.bye_done = self.loop.create_future()
        if call.ended_by_softswitch:
            call.bye_done.set_result(0)
            return 0
        bye = self._request(call, "BYE", 2)
        self._send_sip(self.uac, bye, self.sut)
        interval = 0.5
        deadline = self.loop.time() + self.args.setup_timeout
        while not call.bye_done.done():
            left = deadline - self.loop.time()
            if left <= 0:
                call.bye_status = 408
                call.bye_done.set_result(408)
                break
            try:
                await asyncio.wait_for(asyncio.shield(call.bye_done), min(interval, left))
            except TimeoutError:
                self._send_sip(self.uac, bye, self.sut)
                interval = min(interval * 2, 4.0)
        return call.bye_status or 0

    # ---- R1, the callee (UAS) ------------------------------------------------------

    def _uas_message(self, msg: Sip, source: tuple[str, int]) -> None:
        if msg.is_response:
            return  # we send no requests from the UAS
        method = msg.method
        call_id = msg.get("call-id") or ""
        callee = self.callees.get(call_id)
        if method == "INVITE":
            if callee is not None:  # retransmission, or a re-INVITE
                if msg.cseq[0] == callee.cseq:
                    self._send_sip(self.uas, callee.ok, source)
                else:
                    self._send_sip(self.uas, self._uas_ok(msg, callee), source)
                return
            self.uas_invites += 1
            m = re.search(r"sip:\+?(\d+)@", msg.get("from") or "")
            index = int(m.group(1)[-4:]) if m and m.group(1).startswith("1212555") else -1
            if index < 0 or index not in self.by_index:
                self.uas_unmatched += 1
                self._sip_error(f"UAS: INVITE whose From names no bench call: {msg.get('from')}")
                self._send_sip(
                    self.uas, self._response(msg, 404, "Not Found", new_id(), []), source
                )
                return
            callee = Callee(
                index=index, call_id=call_id, to_tag=new_id(), source=source, cseq=msg.cseq[0]
            )
            self.callees[call_id] = callee
            self._send_sip(self.uas, self._response(msg, 100, "Trying", None, []), source)
            callee.ok = self._uas_ok(msg, callee)
            self._send_sip(self.uas, callee.ok, source)
            media = sdp_audio(msg.body)
            if media is None:
                self._sip_error(f"UAS: INVITE without usable SDP ({call_id})")
            else:
                k = index % self.K
                callee.stream = Stream(2 * index + 1, self.callee_socks[k], media)
            self.loop.call_later(0.5, self._resend_ok, callee, 0.5)
        elif method == "ACK":
            if callee is not None and not callee.acked:
                callee.acked = True
                if callee.stream is not None:
                    self.add_stream(callee.stream, callee.index + SLOTS // 2)
        elif method == "BYE":
            if callee is not None:
                if not callee.bye:
                    self.uas_byes += 1
                callee.bye = True
                self._send_sip(self.uas, self._response(msg, 200, "OK", None, []), source)
            else:
                self._send_sip(
                    self.uas, self._response(msg, 481, "Call Does Not Exist", None, []), source
                )
        elif method == "CANCEL":
            self._send_sip(self.uas, self._response(msg, 200, "OK", None, []), source)
        else:
            self._send_sip(self.uas, self._response(msg, 200, "OK", None, []), source)

    def _uas_ok(self, msg: Sip, callee: Callee) -> bytes:
        body = sdp_body(self.ports["callee_rtp"][callee.index % self.K], callee.index)
        return self._response(
            msg,
            200,
            "OK",
            callee.to_tag,
            [
                f"Contact: <sip:r1@{HOST}:{self.ports['uas']}>",
                "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS",
                "Content-Type: application/sdp",
            ],
            body,
        )

    def _resend_ok(self, callee: Callee, interval: float) -> None:
        if callee.acked or callee.bye or callee.resends >= 7:
            return
        callee.resends += 1
        self._send_sip(self.uas, callee.ok, callee.source)
        nxt = min(interval * 2, 4.0)
        self.loop.call_later(nxt, self._resend_ok, callee, nxt)


# --------------------------------------------------------------------------
# softswitch


def write_config(workdir: Path, uas_port: int) -> Path:
    """conf/lab.yaml with R1 on the bench's UAS, every call relayed, records in
    workdir and no API (no token: softswitch does not start it)."""
    text = LAB_CONF.read_text()

    def sub(pattern: str, repl: str, what: str, count: int = 1) -> None:
        nonlocal text
        new, n = re.subn(pattern, repl, text, flags=re.M)
        if n < count:
            raise RuntimeError(f"cannot adapt {LAB_CONF}: {what} not found")
        text = new

    block = r"(?:[ \t]+.*\n|[ \t]*#.*\n)*"
    sub(
        r"^media:[ \t]*\n" + block,
        "media:\n  mode: relay\n  host: 127.0.0.1\n"
        f'  ports: "{MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}"\n  rtp_timeout: 60\n  ringback: local\n',
        "the media: section",
    )
    sub(r"@127\.0\.0\.1:5071\b", f"@127.0.0.1:{uas_port}", "R1's uri (127.0.0.1:5071)")
    records = (workdir / "calls.sqlite3").as_posix()
    sub(r"^records:[ \t]*\n" + block, f'records:\n  path: "{records}"\n', "the records: section")
    if re.search(r"^api:", text, flags=re.M):
        sub(r"^api:[ \t]*\n" + block, "api:\n  host: 127.0.0.1\n", "the api: section")
    if re.search(r"^webhooks:", text, flags=re.M):
        sub(r"^webhooks:.*\n" + r"(?:[ \t-]+.*\n)*", "webhooks: []\n", "the webhooks: section")
    if re.search(r"(?<![0-9])5071(?![0-9])", text):
        raise RuntimeError("the config copy still mentions port 5071")
    conf = workdir / "softswitch-media.yaml"
    conf.write_text(text)
    return conf


class Softswitch:
    def __init__(
        self, args: argparse.Namespace, workdir: Path, port: int, conf: Path, pin: bool
    ) -> None:
        self.log_path = workdir / "softswitch.log"
        self.cmd = [
            sys.executable,
            "-m",
            "softswitch",
            "run",
            "-c",
            str(conf),
            "--listen",
            f"udp:{HOST}:{port}",
        ]
        self.port = port
        self.proc: subprocess.Popen[Any] | None = None
        self.pin = pin
        self.log_offset = 0

    def start(self) -> None:
        log = self.log_path.open("wb")
        pin = self.pin

        def pre() -> None:
            if pin:
                os.sched_setaffinity(0, {0})

        try:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=pre,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"softswitch exited with status {self.proc.returncode}; its log ends:\n"
                    + self.log_tail()
                )
            if udp_port_bound(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(
            "softswitch did not bind its SIP port within 30 s; log:\n" + self.log_tail()
        )

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def new_log_problems(self) -> tuple[int, list[str]]:
        """ERROR/WARNING/CRITICAL/Traceback lines logged since the last call."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self.log_offset)
                data = fh.read()
                self.log_offset = fh.tell()
        except OSError:
            return 0, []
        lines = [
            line
            for line in data.decode(errors="replace").splitlines()
            if re.search(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback|Exception", line)
        ]
        return len(lines), lines[:8]

    def media_inodes(self) -> set[int]:
        """Inodes of softswitch's sockets bound in the media port range."""
        if self.proc is None:
            return set()
        mine = socket_inodes(self.proc.pid)
        return {
            inode
            for port, inode, _, _ in udp_table()
            if inode in mine and MEDIA_PORTS[0] <= port <= MEDIA_PORTS[1]
        }


# --------------------------------------------------------------------------
# one step


@dataclass
class StepResult:
    calls: int
    baseline: PhaseStats | None = None
    relay: PhaseStats | None = None
    set_up: int = 0
    setup_failures: dict[str, int] = field(default_factory=dict)
    setup_seconds: float = 0.0
    invite_retransmissions: int = 0
    uas_invites: int = 0
    uas_acks: int = 0
    uas_byes: int = 0
    bye_ok: int = 0
    bye_failures: dict[str, int] = field(default_factory=dict)
    ended_by_softswitch: int = 0
    softswitch_media_sockets_after: int | None = None
    softswitch_rss_after_mib: float | None = None  # VmRSS once all calls ended
    added_jitter_p99_ms: float | None = None
    added_transit_p99_ms: float | None = None
    log_problems: int = 0
    log_sample: list[str] = field(default_factory=list)
    sip_errors: list[str] = field(default_factory=list)
    generator_limited: bool = False
    saturated: bool = False  # softswitch at >= SATURATED_CPU % in the window
    attempt: int = 1
    other_load_pct: float = 0.0  # max CPU pressure (PSI some) of the two windows
    contended: bool = False
    earlier_attempts: list[dict[str, Any]] = field(default_factory=list)
    passed: bool = False
    notes: list[str] = field(default_factory=list)


async def run_step(gen: Generator, sut: Softswitch, n: int, args: argparse.Namespace) -> StepResult:
    res = StepResult(calls=n)
    loop = asyncio.get_running_loop()
    # 1. baseline
    res.baseline = await gen.baseline(n)
    gen.drain()
    await asyncio.sleep(0.5)
    # 2. set up n calls through softswitch, media on each as soon as it is answered
    gen.reset_streams()
    gen.calls.clear()
    gen.by_index.clear()
    gen.callees.clear()
    gen.uas_invites = gen.uas_byes = gen.uas_unmatched = gen.invite_retrans = 0
    gen.uac_unexpected.clear()
    gen.sip_errors.clear()
    sut.new_log_problems()
    gen.start_sending()
    t0 = loop.time()
    tasks: list[asyncio.Task[Call]] = []
    for i in range(n):
        due = t0 + i / args.setup_rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(gen.place_call(i)))
    calls = await asyncio.gather(*tasks)
    res.setup_seconds = round(loop.time() - t0, 2)
    for c in calls:
        if c.status is not None and 200 <= c.status < 300:
            res.set_up += 1
        else:
            key = str(c.status)
            res.setup_failures[key] = res.setup_failures.get(key, 0) + 1
    res.invite_retransmissions = gen.invite_retrans
    # the callees' streams start on ACK: give the last ACKs a moment
    await asyncio.sleep(args.settle_seconds)
    res.uas_acks = sum(1 for c in gen.callees.values() if c.acked)
    # 3. measure
    res.relay = await gen.measure(
        "relay", args.media_seconds, sut.proc.pid if sut.proc else None, sut.media_inodes
    )
    # 4. hang up
    up = [c for c in calls if c.status is not None and 200 <= c.status < 300]
    t1 = loop.time()
    byes: list[asyncio.Task[int]] = []
    for j, c in enumerate(up):
        due = t1 + j / args.bye_rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        byes.append(loop.create_task(gen.hang_up(c)))
    statuses = await asyncio.gather(*byes)
    for c, s in zip(up, statuses, strict=True):
        if c.ended_by_softswitch:
            res.ended_by_softswitch += 1
        elif 200 <= s < 300:
            res.bye_ok += 1
        else:
            res.bye_failures[str(s)] = res.bye_failures.get(str(s), 0) + 1
    # the UAS's BYEs follow the caller's 200 closely; wait for the stragglers
    deadline = loop.time() + 10
    while gen.uas_byes < gen.uas_invites and loop.time() < deadline:
        await asyncio.sleep(0.2)
    res.uas_invites, res.uas_byes = gen.uas_invites, gen.uas_byes
    deadline = loop.time() + 15
    left = len(sut.media_inodes())
    while left and loop.time() < deadline:
        await asyncio.sleep(0.5)
        left = len(sut.media_inodes())
    res.softswitch_media_sockets_after = left
    if sut.proc is not None:
        res.softswitch_rss_after_mib = round(status_kib(sut.proc.pid, "VmRSS") / 1024, 1)
    await asyncio.sleep(0.5)
    gen.drain()
    res.log_problems, res.log_sample = sut.new_log_problems()
    res.sip_errors = gen.sip_errors[:10] + gen.uac_unexpected[:10]
    # verdict
    b, r = res.baseline, res.relay
    res.added_jitter_p99_ms = round(r.jitter_p99_ms - b.jitter_p99_ms, 3)
    res.added_transit_p99_ms = round(r.transit_p99_ms - b.transit_p99_ms, 3)
    for ps in (b, r):
        if ps.gen_cpu_pct >= GEN_CPU_LIMIT or ps.send_late_p99_ms > GEN_LATE_LIMIT_MS:
            res.generator_limited = True
            res.notes.append(
                f"generator near its limit in the {ps.kind} phase (CPU {ps.gen_cpu_pct:.0f} %, "
                f"send lateness p99 {ps.send_late_p99_ms} ms)"
            )
    if b.loss_pct >= PASS_LOSS_PCT:
        res.notes.append(f"the baseline itself lost {b.loss_pct:.3f} %: generator/kernel limit")
        res.generator_limited = True
    ok_calls = (
        res.set_up == n and res.bye_ok == n and res.uas_byes == res.uas_invites == res.uas_acks == n
    )
    if res.uas_acks < res.uas_invites:
        res.notes.append(f"R1 got the ACK for only {res.uas_acks}/{res.uas_invites} calls")
    if res.set_up < n:
        res.notes.append(f"only {res.set_up}/{n} calls set up: {res.setup_failures}")
    if res.bye_ok < res.set_up:
        res.notes.append(
            f"BYE answered 2xx for {res.bye_ok}/{res.set_up} calls ({res.bye_failures}, "
            f"{res.ended_by_softswitch} ended by softswitch first)"
        )
    if res.uas_byes != res.uas_invites:
        res.notes.append(f"R1 got {res.uas_byes} BYEs for {res.uas_invites} INVITEs")
    if left:
        res.notes.append(f"softswitch still held {left} RTP/RTCP sockets 15 s after the BYEs")
    if r.softswitch_cpu_pct is not None and r.softswitch_cpu_pct >= SATURATED_CPU:
        res.saturated = True
        res.notes.append(
            f"softswitch saturated ({r.softswitch_cpu_pct:.0f} % CPU): packets queue in its "
            f"sockets, transit p99 {r.transit_p99_ms:.1f} ms"
        )
    if r.misdelivered:
        res.notes.append(f"{r.misdelivered} packets arrived at the wrong call's socket")
    if r.lost and (r.softswitch_drops or r.gen_drops):
        res.notes.append(
            f"of {r.lost} lost: {r.softswitch_drops} dropped in softswitch's socket receive "
            f"buffers, {r.gen_drops} in the generator's"
        )
    res.passed = (
        ok_calls
        and r.loss_pct < PASS_LOSS_PCT
        and res.added_jitter_p99_ms < PASS_ADDED_JITTER_MS
        and r.misdelivered == 0
        and not left
    )
    return res


# --------------------------------------------------------------------------
# output


def table(steps: list[StepResult]) -> str:
    out = [
        "| calls | set up / ended | pkts sent | received | loss % "
        "| jitter mean / p99 ms (relay) | jitter p99 ms (baseline) | added jitter p99 ms "
        "| transit p99 / max ms (relay) | softswitch CPU % | VmRSS / VmHWM MiB "
        "| gen CPU % (relay / base) | other load % | pass |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in steps:
        b, r = s.baseline, s.relay
        if b is None or r is None:
            out.append(f"| {s.calls} | — | | | | | | | | | | | | NO |")
            continue
        verdict = "yes" if s.passed else "NO"
        flags = [
            f
            for f, on in (
                ("saturated", s.saturated),
                ("gen-limited", s.generator_limited),
                ("contended", s.contended),
            )
            if on
        ]
        if flags:
            verdict += f" ({', '.join(flags)})"
        out.append(
            f"| {s.calls} | {s.set_up} / {min(s.bye_ok, s.uas_byes)} | {r.sent} | {r.received} "
            f"| {r.loss_pct:.3f} | {r.jitter_mean_ms:.2f} / {r.jitter_p99_ms:.2f} "
            f"| {b.jitter_p99_ms:.2f} | {s.added_jitter_p99_ms:+.2f} "
            f"| {r.transit_p99_ms:.2f} / {r.transit_max_ms:.1f} "
            f"| {r.softswitch_cpu_pct:.0f} "
            f"| {r.softswitch_rss_mib:.0f} / {r.softswitch_hwm_mib:.0f} "
            f"| {r.gen_cpu_pct:.0f} / {b.gen_cpu_pct:.0f} | {s.other_load_pct:.1f} | {verdict} |"
        )
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--calls",
        default=DEFAULT_CALLS,
        help=f"comma-separated concurrent-call steps (default {DEFAULT_CALLS})",
    )
    p.add_argument(
        "--media-seconds",
        type=float,
        default=10.0,
        help="measured media window per step, after all calls are up (default 10)",
    )
    p.add_argument(
        "--port-base",
        type=int,
        default=15060,
        help="softswitch SIP on BASE, caller SIP BASE+1, R1's UAS BASE+11, "
        "generator RTP sockets BASE+300.. (default 15060)",
    )
    p.add_argument(
        "--gen-sockets",
        type=int,
        default=8,
        help="RTP sockets per side in the generator; calls share them round-robin (default 8)",
    )
    p.add_argument(
        "--rx",
        choices=["poll", "event"],
        default="poll",
        help="poll: the 1 ms pacer drains every RTP socket after sending (default); "
        "event: loop.add_reader wakes the generator for every readable socket",
    )
    p.add_argument("--setup-rate", type=float, default=50.0, help="INVITEs per second (default 50)")
    p.add_argument("--bye-rate", type=float, default=100.0, help="BYEs per second (default 100)")
    p.add_argument(
        "--setup-timeout",
        type=float,
        default=15.0,
        help="a call not answered (or a BYE not answered) in this many s fails",
    )
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=2.0,
        help="media before the window starts (default 2)",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=1.0,
        help="wait for late packets after the window (default 1)",
    )
    p.add_argument("--pause-seconds", type=float, default=2.0, help="pause between steps")
    p.add_argument(
        "--max-pressure",
        type=float,
        default=5.0,
        help="a failed step whose windows saw more CPU pressure (PSI cpu some, %%: other "
        "processes competing) is repeated (default 5)",
    )
    p.add_argument("--retries", type=int, default=2, help="repeats of a contended step (default 2)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each step wait up to this long for the CPUs to be quiet",
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="run every step, even after two failing steps in a row (repeat knee steps)",
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin softswitch / generator to CPUs"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=45.0,
        help="the whole run is abandoned after this long (default 45)",
    )
    p.add_argument("--json", type=Path, default=RESULTS / "media-latest.json")
    a = p.parse_args(argv)
    try:
        a.calls = [int(x) for x in str(a.calls).split(",") if x.strip()]
    except ValueError:
        p.error("--calls takes integers, e.g. 100,200,300")
    if not a.calls or min(a.calls) <= 0 or max(a.calls) > 2400:
        p.error("--calls needs integers in 1..2400 (softswitch's media range holds 2500 calls)")
    if not 0 < a.media_seconds <= 300:
        p.error("--media-seconds must be in (0, 300]")
    if not 1 <= a.gen_sockets <= 512:
        p.error("--gen-sockets must be in 1..512")
    a.ports = port_plan(a.port_base, a.gen_sockets)
    every = [
        a.ports["softswitch"],
        a.ports["uac"],
        a.ports["uas"],
        a.ports["probe"],
        *a.ports["caller_rtp"],
        *a.ports["callee_rtp"],
    ]
    if min(every) < 1024 or max(every) > 65535 or any(forbidden(x) for x in every):
        p.error(
            f"--port-base {a.port_base} puts bench ports on 5060, 5071-5074, 8088, "
            "20000-29999, 30000-39999 or outside 1024..65535; choose another"
        )
    return a


def port_plan(base: int, k: int) -> dict[str, Any]:
    rtp = base + 300
    return {
        "softswitch": base,
        "uac": base + 1,
        "probe": base + 2,
        "uas": base + 11,
        "caller_rtp": [rtp + 2 * i for i in range(k)],
        "callee_rtp": [rtp + 2 * k + 2 * i for i in range(k)],
    }


async def wait_quiet(limit: float) -> float | None:
    """Wait (up to `limit` s) until the CPUs are quiet: PSI cpu "some" under 1 % over
    2 s.  None if it was quiet at once, else the pressure seen last."""
    first = True
    deadline = time.monotonic() + limit
    last = 0.0
    while True:
        p0, t0 = psi_cpu_some_us(), time.monotonic()
        if p0 is None:
            return None
        await asyncio.sleep(2.0)
        p1 = psi_cpu_some_us() or p0
        last = (p1 - p0) / 1e4 / (time.monotonic() - t0)
        if last < 1.0:
            return None if first else last
        first = False
        if time.monotonic() > deadline:
            return last


async def ladder(
    args: argparse.Namespace, sut: Softswitch, steps: list[StepResult], state: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    gen = Generator(loop, args, args.ports)
    try:
        fails = 0
        for n in args.calls:
            print(f"\n### {n} concurrent calls", flush=True)
            earlier: list[dict[str, Any]] = []
            for attempt in range(1, args.retries + 2):
                quiet = await wait_quiet(args.quiet_wait)
                if quiet is not None:
                    print(f"  (waited for other processes: CPU pressure {quiet:.1f} %)", flush=True)
                res = await run_step(gen, sut, n, args)
                res.attempt = attempt
                res.earlier_attempts = earlier
                res.other_load_pct = max(
                    ps.cpu_pressure_pct or 0.0 for ps in (res.baseline, res.relay) if ps
                )
                res.contended = res.other_load_pct > args.max_pressure
                # contention can only make softswitch look worse: a contended pass
                # stands, a contended failure is measured again
                if not res.contended or res.passed or attempt > args.retries:
                    break
                print(
                    f"  (attempt {attempt}: other processes competed for the CPUs, pressure "
                    f"{res.other_load_pct:.1f} % > {args.max_pressure:g} %: repeating; "
                    f"this attempt {'passed' if res.passed else 'failed'})",
                    flush=True,
                )
                earlier.append(asdict(res))
            if res.contended:
                res.notes.append(
                    f"other processes competed for the CPUs (pressure {res.other_load_pct:.1f} %)"
                    + (
                        "; a pass under contention stands"
                        if res.passed
                        else f" in all {res.attempt} attempts"
                    )
                )
            steps.append(res)
            b, r = res.baseline, res.relay
            assert b is not None and r is not None
            print(
                f"  baseline: {b.sent} sent, loss {b.loss_pct:.3f} %, jitter p99 "
                f"{b.jitter_p99_ms:.3f} ms, transit p99 {b.transit_p99_ms:.3f} ms, "
                f"gen CPU {b.gen_cpu_pct:.0f} %, send late p99 {b.send_late_p99_ms} ms\n"
                f"  relay:    {res.set_up}/{n} set up in {res.setup_seconds} s, "
                f"{r.sent} sent, {r.lost} lost ({r.loss_pct:.3f} %; softswitch socket drops "
                f"{r.softswitch_drops}, generator drops {r.gen_drops}), jitter p99 "
                f"{r.jitter_p99_ms:.3f} ms (added {res.added_jitter_p99_ms:+.3f}), transit p99 "
                f"{r.transit_p99_ms:.3f} ms, softswitch CPU {r.softswitch_cpu_pct:.0f} % "
                f"RSS {r.softswitch_rss_mib} MiB HWM {r.softswitch_hwm_mib} MiB, gen CPU "
                f"{r.gen_cpu_pct:.0f} %, send late p99 {r.send_late_p99_ms} ms, CPU pressure "
                f"{r.cpu_pressure_pct} %, steal {r.steal_pct}\n"
                f"            jitter peak p99 {r.jitter_peak_p99_ms:.3f} ms (base "
                f"{b.jitter_peak_p99_ms:.3f}), transit p99.9/max {r.transit_p999_ms:.2f}/"
                f"{r.transit_max_ms:.2f} ms (base {b.transit_p999_ms:.2f}/{b.transit_max_ms:.2f}), "
                f"{r.slow_packets} packets > {SLOW_TRANSIT_NS // 1_000_000} ms in "
                f"{r.slow_episodes} episodes of 100 ms (median gap {r.slow_episode_gap_s} s)\n"
                f"  teardown: BYE 2xx {res.bye_ok}/{res.set_up}, R1 BYE/INVITE "
                f"{res.uas_byes}/{res.uas_invites}, softswitch RTP sockets left "
                f"{res.softswitch_media_sockets_after}, VmRSS after {res.softswitch_rss_after_mib} "
                f"MiB; log problems {res.log_problems}\n"
                f"  => {'PASS' if res.passed else 'FAIL'}"
                + (f" — {'; '.join(res.notes)}" if res.notes else ""),
                flush=True,
            )
            for line in res.log_sample[:3]:
                print(f"  log: {line[:300]}", flush=True)
            for line in res.sip_errors[:3]:
                print(f"  sip: {line[:300]}", flush=True)
            if sut.proc is None or sut.proc.poll() is not None:
                state["stopped"] = f"softswitch exited ({sut.proc.returncode if sut.proc else '?'})"
                break
            fails = 0 if res.passed else fails + 1
            if fails >= STOP_AFTER_FAILS and not args.keep_going:
                state["stopped"] = f"{STOP_AFTER_FAILS} failing steps in a row"
                break
            await asyncio.sleep(args.pause_seconds)
        else:
            state["stopped"] = "all steps done"
    finally:
        gen.close()


def run_async(coro_factory: Callable[[], Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_factory()), "asyncio"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro_factory()), f"uvloop {getattr(uvloop, '__version__', '?')}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    try:
        import uvloop  # noqa: F401

        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    ports = args.ports
    busy = [
        p
        for p in [
            ports["softswitch"],
            ports["uac"],
            ports["uas"],
            ports["probe"],
            *ports["caller_rtp"],
            *ports["callee_rtp"],
        ]
        if not port_free(p)
    ]
    if busy:
        print(
            f"UDP port(s) {busy} on {HOST} are in use; choose another --port-base", file=sys.stderr
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    log_copy = args.json.with_suffix(".softswitch.log")  # next to the JSON
    workdir = Path(tempfile.mkdtemp(prefix="bench-media-"))
    steps: list[StepResult] = []
    state: dict[str, Any] = {"stopped": "", "error": None}
    sut: Softswitch | None = None
    probe = None

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    pin_note = (
        "softswitch pinned to CPU 0, generator to CPU 1 (sched_setaffinity)"
        if pin
        else "no CPU pinning"
    )
    try:
        conf = write_config(workdir, ports["uas"])
        sut = Softswitch(args, workdir, ports["softswitch"], conf, pin)
        print(
            f"# Media benchmark ({started})\n\n"
            f"softswitch: `{' '.join(sut.cmd)}` (config: conf/lab.yaml with R1 -> "
            f"{HOST}:{ports['uas']}, media mode relay on ports {MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}, "
            f"records in {workdir}, no API); log {sut.log_path}\n"
            f"generator: one process, {loop_name}, {args.gen_sockets} RTP sockets per side, "
            f"receive mode {args.rx} with kernel receive timestamps (SO_TIMESTAMPNS); "
            f"{pin_note}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}\n"
            f"each step: baseline (direct) then relay; {args.media_seconds:g} s measured window; "
            f"INVITEs at {args.setup_rate:g}/s; 172-byte packets, 50/s per direction per call; "
            f"pass = all calls set up and ended, loss < {PASS_LOSS_PCT} % and added jitter p99 "
            f"< {PASS_ADDED_JITTER_MS} ms",
            flush=True,
        )
        sut.start()
        probe = options_probe(ports["softswitch"], ports["probe"], 5)
        print(
            f"softswitch pid {sut.proc.pid if sut.proc else '?'}; OPTIONS probe: "
            f"{probe or 'no answer'}",
            flush=True,
        )

        async def bounded() -> None:
            await asyncio.wait_for(ladder(args, sut, steps, state), args.max_minutes * 60)

        _, loop_name = run_async(bounded)
    except KeyboardInterrupt:
        state["error"] = "interrupted"
        print("\ninterrupted; stopping softswitch", file=sys.stderr)
    except TimeoutError:
        state["error"] = f"run exceeded --max-minutes {args.max_minutes}"
    except Exception as exc:
        state["error"] = f"{type(exc).__name__}: {exc}"
        print(f"\nERROR: {state['error']}", file=sys.stderr)
    finally:
        stop(sut.proc if sut else None, "softswitch")
        signal.signal(signal.SIGTERM, previous)
        if sut is not None:
            try:
                shutil.copyfile(sut.log_path, log_copy)
            except OSError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)

    passing = [s.calls for s in steps if s.passed]
    ceiling = max(passing) if passing else None
    # the largest N such that every step up to it passed (differs from the ceiling
    # when results near the knee are not monotonic)
    clean = None
    for st in sorted(steps, key=lambda x: x.calls):
        if not st.passed:
            break
        clean = st.calls
    failed_below = sorted(
        {x.calls for x in steps if not x.passed and ceiling and x.calls < ceiling}
    )
    first_fail = next((s for s in steps if not s.passed), None)
    print("\n# Results\n")
    if steps:
        print(table(steps) + "\n")
    if ceiling is None:
        summary = "no step passed"
    else:
        at = next(s for s in steps if s.calls == ceiling)
        assert at.relay is not None
        summary = (
            f"ceiling: {ceiling} concurrent relayed G.711 calls (loss < {PASS_LOSS_PCT} %, "
            f"added jitter p99 < {PASS_ADDED_JITTER_MS} ms) at softswitch CPU "
            f"{at.relay.softswitch_cpu_pct:.0f} % of one core, RSS "
            f"{at.relay.softswitch_rss_mib} MiB"
        )
        if at.saturated:
            summary += f" (saturated: it passed with transit p99 {at.relay.transit_p99_ms:.1f} ms)"
    if first_fail is not None and first_fail.relay is not None:
        why = "; ".join(first_fail.notes) or (
            f"loss {first_fail.relay.loss_pct:.3f} %, added jitter "
            f"{first_fail.added_jitter_p99_ms:+.2f} ms"
        )
        summary += (
            f"; first failing step {first_fail.calls} calls "
            f"(softswitch CPU {first_fail.relay.softswitch_cpu_pct:.0f} %, generator CPU "
            f"{first_fail.relay.gen_cpu_pct:.0f} %): {why}"
        )
        if first_fail.generator_limited:
            summary += " — the generator, not softswitch, may be the limit there"
    if failed_below:
        summary += (
            f"; NOT monotonic: {', '.join(map(str, failed_below))} failed below the ceiling "
            f"(near the knee a step may pass or fail from run to run); every step up to "
            f"{clean if clean is not None else '—'} passed"
        )
    if state["stopped"]:
        summary += f"; stopped: {state['stopped']}"
    if state["error"]:
        summary += f"; ERROR: {state['error']}"
    print(f"Summary: {summary}. ({pin_note})")
    doc = {
        "started": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loop": loop_name,
            "pinning": pin_note,
        },
        "params": {
            "calls": args.calls,
            "media_seconds": args.media_seconds,
            "setup_rate": args.setup_rate,
            "bye_rate": args.bye_rate,
            "gen_sockets": args.gen_sockets,
            "rx_mode": args.rx,
            "ports": args.ports,
            "softswitch_media_ports": f"{MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}",
            "packet_bytes": PKT_LEN,
            "packets_per_second_per_direction": 50,
            "jitter": "RFC 3550 J in real time (ms): S = send time in the payload "
            "(time.time_ns), R = the kernel's receive timestamp (SO_TIMESTAMPNS, same "
            "clock); per stream: mean of J over the window; pass uses the p99 across "
            "streams minus the baseline's",
            "pass_loss_pct": PASS_LOSS_PCT,
            "pass_added_jitter_p99_ms": PASS_ADDED_JITTER_MS,
        },
        "softswitch": {
            "command": sut.cmd if sut else None,
            "options_probe": probe,
            "log": str(log_copy),
        },
        "steps": [asdict(s) for s in steps],
        "ceiling_calls": ceiling,
        "all_steps_pass_up_to_calls": clean,
        "stopped": state["stopped"],
        "error": state["error"],
        "summary": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"JSON: {args.json}")
    if state["error"] == "interrupted":
        return 130
    return 0 if state["error"] is None else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process the bench started has been stopped", file=sys.stderr)
        sys.exit(130)
