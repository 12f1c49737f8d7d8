"""The RTP edge: anchored streams on non-blocking UDP sockets, relayed in the loop.

Theory of operation
-------------------
Each anchored leg gets an RTP socket on an even port of the configured range and
an RTCP socket on the next odd one (RFC 3550 §11).  The sockets are plain
non-blocking sockets watched with ``loop.add_reader``: opening a stream is
synchronous (the call that needs it runs inside a SIP input and cannot await), and
the hot path — a packet in, the same packet out to the other leg's peer — is one
``recvfrom`` and one ``sendto`` with no per-packet objects beyond the bytes.

*Symmetric RTP.*  A peer behind NAT sends from an address its SDP does not name.
A stream sends to the address in the peer's SDP until a packet arrives, then
latches onto that packet's source for both sending and receiving; packets from any
other source are counted and dropped until the SDP changes (a re-INVITE), which
unlatches.  RTCP latches the same way on its own socket.

*Continuity.*  softswitch sends its own packets to a leg (a whisper, a dial
extension, ringback) with its own SSRC, sequence numbers and timestamps.  When the
leg is then bridged, the other side's packets are rewritten on the way to it so
that the peer sees one stream: same SSRC, sequence numbers carrying on by one and
timestamps carrying on by the time that passed (RFC 3550 §5.1), with the marker
bit on the first relayed packet.  Legs softswitch never sent to get the packets
unchanged.

*Timing.*  Players send frame *n* at ``start + n * 0.020`` in loop time (an
absolute grid: a late wake-up sends the frames that are due, it never drifts) with
timestamp ``first + n * 160``; telephone-events go out at their scheduled offsets.

*Timeout.*  One sweep a second compares each watched stream's packet count with
the last sweep's; a stream whose count has not moved for the RTP timeout calls
back once, and the call ends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence

from aiortc.rtp import RtpPacket

from .audio import FRAME_SAMPLES, frame_time
from .dtmf import DtmfReceiver, EventPacket
from .streams import DtmfCallback, MediaUnavailable, Remote, SilenceCallback

log = logging.getLogger("softswitch.media")

FRAME_SECONDS = 0.020
CLOCK_RATE = 8000
SWEEP_INTERVAL = 1.0
MAX_DATAGRAM = 2048
_HEADER = struct.Struct("!HIL")  # sequence number, timestamp, SSRC at offset 2 (RFC 3550 §5.1)
Address = tuple[str, int]


def _bind_pair(family: int, host: str, port: int) -> tuple[socket.socket, socket.socket] | None:
    """RTP on ``port`` and RTCP on ``port + 1``, or None if either is taken."""
    rtp = socket.socket(family, socket.SOCK_DGRAM)
    rtcp = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rtp.bind((host, port))
        rtcp.bind((host, port + 1))
    except OSError:
        rtp.close()
        rtcp.close()
        return None
    for sock in (rtp, rtcp):
        sock.setblocking(False)
    return rtp, rtcp


class _Sender:
    """The stream softswitch presents to one peer: SSRC, next sequence number and
    timestamp, and the loop time that timestamp belongs to."""

    __slots__ = ("ssrc", "seq", "ts", "ts_at", "used", "source_ssrc", "seq_offset", "ts_offset")

    def __init__(self, rng: random.Random) -> None:
        # Random initial values, RFC 3550 §5.1.
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.ts = rng.getrandbits(32)
        self.ts_at: float | None = None  # when self.ts was (or would have been) sent
        self.used = False  # softswitch sent its own packets: relayed ones are rewritten
        self.source_ssrc: int | None = None  # the relayed stream the offsets are for
        self.seq_offset = 0
        self.ts_offset = 0

    def timestamp_at(self, at: float) -> int:
        """The timestamp for a packet sent at loop time ``at``, on this stream's clock."""
        if self.ts_at is None:
            return self.ts
        frames = round((at - self.ts_at) / FRAME_SECONDS)
        return (self.ts + max(frames, 1) * FRAME_SAMPLES) & 0xFFFFFFFF

    def own(self, payload_type: int, payload: bytes, ts: int, at: float, marker: bool) -> bytes:
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts, self.ts_at = ts, at
        self.used = True
        self.source_ssrc = None  # relaying after this starts a new offset
        packet = RtpPacket(
            payload_type=payload_type,
            marker=int(marker),
            sequence_number=self.seq,
            timestamp=ts,
            ssrc=self.ssrc,
            payload=payload,
        )
        return packet.serialize()

    def rewrite(self, data: bytes, at: float) -> bytes:
        """A relayed packet carried on as part of softswitch's own stream."""
        if len(data) < 12:
            return data
        seq, ts, ssrc = _HEADER.unpack_from(data, 2)
        out = bytearray(data)
        if ssrc != self.source_ssrc:
            self.source_ssrc = ssrc
            self.seq_offset = (self.seq + 1 - seq) & 0xFFFF
            self.ts_offset = (self.timestamp_at(at) - ts) & 0xFFFFFFFF
            out[1] |= 0x80  # marker: a new talkspurt begins here
        self.seq = (seq + self.seq_offset) & 0xFFFF
        self.ts = (ts + self.ts_offset) & 0xFFFFFFFF
        self.ts_at = at
        _HEADER.pack_into(out, 2, self.seq, self.ts, self.ssrc)
        return bytes(out)


class RelayStream:
    """One anchored leg (see the module docstring); implements ``MediaStream``."""

    def __init__(
        self,
        engine: RelayEngine,
        rtp: socket.socket,
        rtcp: socket.socket,
        port: int,
    ) -> None:
        self.engine = engine
        self.loop = engine.loop
        self.rtp = rtp
        self.rtcp = rtcp
        self.port = port
        self._local = (engine.host, port)
        self.remote: Remote | None = None
        self.rtp_peer: Address | None = None  # where RTP goes: the SDP's, then latched
        self.rtcp_peer: Address | None = None
        self.rtp_latched = False
        self.rtcp_latched = False
        self.other: RelayStream | None = None  # where arriving packets are relayed
        self.sender = _Sender(engine.rng)
        self.dtmf = DtmfReceiver()
        self.on_dtmf: DtmfCallback | None = None
        self.on_silence: SilenceCallback | None = None
        self.received = 0
        self.sent = 0
        # Loss as RFC 3550 A.3 counts it: packets expected from the sequence numbers
        # seen (extended by wrap cycles) minus packets received, per source.
        self.source: bytes | None = None
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.source_received = 0
        self.lost_before = 0  # by earlier sources of this stream
        self.dropped = 0  # from a source other than the latched one, or unsendable
        self.timeout = 0.0
        self.seen = 0  # packet count at the last sweep
        self.quiet_since = 0.0
        self._player: asyncio.TimerHandle | None = None
        self._events: list[asyncio.TimerHandle] = []
        self.closed = False
        self.loop.add_reader(rtp.fileno(), self._rtp_readable)
        self.loop.add_reader(rtcp.fileno(), self._rtcp_readable)

    @property
    def local(self) -> tuple[str, int]:
        return self._local

    # ---- configuration -------------------------------------------------------------

    def set_remote(self, remote: Remote) -> None:
        self.remote = remote
        self.rtp_peer = (remote.host, remote.port) if remote.port else None
        self.rtcp_peer = (remote.host, remote.rtcp_port) if remote.port else None
        self.rtp_latched = self.rtcp_latched = False

    def relay_to(self, other: object) -> None:
        assert other is None or isinstance(other, RelayStream)
        self.other = other

    def listen(self, on_dtmf: DtmfCallback | None, on_silence: SilenceCallback | None) -> None:
        self.on_dtmf = on_dtmf
        self.on_silence = on_silence

    def watch(self, timeout: float) -> None:
        self.timeout = timeout
        self.seen = self.received
        self.quiet_since = self.loop.time()
        if timeout > 0:
            self.engine.watch(self)

    # ---- receiving -----------------------------------------------------------------

    def _rtp_readable(self) -> None:
        sock = self.rtp
        for _ in range(64):  # bounded: other streams get their turn
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                log.debug("RTP port %d: %s", self.port, exc)
                continue
            self._rtp(data, source[:2])

    def _rtp(self, data: bytes, source: Address) -> None:
        if source != self.rtp_peer:
            if self.rtp_latched:
                self.dropped += 1
                return
            self.rtp_peer = source
        self.rtp_latched = True
        self.received += 1
        if len(data) < 12 or data[0] >> 6 != 2:
            self.dropped += 1
            return
        self._count(data)
        remote = self.remote
        if (
            self.on_dtmf is not None
            and remote is not None
            and remote.event_payload_type is not None
            and data[1] & 0x7F == remote.event_payload_type
        ):
            self._event(data)
        other = self.other
        if other is not None and other.rtp_peer is not None:
            if other.sender.used:
                data = other.sender.rewrite(data, self.loop.time())
            other._send(other.rtp, data, other.rtp_peer)

    def _count(self, data: bytes) -> None:
        seq = data[2] << 8 | data[3]
        ssrc = data[8:12]
        if ssrc != self.source:
            self.lost_before += self.lost_now
            self.source, self.base_seq, self.max_seq = ssrc, seq, seq
            self.cycles = self.source_received = 0
        elif (seq - self.max_seq) & 0xFFFF < 0x8000:  # in order, maybe after a gap
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq
        self.source_received += 1

    @property
    def lost_now(self) -> int:
        if self.source is None:
            return 0
        expected = self.cycles + self.max_seq - self.base_seq + 1
        return max(0, expected - self.source_received)

    @property
    def lost(self) -> int:
        return self.lost_before + self.lost_now

    def _event(self, data: bytes) -> None:
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= offset + 4:  # header extension (RFC 3550 §5.3.1)
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        timestamp = int.from_bytes(data[4:8], "big")
        digit = self.dtmf.feed(timestamp, data[offset:], bool(data[1] & 0x80))
        if digit is not None and self.on_dtmf is not None:
            self.engine.deliver(self.on_dtmf, digit)

    def _rtcp_readable(self) -> None:
        sock = self.rtcp
        for _ in range(16):
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("RTCP port %d: %s", self.port + 1, exc)
                continue
            source = source[:2]
            if source != self.rtcp_peer:
                if self.rtcp_latched:
                    continue
                self.rtcp_peer = source
            self.rtcp_latched = True
            other = self.other
            if other is not None and other.rtcp_peer is not None:
                other._send(other.rtcp, data, other.rtcp_peer)

    def _send(self, sock: socket.socket, data: bytes, peer: Address) -> None:
        try:
            sock.sendto(data, peer)
            self.sent += 1
        except OSError:  # buffer full or peer gone: RTP is loss-tolerant, count it
            self.dropped += 1

    # ---- generating ----------------------------------------------------------------

    def play(self, frames: Sequence[bytes], at: float, repeat: bool = False) -> float:
        self.stop_playing()
        if not frames or self.remote is None:
            return at
        payload_type = self.remote.payload_type
        first = self.sender.timestamp_at(at)
        count = len(frames)

        def tick(n: int) -> None:
            now = self.loop.time()
            while n < count or repeat:
                due, ts = frame_time(at, n, first)
                if due > now + 0.001:
                    self._player = self.loop.call_at(due, tick, n)
                    return
                if self.rtp_peer is not None:
                    data = self.sender.own(payload_type, frames[n % count], ts, due, n == 0)
                    self._send(self.rtp, data, self.rtp_peer)
                n += 1
            self._player = None

        self._player = self.loop.call_at(at, tick, 0)
        return at + (count - 1) * FRAME_SECONDS

    def stop_playing(self) -> None:
        if self._player is not None:
            self._player.cancel()
            self._player = None

    def send_events(self, packets: Sequence[EventPacket], at: float) -> None:
        remote = self.remote
        if remote is None or remote.event_payload_type is None:
            return
        payload_type = remote.event_payload_type
        base = self.sender.timestamp_at(at)

        def send(packet: EventPacket) -> None:
            if self.rtp_peer is not None:
                ts = (base + packet.timestamp_offset) & 0xFFFFFFFF
                data = self.sender.own(
                    payload_type, packet.payload, ts, at + packet.at, packet.marker
                )
                self._send(self.rtp, data, self.rtp_peer)

        self._events = [self.loop.call_at(at + p.at, send, p) for p in packets]

    # ---- the end -------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_playing()
        for handle in self._events:
            handle.cancel()
        self._events.clear()
        self.on_dtmf = self.on_silence = None
        self.other = None
        for sock in (self.rtp, self.rtcp):
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.engine.release(self)


class RelayEngine:
    """Opens streams on a port range of one address; implements ``MediaEngine``.

    ``after_event`` runs after every callback into a call (a digit, a timeout), so
    the SIP edge sends what the call queued, as it does after a SIP input.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        ports: tuple[int, int],
        after_event: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self.loop = loop
        self._host = host
        self.family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        low, high = ports
        self.free: deque[int] = deque(range(low, high, 2))  # even ports with room for RTCP
        self.rng = rng or random.Random()
        self.after_event = after_event
        self.streams: set[RelayStream] = set()
        self.watched: set[RelayStream] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self.relayed_closed = 0  # packets sent by streams already closed
        self.lost_closed = 0

    @property
    def host(self) -> str:
        return self._host

    def open(self) -> RelayStream:
        """The next free pair, least recently used first; a port another program
        holds is skipped and kept in the pool."""
        for _ in range(len(self.free)):
            port = self.free.popleft()
            pair = _bind_pair(self.family, self._host, port)
            if pair is None:
                self.free.append(port)
                continue
            stream = RelayStream(self, pair[0], pair[1], port)
            self.streams.add(stream)
            return stream
        raise MediaUnavailable(f"no free RTP port pair on {self._host} in the media port range")

    def release(self, stream: RelayStream) -> None:
        self.relayed_closed += stream.sent
        self.lost_closed += stream.lost
        self.streams.discard(stream)
        self.watched.discard(stream)
        self.free.append(stream.port)

    def deliver(self, callback: Callable[[str, float], None], digit: str) -> None:
        try:
            callback(digit, self.loop.time())
        finally:
            self.after_event()

    # ---- RTP timeout ---------------------------------------------------------------

    def watch(self, stream: RelayStream) -> None:
        self.watched.add(stream)
        if self._sweep is None:
            self._sweep = self.loop.call_later(SWEEP_INTERVAL, self._sweep_streams)

    def _sweep_streams(self) -> None:
        now = self.loop.time()
        silent: list[RelayStream] = []
        for stream in self.watched:
            sending = stream.remote is not None and stream.remote.sending
            if stream.received != stream.seen or not sending:
                stream.seen = stream.received
                stream.quiet_since = now
            elif now - stream.quiet_since >= stream.timeout:
                silent.append(stream)
        for stream in silent:
            self.watched.discard(stream)
            callback = stream.on_silence
            if callback is not None:
                try:
                    callback(now)
                finally:
                    self.after_event()
        self._sweep = (
            self.loop.call_later(SWEEP_INTERVAL, self._sweep_streams) if self.watched else None
        )

    def stats(self) -> dict[str, int]:
        """Live counts for SIGUSR1 and the metrics: streams (a port pair each), packets
        sent toward peers and packets lost on the way in, since start."""
        return {
            "rtp_streams": len(self.streams),
            "rtp_ports_active": 2 * len(self.streams),
            "rtp_packets_relayed": self.relayed_closed + sum(s.sent for s in self.streams),
            "rtp_packets_lost": self.lost_closed + sum(s.lost for s in self.streams),
        }

    def close(self) -> None:
        for stream in list(self.streams):
            stream.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
