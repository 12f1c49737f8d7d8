"""The IETF torture messages (RFC 4475, RFC 5118) through the parser and the framer.

The messages live in ``shared/sip-torture`` beside the project (see its README and
SOURCES.md for provenance); ``INDEX.tsv`` gives, per file, its class (valid/invalid),
the verdict (accept, reject, drop, either) and the preferred answers over UDP and TCP.

These are parse-level checks only.  Answers an endpoint decides after a successful
parse (501 for unknown methods, 416 for unknown schemes, 420, 415, 483...) are tested
with the endpoint; here a status code in the preferred list counts only if the parser
itself can produce it: 400 (malformed) or 505 (version).
"""

from __future__ import annotations

import pytest
from torture_corpus import TORTURE, index_rows

from softswitch.sip.errors import ParseError
from softswitch.sip.message import (
    MessageParseError,
    Request,
    Response,
    StreamFramer,
    build_response,
    parse_message,
)
from softswitch.sip.uri import SipUri

PARSER_CODES = {400, 505}  # what parse_message itself answers (513 needs a huge message)
RESPONSES = {"unreason.dat", "noreason.dat", "scalarlg.dat", "bigcode.dat", "bcast.dat"}


ROWS = index_rows()


def allowed(verdict_column: str) -> tuple[set[int], bool, bool]:
    """(status codes the parser may raise, may it parse, may it stay silent)."""
    tokens = verdict_column.split("|")
    codes = {int(t) for t in tokens if t.isdigit()} & PARSER_CODES
    any_ok = "any" in tokens or any(t.isdigit() and int(t) not in PARSER_CODES for t in tokens)
    return codes, any_ok, "none" in tokens


def row_id(row: dict[str, str]) -> str:
    return row["file"]


def test_index_is_complete() -> None:
    assert len(ROWS) >= 60
    listed = {row["file"] for row in ROWS}
    on_disk = {p.name for p in TORTURE.glob("*.dat")} | {
        f"rfc5118-wire/{p.name}" for p in (TORTURE / "rfc5118-wire").glob("*.sip")
    }
    assert listed == on_disk
    assert {row["class"] for row in ROWS} == {"valid", "invalid"}
    for row in ROWS:
        assert (TORTURE / row["file"]).is_file(), row["file"]


# --------------------------------------------------------------------------- UDP


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_datagram(row: dict[str, str]) -> None:
    data = (TORTURE / row["file"]).read_bytes()
    name, cls, verdict = row["file"], row["class"], row["verdict"]
    codes, may_parse, may_drop = allowed(row["preferred_udp"])
    try:
        msg = parse_message(data)
    except MessageParseError as exc:
        error: MessageParseError | None = exc
        msg = None
    else:
        error = None

    if cls == "valid":
        # Whatever the element answers later, the parser must read every valid message.
        assert error is None, f"{name}: valid message refused: {error}"
        assert isinstance(msg, Response) == (name in RESPONSES)
        return

    if verdict == "drop":  # invalid responses: refused, never answered
        assert error is not None, f"{name}: should not parse"
        assert name in RESPONSES
        assert error.headers is None
        assert error.status_code == 400
        return

    if verdict == "reject":
        assert error is not None, f"{name}: invalid message accepted"
    if error is None:
        assert verdict == "either", f"{name}: invalid message accepted"  # "either": may accept
        return
    assert error.status_code in codes or (may_drop and error.status_code == 400), (
        f"{name}: {error.status_code} not in {row['preferred_udp']}"
    )
    if error.status_code == 505:
        assert error.reason == "Version Not Supported"
    if not may_drop:
        # A request refused at the edge can still be answered with its own fields.
        assert error.headers is not None, f"{name}: refused without readable headers"
        assert error.headers.get("via") is not None
        if all(error.headers.count(h) == 1 for h in ("from", "to", "call-id", "cseq")):
            resp = build_response(error.headers, error.status_code, error.reason, to_tag="t")
            assert resp.status == error.status_code


def test_expected_verdicts_for_invalid_messages() -> None:
    """The liberal/strict choices this parser makes, pinned so a change is noticed."""
    outcome = {}
    for row in ROWS:
        if row["class"] != "invalid":
            continue
        try:
            parse_message((TORTURE / row["file"]).read_bytes())
            outcome[row["file"]] = "parsed"
        except MessageParseError as exc:
            outcome[row["file"]] = exc.status_code
    assert outcome == {
        "badinv01.dat": 400,
        "clerr.dat": 400,
        "ncl.dat": 400,
        "scalar02.dat": 400,
        "scalarlg.dat": 400,
        "quotbal.dat": 400,
        "ltgtruri.dat": 400,
        "lwsruri.dat": 400,
        "lwsstart.dat": 400,
        "trws.dat": 400,
        "escruri.dat": 400,
        "baddate.dat": "parsed",
        "regbadct.dat": 400,
        "badaspec.dat": 400,
        "baddn.dat": 400,
        "badvers.dat": 505,
        "mismatch01.dat": 400,
        "mismatch02.dat": 400,
        "bigcode.dat": 400,
        "insuf.dat": 400,
        "multi01.dat": 400,
        "mcl01.dat": 400,
        "test.dat": 400,
        "rfc5118-wire/ipv6-bad.sip": 400,
        "rfc5118-wire/ipv6-bug-abnf-3-colons.sip": 400,
    }


def torture(name: str) -> Request | Response:
    return parse_message((TORTURE / name).read_bytes())


def test_what_valid_messages_mean() -> None:
    """A few RFC 4475/5118 sections say what the parse must yield, not only that it works."""
    dbl = torture("dblreq.dat")  # §3.1.1.8: trailing INVITE ignored in a datagram
    assert isinstance(dbl, Request) and dbl.method == "REGISTER" and dbl.body == b""
    semi = torture("semiuri.dat")  # §3.1.1.9
    assert isinstance(semi, Request) and isinstance(semi.uri, SipUri)
    assert semi.uri.user == "user;par=u%40example.net" and semi.uri.host == "example.com"
    escnull = torture("escnull.dat")  # §3.1.1.4: two distinct contacts
    assert [c.uri.user for c in escnull.contacts] == ["%00", "%00%00"]  # type: ignore[union-attr]
    esc02 = torture("esc02.dat")  # §3.1.1.5: not REGISTER
    assert isinstance(esc02, Request) and esc02.method == "RE%47IST%45R"
    transports = torture("transports.dat")  # §3.1.1.10
    assert [v.transport for v in transports.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mpart = torture("mpart01.dat")  # §3.1.1.11: binary body framed by Content-Length
    assert b"\x00" in mpart.body and len(mpart.body) == int(
        mpart.headers.get("content-length") or 0
    )
    unreason = torture("unreason.dat")  # §3.1.1.12
    assert isinstance(unreason, Response) and unreason.status == 200
    assert "простое" in unreason.reason
    noreason = torture("noreason.dat")  # §3.1.1.13
    assert isinstance(noreason, Response) and noreason.status == 100 and noreason.reason == ""
    wsinv = torture("wsinv.dat")  # §3.1.1.1: folding and LWS in Via
    assert (wsinv.top_via.host, wsinv.top_via.branch) == ("192.0.2.2", "390skdjuw")
    cparam01 = torture("cparam01.dat")  # §3.3.12: contact-param, not url-param
    assert ("unknownparam", None) in cparam01.contacts[0].params
    assert not cparam01.contacts[0].uri.has_param("unknownparam")  # type: ignore[union-attr]
    cparam02 = torture("cparam02.dat")  # §3.3.13: url-param kept in the URI
    assert cparam02.contacts[0].uri.has_param("unknownparam")  # type: ignore[union-attr]
    unkscm = torture("unkscm.dat")  # §3.3.2
    assert isinstance(unkscm, Request) and unkscm.uri.scheme == "nobodyKnowsThisScheme"
    amb = torture("rfc5118-wire/port-ambiguous.sip")  # RFC 5118 §4.3
    unamb = torture("rfc5118-wire/port-unambiguous.sip")  # §4.4
    assert isinstance(amb, Request) and isinstance(unamb, Request)
    assert (amb.uri.host, amb.uri.port) == ("[2001:db8::10:5070]", None)  # type: ignore[union-attr]
    assert (unamb.uri.host, unamb.uri.port) == ("[2001:db8::10]", 5070)  # type: ignore[union-attr]
    rcv = torture("rfc5118-wire/via-received-param-with-delim.sip")  # §4.5
    assert rcv.top_via.received == "[2001:db8::9:255]"


@pytest.mark.parametrize("row", [r for r in ROWS if r["class"] == "valid"], ids=row_id)
def test_valid_messages_round_trip(row: dict[str, str]) -> None:
    first = parse_message((TORTURE / row["file"]).read_bytes())
    second = parse_message(bytes(first))
    assert type(second) is type(first)
    assert [(n, v) for n, v in second.headers if n != "Content-Length"] == [
        (n, v) for n, v in first.headers if n != "Content-Length"
    ]
    assert second.body == first.body
    assert second.vias == first.vias and second.cseq == first.cseq


# --------------------------------------------------------------------------- TCP


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_stream(row: dict[str, str], bytewise: bool) -> None:
    data = (TORTURE / row["file"]).read_bytes()
    name, cls = row["file"], row["class"]
    codes, may_parse, may_drop = allowed(row["preferred_tcp"])
    framer = StreamFramer()
    try:
        if bytewise:
            frames = [f for i in range(len(data)) for f in framer.feed(data[i : i + 1])]
        else:
            frames = framer.feed(data)
    except ParseError as exc:
        # Unrecoverable framing error: the connection is closed, nothing answered.
        assert may_drop, f"{name}: framing error {exc} but TCP verdict {row['preferred_tcp']}"
        assert exc.status_code == 400
        return
    if not frames:
        # Still waiting for the end of the header section or the body.
        assert may_drop, f"{name}: no frame, TCP verdict {row['preferred_tcp']}"
        assert framer.buffered == len(data.lstrip(b"\r\n"))
        return
    assert data.lstrip(b"\r\n").startswith(frames[0])
    try:
        msg = parse_message(frames[0], stream=True)
    except MessageParseError as exc:
        assert cls == "invalid", f"{name}: valid frame refused: {exc}"
        assert row["verdict"] != "accept"
        assert exc.status_code in codes or (may_drop and exc.status_code == 400), (
            f"{name}: {exc.status_code} not in {row['preferred_tcp']}"
        )
        if name in RESPONSES:
            assert exc.headers is None
        elif not may_drop:
            assert exc.headers is not None, f"{name}: refused without readable headers"
        return
    if cls == "invalid":
        assert row["verdict"] == "either", f"{name}: invalid message framed and accepted"
    assert isinstance(msg, Response) == (name in RESPONSES)


def test_stream_specifics() -> None:
    # RFC 4475 §3.1.1.8: over TCP the trailing INVITE is simply the next message.
    frames = StreamFramer().feed((TORTURE / "dblreq.dat").read_bytes())
    first, second = (parse_message(f, stream=True) for f in frames[:2])
    assert isinstance(first, Request) and first.method == "REGISTER"
    assert isinstance(second, Request) and second.method == "INVITE"
    # §3.1.2.2: Content-Length larger than the message: wait for more data.
    framer = StreamFramer()
    assert framer.feed((TORTURE / "clerr.dat").read_bytes()) == []
    # §3.1.2.3, §3.3.9: negative or conflicting Content-Length: close the connection.
    for name in ("ncl.dat", "mcl01.dat"):
        with pytest.raises(ParseError):
            StreamFramer().feed((TORTURE / name).read_bytes())
    # §3.4.1: no Content-Length over TCP means an empty body; the SDP stays behind.
    framer = StreamFramer()
    frames = framer.feed((TORTURE / "inv2543.dat").read_bytes())
    assert len(frames) == 1 and parse_message(frames[0], stream=True).body == b""
    assert framer.buffered > 0
