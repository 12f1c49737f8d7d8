"""Shared helpers for the endpoint and B2BUA tests: SIP builders and a fake wire.

The sans-IO core is driven exactly as the edge drives it (``receive`` / ``run_timers``
at ``next_deadline()`` / ``take_outgoing``), with time as a plain number.  Nothing here
opens a socket or sleeps.

Helpers are handed to tests as fixtures (the tests folder is not a package):

* ``sip`` -- a namespace of message builders (``sip.request``, ``sip.response_to``,
  ``sip.parse``, ``sip.sdp``) and small readers (``sip.header_params``);
* ``wire_for`` -- wraps an :class:`Endpoint` in a :class:`Wire`;
* ``lab_config`` -- ``conf/lab.yaml``, loaded once;
* ``make_b2bua`` -- a B2BUA on a wire, from the lab config or a given one.
"""

from __future__ import annotations

import itertools
import random
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from softswitch.b2bua.service import B2BUA
from softswitch.config import Config, load_config
from softswitch.sip.endpoint import Endpoint, EndpointConfig
from softswitch.sip.message import (
    Headers,
    MessageParseError,
    Request,
    Response,
    parse_message,
)
from softswitch.sip.uri import split_commas

PROJECT = Path(__file__).resolve().parents[2]
LOCAL = {"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)}
SOFTSWITCH = ("127.0.0.1", 5060)
CALLER = ("127.0.0.1", 5061)

Address = tuple[str, int]

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


# ---------------------------------------------------------------------------- builders


def sdp(host: str = "127.0.0.1", port: int = 6000, session: str = "1") -> bytes:
    return (
        f"v=0\r\no=- {session} {session} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


def request(
    method: str,
    uri: str,
    *,
    source: Address = CALLER,
    transport: str = "UDP",
    via: str | None = None,
    branch: str | None = None,
    rport: bool = True,
    call_id: str | None = None,
    from_uri: str = "sip:+14155550000@127.0.0.1:5061",
    from_tag: str | None = "caller-tag",
    to_uri: str | None = None,
    to_tag: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    max_forwards: int | str | None = 70,
    contact: str | None = "<sip:caller@127.0.0.1:5061>",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    """A request as a phone or trunk would put it on the wire."""
    if via is None:
        host, port = source
        via = (
            f"SIP/2.0/{transport} {host}:{port};branch={branch or unique('z9hG4bK-t')}"
            + (";rport" if rport else "")
        )
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}"]
    if max_forwards is not None:
        lines.append(f"Max-Forwards: {max_forwards}")
    lines.append(f"From: <{from_uri}>" + (f";tag={from_tag}" if from_tag else ""))
    lines.append(f"To: <{to_uri or uri}>" + (f";tag={to_tag}" if to_tag else ""))
    lines.append(f"Call-ID: {call_id or unique('call-') + '@test'}")
    lines.append(f"CSeq: {cseq} {cseq_method or method}")
    if contact:
        lines.append(f"Contact: {contact}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Type: {content_type or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response_to(
    req: Request,
    status: int,
    *,
    reason: str | None = None,
    to_tag: str | None = None,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str = "application/sdp",
) -> bytes:
    """A response a peer would send to ``req`` (copies Via, From, To, Call-ID, CSeq)."""
    lines = [f"SIP/2.0 {status} {reason or _reason(status)}"]
    for v in req.headers.values("via"):
        lines.append(f"Via: {v}")
    lines.append(f"From: {req.headers.get('from')}")
    to = req.headers.get("to") or ""
    if to_tag and req.to.tag is None and status != 100:
        to += f";tag={to_tag}"
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {req.call_id}")
    lines.append(f"CSeq: {req.headers.get('cseq')}")
    if contact:
        lines.append(f"Contact: {contact}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reason(status: int) -> str:
    return {
        100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
        404: "Not Found", 407: "Proxy Authentication Required", 481: "No Transaction",
        486: "Busy Here", 487: "Request Terminated",
    }.get(status, "Whatever")


def read_sent(data: bytes) -> Request | Response:
    """Parse what softswitch sent.  A 400 echoes the fields that made a request
    malformed (§8.2.6.2), so such a response may not parse: then keep its status line
    and Via header fields, which is all the wire-level checks need."""
    try:
        return parse_message(data)
    except MessageParseError:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
        lines = head.split("\r\n")
        if not lines[0].startswith("SIP/2.0 "):
            raise
        _, code, reason = (lines[0] + " ").split(" ", 2)
        vias = Headers()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() in ("via", "v"):
                vias.add("via", value.strip())
        return Response(int(code), reason.strip(), vias)


def parse(data: bytes) -> Request | Response:
    return parse_message(data)


def header_params(value: str) -> dict[str, str]:
    """``Digest a="b", c=d`` -> {a: b, c: d} (quotes removed)."""
    _, _, rest = value.partition(" ")
    out: dict[str, str] = {}
    for part in split_commas(rest):
        key, _, val = part.strip().partition("=")
        out[key.strip().lower()] = val.strip().strip('"')
    return out


# ---------------------------------------------------------------------------- wire


@dataclass
class Sent:
    """One message the core put on the wire, when, and where to."""

    time: float
    data: bytes
    destination: Address
    transport: str
    msg: Request | Response = field(init=False)

    def __post_init__(self) -> None:
        self.msg = read_sent(self.data)

    @property
    def is_response(self) -> bool:
        return isinstance(self.msg, Response)

    @property
    def status(self) -> int | None:
        return self.msg.status if isinstance(self.msg, Response) else None

    @property
    def method(self) -> str | None:
        return self.msg.method if isinstance(self.msg, Request) else None

    def __repr__(self) -> str:
        what = self.status if self.is_response else self.method
        cseq = self.msg.headers.get("cseq")
        return f"<Sent t={self.time} {what} ({cseq}) -> {self.destination}/{self.transport}>"


class Wire:
    """The fake wire: feeds one endpoint and records everything it sends, with times."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.now = 0.0
        self.log: list[Sent] = []

    def _collect(self) -> list[Sent]:
        out = [Sent(self.now, o.data, o.destination, o.transport)
               for o in self.endpoint.take_outgoing()]
        self.log.extend(out)
        return out

    def deliver(self, data: bytes, source: Address = CALLER, transport: str = "udp",
                at: float | None = None) -> list[Sent]:
        """Receive ``data`` at ``at`` (default: now; timers due before it run first)."""
        sent: list[Sent] = []
        if at is not None:
            sent += self.advance(at)
        self.endpoint.receive(data, source, transport, self.now)
        return sent + self._collect()

    def advance(self, until: float) -> list[Sent]:
        """Run every timer due up to ``until``, each at its own deadline, as the edge does."""
        assert until >= self.now, "time runs forward"
        sent: list[Sent] = []
        while True:
            deadline = self.endpoint.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.endpoint.run_timers(self.now)
            sent += self._collect()
        self.now = until
        return sent

    def run_out(self, limit: float = 3600.0) -> list[Sent]:
        """Run timers until none is left (bounded, so a timer loop fails the test)."""
        sent = self.advance(self.now + limit)
        assert self.endpoint.next_deadline() is None, "timers still armed after an hour"
        return sent

    def take(self) -> list[Sent]:
        return self._collect()


def requests(sent: Iterable[Sent], method: str, to: Address | None = None) -> list[Sent]:
    return [s for s in sent if s.method == method and (to is None or s.destination == to)]


def responses(sent: Iterable[Sent], status: int | None = None,
              to: Address | None = None) -> list[Sent]:
    return [s for s in sent if s.is_response and (status is None or s.status == status)
            and (to is None or s.destination == to)]


SIP = types.SimpleNamespace(
    request=request, response_to=response_to, parse=parse, sdp=sdp,
    header_params=header_params, requests=requests, responses=responses, unique=unique,
    CALLER=CALLER, SOFTSWITCH=SOFTSWITCH, LOCAL=LOCAL, Wire=Wire,
)


@pytest.fixture
def sip() -> types.SimpleNamespace:
    return SIP


@pytest.fixture
def wire_for() -> Callable[[Endpoint], Wire]:
    return Wire


@pytest.fixture(scope="session")
def lab_config() -> Config:
    return load_config(PROJECT / "conf" / "lab.yaml")


@pytest.fixture
def make_b2bua(lab_config: Config) -> Callable[..., tuple[B2BUA, Wire]]:
    def make(config: Config | None = None) -> tuple[B2BUA, Wire]:
        b2bua = B2BUA(config or lab_config, EndpointConfig(local=dict(LOCAL)),
                      rng=random.Random(1))
        return b2bua, Wire(b2bua.endpoint)

    return make
