"""A SIP user agent for lab tests that really listens to the media it gets.

SIPp's ``rtp_echo`` proves packets flow; it cannot tell a 1000 Hz whisper from
ringback or say when a telephone-event arrived.  This module plays both ends of a
lab call on loopback and records every RTP packet, so a test can check *what*
softswitch sent and *when*:

* :class:`MediaCallee` plays a receiving number (R4 on 127.0.0.1:5074 ...): it
  answers INVITE with 100, 180 and, ``answer_after`` seconds later, 200 OK with its
  own SDP (PCMU 0, telephone-event 101); it answers ACK, CANCEL, BYE and INFO, can
  hang up, send a tone or telephone-events, or echo the audio it gets.
* :class:`MediaCaller` plays the carrier trunk: it sends INVITE to softswitch for a
  tracking number, records the provisional responses and the answer, ACKs, and
  sends tones on an absolute 20 ms grid, RFC 4733 telephone-events, BYE and CANCEL.

SIP messages are built and parsed with the project's own core
(:mod:`softswitch.sip.message`, :mod:`softswitch.sip.dialog`); the media side
(G.711 μ-law, RTP, RFC 4733, Goertzel) is implemented here from the RFCs, on
purpose independently of ``softswitch.media``, so that the tests check the
project against a second implementation and not against itself.

Both peers are async context managers: everything they start (two UDP sockets on
127.0.0.1, background tasks) is stopped on exit.  Every wait takes a timeout and
raises :class:`TimeoutError` saying what did not happen.  Retransmission is
deliberately minimal: an INVITE (and any other request this module sends) is
resent every 0.5 s until a response arrives, and a 200 to INVITE every 0.5 s until
the ACK arrives, at most :data:`MAX_RESENDS` times.

Times are the event loop's clock (``loop.time()``), the same for every peer in a
test, so ``callee.answered_at < caller.answered_at`` and "the tone started after
the last telephone-event" are meaningful comparisons.

The analysis helpers at the end (:func:`ulaw_decode`, :func:`goertzel`,
:func:`dominant`, :func:`tone_present`, :func:`telephone_events`,
:func:`audio_segments`, :func:`check_rtp_grid`) are pure functions over the
recorded :class:`RtpPacket` lists.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from softswitch.sip.dialog import Dialog
from softswitch.sip.errors import SipError
from softswitch.sip.message import Headers, Request, Response, parse_message
from softswitch.sip.uri import SipUri, parse_uri

__all__ = [
    "HOST", "SOFTSWITCH", "PT_PCMU", "PT_EVENT", "DTMF_DIGITS", "DEFAULT_CANDIDATES",
    "Addr", "Freq", "RtpPacket", "Sdp", "Info", "Provisional", "CalleeCall",
    "MediaCallee", "MediaCaller",
    "parse_rtp", "build_rtp", "parse_sdp", "build_sdp",
    "ulaw_decode", "ulaw_encode", "tone_samples", "goertzel", "tone_ratio", "rms",
    "dominant", "tone_present", "TelephoneEvent", "EventRecord", "telephone_event_records",
    "telephone_events", "AudioSegment", "audio_segments", "check_rtp_grid", "info_digits",
]

HOST = "127.0.0.1"
SOFTSWITCH = (HOST, 5060)
Addr = tuple[str, int]
Freq = float | tuple[float, ...]  # one frequency, or a dual tone such as (440, 480)

PT_PCMU = 0
PT_EVENT = 101
RATE = 8000
PTIME = 0.02  # seconds per audio packet
FRAME = 160  # samples (and timestamp units) per audio packet
DTMF_DIGITS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15

RESEND_INTERVAL = 0.5
MAX_RESENDS = 6

# Analysis thresholds.  A pure tone measured with tone_ratio() gives about 1.0, even
# after G.711 quantisation (its noise is some 35 dB down); a dual tone gives about
# 0.5 per component.  The neighbours of a 20 ms window's frequency leak far less:
# 440 Hz measured at 480 Hz gives about 0.05.
SILENCE_RMS = 64.0  # linear 16-bit units: about -54 dBov; quieter is silence
TONE_SHARE = 0.5  # a candidate's components together hold at least this share...
COMPONENT_SHARE = 0.1  # ...and each component at least this one

DEFAULT_CANDIDATES: tuple[Freq, ...] = (
    1000.0, 1500.0, (440.0, 480.0), (350.0, 440.0), 440.0, 480.0, 425.0, 400.0,
    697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0,
)


# ---------------------------------------------------------------- RTP


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet as received (or as built), with its arrival time."""

    arrival: float  # loop time
    source: Addr
    pt: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes, arrival: float = 0.0, source: Addr = ("", 0)) -> RtpPacket | None:
    """An RTP packet (RFC 3550 §5.1), or None for anything else (RTCP, garbage)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP multiplexed on the RTP port (RFC 5761 §4)
        return None
    count = data[0] & 0x0F
    offset = 12 + 4 * count
    if data[0] & 0x10:  # header extension
        if len(data) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if data[0] & 0x20:  # padding: the last octet counts it
        end -= data[-1]
    if offset > end:
        return None
    seq, timestamp, ssrc = struct.unpack_from("!HII", data, 2)
    return RtpPacket(
        arrival, source, data[1] & 0x7F, bool(data[1] & 0x80), seq, timestamp, ssrc,
        bytes(data[offset:end]),
    )


def build_rtp(pt: int, seq: int, timestamp: int, ssrc: int, payload: bytes,
              marker: bool = False) -> bytes:
    header = struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F), seq & 0xFFFF,
        timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF,
    )
    return header + payload


class _RtpStream:
    """One outgoing stream: SSRC, sequence numbers, and an 8 kHz clock tied to loop time."""

    def __init__(self, origin: float) -> None:
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts0 = random.getrandbits(32)
        self._t0 = origin

    def next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return seq

    def timestamp_at(self, when: float) -> int:
        return (self._ts0 + round((when - self._t0) * RATE)) & 0xFFFFFFFF


# ---------------------------------------------------------------- SDP


@dataclass(frozen=True, slots=True)
class Sdp:
    """What this module needs of an SDP body: the audio stream's address and formats."""

    address: str | None
    port: int | None
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str]  # payload type -> "PCMU/8000", "telephone-event/8000"
    fmtp: dict[int, str]
    direction: str  # sendrecv, sendonly, recvonly, inactive
    text: str

    @property
    def media(self) -> Addr | None:
        if self.address is None or not self.port:
            return None
        return (self.address, self.port)

    @property
    def event_pt(self) -> int | None:
        """The telephone-event payload type offered, if any."""
        for pt, value in self.rtpmap.items():
            if value.lower().startswith("telephone-event/") and pt in self.payload_types:
                return pt
        return None


def parse_sdp(body: bytes) -> Sdp:
    text = body.decode("utf-8", "replace")
    session_address: str | None = None
    media_address: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    rtpmap: dict[int, str] = {}
    fmtp: dict[int, str] = {}
    direction = "sendrecv"
    in_audio = False
    seen_audio = False
    for raw in text.split("\n"):
        line = raw.strip()
        kind, _, value = line.partition("=")
        if kind == "m":
            in_audio = value.startswith("audio ") and not seen_audio
            if in_audio:
                seen_audio = True
                parts = value.split()
                port = int(parts[1].split("/")[0]) if len(parts) > 1 else None
                pts = tuple(int(p) for p in parts[3:] if p.isdigit())
        elif kind == "c":
            parts = value.split()
            address = parts[2].split("/")[0] if len(parts) >= 3 else None
            if in_audio:
                media_address = address
            elif not seen_audio:
                session_address = address
        elif kind == "a" and (in_audio or not seen_audio):
            name, _, rest = value.partition(":")
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                direction = name
            elif name in ("rtpmap", "fmtp") and in_audio:
                pt_text, _, spec = rest.partition(" ")
                if pt_text.isdigit():
                    (rtpmap if name == "rtpmap" else fmtp)[int(pt_text)] = spec.strip()
    return Sdp(media_address or session_address, port, pts, rtpmap, fmtp, direction, text)


def build_sdp(port: int, *, host: str = HOST, telephone_event: bool = True,
              session_id: int | None = None) -> bytes:
    sid = session_id if session_id is not None else random.randrange(1, 2**31)
    formats = "0 101" if telephone_event else "0"
    lines = [
        "v=0",
        f"o=- {sid} {sid} IN IP4 {host}",
        "s=media_peer",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {formats}",
        "a=rtpmap:0 PCMU/8000",
    ]
    if telephone_event:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Info:
    """An INFO request received (answered 200)."""

    arrival: float
    call_id: str
    content_type: str | None
    body: bytes
    request: Request = field(repr=False)


@dataclass(frozen=True, slots=True)
class Provisional:
    """A 1xx the caller got for its INVITE."""

    arrival: float
    status: int
    reason: str
    has_sdp: bool
    response: Response = field(repr=False)


@dataclass(eq=False)
class CalleeCall:
    """One INVITE the callee received, and what became of it."""

    invite: Request
    source: Addr
    received_at: float
    to_tag: str
    dialog: Dialog | None
    remote_sdp: Sdp | None
    answered_at: float | None = None  # when 200 OK was first sent
    acked_at: float | None = None
    cancelled_at: float | None = None
    rejected_at: float | None = None
    bye_received_at: float | None = None
    bye_sent_at: float | None = None
    ended_at: float | None = None
    final_status: int | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id


def _has_sdp(message: Request | Response) -> bool:
    return message.content_type == "application/sdp" and bool(message.body.strip())


def _hop(uri: SipUri) -> Addr:
    return (uri.host_address, uri.port or 5060)


# ---------------------------------------------------------------- the peers


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, Addr], None]) -> None:
        self._handler = handler

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._handler(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable on loopback: the peer is gone, nothing to do


@dataclass(eq=False)
class _ClientTx:
    request: Request
    dest: Addr
    responses: list[Response] = field(default_factory=list)
    final: Response | None = None


class _MediaPeer:
    """What caller and callee share: two sockets, SIP dispatch, RTP record and send."""

    name = "peer"

    def __init__(self, *, host: str, sip_port: int, rtp_port: int, user: str,
                 offer_telephone_event: bool, echo: bool) -> None:
        self.host = host
        self.sip_port = sip_port
        self.rtp_port = rtp_port
        self.user = user
        self.offer_telephone_event = offer_telephone_event
        self.echo = echo
        self.rtp: list[RtpPacket] = []
        self.rtp_sent = 0
        self.requests: list[tuple[float, Request]] = []  # every request, retransmissions too
        self.responses: list[tuple[float, Response]] = []  # every response received
        self.infos: list[Info] = []
        self.byes: list[float] = []  # arrival of each (new) BYE
        self.errors: list[str] = []  # unparseable datagrams, failures in background tasks
        self.remote_rtp: Addr | None = None  # where tone, events and echo go
        self.remote_event_pt: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sip: asyncio.DatagramTransport | None = None
        self._media: asyncio.DatagramTransport | None = None
        self._stream: _RtpStream | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._client_txs: dict[tuple[str, str], _ClientTx] = {}
        self._answered: dict[tuple[str, str], tuple[Response, Addr]] = {}
        self._echo_offsets: dict[int, int] = {}

    # -- lifetime

    async def __aenter__(self) -> _MediaPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            sip, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._on_sip), local_addr=(self.host, self.sip_port)
            )
            self._sip = sip
            media, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._on_rtp), local_addr=(self.host, self.rtp_port)
            )
            self._media = media
        except BaseException:
            await self.close()
            raise
        self.sip_port = int(sip.get_extra_info("sockname")[1])
        self.rtp_port = int(media.get_extra_info("sockname")[1])
        self._stream = _RtpStream(loop.time())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for transport in (self._sip, self._media):
            if transport is not None:
                transport.close()
        self._sip = self._media = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self.name} is not started (use 'async with')")
        return self._loop

    def now(self) -> float:
        return self.loop.time()

    @property
    def sip_addr(self) -> Addr:
        return (self.host, self.sip_port)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; cancelled on close, failures land in ``errors``."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(f"background task failed: {task.exception()!r}")
            self._notify()

    # -- waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float,
                       what: str = "condition") -> None:
        """Wait until ``predicate()`` holds (checked on every SIP or RTP arrival)."""
        deadline = self.now() + timeout
        while not predicate():
            left = deadline - self.now()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {what} did not happen within {timeout:g} s")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), min(left, 0.05))
            except TimeoutError:
                pass

    async def wait_rtp(self, count: int = 1, timeout: float = 2.0, pt: int | None = None) -> None:
        """Wait until ``count`` packets (of payload type ``pt``, any if None) were received."""
        def enough() -> bool:
            return sum(1 for p in self.rtp if pt is None or p.pt == pt) >= count
        await self.wait_for(enough, timeout, f"{count} RTP packets (pt {pt})")

    async def wait_quiet(self, gap: float = 0.1, timeout: float = 2.0) -> None:
        """Wait until no RTP packet has arrived for ``gap`` seconds."""
        deadline = self.now() + timeout
        while True:
            last = self.rtp[-1].arrival if self.rtp else -math.inf
            left = last + gap - self.now()
            if left <= 0:
                return
            if self.now() + left > deadline:
                raise TimeoutError(f"{self.name}: RTP did not stop within {timeout:g} s")
            await asyncio.sleep(left)

    def audio(self, pt: int = PT_PCMU) -> list[RtpPacket]:
        return [p for p in self.rtp if p.pt == pt]

    # -- SIP plumbing

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.host}:{self.sip_port};branch=z9hG4bK-mp-{uuid.uuid4().hex};rport"

    def _contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.sip_port}>"

    def _sdp(self) -> bytes:
        return build_sdp(self.rtp_port, host=self.host,
                         telephone_event=self.offer_telephone_event)

    def send_sip(self, message: Request | Response, dest: Addr) -> None:
        if self._sip is None:
            raise RuntimeError(f"{self.name} is closed")
        self._sip.sendto(bytes(message), dest)

    def _respond(self, request: Request, response: Response, dest: Addr) -> None:
        """Send a response and remember it, to resend it if the request is retransmitted."""
        self._answered[(request.branch or "", request.method)] = (response, dest)
        self.send_sip(response, dest)

    def _start_tx(self, request: Request, dest: Addr) -> _ClientTx:
        tx = _ClientTx(request, dest)
        self._client_txs[(request.branch or "", request.method)] = tx
        self.send_sip(request, dest)
        self.spawn(self._resend_request(tx))
        return tx

    async def _resend_request(self, tx: _ClientTx) -> None:
        for _ in range(MAX_RESENDS):
            await asyncio.sleep(RESEND_INTERVAL)
            if tx.responses or self._sip is None:
                return
            self.send_sip(tx.request, tx.dest)

    async def _request(self, request: Request, dest: Addr, timeout: float) -> Response:
        tx = self._start_tx(request, dest)
        await self.wait_for(lambda: tx.final is not None, timeout,
                            f"a final response to {request.method}")
        assert tx.final is not None
        return tx.final

    def _on_sip(self, data: bytes, source: Addr) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            message = parse_message(data)
        except SipError as exc:
            self.errors.append(f"unparseable SIP from {source}: {exc}")
            return
        try:
            if isinstance(message, Request):
                self._on_request(message, source)
            else:
                self._on_response(message, source)
        except Exception as exc:  # a bug here must fail the test, not vanish in the loop
            self.errors.append(f"handling {message!r} failed: {exc!r}")
        self._notify()

    def _on_response(self, response: Response, source: Addr) -> None:
        now = self.now()
        self.responses.append((now, response))
        tx = self._client_txs.get((response.top_via.branch or "", response.cseq.method))
        if tx is None:
            return
        tx.responses.append(response)
        if response.status >= 200 and tx.final is None:
            tx.final = response
        if response.cseq.method == "INVITE":
            self._on_invite_response(tx, response, now)

    def _on_invite_response(self, tx: _ClientTx, response: Response, now: float) -> None:
        pass

    def _on_request(self, request: Request, source: Addr) -> None:
        now = self.now()
        self.requests.append((now, request))
        if request.method != "ACK":
            answered = self._answered.get((request.branch or "", request.method))
            if answered is not None:  # a retransmission: answer it again, nothing more
                self.send_sip(*answered)
                return
        method = request.method
        if method == "INVITE":
            self._on_invite(request, source, now)
        elif method == "ACK":
            self._on_ack(request, now)
        elif method == "CANCEL":
            self._on_cancel(request, source, now)
        elif method == "BYE":
            if self._on_bye(request, now):
                self.byes.append(now)
                self._respond(request, request.response(200), source)
            else:
                self._respond(request, request.response(481), source)
        elif method == "INFO":
            self.infos.append(Info(now, request.call_id, request.content_type, request.body,
                                   request))
            self._respond(request, request.response(200), source)
        elif method == "UPDATE" and _has_sdp(request):
            self._take_sdp(parse_sdp(request.body))
            self._respond(request, self._answer_with_sdp(request), source)
        elif method in ("OPTIONS", "UPDATE", "NOTIFY"):
            self._respond(request, request.response(200), source)
        else:
            self._respond(request, request.response(501), source)

    def _answer_with_sdp(self, request: Request, to_tag: str | None = None) -> Response:
        return request.response(
            200, to_tag=to_tag, body=self._sdp(),
            extra=[("Contact", self._contact()), ("Content-Type", "application/sdp")],
        )

    def _on_invite(self, request: Request, source: Addr, now: float) -> None:
        self._respond(request, request.response(481), source)

    def _on_ack(self, request: Request, now: float) -> None:
        pass

    def _on_cancel(self, request: Request, source: Addr, now: float) -> None:
        self._respond(request, request.response(481), source)

    def _on_bye(self, request: Request, now: float) -> bool:
        """Whether the BYE belongs to a call of ours (which it then ends)."""
        return False

    def _take_sdp(self, sdp: Sdp) -> None:
        if sdp.media is not None:
            self.remote_rtp = sdp.media
        self.remote_event_pt = sdp.event_pt

    async def _send_bye(self, dialog: Dialog, timeout: float) -> Response:
        bye = dialog.create_request("BYE", self._via(), None)
        return await self._request(bye, _hop(dialog.next_hop), timeout)

    def _current_dialog(self) -> Dialog | None:
        return None

    async def send_info(self, body: bytes | str, content_type: str = "application/dtmf-relay",
                        timeout: float = 2.0) -> Response:
        """Send an INFO in the current call's dialog; its final response."""
        dialog = self._current_dialog()
        if dialog is None:
            raise AssertionError(f"{self.name}: no call in progress to send INFO in")
        request = dialog.create_request("INFO", self._via(), None)
        request.headers.set("content-type", content_type)
        request.body = body.encode() if isinstance(body, str) else body
        return await self._request(request, _hop(dialog.next_hop), timeout)

    # -- RTP

    def _on_rtp(self, data: bytes, source: Addr) -> None:
        packet = parse_rtp(data, self.now(), source)
        if packet is None:
            return
        self.rtp.append(packet)
        if self.echo and packet.pt == PT_PCMU:
            self._echo(packet)
        self._notify()

    def _echo(self, packet: RtpPacket) -> None:
        stream = self._stream
        dest = self.remote_rtp or packet.source
        if stream is None or self._media is None:
            return
        offset = self._echo_offsets.get(packet.ssrc)
        if offset is None:
            offset = (stream.timestamp_at(self.now()) - packet.timestamp) & 0xFFFFFFFF
            self._echo_offsets[packet.ssrc] = offset
        self._send_rtp(build_rtp(packet.pt, stream.next_seq(), packet.timestamp + offset,
                                 stream.ssrc, packet.payload, packet.marker), dest)

    def _send_rtp(self, data: bytes, dest: Addr) -> None:
        if self._media is None:
            raise RuntimeError(f"{self.name} is closed")
        self._media.sendto(data, dest)
        self.rtp_sent += 1

    def _media_dest(self, to: Addr | None) -> Addr:
        dest = to or self.remote_rtp
        if dest is None:
            raise RuntimeError(f"{self.name}: no remote RTP address yet (no SDP from the peer)")
        return dest

    async def _sleep_until(self, when: float) -> None:
        delay = when - self.now()
        if delay > 0:
            await asyncio.sleep(delay)

    async def send_tone(self, freq: Freq, seconds: float, *, start_at: float | None = None,
                        amplitude: float = 0.3, to: Addr | None = None) -> int:
        """Send ``seconds`` of a tone as PCMU, frame n at ``start_at + n * 0.02``.

        Timestamps go up by 160 a frame from the stream's clock at ``start_at``; the
        first frame has the marker bit.  ``freq`` may be a tuple for a dual tone.
        Returns the number of frames sent.
        """
        dest = self._media_dest(to)
        stream = self._stream
        assert stream is not None
        start = self.now() if start_at is None else start_at
        frames = max(0, round(seconds / PTIME))
        payload = ulaw_encode(tone_samples(freq, frames * FRAME, amplitude))
        first_ts = stream.timestamp_at(start)
        for n in range(frames):
            await self._sleep_until(start + n * PTIME)
            chunk = payload[n * FRAME:(n + 1) * FRAME]
            self._send_rtp(build_rtp(PT_PCMU, stream.next_seq(), first_ts + n * FRAME,
                                     stream.ssrc, chunk, marker=n == 0), dest)
        return frames

    def start_tone(self, freq: Freq, seconds: float, *, start_at: float | None = None,
                   amplitude: float = 0.3, to: Addr | None = None) -> asyncio.Task[Any]:
        """:meth:`send_tone` in the background (cancelled on close)."""
        return self.spawn(self.send_tone(freq, seconds, start_at=start_at,
                                         amplitude=amplitude, to=to))

    async def send_dtmf(self, digit: str, *, duration: float = 0.1,
                        start_at: float | None = None, volume: int = 10,
                        pt: int | None = None, to: Addr | None = None) -> int:
        """Send one RFC 4733 telephone-event for ``digit``, a packet every 20 ms.

        All packets carry the timestamp of the event's start, the first the marker
        bit; the duration grows by 160 a packet; the last packet (E bit set) is sent
        three times (RFC 4733 §2.5.1.4).  The payload type is the one the peer's SDP
        offered for telephone-event, else 101.  Returns the number of packets sent.
        """
        event = DTMF_DIGITS.index(digit.upper())
        dest = self._media_dest(to)
        stream = self._stream
        assert stream is not None
        payload_type = pt if pt is not None else (self.remote_event_pt or PT_EVENT)
        start = self.now() if start_at is None else start_at
        timestamp = stream.timestamp_at(start)
        steps = max(1, round(duration / PTIME))
        sent = 0
        for n in range(steps + 2):
            await self._sleep_until(start + n * PTIME)
            length = min(n + 1, steps) * FRAME
            end = n >= steps - 1
            body = struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F),
                               min(length, 0xFFFF))
            self._send_rtp(build_rtp(payload_type, stream.next_seq(), timestamp, stream.ssrc,
                                     body, marker=n == 0), dest)
            sent += 1
        return sent

    async def send_digits(self, digits: str, *, duration: float = 0.1, gap: float = 0.1,
                          start_at: float | None = None) -> None:
        """Several telephone-events, each ``duration`` long, ``gap`` apart."""
        start = self.now() if start_at is None else start_at
        step = round((duration + gap) / PTIME) * PTIME
        for i, digit in enumerate(digits):
            await self.send_dtmf(digit, duration=duration, start_at=start + i * step)


class MediaCallee(_MediaPeer):
    """A receiving number: answers INVITEs on ``host:port`` and records the media.

    ``answer_after``: seconds between 180 and 200 OK; None never answers (the call
    rings until CANCEL).  ``reject``: answer with this final status (e.g. 486)
    instead of 200 after ``answer_after``.  ``ring``: send 180 (else only 100).
    Several INVITEs may arrive (each one is a :class:`CalleeCall` in ``calls``); the
    remote RTP address is the one of the newest INVITE's SDP.
    """

    name = "callee"

    def __init__(self, port: int, *, host: str = HOST, rtp_port: int = 0,
                 answer_after: float | None = 0.0, reject: int | None = None,
                 ring: bool = True, offer_telephone_event: bool = True, echo: bool = False,
                 user: str = "callee") -> None:
        super().__init__(host=host, sip_port=port, rtp_port=rtp_port, user=user,
                         offer_telephone_event=offer_telephone_event, echo=echo)
        self.answer_after = answer_after
        self.reject = reject
        self.ring = ring
        self.invites: list[Request] = []  # initial INVITEs (no retransmissions, no re-INVITEs)
        self.calls: list[CalleeCall] = []
        self.acks: list[float] = []
        self.cancels: list[float] = []

    async def __aenter__(self) -> MediaCallee:
        await self.start()
        return self

    @property
    def call(self) -> CalleeCall:
        """The newest call (raises if no INVITE came)."""
        if not self.calls:
            raise AssertionError("callee: no INVITE received")
        return self.calls[-1]

    @property
    def answered_at(self) -> float | None:
        """When the newest answered call's 200 OK was first sent."""
        times = [c.answered_at for c in self.calls if c.answered_at is not None]
        return times[-1] if times else None

    def _find(self, call_id: str) -> CalleeCall | None:
        for call in reversed(self.calls):
            if call.call_id == call_id:
                return call
        return None

    async def wait_invite(self, count: int = 1, timeout: float = 5.0) -> CalleeCall:
        await self.wait_for(lambda: len(self.calls) >= count, timeout, f"INVITE #{count}")
        return self.calls[count - 1]

    async def wait_answered(self, timeout: float = 5.0) -> CalleeCall:
        """Wait until a call was answered and ACKed."""
        def acked() -> bool:
            return any(c.acked_at is not None and c.answered_at is not None for c in self.calls)
        await self.wait_for(acked, timeout, "an answered and ACKed call")
        return next(c for c in reversed(self.calls) if c.acked_at is not None)

    async def wait_ended(self, timeout: float = 5.0) -> CalleeCall:
        await self.wait_for(lambda: bool(self.calls) and self.call.ended_at is not None,
                            timeout, "the call's end")
        return self.call

    async def wait_info(self, count: int = 1, timeout: float = 5.0) -> list[Info]:
        await self.wait_for(lambda: len(self.infos) >= count, timeout, f"{count} INFO")
        return self.infos

    async def hangup(self, call: CalleeCall | None = None, timeout: float = 2.0) -> Response:
        """Send BYE on ``call`` (default: the newest answered call); its final response."""
        if call is None:
            answered = [c for c in self.calls if c.answered_at is not None and c.ended_at is None]
            if not answered:
                raise AssertionError("callee: no answered call to hang up")
            call = answered[-1]
        if call.dialog is None:
            raise AssertionError("callee: the INVITE had no usable Contact, cannot send BYE")
        call.bye_sent_at = self.now()
        response = await self._send_bye(call.dialog, timeout)
        call.ended_at = call.ended_at or self.now()
        return response

    def _current_dialog(self) -> Dialog | None:
        answered = [c for c in self.calls if c.answered_at is not None and c.ended_at is None]
        return answered[-1].dialog if answered else None

    def _on_invite(self, request: Request, source: Addr, now: float) -> None:
        existing = self._find(request.call_id)
        if request.to.tag is not None:  # re-INVITE
            if existing is None or existing.ended_at is not None:
                self._respond(request, request.response(481), source)
                return
            if _has_sdp(request):
                existing.remote_sdp = parse_sdp(request.body)
                self._take_sdp(existing.remote_sdp)
            self._respond(request, self._answer_with_sdp(request), source)
            return
        if existing is not None:  # same Call-ID, new branch: not ours to handle twice
            self._respond(request, request.response(482), source)
            return
        dialog: Dialog | None
        tag = uuid.uuid4().hex[:12]
        try:
            dialog = Dialog.as_uas(request, tag)
        except SipError as exc:
            self.errors.append(f"INVITE without a usable Contact: {exc}")
            dialog = None
        sdp = parse_sdp(request.body) if _has_sdp(request) else None
        call = CalleeCall(request, source, now, tag, dialog, sdp)
        self.invites.append(request)
        self.calls.append(call)
        if sdp is not None:
            self._take_sdp(sdp)
        self._respond(request, request.response(100), source)
        if self.ring:
            self._respond(request, request.response(
                180, to_tag=tag, extra=[("Contact", self._contact())]), source)
        if self.answer_after is not None:
            self.spawn(self._answer(call, self.answer_after))

    async def _answer(self, call: CalleeCall, delay: float) -> None:
        await asyncio.sleep(delay)
        if call.final_status is not None:
            return  # cancelled meanwhile
        request = call.invite
        if self.reject is not None:
            call.final_status = self.reject
            call.rejected_at = call.ended_at = self.now()
            self._respond(request, request.response(self.reject, to_tag=call.to_tag),
                          call.source)
            self._notify()
            return
        ok = self._answer_with_sdp(request, call.to_tag)
        call.final_status = 200
        call.answered_at = self.now()
        self._respond(request, ok, call.source)
        self._notify()
        for _ in range(MAX_RESENDS):
            await asyncio.sleep(RESEND_INTERVAL)
            if call.acked_at is not None or call.ended_at is not None or self._sip is None:
                return
            self.send_sip(ok, call.source)

    def _on_ack(self, request: Request, now: float) -> None:
        self.acks.append(now)
        call = self._find(request.call_id)
        if call is not None and call.acked_at is None:
            call.acked_at = now

    def _on_cancel(self, request: Request, source: Addr, now: float) -> None:
        call = self._find(request.call_id)
        if call is None or call.invite.branch != request.branch:
            self._respond(request, request.response(481), source)
            return
        self.cancels.append(now)
        self._respond(request, request.response(200), source)
        if call.final_status is None:
            call.final_status = 487
            call.cancelled_at = call.ended_at = now
            self._respond(call.invite, call.invite.response(487, to_tag=call.to_tag),
                          call.source)

    def _on_bye(self, request: Request, now: float) -> bool:
        call = self._find(request.call_id)
        if call is None or request.from_.tag != (call.dialog.remote_tag if call.dialog else
                                                 call.invite.from_.tag):
            return False
        call.bye_received_at = now
        call.ended_at = call.ended_at or now
        return True


class MediaCaller(_MediaPeer):
    """The carrier trunk: one call to ``number`` through ``target`` (softswitch).

    ``await caller.invite()`` sends the INVITE (resent every 0.5 s until any
    response); responses are recorded as they come (``provisionals``, ``final``,
    ``answered_at``) and every final response is ACKed.  ``call()`` is invite() and
    wait_answer() in one.
    """

    name = "caller"

    def __init__(self, number: str, *, target: Addr = SOFTSWITCH, host: str = HOST,
                 sip_port: int = 0, rtp_port: int = 0, caller_id: str = "+12125550123",
                 offer_telephone_event: bool = True, echo: bool = False,
                 request_uri: str | None = None,
                 extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(host=host, sip_port=sip_port, rtp_port=rtp_port, user=caller_id,
                         offer_telephone_event=offer_telephone_event, echo=echo)
        self.number = number
        self.target = target
        self.request_uri = request_uri or f"sip:{number}@{target[0]}:{target[1]}"
        self.extra_headers = list(extra_headers)
        self.invite_request: Request | None = None
        self.invite_sent_at: float | None = None
        self.provisionals: list[Provisional] = []
        self.final: Response | None = None
        self.final_at: float | None = None
        self.answered_at: float | None = None  # arrival of the 2xx
        self.acked_at: float | None = None
        self.remote_sdp: Sdp | None = None
        self.dialog: Dialog | None = None
        self.cancel_sent_at: float | None = None
        self.bye_sent_at: float | None = None
        self.ended_at: float | None = None
        self._ack: tuple[Request, Addr] | None = None

    async def __aenter__(self) -> MediaCaller:
        await self.start()
        return self

    @property
    def status(self) -> int | None:
        """The INVITE's final status, None while it has none."""
        return self.final.status if self.final is not None else None

    async def invite(self) -> Request:
        """Send the INVITE (with SDP: PCMU, telephone-event 101) and return at once."""
        if self.invite_request is not None:
            raise RuntimeError("caller: one call per MediaCaller")
        uri = parse_uri(self.request_uri)
        headers = Headers()
        headers.set("via", self._via())
        headers.set("max-forwards", "70")
        headers.set("from", f"<sip:{self.user}@{self.host}:{self.sip_port}>"
                            f";tag={uuid.uuid4().hex[:10]}")
        headers.set("to", f"<{self.request_uri}>")
        headers.set("call-id", f"media-peer-{uuid.uuid4().hex}")
        headers.set("cseq", "1 INVITE")
        headers.set("contact", self._contact())
        headers.set("allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, UPDATE")
        for name, value in self.extra_headers:
            headers.add(name, value)
        headers.set("content-type", "application/sdp")
        request = Request("INVITE", uri, headers, self._sdp(), raw_uri=self.request_uri)
        self.invite_request = request
        self.invite_sent_at = self.now()
        self._start_tx(request, self.target)
        return request

    async def call(self, timeout: float = 10.0) -> Response:
        await self.invite()
        return await self.wait_answer(timeout)

    async def wait_provisional(self, status: int = 180, timeout: float = 5.0) -> Provisional:
        await self.wait_for(lambda: any(p.status == status for p in self.provisionals)
                            or self.final is not None, timeout, f"a {status} response")
        for p in self.provisionals:
            if p.status == status:
                return p
        raise AssertionError(f"caller: final {self.status} came before any {status}")

    async def wait_final(self, timeout: float = 10.0) -> Response:
        await self.wait_for(lambda: self.final is not None, timeout, "a final response")
        assert self.final is not None
        return self.final

    async def wait_answer(self, timeout: float = 10.0) -> Response:
        """The 2xx to the INVITE (AssertionError on any other final status)."""
        final = await self.wait_final(timeout)
        if not 200 <= final.status < 300:
            raise AssertionError(f"caller: INVITE got {final.status} {final.reason}, not 2xx")
        return final

    async def wait_ended(self, timeout: float = 5.0) -> float:
        """Wait for the call to end (BYE either way, or a failure final); when it did."""
        await self.wait_for(lambda: self.ended_at is not None, timeout, "the call's end")
        assert self.ended_at is not None
        return self.ended_at

    async def cancel(self, timeout: float = 2.0) -> Response:
        """Send CANCEL for the INVITE; the CANCEL's own final response (the INVITE's
        487 lands in ``final``)."""
        invite = self.invite_request
        if invite is None:
            raise RuntimeError("caller: nothing to cancel")
        headers = Headers()
        headers.set("via", invite.headers.get_all("via")[0])
        headers.set("max-forwards", "70")
        headers.set("from", invite.headers.get("from") or "")
        headers.set("to", invite.headers.get("to") or "")
        headers.set("call-id", invite.call_id)
        headers.set("cseq", f"{invite.cseq.number} CANCEL")
        request = Request("CANCEL", invite.uri, headers, raw_uri=invite.raw_uri)
        self.cancel_sent_at = self.now()
        return await self._request(request, self.target, timeout)

    async def hangup(self, timeout: float = 2.0) -> Response:
        """Send BYE; the BYE's final response."""
        if self.dialog is None:
            raise AssertionError("caller: the call was not answered, nothing to hang up")
        self.bye_sent_at = self.now()
        response = await self._send_bye(self.dialog, timeout)
        self.ended_at = self.ended_at or self.now()
        return response

    bye = hangup

    def _current_dialog(self) -> Dialog | None:
        return self.dialog if self.ended_at is None else None

    def _on_invite_response(self, tx: _ClientTx, response: Response, now: float) -> None:
        invite = tx.request
        if response.status < 200:
            self.provisionals.append(Provisional(now, response.status, response.reason,
                                                 _has_sdp(response), response))
            if _has_sdp(response) and self.remote_sdp is None:
                self._take_sdp(parse_sdp(response.body))  # early media
            return
        if self._ack is not None:  # a retransmitted final response: ACK it again
            self.send_sip(*self._ack)
            return
        self.final = response
        self.final_at = now
        if response.status < 300:
            self.answered_at = now
            self.dialog = Dialog.as_uac(invite, response)
            if _has_sdp(response):
                self.remote_sdp = parse_sdp(response.body)
                self._take_sdp(self.remote_sdp)
            ack = self.dialog.create_request("ACK", self._via(), None)
            self._ack = (ack, _hop(self.dialog.next_hop))
        else:
            headers = Headers()
            headers.set("via", invite.headers.get_all("via")[0])
            headers.set("max-forwards", "70")
            headers.set("from", invite.headers.get("from") or "")
            headers.set("to", response.headers.get("to") or "")
            headers.set("call-id", invite.call_id)
            headers.set("cseq", f"{invite.cseq.number} ACK")
            self._ack = (Request("ACK", invite.uri, headers, raw_uri=invite.raw_uri), tx.dest)
            self.ended_at = now
        self.send_sip(*self._ack)
        self.acked_at = self.now()

    def _on_invite(self, request: Request, source: Addr, now: float) -> None:
        dialog = self.dialog
        if dialog is None or request.call_id != dialog.call_id or self.ended_at is not None:
            self._respond(request, request.response(481), source)
            return
        if _has_sdp(request):  # re-INVITE with an offer
            self.remote_sdp = parse_sdp(request.body)
            self._take_sdp(self.remote_sdp)
        self._respond(request, self._answer_with_sdp(request), source)

    def _on_bye(self, request: Request, now: float) -> bool:
        if self.dialog is None or request.call_id != self.dialog.call_id:
            return False
        self.ended_at = self.ended_at or now
        return True


# ---------------------------------------------------------------- G.711 μ-law


def _ulaw_to_linear(code: int) -> int:
    """ITU-T G.711 μ-law expansion of one octet (sign, 3-bit segment, 4-bit step)."""
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    step = inverted & 0x0F
    magnitude = (((step << 3) + 0x84) << segment) - 0x84
    return -magnitude if inverted & 0x80 else magnitude


_ULAW_TABLE: tuple[int, ...] = tuple(_ulaw_to_linear(code) for code in range(256))
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def ulaw_decode(payload: bytes) -> list[int]:
    """G.711 μ-law octets to 16-bit linear samples (range ±32124)."""
    table = _ULAW_TABLE
    return [table[b] for b in payload]


def _linear_to_ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _ULAW_CLIP) + _ULAW_BIAS
    segment = min(7, magnitude.bit_length() - 8)
    step = (magnitude >> (segment + 3)) & 0x0F
    return ~(sign | (segment << 4) | step) & 0xFF


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """16-bit linear samples to G.711 μ-law octets."""
    return bytes(_linear_to_ulaw(s) for s in samples)


def tone_samples(freq: Freq, count: int, amplitude: float = 0.3, rate: int = RATE,
                 first: int = 0) -> list[int]:
    """``count`` samples of a tone (components share ``amplitude``, full scale 1.0)."""
    freqs = _freqs(freq)
    scale = amplitude * 32767 / len(freqs)
    steps = [2 * math.pi * f / rate for f in freqs]
    return [
        round(scale * sum(math.sin(w * n) for w in steps)) for n in range(first, first + count)
    ]


# ---------------------------------------------------------------- tone analysis


def _freqs(freq: Freq) -> tuple[float, ...]:
    return freq if isinstance(freq, tuple) else (float(freq),)


def goertzel(samples: Sequence[int] | Sequence[float], freq: float, rate: int = RATE) -> float:
    """The power |X(f)|² of ``samples`` at ``freq`` (Goertzel's recurrence).

    A sinusoid of amplitude A over N samples gives about (A·N/2)².
    """
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def rms(samples: Sequence[int] | Sequence[float]) -> float:
    if not samples:
        return 0.0
    return math.sqrt(sum(float(x) * x for x in samples) / len(samples))


def tone_ratio(samples: Sequence[int] | Sequence[float], freq: float, rate: int = RATE) -> float:
    """The share of the signal's energy at ``freq``: about 1.0 for a pure tone there."""
    energy = sum(float(x) * x for x in samples)
    if not samples or energy <= 0:
        return 0.0
    return 2.0 * goertzel(samples, freq, rate) / (len(samples) * energy)


def _score(samples: Sequence[int] | Sequence[float], candidate: Freq, rate: int) -> float:
    """Sum of the candidate's component shares, or 0 when it is not present."""
    shares = [tone_ratio(samples, f, rate) for f in _freqs(candidate)]
    if min(shares) < COMPONENT_SHARE or sum(shares) < TONE_SHARE:
        return 0.0
    return sum(shares)


def dominant(samples: Sequence[int] | Sequence[float],
             candidates: Iterable[Freq] = DEFAULT_CANDIDATES, rate: int = RATE) -> Freq | None:
    """The candidate (a frequency, or a tuple for a dual tone) that best explains the
    samples, or None for silence or a sound that is none of them."""
    if rms(samples) < SILENCE_RMS:
        return None
    best: Freq | None = None
    best_score = 0.0
    for candidate in candidates:
        score = _score(samples, candidate, rate)
        if score > best_score:
            best, best_score = candidate, score
    return best


def tone_present(samples: Sequence[int] | Sequence[float], freq: Freq,
                 rate: int = RATE) -> bool:
    """Whether ``freq`` (or all the components of a dual tone) makes up the audible
    signal: at least half its energy, robust to G.711 quantisation."""
    return rms(samples) >= SILENCE_RMS and _score(samples, freq, rate) > 0


# ---------------------------------------------------------------- telephone-events


class TelephoneEvent(NamedTuple):
    digit: str
    arrival: float  # first packet's arrival
    timestamp: int  # RTP timestamp: the event's identity
    end_seen: bool


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One RFC 4733 event with everything seen of it."""

    digit: str
    arrival: float
    last_arrival: float
    timestamp: int
    end_seen: bool
    end_arrival: float | None
    duration: int  # in timestamp units (1/8000 s), the largest seen
    volume: int
    ssrc: int
    packets: int
    marker_seen: bool


def _event_digit(code: int) -> str:
    return DTMF_DIGITS[code] if code < len(DTMF_DIGITS) else f"E{code}"


def telephone_event_records(packets: Iterable[RtpPacket], pt: int = PT_EVENT
                            ) -> list[EventRecord]:
    """RFC 4733 events in order of first arrival, one per RTP timestamp."""
    records: dict[int, EventRecord] = {}
    for p in packets:
        if p.pt != pt or len(p.payload) < 4:
            continue
        code, flags, duration = struct.unpack_from("!BBH", p.payload)
        end = bool(flags & 0x80)
        old = records.get(p.timestamp)
        if old is None:
            records[p.timestamp] = EventRecord(
                _event_digit(code), p.arrival, p.arrival, p.timestamp, end,
                p.arrival if end else None, duration, flags & 0x3F, p.ssrc, 1, p.marker,
            )
            continue
        records[p.timestamp] = EventRecord(
            old.digit, old.arrival, p.arrival, p.timestamp, old.end_seen or end,
            old.end_arrival if old.end_arrival is not None else (p.arrival if end else None),
            max(old.duration, duration), old.volume, old.ssrc, old.packets + 1,
            old.marker_seen or p.marker,
        )
    return sorted(records.values(), key=lambda r: r.arrival)


def telephone_events(packets: Iterable[RtpPacket], pt: int = PT_EVENT) -> list[TelephoneEvent]:
    """``(digit, first_arrival, rtp_timestamp, end_seen)`` per event, deduplicated by
    RTP timestamp, in order of arrival; digits are "0123456789*#ABCD"."""
    return [TelephoneEvent(r.digit, r.arrival, r.timestamp, r.end_seen)
            for r in telephone_event_records(packets, pt)]


def info_digits(infos: Iterable[Info]) -> str:
    """The digits carried by INFO bodies (application/dtmf-relay ``Signal=`` or
    application/dtmf), in order."""
    digits = []
    for info in infos:
        text = info.body.decode("utf-8", "replace")
        if info.content_type == "application/dtmf":
            digits.append(text.strip())
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                digits.append(value.strip())
    return "".join(digits)


# ---------------------------------------------------------------- audio stretches


@dataclass(frozen=True, slots=True)
class AudioSegment:
    """Consecutive audio packets that sound the same (one tone, silence, or other)."""

    start: float  # arrival of the first packet
    end: float  # arrival of the last packet
    packets: int
    samples: int
    freq: Freq | None  # the dominant candidate; None for silence or other sound
    silent: bool
    ssrcs: tuple[int, ...]
    first_seq: int
    first_timestamp: int

    @property
    def duration(self) -> float:
        """Media duration in seconds (samples / 8000)."""
        return self.samples / RATE

    @property
    def kind(self) -> str:
        return "silence" if self.silent else ("tone" if self.freq is not None else "other")


def audio_segments(packets: Iterable[RtpPacket], pt: int = PT_PCMU,
                   candidates: Iterable[Freq] = DEFAULT_CANDIDATES, max_gap: float = 0.1,
                   rate: int = RATE) -> list[AudioSegment]:
    """The audio packets (PCMU) grouped into stretches, in arrival order.

    Each packet is classified on its own (silence, one candidate, or other); a new
    stretch starts when the class changes or no packet arrived for ``max_gap`` s.
    """
    cands = tuple(candidates)
    segments: list[AudioSegment] = []
    current: AudioSegment | None = None
    for p in packets:
        if p.pt != pt:
            continue
        samples = ulaw_decode(p.payload)
        silent = rms(samples) < SILENCE_RMS
        freq = None if silent else dominant(samples, cands, rate)
        if (current is not None and current.silent == silent and current.freq == freq
                and p.arrival - current.end <= max_gap):
            current = AudioSegment(
                current.start, p.arrival, current.packets + 1, current.samples + len(samples),
                freq, silent,
                current.ssrcs if p.ssrc in current.ssrcs else current.ssrcs + (p.ssrc,),
                current.first_seq, current.first_timestamp,
            )
            segments[-1] = current
        else:
            current = AudioSegment(p.arrival, p.arrival, 1, len(samples), freq, silent,
                                   (p.ssrc,), p.seq, p.timestamp)
            segments.append(current)
    return segments


def check_rtp_grid(packets: Iterable[RtpPacket], pt: int | None = PT_PCMU,
                   step: int | None = FRAME) -> list[str]:
    """Violations of the 20 ms grid, per SSRC in arrival order: each packet's sequence
    number must be the previous one's + 1 and its timestamp + ``step`` (160).

    Only packets of payload type ``pt`` are considered (all if None); ``step=None``
    checks sequence numbers only (for a stream interleaving telephone-events, check
    ``pt=None, step=None``).  An empty list means a clean grid.
    """
    last: dict[int, RtpPacket] = {}
    problems: list[str] = []
    for index, p in enumerate(packets):
        if pt is not None and p.pt != pt:
            continue
        prev = last.get(p.ssrc)
        last[p.ssrc] = p
        if prev is None:
            continue
        seq_delta = (p.seq - prev.seq) & 0xFFFF
        if seq_delta != 1:
            problems.append(f"#{index} ssrc {p.ssrc:08x}: seq {prev.seq} -> {p.seq}")
        if step is not None:
            ts_delta = (p.timestamp - prev.timestamp) & 0xFFFFFFFF
            if ts_delta != step:
                problems.append(f"#{index} ssrc {p.ssrc:08x}: timestamp {prev.timestamp} -> "
                                f"{p.timestamp} (+{ts_delta}, want +{step})")
    return problems
