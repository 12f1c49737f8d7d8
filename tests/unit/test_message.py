"""Parsing, building and serialising SIP messages (softswitch.sip.message).

Data: hand-written messages in ``tests/data`` (see its README for what each imitates)
and inline messages built on the INVITE of RFC 3261 §4 (Alice → Bob).  Malformed inputs
follow the categories of RFC 4475 §3.1.2 and §3.3; the published torture messages
themselves are run in test_torture_parse.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from softswitch.sip.message import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    MessageParseError,
    Request,
    Response,
    build_response,
    parse_message,
)
from softswitch.sip.uri import SipUri

DATA = Path(__file__).resolve().parents[1] / "data"


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --------------------------------------------------------------------------- helpers

# RFC 3261 §4, F1 (Alice's INVITE), without its body.
START = "INVITE sip:bob@biloxi.example.com SIP/2.0"
BASE = [
    ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"),
    ("Max-Forwards", "70"),
    ("To", "Bob <sip:bob@biloxi.example.com>"),
    ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
    ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
    ("CSeq", "314159 INVITE"),
    ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
]


def build(
    start: str = START,
    headers: list[tuple[str, str]] | None = None,
    *,
    replace: dict[str, str | None] | None = None,
    add: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
    content_length: str | None = "auto",
) -> bytes:
    """A message as bytes: BASE with fields replaced (None drops them) and added."""
    replace = replace or {}
    lines = [start]
    for name, value in headers if headers is not None else BASE:
        if name in replace:
            if replace[name] is None:
                continue
            value = replace[name]  # type: ignore[assignment]
        lines.append(f"{name}: {value}")
    lines.extend(f"{name}: {value}" for name, value in add)
    if content_length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response_bytes(start: str = "SIP/2.0 200 OK", **kw: object) -> bytes:
    return build(start, **kw)  # type: ignore[arg-type]


def fields(msg: Request | Response) -> dict[str, object]:
    """Everything a round trip must keep."""
    out: dict[str, object] = {
        "headers": [(n, v) for n, v in msg.headers if n != "Content-Length"],
        "body": msg.body,
        "vias": msg.vias,
        "from": msg.from_,
        "to": msg.to,
        "call_id": msg.call_id,
        "cseq": msg.cseq,
        "contacts": msg.contacts,
    }
    if isinstance(msg, Request):
        out.update(method=msg.method, uri=msg.uri, raw_uri=msg.raw_uri)
    else:
        out.update(status=msg.status, reason=msg.reason)
    return out


def parse_error(data: bytes, limits: Limits = DEFAULT_LIMITS) -> MessageParseError:
    with pytest.raises(MessageParseError) as info:
        parse_message(data, limits)
    return info.value


# --------------------------------------------------------------------------- round trips

FILES = {
    # file: (class, method or status, number of body octets)
    "sipp_uac_invite.sip": (Request, "INVITE", 129),
    "sipp_uac_ack.sip": (Request, "ACK", 0),
    "sipp_uac_bye.sip": (Request, "BYE", 0),
    "sipp_uas_100.sip": (Response, 100, 0),
    "sipp_uas_180.sip": (Response, 180, 0),
    "sipp_uas_200.sip": (Response, 200, 129),
    "rfc3665_cancel.sip": (Request, "CANCEL", 0),
    "rfc3665_register_auth.sip": (Request, "REGISTER", 0),
    "kamailio_options_ping.sip": (Request, "OPTIONS", 0),
    "baresip_invite_tcp_compact.sip": (Request, "INVITE", 225),
}


def test_every_data_file_is_listed() -> None:
    assert sorted(p.name for p in DATA.glob("*.sip")) == sorted(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_data_file_parses_as_expected(name: str) -> None:
    cls, what, body_len = FILES[name]
    msg = parse_message(data_file(name))
    assert type(msg) is cls
    assert (msg.method if isinstance(msg, Request) else msg.status) == what
    assert len(msg.body) == body_len
    assert msg.cseq.number > 0


@pytest.mark.parametrize("name", sorted(FILES))
def test_round_trip_keeps_every_field(name: str) -> None:
    first = parse_message(data_file(name))
    wire = bytes(first)
    second = parse_message(wire)
    assert fields(second) == fields(first)
    # Serialising is stable after one pass (folding and compact names normalised once).
    assert bytes(second) == wire


@pytest.mark.parametrize("name", sorted(FILES))
def test_datagram_octets_past_content_length_are_ignored(name: str) -> None:
    data = data_file(name)
    msg = parse_message(data + b"INVITE sip:x@y SIP/2.0\r\n\r\ntrailing")
    assert fields(msg) == fields(parse_message(data))


def test_sipp_invite_fields() -> None:
    msg = parse_message(data_file("sipp_uac_invite.sip"))
    assert isinstance(msg, Request)
    assert msg.uri == SipUri("sip", "127.0.0.1", user="service", port=5060)
    assert msg.branch == "z9hG4bK-4711-1-0"
    assert msg.from_.tag == "4711SIPpTag001"
    assert msg.to.tag is None
    assert msg.headers.get("content-length") == "129"  # SIPp pads with spaces
    assert msg.content_type == "application/sdp"
    assert msg.body.startswith(b"v=0\r\n") and msg.body.endswith(b"PCMU/8000\r\n")
    assert msg.max_forwards == 70
    assert [str(c.uri) for c in msg.contacts] == ["sip:sipp@127.0.1.1:5061"]


def test_folded_authorization_is_unfolded() -> None:
    msg = parse_message(data_file("rfc3665_register_auth.sip"))
    auth = msg.headers.get("authorization")
    assert auth is not None and "\r" not in auth and "\n" not in auth
    assert auth.startswith('Digest username="bob", realm="atlanta.example.com", nonce=')
    assert auth.endswith('response="dfe56131d1958046689d83306477ecc"')
    assert msg.uri == SipUri("sips", "ss2.biloxi.example.com")
    assert msg.top_via.transport == "TLS" and msg.top_via.port == 5061


def test_baresip_compact_headers_are_expanded() -> None:
    msg = parse_message(data_file("baresip_invite_tcp_compact.sip"))
    assert isinstance(msg, Request)
    assert msg.top_via.transport == "TCP" and msg.top_via.has_rport
    assert msg.call_id == "8c1e6f2a9d4b7c30"
    assert msg.from_.display_name == "Alice"
    assert msg.headers.values("supported") == ["replaces", "norefersub", "100rel"]
    assert msg.content_type == "application/sdp"
    assert msg.contacts[0].uri.param("transport") == "tcp"  # type: ignore[union-attr]
    names = [name for name, _ in msg.headers]
    for long in ("Via", "Contact", "To", "From", "Call-ID", "Supported", "Content-Type"):
        assert long in names
    wire = bytes(msg)
    assert b"\r\nv: " not in wire and b"\r\nVia: SIP/2.0/TCP " in wire
    assert b"\r\nContent-Length: 225\r\n\r\nv=0" in wire


# --------------------------------------------------------------------------- header names


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("f", "From"),
        ("t", "To"),
        ("v", "Via"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("I", "Call-ID"),
        ("V", "Via"),
        ("CALL-ID", "Call-ID"),
        ("call-id", "Call-ID"),
        ("vIa", "Via"),
        ("SUBJECT", "Subject"),
        ("content-TYPE", "Content-Type"),
    ],
)
def test_compact_and_case_insensitive_names(written: str, canonical: str) -> None:
    values = {
        "Call-ID": "a84b4c76e66710@pc33.atlanta.example.com",
        "Contact": "<sip:alice@pc33.atlanta.example.com>",
        "From": "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "To": "Bob <sip:bob@biloxi.example.com>",
        "Via": "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "Content-Length": "3",
        "Content-Type": "application/sdp",
        "Supported": "timer",
        "Subject": "lunch",
        "Content-Encoding": "gzip",
    }
    value = values[canonical]
    headers = [(n, v) for n, v in BASE if n != canonical] + [(written, value)]
    msg = parse_message(build(headers=headers, body=b"abc", content_length=None))
    for lookup in (canonical, canonical.lower(), canonical.upper(), written):
        assert msg.headers.get(lookup) == value
        assert lookup in msg.headers
    assert (canonical, value) in list(msg.headers)
    assert msg.body == b"abc"


def test_headers_multimap() -> None:
    h = Headers([("Via", "a"), ("v", "b"), ("Route", "<sip:r1>"), ("VIA", "c")])
    assert h.get_all("via") == ["a", "b", "c"]
    assert h.count("Via") == 3 and len(h) == 4
    h.add("via", "z", first=True)
    assert h.get("Via") == "z"
    copy = h.copy()
    copy.remove("via")
    assert "via" not in copy and h.count("via") == 4
    h.set_all("route", [])
    assert "route" not in h
    assert list(h) == [("Via", "z"), ("Via", "a"), ("Via", "b"), ("Via", "c")]


# --------------------------------------------------------------------------- list headers

VIA1 = "SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bK1"
VIA2 = "SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK2;received=192.0.2.9"
ROUTE = ["<sip:p1.example.com;lr>", '"Proxy, Two" <sip:p2.example.com;lr>']
CONTACT = ['"Smith, John" <sip:john@example.com>;q=0.5', "<sip:john@[::1]:5070>;expires=60"]


def test_comma_separated_and_repeated_values_agree() -> None:
    repeated = build(
        replace={"Via": None, "Contact": None},
        add=[
            ("Via", VIA1),
            ("Via", VIA2),
            ("Route", ROUTE[0]),
            ("Route", ROUTE[1]),
            ("Contact", CONTACT[0]),
            ("Contact", CONTACT[1]),
        ],
    )
    joined = build(
        replace={"Via": None, "Contact": None},
        add=[
            ("Via", f"{VIA1}, {VIA2}"),
            ("Route", ",".join(ROUTE)),
            ("Contact", f"{CONTACT[0]} ,\t{CONTACT[1]}"),
        ],
    )
    a, b = parse_message(repeated), parse_message(joined)
    for name, expected in (("via", [VIA1, VIA2]), ("route", ROUTE), ("contact", CONTACT)):
        assert a.headers.values(name) == expected
        assert b.headers.values(name) == expected
    assert a.vias == b.vias and len(a.vias) == 2
    assert a.contacts == b.contacts
    assert [c.display_name for c in a.contacts] == ["Smith, John", None]
    assert a.top_via.host == "proxy.example.com" and a.vias[1].host == "[2001:db8::1]"
    assert a.headers.count("via") == 2 and b.headers.count("via") == 1


def test_folded_via_list() -> None:
    msg = parse_message(build(replace={"Via": f"{VIA1},\r\n {VIA2}"}))
    assert [v.branch for v in msg.vias] == ["z9hG4bK1", "z9hG4bK2"]


# --------------------------------------------------------------------------- quoted strings


@pytest.mark.parametrize(
    ("written", "display"),
    [
        ('"Alice" <sip:alice@atlanta.example.com>', "Alice"),
        ('"" <sip:alice@atlanta.example.com>', ""),
        ('"\\"Al\\" Smith" <sip:alice@atlanta.example.com>', '"Al" Smith'),
        ('"back\\\\slash" <sip:alice@atlanta.example.com>', "back\\slash"),
        ('"semi;colon, comma <x>" <sip:alice@atlanta.example.com>', "semi;colon, comma <x>"),
        ('"Müller"<sip:alice@atlanta.example.com>', "Müller"),
        ("Alice  Smith <sip:alice@atlanta.example.com>", "Alice Smith"),
        ("<sip:alice@atlanta.example.com>", None),
        ("sip:alice@atlanta.example.com", None),
    ],
)
def test_display_names(written: str, display: str | None) -> None:
    msg = parse_message(build(replace={"From": written + ";tag=abc"}))
    assert msg.from_.display_name == display
    assert msg.from_.tag == "abc"
    assert str(msg.from_.uri) == "sip:alice@atlanta.example.com"
    assert parse_message(bytes(msg)).from_ == msg.from_


# --------------------------------------------------------------------------- IPv6 (RFC 5118)


def test_ipv6_references() -> None:
    data = build(
        "OPTIONS sip:bob@[2001:db8::10]:5070;transport=udp SIP/2.0",
        replace={
            "Via": "SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3;received=[2001:db8::9:255];rport=5061",  # noqa: E501
            "CSeq": "1 OPTIONS",
            "Contact": "<sip:alice@[::ffff:192.0.2.1]>",
        },
    )
    msg = parse_message(data)
    assert isinstance(msg, Request)
    assert isinstance(msg.uri, SipUri)
    assert (msg.uri.host, msg.uri.port, msg.uri.host_address) == (
        "[2001:db8::10]",
        5070,
        "2001:db8::10",
    )
    via = msg.top_via
    assert (via.host, via.port, via.received, via.rport) == (
        "[2001:db8::9:1]",
        5060,
        "[2001:db8::9:255]",
        "5061",
    )
    assert msg.contacts[0].uri.host == "[::ffff:192.0.2.1]"  # type: ignore[union-attr]
    assert fields(parse_message(bytes(msg))) == fields(msg)


# --------------------------------------------------------------------------- responses


def test_response_copies_the_fields_of_section_8_2_6_2() -> None:
    data = build(
        replace={"Via": f"{VIA1}, {VIA2}"},
        add=[
            ("Via", "SIP/2.0/UDP third.example.com;branch=z9hG4bK3"),
            ("Record-Route", "<sip:rr1.example.com;lr>"),
            ("Record-Route", "<sip:rr2.example.com;lr>"),
            ("Subject", "x"),
        ],
        body=b"v=0\r\n",
    )
    req = parse_message(data)
    assert isinstance(req, Request)
    resp = req.response(180, to_tag="b0b")
    assert resp.status == 180 and resp.reason == "Ringing"
    assert resp.headers.get_all("via") == req.headers.get_all("via")
    assert [v.branch for v in resp.vias] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
    assert resp.headers.get("from") == req.headers.get("from")
    assert resp.call_id == req.call_id and resp.cseq == req.cseq
    assert resp.to.tag == "b0b" and resp.to.uri == req.to.uri
    assert "subject" not in resp.headers and "contact" not in resp.headers
    assert "max-forwards" not in resp.headers
    again = parse_message(bytes(resp))
    assert isinstance(again, Response) and fields(again) == fields(resp)
    assert again.body == b""


def test_to_tag_only_when_absent_and_never_on_100() -> None:
    req = parse_message(build())
    assert isinstance(req, Request)
    assert req.response(100, to_tag="x").to.tag is None
    assert req.response(200, to_tag="x").to.tag == "x"
    assert req.response(486, to_tag="x").to.tag == "x"
    assert req.response(200).to.tag is None
    tagged = parse_message(build(replace={"To": "Bob <sip:bob@biloxi.example.com>;tag=orig"}))
    assert isinstance(tagged, Request)
    resp = tagged.response(200, to_tag="new")
    assert resp.to.tag == "orig"
    assert resp.headers.get("to") == "Bob <sip:bob@biloxi.example.com>;tag=orig"


@pytest.mark.parametrize(
    ("status", "copied"),
    [
        (100, False),
        (180, True),
        (183, True),
        (200, True),
        (202, True),
        (302, False),
        (404, False),
        (486, False),
        (500, False),
        (603, False),
    ],
)
def test_record_route_copied_for_18x_and_2xx_only(status: int, copied: bool) -> None:
    rr = ["<sip:rr1.example.com;lr>", "<sip:rr2.example.com;lr>"]
    req = parse_message(build(add=[("Record-Route", rr[0]), ("Record-Route", rr[1])]))
    assert isinstance(req, Request)
    resp = req.response(status, to_tag="t")
    assert resp.headers.get_all("record-route") == (rr if copied else [])


def test_response_reason_extra_and_body() -> None:
    req = parse_message(build())
    assert isinstance(req, Request)
    resp = req.response(
        488,
        "Not Here",
        to_tag="t",
        extra=[("Warning", '399 host "no"'), ("Accept", "application/sdp")],
        body=b"hello",
    )
    wire = bytes(resp)
    assert wire.startswith(b"SIP/2.0 488 Not Here\r\n")
    assert b'\r\nWarning: 399 host "no"\r\n' in wire
    assert wire.endswith(b"\r\nContent-Length: 5\r\n\r\nhello")
    assert req.response(606).reason == "Not Acceptable"
    assert req.response(299).reason == "Unknown"


# --------------------------------------------------------------------------- Content-Length


@pytest.mark.parametrize("declared", ["  129", "5", "0", None])
def test_content_length_always_recomputed(declared: str | None) -> None:
    body = b"v=0\r\ns=-\r\n"
    if declared is None:  # a datagram without Content-Length: the body runs to its end
        msg = parse_message(build(body=body, content_length=None))
        assert msg.body == body
    else:
        msg = parse_message(build(body=body + b"x" * 200, content_length=declared))
        assert len(msg.body) == int(declared)
    msg.body = b"new body"
    wire = bytes(msg)
    assert wire.count(b"Content-Length") == 1
    assert wire.endswith(b"\r\nContent-Length: 8\r\n\r\nnew body")


def test_compact_content_length_rendered_once() -> None:
    msg = parse_message(build(add=[("l", "3")], body=b"abc", content_length=None))
    assert bytes(msg).lower().count(b"content-length") == 1
    assert bytes(msg).endswith(b"Content-Length: 3\r\n\r\nabc")


def test_bare_lf_message_with_crlf_in_body() -> None:
    # The earliest blank line ends the header section, even if the body holds CRLFCRLF.
    body = b"--b\r\n\r\npart\r\n"
    data = build(body=body).replace(b"\r\n\r\n", b"\n\n", 1).replace(b"\r\n", b"\n", 8)
    data = data[: len(data) - len(body)] + body
    assert b"\r\n" not in data[: data.find(b"\n\n")]
    msg = parse_message(data)
    assert msg.body == body
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"


def test_leading_crlfs_before_the_start_line_are_ignored() -> None:
    assert fields(parse_message(b"\r\n\r\n" + build())) == fields(parse_message(build()))


# --------------------------------------------------------------------------- limits


def test_message_over_max_bytes_is_513_and_answerable() -> None:
    data = build(body=b"x" * 600)
    parse_message(data, Limits(max_message_bytes=len(data)))
    err = parse_error(data, Limits(max_message_bytes=len(data) - 1))
    assert (err.status_code, err.reason) == (513, "Message Too Large")
    assert err.headers is not None
    resp = build_response(err.headers, err.status_code, err.reason)
    assert resp.call_id == "a84b4c76e66710@pc33.atlanta.example.com"


def test_too_many_headers() -> None:
    data = build()  # 7 fields + Content-Length
    parse_message(data, Limits(max_headers=8))
    err = parse_error(data, Limits(max_headers=7))
    assert (err.status_code, err.reason) == (400, "Too Many Headers")
    many = build(add=[("X-Filler", str(n)) for n in range(200)])
    assert parse_error(many).reason == "Too Many Headers"


def test_overlong_header_line() -> None:
    line = "Subject: " + "a" * 91  # 100 characters
    data = build(add=[("Subject", "a" * 91)])
    assert len(line) == 100
    parse_message(data, Limits(max_line_bytes=100))
    err = parse_error(data, Limits(max_line_bytes=99))
    assert err.status_code == 400
    err = parse_error(build(add=[("X-Long", "b" * 9000)]))
    assert err.status_code == 400


def test_overlong_folded_continuation_line() -> None:
    data = build(replace={"Subject": None}, add=[("Subject", "short\r\n " + "c" * 200)])
    err = parse_error(data, Limits(max_line_bytes=150))
    assert err.status_code == 400


# --------------------------------------------------------------------------- malformed

# (case id, message bytes, status, answerable: headers readable for a 4xx)
R = build
MALFORMED: list[tuple[str, bytes, int, bool]] = [
    # start lines (RFC 4475 §3.1.2.7-10)
    ("no-version", R("INVITE sip:bob@biloxi.example.com"), 400, True),
    ("two-spaces", R("INVITE  sip:bob@biloxi.example.com SIP/2.0"), 400, True),
    ("trailing-space", R(START + " "), 400, True),
    ("tab-separated", R("INVITE\tsip:bob@biloxi.example.com\tSIP/2.0"), 400, True),
    ("four-parts", R(START + " extra"), 400, True),
    ("bad-method", R("INV@TE sip:bob@biloxi.example.com SIP/2.0"), 400, True),
    ("empty-start-line", R(""), 400, True),
    ("angle-ruri", R("INVITE <sip:bob@biloxi.example.com> SIP/2.0"), 400, True),
    ("no-scheme", R("INVITE bob@biloxi.example.com SIP/2.0"), 400, True),
    ("http", R("GET / HTTP/1.1"), 400, True),
    # versions (RFC 4475 §3.1.2.16)
    ("sip-7.0", R("INVITE sip:bob@biloxi.example.com SIP/7.0"), 505, True),
    ("sip-2.1", R("INVITE sip:bob@biloxi.example.com SIP/2.1"), 505, True),
    ("sip-1.0", R("INVITE sip:bob@biloxi.example.com SIP/1.0"), 505, True),
    ("sip-no-slash", R("INVITE sip:bob@biloxi.example.com SIP2.0"), 400, True),
    ("http-version", R("INVITE sip:bob@biloxi.example.com HTTP/1.1"), 400, True),
    # status lines: responses are never answered
    ("status-2-digits", response_bytes("SIP/2.0 20 OK"), 400, False),
    ("status-4-digits", response_bytes("SIP/2.0 2000 OK"), 400, False),
    ("status-099", response_bytes("SIP/2.0 099 Low"), 400, False),
    ("status-700", response_bytes("SIP/2.0 700 High"), 400, False),
    ("status-letters", response_bytes("SIP/2.0 2OO OK"), 400, False),
    ("status-huge", response_bytes("SIP/2.0 4294967301 Big"), 400, False),
    ("status-superscript", response_bytes("SIP/2.0 ²²² OK"), 400, False),
    ("status-arabic", response_bytes("SIP/2.0 ٢٠٠ OK"), 400, False),
    ("status-version", response_bytes("SIP/3.0 200 OK"), 400, False),
    ("status-missing", response_bytes("SIP/2.0"), 400, False),
    ("response-missing-via", response_bytes(replace={"Via": None}), 400, False),
    # CSeq (RFC 4475 §3.1.2.4, §3.1.2.17)
    ("cseq-letters", R(replace={"CSeq": "abc INVITE"}), 400, True),
    ("cseq-no-method", R(replace={"CSeq": "314159"}), 400, True),
    ("cseq-three-parts", R(replace={"CSeq": "1 INVITE x"}), 400, True),
    ("cseq-negative", R(replace={"CSeq": "-1 INVITE"}), 400, True),
    ("cseq-2**32", R(replace={"CSeq": "4294967296 INVITE"}), 400, True),
    ("cseq-bad-method", R(replace={"CSeq": "1 INV@TE"}), 400, True),
    ("cseq-mismatch", R(replace={"CSeq": "1 BYE"}), 400, True),
    ("cseq-case-mismatch", R(replace={"CSeq": "1 invite"}), 400, True),
    ("cseq-superscript", R(replace={"CSeq": "² INVITE"}), 400, True),
    ("cseq-empty", R(replace={"CSeq": ""}), 400, True),
    # mandatory fields (RFC 4475 §3.3.1)
    ("missing-via", R(replace={"Via": None}), 400, True),
    ("missing-from", R(replace={"From": None}), 400, True),
    ("missing-to", R(replace={"To": None}), 400, True),
    ("missing-call-id", R(replace={"Call-ID": None}), 400, True),
    ("missing-cseq", R(replace={"CSeq": None}), 400, True),
    ("empty-via", R(replace={"Via": ""}), 400, True),
    # single-valued fields more than once (RFC 4475 §3.3.8)
    ("two-call-ids", R(add=[("Call-ID", "other@x")]), 400, True),
    ("same-call-id-twice", R(add=[("i", "a84b4c76e66710@pc33.atlanta.example.com")]), 400, True),
    ("two-cseqs", R(add=[("CSeq", "314160 INVITE")]), 400, True),
    ("two-froms", R(add=[("f", "<sip:eve@example.com>;tag=2")]), 400, True),
    ("two-tos", R(add=[("To", "<sip:eve@example.com>")]), 400, True),
    ("two-max-forwards", R(add=[("Max-Forwards", "69")]), 400, True),
    ("two-equal-content-lengths", R(add=[("l", "0")]), 400, True),
    # Content-Length (RFC 4475 §3.1.2.2, §3.1.2.3, §3.3.9)
    ("cl-negative", R(content_length="-999"), 400, True),
    ("cl-garbage", R(content_length="abc"), 400, True),
    ("cl-empty", R(content_length=""), 400, True),
    ("cl-two-numbers", R(content_length="1 2"), 400, True),
    ("cl-hex", R(content_length="0x10"), 400, True),
    ("cl-superscript", R(content_length="²"), 400, True),
    ("cl-conflicting", R(add=[("Content-Length", "5")], body=b"hello!"), 400, True),
    ("cl-larger-than-body", R(content_length="9999", body=b"short"), 400, True),
    # Max-Forwards
    ("mf-letters", R(replace={"Max-Forwards": "seventy"}), 400, True),
    ("mf-negative", R(replace={"Max-Forwards": "-1"}), 400, True),
    ("mf-huge", R(replace={"Max-Forwards": "123456789012"}), 400, True),
    # Via
    ("via-no-host", R(replace={"Via": "SIP/2.0/UDP"}), 400, True),
    ("via-version", R(replace={"Via": "SIP/3.0/UDP pc33.atlanta.example.com"}), 400, True),
    ("via-protocol", R(replace={"Via": "HTTP/2.0/UDP pc33.atlanta.example.com"}), 400, True),
    ("via-no-slashes", R(replace={"Via": "SIP 2.0 UDP pc33.atlanta.example.com"}), 400, True),
    ("via-bad-transport", R(replace={"Via": "SIP/2.0/U@P pc33.atlanta.example.com"}), 400, True),
    ("via-port-range", R(replace={"Via": "SIP/2.0/UDP pc33.atlanta.example.com:65536"}), 400, True),
    (
        "via-port-letters",
        R(replace={"Via": "SIP/2.0/UDP pc33.atlanta.example.com:50x0"}),
        400,
        True,
    ),
    (
        "via-port-superscript",
        R(replace={"Via": "SIP/2.0/UDP pc33.atlanta.example.com:²"}),
        400,
        True,
    ),
    ("via-space-in-host", R(replace={"Via": "SIP/2.0/UDP pc33 atlanta.example.com"}), 400, True),
    ("via-bare-ipv6", R(replace={"Via": "SIP/2.0/UDP 2001:db8::1;branch=z9hG4bK1"}), 400, True),
    ("via-open-ipv6", R(replace={"Via": "SIP/2.0/UDP [2001:db8::1;branch=z9hG4bK1"}), 400, True),
    ("via-empty-branch", R(replace={"Via": "SIP/2.0/UDP h.example.com;branch="}), 400, True),
    # stray separators (RFC 4475 §3.1.2.1)
    (
        "via-double-semicolon",
        R(replace={"Via": "SIP/2.0/UDP h.example.com;;branch=z9hG4bK1"}),
        400,
        True,
    ),
    (
        "via-trailing-semicolon",
        R(replace={"Via": "SIP/2.0/UDP h.example.com;branch=z9hG4bK1;"}),
        400,
        True,
    ),
    ("contact-stray", R(replace={"Contact": '"Joe" <sip:joe@example.org>;;,;;,;'}), 400, True),
    (
        "from-trailing-semicolon",
        R(replace={"From": "<sip:alice@atlanta.example.com>;tag=1;"}),
        400,
        True,
    ),
    ("to-junk-after-uri", R(replace={"To": "<sip:bob@biloxi.example.com> junk"}), 400, True),
    ("to-double-close", R(replace={"To": "<sip:bob@biloxi.example.com>>"}), 400, True),
    # quotes and angle brackets (RFC 4475 §3.1.2.6, §3.1.2.13, §3.1.2.15)
    (
        "unterminated-quote",
        R(replace={"From": '"Alice <sip:alice@atlanta.example.com>;tag=1'}),
        400,
        True,
    ),
    ("quote-escaped-end", R(replace={"To": '"Bob\\" <sip:bob@biloxi.example.com>'}), 400, True),
    ("unterminated-angle", R(replace={"To": "Bob <sip:bob@biloxi.example.com"}), 400, True),
    (
        "display-not-token",
        R(replace={"To": "Bell, Alexander <sip:a.g.bell@bell-tel.com>"}),
        400,
        True,
    ),
    (
        "addr-spec-with-headers",
        R(replace={"Contact": "sip:user@example.com?Route=%3Csip:x%3E"}),
        400,
        True,
    ),
    ("quoted-without-uri", R(replace={"To": '"Bob" sip:bob@biloxi.example.com'}), 400, True),
    # spaces inside URIs (RFC 4475 §3.1.2.8, §3.1.2.14)
    ("ruri-space", R("INVITE sip:bob @biloxi.example.com SIP/2.0"), 400, True),
    ("to-uri-space", R(replace={"To": "<sip:bob @biloxi.example.com>"}), 400, True),
    ("from-uri-padding", R(replace={"From": "< sip:alice@atlanta.example.com >;tag=1"}), 400, True),
    # IPv6 (RFC 5118 §4.2, §4.10)
    ("ruri-bare-ipv6", R("INVITE sip:bob@2001:db8::10 SIP/2.0"), 400, True),
    ("ruri-bad-ipv6", R("INVITE sip:bob@[2001:db8::zz] SIP/2.0"), 400, True),
    ("ruri-three-colons", R("INVITE sip:bob@[2001:db8:::192.0.2.1] SIP/2.0"), 400, True),
    ("ruri-open-ipv6", R("INVITE sip:bob@[2001:db8::10 SIP/2.0"), 400, True),
    ("ruri-ipv6-junk", R("INVITE sip:bob@[2001:db8::10]x SIP/2.0"), 400, True),
    ("contact-ipv4-brackets", R(replace={"Contact": "<sip:alice@[192.0.2.1]>"}), 400, True),
    # URI details
    ("ruri-headers", R("INVITE sip:bob@biloxi.example.com?Subject=hi SIP/2.0"), 400, True),
    (
        "ruri-escaped-headers",
        R("INVITE sip:bob@biloxi.example.com?Route=%3Csip:x%3E SIP/2.0"),
        400,
        True,
    ),
    ("ruri-empty-user", R("INVITE sip:@biloxi.example.com SIP/2.0"), 400, True),
    ("ruri-empty-host", R("INVITE sip:bob@ SIP/2.0"), 400, True),
    ("ruri-port-letters", R("INVITE sip:bob@biloxi.example.com:x SIP/2.0"), 400, True),
    ("ruri-empty-param", R("INVITE sip:bob@biloxi.example.com; SIP/2.0"), 400, True),
    ("ruri-quote", R('INVITE sip:"bob"@biloxi.example.com SIP/2.0'), 400, True),
    ("ruri-empty-tel", R("INVITE tel: SIP/2.0"), 400, True),
]
MALFORMED_UNANSWERABLE: list[tuple[str, bytes]] = [
    # the header section itself cannot be read
    ("space-in-name", build(add=[("Bad Header", "x")])),
    ("no-colon", build(START).replace(b"Max-Forwards: 70", b"Max-Forwards 70")),
    ("empty-name", build(add=[("", "value")])),
    ("name-not-token", build(add=[("X@Y", "1")])),
    ("continuation-first", build(START).replace(b"\r\nVia", b"\r\n Via", 1)),
]


@pytest.mark.parametrize(
    ("data", "status", "answerable"),
    [pytest.param(d, s, a, id=i) for i, d, s, a in MALFORMED],
)
def test_malformed(data: bytes, status: int, answerable: bool) -> None:
    err = parse_error(data)
    assert err.status_code == status
    assert err.reason == ("Version Not Supported" if status == 505 else "Bad Request")
    if not answerable:
        assert err.headers is None
        return
    assert err.headers is not None
    # The caller can still answer when the fields §8.2.6.2 copies are readable.
    needed = ("via", "from", "to", "call-id", "cseq")
    if all(err.headers.count(n) == 1 or (n == "via" and err.headers.get(n)) for n in needed):
        resp = build_response(err.headers, err.status_code, err.reason, to_tag="x")
        assert bytes(resp).startswith(f"SIP/2.0 {status} ".encode())


@pytest.mark.parametrize("data", [pytest.param(d, id=i) for i, d in MALFORMED_UNANSWERABLE])
def test_unreadable_header_section(data: bytes) -> None:
    err = parse_error(data)
    assert err.status_code == 400
    assert err.headers is None


def test_505_can_be_answered() -> None:
    err = parse_error(build("INVITE sip:bob@biloxi.example.com SIP/7.0"))
    assert err.headers is not None
    resp = build_response(err.headers, err.status_code, err.reason, to_tag="v")
    assert resp.status == 505 and resp.reason == "Version Not Supported"
    assert resp.headers.get("cseq") == "314159 INVITE"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"\x00",
        b"\x00" * 100,
        bytes(range(256)),
        bytes(range(255, -1, -1)),
        b"\xff\xfe\xfd" * 50,
        b"SIP/2.0",
        b"SIP/",
        b"INVITE",
        b"INVITE sip:bob@biloxi.example.com SIP/2.0",
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\r\n",
        b":::\r\n:::\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ],
)
def test_garbage_is_a_parse_error(data: bytes) -> None:
    err = parse_error(data)
    assert err.status_code == 400


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(out) + 1)
        op = rng.random()
        if op < 0.35 and out:
            out[pos % len(out)] = rng.randrange(256)
        elif op < 0.7:
            out[pos:pos] = rng.choice(
                [
                    b":",
                    b";",
                    b",",
                    b"<",
                    b">",
                    b'"',
                    b"\\",
                    b"[",
                    b"]",
                    b"@",
                    b" ",
                    b"\r\n",
                    b"\r\n ",
                    b"%",
                    b"/",
                    b"?",
                    b"=",
                    b"9",
                    b"\x00",
                    "²".encode(),
                    b"\xff",
                ]
            )
        else:
            del out[pos : pos + rng.randint(1, 12)]
    return bytes(out)


def test_random_bytes_only_ever_raise_message_parse_error() -> None:
    rng = random.Random(4475)
    seeds = [data_file(n) for n in sorted(FILES)] + [build()]
    raised = parsed = 0
    for n in range(1500):
        if n < 300:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        elif n < 400:  # random bytes behind a plausible start line
            data = START.encode() + b"\r\n" + bytes(rng.randrange(256) for _ in range(200))
        else:
            data = _mutate(rng, rng.choice(seeds))
        try:
            parse_message(data)
            parsed += 1
        except MessageParseError as exc:
            assert 400 <= exc.status_code < 600
            raised += 1
    # Both outcomes happen, so the loop exercised the parser rather than one early exit.
    assert raised > 300 and parsed > 50
