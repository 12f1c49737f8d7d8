"""URIs, addresses and Via values (RFC 3261 §19.1, §20.10, §20.42, §25.1; RFC 3966; RFC 5118).

Values are immutable and render back with ``str()``.  The parsers are strict where a
mistake would change meaning (whitespace inside a URI, empty parameters, an IPv6
address without brackets, an addr-spec that needed angle brackets) and liberal where
RFC 4475 asks for robustness (linear whitespace around ``;``, ``=`` and ``/``, header
folding, ``received=[v6]``).  Every failure is a :class:`ParseError` (400).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote

from .errors import ParseError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  §25.1
TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# Characters that can never appear unescaped inside a SIP URI.
_URI_FORBIDDEN = frozenset(' \t\r\n<>"')
_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_LWS = " \t\r\n"
_LWS_SET = frozenset(_LWS)

Params = tuple[tuple[str, str | None], ...]


def is_token(text: str) -> bool:
    return bool(text) and TOKEN_CHARS.issuperset(text)


def is_digits(text: str) -> bool:
    """1*DIGIT with ASCII digits only (``str.isdigit`` also accepts "²" and "٣")."""
    return text.isascii() and text.isdigit()


def _param(params: Params, name: str) -> str | None:
    name = name.lower()
    for key, value in params:
        if key.lower() == name:
            return value
    return None


def _has_param(params: Params, name: str) -> bool:
    name = name.lower()
    return any(key.lower() == name for key, _ in params)


def _render_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _with_param(params: Params, name: str, value: str | None) -> Params:
    lowered = name.lower()
    kept = tuple((k, v) for k, v in params if k.lower() != lowered)
    return kept + ((name, value),)


def validate_host(host: str) -> None:
    """host = hostname / IPv4address / IPv6reference (§25.1, RFC 5118 §4.2)."""
    if not host:
        raise ParseError("empty host")
    if host[0] == "[":
        if host[-1] != "]":
            raise ParseError(f"unterminated IPv6 reference {host!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ParseError(f"invalid IPv6 reference {host!r}") from None
        return
    if not _HOSTNAME_CHARS.issuperset(host):
        raise ParseError(f"invalid host {host!r} (an IPv6 address needs [brackets])")


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]``, IPv6 in brackets; validates both parts."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and rest[0] != ":":
            raise ParseError(f"unexpected {rest!r} after host")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    validate_host(host)
    port: int | None = None
    if port_text is not None:
        if not is_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
            raise ParseError(f"invalid port {port_text!r}")
        port = int(port_text)
    return host, port


def strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


def parse_params(text: str, *, what: str) -> Params:
    """Parse ``*( SEMI generic-param )`` with optional LWS around ``;`` and ``=``.

    ``text`` starts at the first ``;`` (or is empty).  Quoted-string values keep their
    quotes.  An empty parameter (``;;``) is an error: RFC 4475 §3.1.2.1.
    """
    params: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in _LWS:
            i += 1
        if i >= n:
            break
        if text[i] != ";":
            raise ParseError(f"unexpected {text[i:i+10]!r} in {what} parameters")
        i += 1
        while i < n and text[i] in _LWS:
            i += 1
        start = i
        while i < n and text[i] in TOKEN_CHARS:
            i += 1
        name = text[start:i]
        if not name:
            raise ParseError(f"empty parameter in {what}")
        while i < n and text[i] in _LWS:
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _LWS:
                i += 1
            if i < n and text[i] == '"':
                end = _quoted_end(text, i)
                value = text[i:end]
                i = end
            else:
                start = i
                # token, host or IPv6 reference ([..] allowed: RFC 5118 §4.5)
                while i < n and (text[i] in TOKEN_CHARS or text[i] in "[]:"):
                    i += 1
                value = text[start:i]
                if not value:
                    raise ParseError(f"empty value for parameter {name!r} in {what}")
        params.append((name, value))
    return tuple(params)


def _quoted_end(text: str, start: int) -> int:
    """Index just past the quoted-string starting at ``start`` (which is ``"``)."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise ParseError("unterminated quoted string")


def unquote_string(quoted: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved (§25.1)."""
    inner = quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner):
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(inner[i])
            i += 1
    return "".join(out)


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_commas(value: str) -> list[str]:
    """Split a comma-separated header value outside quotes and angle brackets (§7.3.1)."""
    parts: list[str] = []
    depth_angle = 0
    in_quote = False
    start = 0
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == "<":
            depth_angle += 1
        elif c == ">":
            depth_angle -= 1
        elif c == "," and depth_angle == 0:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    if in_quote:
        raise ParseError("unterminated quoted string")
    parts.append(value[start:].strip())
    return parts


@dataclass(frozen=True, slots=True)
class SipUri:
    """``sip:`` / ``sips:`` URI (§19.1.1).  ``user`` stays escaped as received."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: str | None = None

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        return SipUri(
            self.scheme, self.host, self.user, self.password, self.port,
            _with_param(self.params, name, value), self.headers,
        )

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unquote(self.user)

    @property
    def transport(self) -> str:
        value = self.param("transport")
        return value.lower() if value else ("tls" if self.scheme == "sips" else "udp")

    @property
    def host_address(self) -> str:
        """The host without IPv6 brackets, as sockets want it."""
        return strip_brackets(self.host)

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{_render_params(self.params)}{headers}"


@dataclass(frozen=True, slots=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a number and its parameters."""

    number: str
    params: Params = ()
    scheme: str = field(default="tel")

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def __str__(self) -> str:
        return f"tel:{self.number}{_render_params(self.params)}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme: parsed so it can be answered 416 (RFC 4475 §3.3.2)."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme or not scheme[0].isalpha() or not all(
        c in _SCHEME_CHARS for c in scheme
    ):
        raise ParseError(f"not a URI: {text[:80]!r}")
    if not _URI_FORBIDDEN.isdisjoint(text):
        raise ParseError(f"whitespace or delimiter inside URI {text[:80]!r}")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return _parse_sip_uri(lowered, rest)
    if lowered == "tel":
        number, semi, params = rest.partition(";")
        if not number:
            raise ParseError("empty tel: number")
        return TelUri(number, parse_params(";" + params, what="tel URI") if semi else ())
    return AbsoluteUri(scheme, rest)


def _parse_sip_uri(scheme: str, rest: str) -> SipUri:
    # The user part may hold ';', '?' and escaped '@' (RFC 4475 §3.1.1.9, §3.1.1.2) but
    # never a bare '@', so the first '@' ends the userinfo.
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, sep, password_ = userinfo.partition(":")
        password = password_ if sep else None
        if not user:
            raise ParseError("empty user part in SIP URI")
    headers: str | None = None
    qmark = rest.find("?")
    if qmark >= 0:
        rest, headers = rest[:qmark], rest[qmark + 1 :]
    hostport, semi, params_text = rest.partition(";")
    host, port = split_hostport(hostport)
    params = parse_params(";" + params_text, what="URI") if semi else ()
    return SipUri(scheme, host, user, password, port, params, headers)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``[display-name] <uri> *(;param)`` or ``addr-spec *(;param)`` (§20.10, §20.20, §20.39)."""

    uri: Uri
    display: str | None = None  # as written: a quoted-string keeps its quotes
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return _param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return NameAddr(self.uri, self.display, _with_param(self.params, name, value))

    @property
    def display_name(self) -> str | None:
        if self.display is None:
            return None
        return unquote_string(self.display) if self.display.startswith('"') else self.display

    def __str__(self) -> str:
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{_render_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    text = value.strip(_LWS)
    if not text:
        raise ParseError("empty address")
    display: str | None = None
    if text[0] == '"':
        end = _quoted_end(text, 0)
        display = text[:end]
        rest = text[end:].lstrip(_LWS)
        if not rest.startswith("<"):
            raise ParseError("display name not followed by <uri>")
    else:
        rest = text
        lt = text.find("<")
        if lt > 0:
            display = " ".join(text[:lt].split())
            if not all(is_token(word) for word in display.split(" ")):
                raise ParseError(f"display name {display!r} must be tokens or a quoted string")
            rest = text[lt:]
    if rest.startswith("<"):
        gt = rest.find(">")
        if gt < 0:
            raise ParseError("unterminated <uri>")
        uri = parse_uri(rest[1:gt])
        params = parse_params(rest[gt + 1 :], what="address")
        return NameAddr(uri, display, params)
    # addr-spec: parameters after the first ';' belong to the header, not the URI, and a
    # URI with ',', '?' or ';' needs angle brackets (§20.10; RFC 4475 §3.1.2.13).
    uri_text, semi, params_text = rest.partition(";")
    uri_text = uri_text.rstrip(_LWS)
    if "?" in uri_text or "," in uri_text:
        raise ParseError(f"URI {uri_text[:60]!r} must be enclosed in <>")
    params = parse_params(";" + params_text, what="address") if semi else ()
    return NameAddr(parse_uri(uri_text), None, params)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (§20.42; RFC 3581 ``rport``/``received``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _param(self.params, "received")

    @property
    def rport(self) -> str | None:
        return _param(self.params, "rport")

    @property
    def has_rport(self) -> bool:
        return _has_param(self.params, "rport")

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        params = list(self.params)
        lowered = name.lower()
        for i, (key, _) in enumerate(params):
            if key.lower() == lowered:
                params[i] = (key, value)
                break
        else:
            params.append((name, value))
        return Via(self.transport, self.host, self.port, tuple(params))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{_render_params(self.params)}"


def parse_via(value: str) -> Via:
    """One via-parm: ``SIP / 2.0 / UDP host[:port] *(;param)`` with LWS around ``/``."""
    parts = value.split("/", 2)
    if len(parts) != 3:
        raise ParseError(f"malformed Via {value[:60]!r}")
    name, version, rest = (p.strip(_LWS) for p in parts)
    if name.upper() != "SIP" or version != "2.0":
        raise ParseError(f"unknown Via protocol {name}/{version}")
    i = 0
    while i < len(rest) and rest[i] not in _LWS:
        i += 1
    transport = rest[:i]
    if not is_token(transport):
        raise ParseError(f"bad Via transport {transport!r}")
    rest = rest[i:].lstrip(_LWS)
    semi = rest.find(";")
    sent_by = (rest if semi < 0 else rest[:semi]).rstrip(_LWS)
    # sent-by may carry LWS around ':' in theory; in practice a space inside is an error.
    if not sent_by or not _LWS_SET.isdisjoint(sent_by):
        raise ParseError(f"bad Via sent-by {sent_by!r}")
    host, port = split_hostport(sent_by)
    params = parse_params(rest[semi:], what="Via") if semi >= 0 else ()
    return Via(transport.upper(), host, port, params)
