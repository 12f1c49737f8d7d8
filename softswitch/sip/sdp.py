"""SDP session descriptions (RFC 4566) and the offer/answer helpers (RFC 3264) that a
B2BUA anchoring media needs.

Theory of operation
-------------------
An SDP body is a session section followed by zero or more media sections, each
opened by an ``m=`` line, every line ``<type>=<value>`` with a one-letter type
(RFC 4566 §5)::

    v=  o=  s=  i=* u=* e=* p=* c=* b=*  (t= r=*)+  z=* k=* a=*   session
    m=  i=* c=* b=* k=* a=*                                       each media

:meth:`SessionDescription.parse` turns a body into values.  What a B2BUA reads or
rewrites is parsed: the origin, the ``c=`` addresses, the ``m=`` lines and every
``a=`` attribute (name and value, in order).  Every other line (i= u= e= p= b= r= z=
k=) is kept as text in its section.  ``bytes(sd)`` writes the lines back in the
order of the grammar above with CRLF ends, so a body written in that order comes
back byte for byte, and one written out of order comes back in order.

The grammar is checked where a mistake would mislead the media path: ``v=0``, then
``o=``, then ``s=``, a ``t=`` before the first ``m=``, well-formed ``c=``/``m=``
lines, and the attributes softswitch reads (rtpmap, fmtp, ptime, maxptime, rtcp).
A type letter that is not in RFC 4566 makes the whole description unusable
(§5: a parser "MUST completely ignore any session description that contains a type
letter that it does not understand").  Unknown attributes are kept as they are.

Errors carry their SIP answer (see :mod:`.errors`): a body that is not a
well-formed description raises :class:`SdpError` (400 Bad SDP), naming the line by
number and quoting it; a well-formed one with nothing softswitch can relay raises
:class:`NotAcceptable` (488 Not Acceptable Here, RFC 3261 §21.4.26).

Offer/answer
------------
The helpers at the end are pure functions returning copies (RFC 3264):
:func:`restrict` keeps the codecs softswitch can relay and generate,
:func:`anchored` points a description at softswitch's own address and port,
:func:`answer_codecs` finds what an answer took from an offer, :func:`with_direction`
sets a stream's direction (hold, §8.4), :func:`default_offer` is softswitch's offer
when the caller sent none, and :meth:`Origin.next_version` numbers each new
description of a session (§8).

Connection addresses are kept as the address text alone (``c=IN IP4 192.0.2.1``
gives ``"192.0.2.1"``; a multicast ``224.2.17.12/127`` keeps its TTL).  The address
type is written back from the address itself: IP6 when it holds a colon, else IP4,
so ``c=IN IP6`` with a host name is refused rather than rewritten as IP4.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .errors import SipError
from .uri import is_digits

CRLF = "\r\n"

# RFC 4566 §6: the direction attributes; media level overrides the session level,
# and a description that says nothing is sendrecv.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# What softswitch can relay and generate: G.711 both laws and RFC 4733 events.
ANCHORABLE = ("PCMU", "PCMA", "telephone-event")
TELEPHONE_EVENT = "telephone-event"

# Attributes that describe the sending side's transport (ICE candidates and
# credentials, RFC 8839; SRTP keys, RFC 4568; DTLS, RFC 8842; RTP sources, RFC 5576;
# RTP/RTCP multiplexing, RFC 5761).  Once softswitch anchors the media, none of them
# is true of softswitch's address, so anchored() drops them.
_TRANSPORT_ATTRIBUTES = frozenset({
    "candidate", "remote-candidates", "end-of-candidates", "crypto", "fingerprint",
    "setup", "ssrc", "ssrc-group", "rtcp-mux", "rtcp-mux-only",
})
# Attributes whose value starts with the format they apply to (RFC 4566 §6,
# RFC 4585 §4.2; "*" means every format).
_FORMAT_ATTRIBUTES = frozenset({"rtpmap", "fmtp", "rtcp-fb"})

# RFC 4566 §5: every type letter, and where each may appear.  The lines that are
# kept as text are placed back by rank: the order of the grammar in the docstring.
_SESSION_TEXT_RANK = {"i": 0, "u": 1, "e": 2, "p": 3, "b": 5, "z": 7, "k": 8}
_SESSION_C, _SESSION_TIMING, _SESSION_A = 4, 6, 9
_MEDIA_TEXT_RANK = {"i": 0, "b": 2, "k": 3}
_MEDIA_C, _MEDIA_A = 1, 4
_TYPE_LETTERS = frozenset("vosiuepcbtrzkam")

# Trailing white space is tolerated: some phones leave it, and it changes nothing.
_RTPMAP = re.compile(r"(\d{1,3}) ([^/\s]+)/(\d+)(?:/(\d+))?\s*")
_RTCP = re.compile(r"(\d{1,5})(?: \S+ \S+ \S+)?\s*")
_TIME = re.compile(r"\d+ \d+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class SdpError(SipError):
    """A body that is not a well-formed session description: 400 Bad SDP."""

    def __init__(self, detail: str, status_code: int = 400, reason: str = "Bad SDP") -> None:
        super().__init__(status_code, reason, detail)


class NotAcceptable(SdpError):
    """A well-formed description with nothing softswitch can accept: 488.

    ``warn_code`` is the Warning header code to answer with (RFC 3261 §20.43):
    304 "Media type not available" or 305 "Incompatible media format".
    """

    def __init__(self, detail: str, warn_code: int = 305) -> None:
        super().__init__(detail, 488, "Not Acceptable Here")
        self.warn_code = warn_code


@dataclass(frozen=True, slots=True)
class Codec:
    """One RTP payload format of a media section (RFC 4566 §6 ``a=rtpmap``)."""

    payload_type: int
    name: str  # the encoding name as written ("PCMU", "telephone-event", "opus")
    clock_rate: int
    channels: int | None = None  # the rtpmap's encoding parameters; None means 1
    fmtp: str | None = None  # the format parameters of a=fmtp, if any

    def same_format(self, other: Codec) -> bool:
        """Whether both name one encoding, whatever their payload type numbers.

        An answer may number a dynamic format differently from the offer (RFC 3264
        §6.1); encoding names are case-insensitive (RFC 4855 §3).
        """
        return (
            self.name.casefold() == other.name.casefold()
            and self.clock_rate == other.clock_rate
            and (self.channels or 1) == (other.channels or 1)
        )


# RFC 3551 §6, Table 4: payload types that mean an encoding without an rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    codec.payload_type: codec
    for codec in (
        Codec(0, "PCMU", 8000), Codec(3, "GSM", 8000), Codec(4, "G723", 8000),
        Codec(5, "DVI4", 8000), Codec(6, "DVI4", 16000), Codec(7, "LPC", 8000),
        Codec(8, "PCMA", 8000),
        Codec(9, "G722", 8000),  # 16 kHz audio, 8000 by an error kept for compatibility
        Codec(10, "L16", 44100, 2), Codec(11, "L16", 44100), Codec(12, "QCELP", 8000),
        Codec(13, "CN", 8000), Codec(14, "MPA", 90000), Codec(15, "G728", 8000),
        Codec(16, "DVI4", 11025), Codec(17, "DVI4", 22050), Codec(18, "G729", 8000),
        Codec(25, "CelB", 90000), Codec(26, "JPEG", 90000), Codec(28, "nv", 90000),
        Codec(31, "H261", 90000), Codec(32, "MPV", 90000), Codec(33, "MP2T", 90000),
        Codec(34, "H263", 90000),
    )
}


def address_type(address: str) -> str:
    """The SDP address type of an address: ``IP6`` when it holds a colon, else ``IP4``."""
    return "IP6" if ":" in address else "IP4"


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 4566 §5.2): who made the description, and its version."""

    username: str  # "-" when the host has no notion of user ids
    session_id: str  # numeric text, kept as written
    version: int  # increases with every new description of the session
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def create(cls, address: str, session_id: int, username: str = "-") -> Origin:
        """A first origin for ``address``: version equal to the session id, as RFC 3264 §5
        suggests (both "SHOULD be" NTP timestamps; the caller chooses the number)."""
        return cls(username, str(session_id), session_id, "IN", address_type(address), address)

    def next_version(self) -> Origin:
        """The origin of the next description of this session (RFC 3264 §8: the version
        is one more than in the previous SDP; nothing else changes)."""
        return replace(self, version=self.version + 1)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


Attribute = tuple[str, str | None]  # a=name:value, or a=name (a property) with None


@dataclass(slots=True)
class Media:
    """One media section: the ``m=`` line and the lines after it (RFC 4566 §5.14)."""

    kind: str  # "audio", "video", "image", ...
    port: int  # 0: the stream is rejected or disabled (RFC 3264 §6, §8.2)
    proto: str  # "RTP/AVP", "RTP/SAVP", "udptl", ...
    formats: list[str]  # as on the m= line: payload type numbers for RTP
    connection: str | None = None  # this section's own c= address, if any
    attributes: list[Attribute] = field(default_factory=list)  # every a=, in order
    other_lines: list[tuple[str, str]] = field(default_factory=list)  # i= b= k=, in order
    port_count: int | None = None  # m=<kind> <port>/<count> (layered multicast)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value`` (None when absent or valueless)."""
        return _attribute(self.attributes, name)

    @property
    def codecs(self) -> list[Codec]:
        """The RTP payload formats in the order of the m= line.

        A format named by ``a=rtpmap`` takes that name; a static payload type
        without one takes the RFC 3551 name; a dynamic type without an rtpmap, or a
        format that is not a payload type at all (``t38``), names nothing and is
        left out.
        """
        rtpmaps: dict[int, tuple[str, int, int | None]] = {}
        fmtps: dict[str, str] = {}
        for name, value in self.attributes:
            if name == "rtpmap" and value is not None:
                match = _RTPMAP.fullmatch(value)
                if match is not None:
                    channels = int(match[4]) if match[4] else None
                    rtpmaps.setdefault(int(match[1]), (match[2], int(match[3]), channels))
            elif name == "fmtp" and value is not None:
                fmt, _, parameters = value.partition(" ")
                fmtps.setdefault(fmt, parameters)
        codecs = []
        for fmt in self.formats:
            if not is_digits(fmt):
                continue
            payload_type = int(fmt)
            if payload_type in rtpmaps:
                name, rate, channels = rtpmaps[payload_type]
                codecs.append(Codec(payload_type, name, rate, channels, fmtps.get(fmt)))
            elif payload_type in STATIC_PAYLOAD_TYPES:
                codecs.append(replace(STATIC_PAYLOAD_TYPES[payload_type], fmtp=fmtps.get(fmt)))
        return codecs

    def direction(self, session: SessionDescription | None) -> str:
        """sendrecv, sendonly, recvonly or inactive (RFC 4566 §6): this section's
        attribute, else that of ``session`` (the description it belongs to; None
        when there is none to inherit from), else sendrecv."""
        inherited = session.attributes if session is not None else []
        for attributes in (self.attributes, inherited):
            for name, _ in attributes:
                if name in DIRECTIONS:
                    return name
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds (RFC 4566 §6; RFC 8866 allows a fraction,
        rounded here)."""
        return _milliseconds(self.attribute("ptime"))

    @property
    def maxptime(self) -> int | None:
        """``a=maxptime`` in whole milliseconds (RFC 4566 §6)."""
        return _milliseconds(self.attribute("maxptime"))

    @property
    def rtcp_port(self) -> int | None:
        """The port of ``a=rtcp`` (RFC 3605); None without one, when RTCP goes to the
        RTP port + 1 (RFC 3550 §11)."""
        value = self.attribute("rtcp")
        return None if value is None else int(value.split(" ", 1)[0])

    def _lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        ranked = [(_MEDIA_TEXT_RANK[t], f"{t}={v}") for t, v in self.other_lines]
        if self.connection is not None:
            ranked.append((_MEDIA_C, _connection_line(self.connection)))
        ranked.extend((_MEDIA_A, _attribute_line(a)) for a in self.attributes)
        ranked.sort(key=lambda entry: entry[0])  # stable: each rank keeps its order
        m = " ".join([self.kind, port, self.proto, *self.formats])
        return [f"m={m}"] + [line for _, line in ranked]


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5): the session section and its media sections."""

    origin: Origin
    session_name: str = "-"  # RFC 3264 §5: "-" (or a space) for a unicast session
    connection: str | None = None  # the session-level c= address
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])  # t= r=
    attributes: list[Attribute] = field(default_factory=list)  # session-level a=
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= z= k=

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        """The description in ``data`` (LF or CRLF line ends; blank lines at the end
        are ignored).  Raises :class:`SdpError` naming the line that is wrong."""
        lines = _split(data)
        origin = _origin(_expect(lines, 1, "o", "the origin"))
        session_name = _expect(lines, 2, "s", "the session name").value
        sd = cls(origin, session_name, timing=[])
        index = 3
        while index < len(lines) and lines[index].type != "m":
            _session_line(sd, lines[index], lines[index - 1])
            index += 1
        if not sd.timing:
            where = str(lines[index]) if index < len(lines) else "the end"
            raise SdpError(f"no t= line before {where} (RFC 4566 §5: t= is required)")
        while index < len(lines):
            media = _media(lines[index])
            index += 1
            while index < len(lines) and lines[index].type != "m":
                _media_line(media, lines[index])
                index += 1
            sd.media.append(media)
        for media in sd.media:
            if media.port and sd.address_of(media) is None:
                raise SdpError(
                    f"m={media.kind} {media.port} has no c= line and the session has none"
                    " (RFC 4566 §5.7)"
                )
        return sd

    def __bytes__(self) -> bytes:
        ranked = [(_SESSION_TEXT_RANK[t], f"{t}={v}") for t, v in self.other_lines]
        if self.connection is not None:
            ranked.append((_SESSION_C, _connection_line(self.connection)))
        ranked.extend((_SESSION_TIMING, f"{t}={v}") for t, v in self.timing)
        ranked.extend((_SESSION_A, _attribute_line(a)) for a in self.attributes)
        ranked.sort(key=lambda entry: entry[0])  # stable: each rank keeps its order
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines += [line for _, line in ranked]
        for media in self.media:
            lines += media._lines()
        return (CRLF.join(lines) + CRLF).encode("utf-8")

    @property
    def audio(self) -> Media | None:
        """The first audio section with a non-zero port: the stream a call relays."""
        return next((m for m in self.media if m.kind == "audio" and m.port != 0), None)

    def address_of(self, media: Media) -> str | None:
        """Where ``media`` is received: its own c= address, else the session's."""
        return media.connection if media.connection is not None else self.connection

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level ``a=name:value``."""
        return _attribute(self.attributes, name)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    type: str
    value: str

    def __str__(self) -> str:
        text = f"{self.type}={self.value}"
        return f"line {self.number} {text[:60]!r}"


def _split(data: bytes) -> list[_Line]:
    """The lines of ``data`` as (number, type, value), with v=0 checked first."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError(f"not UTF-8 text (byte {exc.start})") from None
    raw = [line.removesuffix("\r") for line in text.split("\n")]
    while raw and raw[-1] == "":
        raw.pop()
    if not raw:
        raise SdpError("empty body")
    if not raw[0].startswith("v="):
        raise SdpError(f"line 1 {raw[0][:60]!r}: expected v=0, this is not an SDP body")
    if raw[0] != "v=0":
        raise SdpError(f"line 1 {raw[0][:60]!r}: unsupported SDP version, expected v=0")
    lines = []
    for number, line in enumerate(raw, 1):
        if len(line) < 2 or line[1] != "=":
            problem = "an empty line" if not line else f"{line[:60]!r}"
            raise SdpError(f"line {number} is {problem}, expected <type>=<value>")
        if line[0] not in _TYPE_LETTERS:
            raise SdpError(
                f"line {number} {line[:60]!r}: unknown type {line[0]!r} (RFC 4566 §5)"
            )
        lines.append(_Line(number, line[0], line[2:]))
    return lines


def _expect(lines: list[_Line], index: int, type_: str, what: str) -> _Line:
    if index >= len(lines):
        raise SdpError(f"the body ends before {type_}= ({what})")
    if lines[index].type != type_:
        raise SdpError(f"{lines[index]}: expected {type_}= ({what}), RFC 4566 §5 order")
    return lines[index]


def _origin(line: _Line) -> Origin:
    fields = line.value.split()
    if len(fields) != 6 or not is_digits(fields[1]) or not is_digits(fields[2]):
        raise SdpError(
            f"{line}: expected o=<username> <sess-id> <sess-version> <nettype> <addrtype>"
            " <address> with numeric id and version"
        )
    username, session_id, version, nettype, addrtype, address = fields
    return Origin(username, session_id, int(version), nettype, addrtype, address)


def _connection(line: _Line) -> str:
    fields = line.value.split()
    if len(fields) != 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
        raise SdpError(f"{line}: expected c=IN IP4 <address> or c=IN IP6 <address>")
    if address_type(fields[2]) != fields[1]:
        raise SdpError(f"{line}: {fields[2]!r} is not an {fields[1]} address")
    return fields[2]


def _parse_attribute(line: _Line) -> Attribute:
    name, colon, value = line.value.partition(":")
    if not name:
        raise SdpError(f"{line}: expected a=<name> or a=<name>:<value>")
    return (name, value if colon else None)


def _session_line(sd: SessionDescription, line: _Line, previous: _Line) -> None:
    if line.type == "c":
        if sd.connection is not None:
            raise SdpError(f"{line}: a second c= line in the session section")
        sd.connection = _connection(line)
    elif line.type == "t":
        if not _TIME.fullmatch(line.value):
            raise SdpError(f"{line}: expected t=<start time> <stop time>")
        sd.timing.append(("t", line.value))
    elif line.type == "r":
        if previous.type not in ("t", "r"):
            raise SdpError(f"{line}: r= must follow its t= line (RFC 4566 §5.10)")
        sd.timing.append(("r", line.value))
    elif line.type == "a":
        sd.attributes.append(_parse_attribute(line))
    elif line.type in _SESSION_TEXT_RANK:
        sd.other_lines.append((line.type, line.value))
    else:
        raise SdpError(f"{line}: a second {line.type}= line (RFC 4566 §5 order)")


def _media(line: _Line) -> Media:
    fields = line.value.split()
    if len(fields) < 4:
        raise SdpError(f"{line}: expected m=<media> <port> <proto> <fmt> ...")
    kind, port_text, proto, *formats = fields
    port, slash, count = port_text.partition("/")
    if not is_digits(port) or int(port) > 65535 or (slash and not is_digits(count)):
        raise SdpError(f"{line}: bad port {port_text!r}, expected 0-65535[/<number of ports>]")
    return Media(kind, int(port), proto, formats, port_count=int(count) if slash else None)


def _media_line(media: Media, line: _Line) -> None:
    if line.type == "c":
        if media.connection is not None:
            raise SdpError(f"{line}: a second c= line in m={media.kind}")
        media.connection = _connection(line)
    elif line.type == "a":
        attribute = _parse_attribute(line)
        _check_media_attribute(line, attribute)
        media.attributes.append(attribute)
    elif line.type in _MEDIA_TEXT_RANK:
        media.other_lines.append((line.type, line.value))
    else:
        raise SdpError(f"{line}: {line.type}= is not allowed in a media section (RFC 4566 §5)")


def _check_media_attribute(line: _Line, attribute: Attribute) -> None:
    """The attributes softswitch reads must say what their RFC says they say."""
    name, value = attribute
    if name == "rtpmap":
        match = _RTPMAP.fullmatch(value or "")
        if match is None or int(match[1]) > 127:
            raise SdpError(
                f"{line}: expected a=rtpmap:<payload type> <encoding>/<clock rate>"
                "[/<channels>] (RFC 4566 §6)"
            )
    elif name == "fmtp":
        if not value or value.startswith(" "):
            raise SdpError(f"{line}: expected a=fmtp:<format> <parameters> (RFC 4566 §6)")
    elif name in ("ptime", "maxptime"):
        if value is None or not _NUMBER.fullmatch(value.strip()) or float(value) <= 0:
            raise SdpError(f"{line}: expected a={name}:<milliseconds> (RFC 4566 §6)")
    elif name == "rtcp":
        match = _RTCP.fullmatch(value or "")
        if match is None or int(match[1]) > 65535:
            raise SdpError(
                f"{line}: expected a=rtcp:<port> [<nettype> <addrtype> <address>] (RFC 3605)"
            )


def _attribute(attributes: list[Attribute], name: str) -> str | None:
    return next((value for n, value in attributes if n == name and value is not None), None)


def _milliseconds(value: str | None) -> int | None:
    return None if value is None else round(float(value))


def _connection_line(address: str) -> str:
    return f"c=IN {address_type(address)} {address}"


def _attribute_line(attribute: Attribute) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


# ----------------------------------------------------------------------- offer/answer


def restrict(media: Media, names: Sequence[str] = ANCHORABLE) -> Media:
    """A copy of ``media`` offering only the codecs named in ``names``, in its order.

    The formats of other codecs leave the m= line with their rtpmap, fmtp and
    rtcp-fb lines (RFC 4566 §6: those apply to one format).  Raises
    :class:`NotAcceptable` when no codec but telephone-event is left: RFC 4733
    events alone carry no voice, and RFC 3264 §6 has an answerer that accepts no
    format of a stream reject it.
    """
    wanted = {name.casefold() for name in names}
    kept = [codec for codec in media.codecs if codec.name.casefold() in wanted]
    if not any(codec.name.casefold() != TELEPHONE_EVENT for codec in kept):
        offered = ", ".join(codec.name for codec in media.codecs) or " ".join(media.formats)
        raise NotAcceptable(
            f"m={media.kind} offers {offered}; softswitch accepts {', '.join(names)}"
        )
    numbers = {codec.payload_type for codec in kept}
    formats = [fmt for fmt in media.formats if is_digits(fmt) and int(fmt) in numbers]

    def keeps(attribute: Attribute) -> bool:
        name, value = attribute
        if name not in _FORMAT_ATTRIBUTES or value is None:
            return True
        fmt = value.split(" ", 1)[0]
        return fmt == "*" or fmt in formats

    return replace(
        media,
        formats=formats,
        attributes=[a for a in media.attributes if keeps(a)],
        other_lines=list(media.other_lines),
    )


def anchored(
    sd: SessionDescription, address: str, port: int, origin: Origin, rtcp: bool = True
) -> SessionDescription:
    """A copy of ``sd`` as softswitch sends it: media to ``address``, audio to ``port``.

    The session c= and every c= of a media section become ``address`` (the address
    type follows the address); the audio stream (:attr:`SessionDescription.audio`)
    gets ``port`` and every other m= section port 0, so it is rejected in an answer
    (RFC 3264 §6) or offered unused (§5.1): softswitch relays one audio stream.  An
    ``a=rtcp`` of the audio becomes port + 1 (RFC 3605), or goes when ``rtcp`` is
    false; ``origin`` becomes the o= line.  What described the other side's transport
    goes: ICE, SRTP and DTLS attributes, a=ssrc, a=rtcp-mux and k= lines.

    Raises :class:`NotAcceptable` when ``sd`` has no audio stream.
    """
    if not 0 < port < 65535:
        raise ValueError(f"RTP port {port} must be 1-65534 (RTCP uses port + 1)")
    audio = sd.audio
    if audio is None:
        raise NotAcceptable("no audio stream to relay", warn_code=304)

    def transport(attribute: Attribute) -> bool:
        name = attribute[0]
        return name in _TRANSPORT_ATTRIBUTES or name.startswith("ice-")

    media = []
    for section in sd.media:
        attributes = []
        for attribute in section.attributes:
            if transport(attribute):
                continue
            if attribute[0] == "rtcp":
                if section is not audio or not rtcp:
                    continue
                explicit = attribute[1] is not None and " " in attribute[1]
                value = f"{port + 1}"
                if explicit:
                    value += f" IN {address_type(address)} {address}"
                attribute = ("rtcp", value)
            attributes.append(attribute)
        media.append(replace(
            section,
            port=port if section is audio else 0,
            port_count=None,
            formats=list(section.formats),
            connection=None if section.connection is None else address,
            attributes=attributes,
            other_lines=[line for line in section.other_lines if line[0] != "k"],
        ))
    return replace(
        sd,
        origin=origin,
        connection=address,
        timing=list(sd.timing),
        attributes=[a for a in sd.attributes if not transport(a)],
        media=media,
        other_lines=[line for line in sd.other_lines if line[0] != "k"],
    )


def answer_codecs(offer: Media, answer: Media) -> list[Codec]:
    """The codecs of ``answer`` that ``offer`` has, in the answer's order, matched by
    encoding (name, clock rate, channels), not by payload type (RFC 3264 §6.1)."""
    offered = offer.codecs
    return [c for c in answer.codecs if any(c.same_format(o) for o in offered)]


def with_direction(media: Media, direction: str) -> Media:
    """A copy of ``media`` with ``direction`` as its one direction attribute, where the
    first one was, else last (RFC 3264 §8.4: hold is sendonly or inactive)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    attributes: list[Attribute] = []
    for name, value in media.attributes:
        if name not in DIRECTIONS:
            attributes.append((name, value))
        elif (direction, None) not in attributes:
            attributes.append((direction, None))
    if (direction, None) not in attributes:
        attributes.append((direction, None))
    return replace(
        media,
        formats=list(media.formats),
        attributes=attributes,
        other_lines=list(media.other_lines),
    )


def default_offer(address: str, port: int, origin: Origin, ptime: int = 20) -> SessionDescription:
    """softswitch's own offer (RFC 3264 §5), for a caller that sent none: PCMU, PCMA and
    RFC 4733 events 0-16 (DTMF and flash) on ``address``:``port``, sendrecv."""
    audio = Media(
        "audio",
        port,
        "RTP/AVP",
        ["0", "8", "101"],
        attributes=[
            ("rtpmap", "0 PCMU/8000"),
            ("rtpmap", "8 PCMA/8000"),
            ("rtpmap", "101 telephone-event/8000"),
            ("fmtp", "101 0-16"),
            ("ptime", str(ptime)),
            ("sendrecv", None),
        ],
    )
    return SessionDescription(origin, "-", address, media=[audio])
