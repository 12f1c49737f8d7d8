"""SIP messages as values: parse, inspect, build, serialise (RFC 3261 §7, §20, §25).

Theory of operation
-------------------
``parse_message(data)`` turns one complete message (a UDP datagram, or one frame cut
from a TCP stream by :class:`StreamFramer`) into a :class:`Request` or
:class:`Response`.  Header lines are unfolded, names are matched case-insensitively
and compact forms are expanded (``v`` is ``Via``).  The fields every element needs
(Via, From, To, Call-ID, CSeq, Content-Length, Contact) are parsed and checked at
once, so a malformed message is refused at the edge with a :class:`ParseError` that
carries what is needed to answer it (``partial``); every other header stays raw text
until someone asks.  ``bytes(msg)`` renders the message with a fresh Content-Length.

Limits (size, header count, line length) are checked before any work is done on a
message and answer 513/400 instead of costing memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .errors import ParseError, SipError
from .uri import (
    NameAddr,
    SipUri,
    Uri,
    Via,
    is_digits,
    is_token,
    parse_name_addr,
    parse_uri,
    parse_via,
    split_commas,
)

SIP_VERSION = "SIP/2.0"
CRLF = "\r\n"

# RFC 3261 §7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS = {
    "i": "call-id", "m": "contact", "f": "from", "t": "to", "v": "via",
    "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
    "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events",
    "b": "referred-by", "x": "session-expires", "a": "accept-contact",
    "j": "reject-contact", "d": "request-disposition", "y": "identity", "n": "identity-info",
}
_CANONICAL = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version", "rack": "RAck", "rseq": "RSeq",
}
# Header fields that may appear at most once (§20; RFC 4475 §3.3.8).
SINGLE_VALUED = ("call-id", "cseq", "from", "to", "max-forwards", "content-length")

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


# Header names seen on the wire map to their stored and printed forms through these
# caches: a hot path (every header of every message).  They stop growing at a bound
# so that a peer inventing names cannot grow them without limit.
_CACHE_LIMIT = 2048
_canonical_cache: dict[str, str] = {}
_display_cache: dict[str, str] = {}


def canonical_name(name: str) -> str:
    """The lower-case long form of a header name (the key headers are stored under)."""
    key = _canonical_cache.get(name)
    if key is None:
        lowered = name.lower()
        key = COMPACT_FORMS.get(lowered, lowered)
        if len(_canonical_cache) < _CACHE_LIMIT:
            _canonical_cache[name] = key
    return key


def display_name(key: str) -> str:
    name = _display_cache.get(key)
    if name is None:
        name = _CANONICAL.get(key) or "-".join(p.capitalize() for p in key.split("-"))
        if len(_display_cache) < _CACHE_LIMIT:
            _display_cache[key] = name
    return name


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message may cost.  Exceeding them is answered, never crashes."""

    max_message_bytes: int = 65535
    max_headers: int = 100
    max_line_bytes: int = 8192


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class Headers:
    """Ordered multi-map of header fields keyed by canonical name.

    Each entry is one field line's value as received (comma lists unsplit); the order
    of values of one name is kept, which is all §7.3.1 requires.
    """

    __slots__ = ("_fields",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in items:
            self.add(name, value)

    def copy(self) -> Headers:
        new = Headers()
        new._fields = {k: list(v) for k, v in self._fields.items()}
        return new

    def __contains__(self, name: str) -> bool:
        return canonical_name(name) in self._fields

    def get(self, name: str) -> str | None:
        values = self._fields.get(canonical_name(name))
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._fields.get(canonical_name(name), ()))

    def values(self, name: str) -> list[str]:
        """Every element of a list header, across lines and commas."""
        out: list[str] = []
        for line in self._fields.get(canonical_name(name), ()):
            out.extend(v for v in split_commas(line) if v)
        return out

    def count(self, name: str) -> int:
        return len(self._fields.get(canonical_name(name), ()))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        values = self._fields.setdefault(canonical_name(name), [])
        if first:
            values.insert(0, value)
        else:
            values.append(value)

    def set(self, name: str, value: str) -> None:
        self._fields[canonical_name(name)] = [value]

    def set_all(self, name: str, values: Iterable[str]) -> None:
        key = canonical_name(name)
        listed = list(values)
        if listed:
            self._fields[key] = listed
        else:
            self._fields.pop(key, None)

    def remove(self, name: str) -> None:
        self._fields.pop(canonical_name(name), None)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for key, values in self._fields.items():
            name = display_name(key)
            for value in values:
                yield name, value

    def __len__(self) -> int:
        return sum(len(v) for v in self._fields.values())


class Message:
    """What requests and responses share: headers, body and the parsed core fields."""

    __slots__ = ("headers", "body", "_vias", "_from", "_to", "_cseq")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body
        self._vias: list[Via] | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None
        self._cseq: CSeq | None = None

    def invalidate(self) -> None:
        """Forget parsed fields after headers were changed in place."""
        self._vias = None
        self._from = None
        self._to = None
        self._cseq = None

    @property
    def vias(self) -> list[Via]:
        if self._vias is None:
            self._vias = [parse_via(v) for v in self.headers.values("via")]
        return self._vias

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise ParseError("missing Via")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        if self._from is None:
            self._from = parse_name_addr(_required(self.headers, "from"))
        return self._from

    @property
    def to(self) -> NameAddr:
        if self._to is None:
            self._to = parse_name_addr(_required(self.headers, "to"))
        return self._to

    @property
    def call_id(self) -> str:
        return _required(self.headers, "call-id")

    @property
    def cseq(self) -> CSeq:
        if self._cseq is None:
            self._cseq = _parse_cseq(_required(self.headers, "cseq"))
        return self._cseq

    @property
    def contacts(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.values("contact") if v != "*"]

    @property
    def record_route(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.values("record-route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def _render(self, start_line: str) -> bytes:
        lines = [start_line]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append(CRLF)
        return CRLF.join(lines).encode("utf-8", "surrogateescape") + self.body


class Request(Message):
    __slots__ = ("method", "uri", "raw_uri")

    def __init__(
        self, method: str, uri: Uri, headers: Headers, body: bytes = b"", raw_uri: str = ""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self.raw_uri = raw_uri or str(uri)

    @property
    def branch(self) -> str | None:
        return self.top_via.branch

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        return int(value) if value is not None else None

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """A response built per §8.2.6.2: Via, From, Call-ID, CSeq copied; To gets a tag."""
        has_tag = self.to.tag is not None
        return build_response(
            self.headers, status, reason, to_tag=None if has_tag else to_tag, extra=extra, body=body
        )

    def __bytes__(self) -> bytes:
        return self._render(f"{self.method} {self.raw_uri} {SIP_VERSION}")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_uri}>"


class Response(Message):
    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str, headers: Headers, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def __bytes__(self) -> bytes:
        return self._render(f"{SIP_VERSION} {self.status} {self.reason}")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} {self.headers.get('cseq')}>"


def build_response(
    request_headers: Headers,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response built per §8.2.6.2 from a request's header fields.

    Works on the raw fields so that a request refused as malformed can still be
    answered.  ``to_tag`` is added to To unless the status is 100.
    """
    headers = Headers()
    headers.set_all("via", request_headers.get_all("via"))
    headers.set("from", _required(request_headers, "from"))
    to_value = _required(request_headers, "to")
    if to_tag is not None and status != 100:
        to_value = f"{to_value};tag={to_tag}"
    headers.set("to", to_value)
    headers.set("call-id", _required(request_headers, "call-id"))
    headers.set("cseq", _required(request_headers, "cseq"))
    if 100 < status < 300:
        # A UAS copies Record-Route into responses that can create a dialog (§12.1.1).
        headers.set_all("record-route", request_headers.get_all("record-route"))
    for name, value in extra:
        headers.add(name, value)
    return Response(status, reason or REASONS.get(status, "Unknown"), headers, body)


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise ParseError(f"missing {display_name(name)}")
    return value


def _parse_cseq(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not is_digits(parts[0]):
        raise ParseError(f"malformed CSeq {value!r}")
    number = int(parts[0])
    if number > 2**32 - 1:  # §8.1.1.5
        raise ParseError("CSeq number larger than 2**32-1")
    if not is_token(parts[1]):
        raise ParseError(f"bad CSeq method {parts[1]!r}")
    return CSeq(number, parts[1])


class IncompleteMessage(Exception):
    """A stream holds the start of a message but not all of it yet."""


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header section and the rest, tolerating bare LF line ends.

    The earliest terminator wins: a bare-LF message may carry CRLFCRLF in its body.
    """
    end = data.find(b"\r\n\r\n")
    bare = data.find(b"\n\n")
    if bare >= 0 and (end < 0 or bare < end):
        return data[:bare], data[bare + 2 :]
    if end >= 0:
        return data[:end], data[end + 4 :]
    raise IncompleteMessage()


def _content_length(headers: Headers) -> int | None:
    values = headers.get_all("content-length")
    if not values:
        return None
    if len({v.strip() for v in values}) > 1:  # RFC 4475 §3.3.9
        raise ParseError("conflicting Content-Length values")
    text = values[0].strip()
    if not is_digits(text):
        raise ParseError(f"invalid Content-Length {text!r}")
    return int(text)


class MessageParseError(ParseError):
    """A ParseError with what could be read of a request, to answer it if possible.

    ``headers`` holds the header fields of a request as far as they could be read (None
    for responses, which are never answered, and when not even the headers made sense),
    so the caller can answer with its Via, From, To, Call-ID and CSeq.
    """

    def __init__(self, error: SipError, headers: Headers | None) -> None:
        super().__init__(error.detail or str(error), error.status_code, error.reason)
        self.headers = headers


def parse_message(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, stream: bool = False
) -> Request | Response:
    """Parse one message.  On a datagram, octets past Content-Length are ignored (§18.3).

    Raises :class:`MessageParseError`, or :class:`IncompleteMessage` when ``stream`` is
    set and the header section has not ended yet.
    """
    data = data.lstrip(b"\r\n")
    try:
        head, rest = _split_head(data)
    except IncompleteMessage:
        if stream:
            raise
        head, rest = data, b""  # a datagram is complete: its end ends the headers
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    start_line = lines[0].rstrip("\r")
    is_request = not start_line.startswith("SIP/")
    headers = Headers()
    try:
        _read_headers(lines, headers, limits)
    except ParseError as exc:
        raise MessageParseError(exc, None) from None
    answerable = headers if is_request else None
    if len(data) > limits.max_message_bytes:
        too_large = SipError(513, "Message Too Large", f"{len(data)} bytes")
        raise MessageParseError(too_large, answerable)
    try:
        message = _start(start_line, headers)
        length = _content_length(headers)
        if length is None:
            message.body = b"" if stream else rest
        elif length > len(rest):
            raise ParseError(f"Content-Length {length} larger than the {len(rest)} body octets")
        else:
            message.body = rest[:length]
        _validate(message)
    except SipError as exc:
        raise MessageParseError(exc, answerable) from None
    return message


def _read_headers(lines: list[str], headers: Headers, limits: Limits) -> None:
    count = 0
    name: str | None = None
    value_parts: list[str] = []
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            break  # a datagram whose header section ends without the empty line
        if len(line) > limits.max_line_bytes:
            raise ParseError("header line too long", 400, "Header Line Too Long")
        if line[:1] in (" ", "\t"):
            if name is None:
                raise ParseError("continuation line before any header")
            value_parts.append(line.strip())  # folding (§7.3.1)
            continue
        if name is not None:
            headers.add(name, " ".join(p for p in value_parts if p))
        colon = line.find(":")
        if colon <= 0:
            raise ParseError(f"header line without a name and colon: {line[:40]!r}")
        name = line[:colon].rstrip(" \t")
        if not is_token(name):
            raise ParseError(f"invalid header name {name!r}")
        value_parts = [line[colon + 1 :].strip()]
        count += 1
        if count > limits.max_headers:
            raise ParseError("too many header fields", 400, "Too Many Headers")
    if name is not None:
        headers.add(name, " ".join(p for p in value_parts if p))


def _start(start_line: str, headers: Headers) -> Request | Response:
    if start_line.startswith("SIP/"):
        parts = start_line.split(" ", 2)
        if len(parts) < 2 or parts[0] != SIP_VERSION:
            raise ParseError(f"bad status line {start_line[:60]!r}")
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise ParseError(f"bad status code {code[:20]!r}")
        return Response(int(code), parts[2] if len(parts) > 2 else "", headers)
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF, single spaces (§7.1).
    parts = start_line.split(" ")
    if len(parts) != 3:
        raise ParseError(f"bad request line {start_line[:80]!r}")
    method, raw_uri, version = parts
    if not is_token(method):
        raise ParseError(f"bad method {method[:40]!r}")
    if version.upper() != SIP_VERSION:
        if version.upper().startswith("SIP/"):
            # Answer with what we can: the request is otherwise readable.
            raise SipError(505, "Version Not Supported", version)
        raise ParseError(f"bad SIP version {version[:20]!r}")
    uri = parse_uri(raw_uri)
    if isinstance(uri, SipUri) and uri.headers is not None:
        raise ParseError("headers in a Request-URI")  # RFC 4475 §3.1.2.11
    return Request(method, uri, headers, raw_uri=raw_uri)


def _validate(message: Request | Response) -> None:
    headers = message.headers
    for name in SINGLE_VALUED:
        if headers.count(name) > 1:
            raise ParseError(f"more than one {display_name(name)}")
    if not message.vias:
        raise ParseError("missing Via")
    # Parsing them now refuses malformed values at the edge.
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.call_id  # noqa: B018
    cseq = message.cseq
    mf = headers.get("max-forwards")
    if mf is not None and (not is_digits(mf) or len(mf) > 10):
        raise ParseError(f"invalid Max-Forwards {mf!r}")
    if isinstance(message, Request):
        if cseq.method != message.method:  # RFC 4475 §3.1.2.17
            raise ParseError("CSeq method does not match the request method")
        message.contacts  # noqa: B018




class StreamFramer:
    """Cuts a TCP byte stream into messages by Content-Length (§18.3).

    ``feed(data)`` returns the complete messages now available, as bytes.  A framing
    error (no terminator within the limit, a bad or negative Content-Length) raises
    :class:`ParseError`: the stream cannot be resynchronised and must be closed.
    CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped and counted in
    ``pings`` so the edge can answer them with a single CRLF.
    """

    __slots__ = ("limits", "_buffer", "pings")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self.pings = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._buffer[:4] == b"\r\n\r\n":
                del self._buffer[:4]
                self.pings += 1
                continue
            if self._buffer and b"\r\n\r\n".startswith(self._buffer):
                return frames  # may still become a CRLFCRLF ping: wait for more
            stripped = 0
            while self._buffer[stripped : stripped + 2] == b"\r\n":
                stripped += 2
            if stripped:
                if stripped == len(self._buffer):
                    return frames  # a lone CRLF, wait for more
                del self._buffer[:stripped]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self.limits.max_message_bytes:
                    raise ParseError("header section too long", 513, "Message Too Large")
                return frames
            head = bytes(self._buffer[:end]).decode("utf-8", "surrogateescape")
            length = 0
            lengths = {
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")[1:]
                if ":" in line and canonical_name(line.split(":", 1)[0].strip()) == "content-length"
            }
            if len(lengths) > 1:
                raise ParseError("conflicting Content-Length values")
            if lengths:
                text = lengths.pop()
                if not is_digits(text):
                    raise ParseError(f"invalid Content-Length {text!r}")
                length = int(text)
            total = end + 4 + length
            if total > self.limits.max_message_bytes:
                raise ParseError("message too large", 513, "Message Too Large")
            if len(self._buffer) < total:
                return frames
            frames.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
