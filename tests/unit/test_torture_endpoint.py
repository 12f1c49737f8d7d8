"""The IETF torture messages (RFC 4475, RFC 5118) through a whole B2BUA endpoint.

Each file of ``shared/sip-torture/INDEX.tsv`` arrives as one UDP datagram from
127.0.0.1:5099 (and, where ``preferred_tcp`` is given, as a TCP stream cut by the
StreamFramer) at a B2BUA with the lab config.  What softswitch sends back must match
the ``preferred_udp`` / ``preferred_tcp`` column: ``any`` = anything or nothing,
``none`` = nothing at all, ``a|b`` = one of them.  Every response must go where
§18.2.2 and RFC 3581 say, and no exception may escape.
"""

from __future__ import annotations

from typing import Any

import pytest
from torture_corpus import TORTURE, index_rows

from softswitch.sip.errors import ParseError
from softswitch.sip.message import Response, StreamFramer
from softswitch.sip.uri import strip_brackets

SOURCE = ("127.0.0.1", 5099)


ROWS = index_rows()


def test_corpus_is_there() -> None:
    assert len(ROWS) >= 60
    for row in ROWS:
        assert (TORTURE / row["file"]).is_file(), row["file"]


def check_answers(name: str, column: str, sent: list[Any], transport: str) -> None:
    """``sent``: everything softswitch put on the wire for this one message."""
    tokens = set(column.split("|"))
    answers = [s for s in sent if isinstance(s.msg, Response)]
    for s in answers:
        check_destination(name, s, transport)
    if "any" in tokens:
        return
    codes = {int(t) for t in tokens if t.isdigit()}
    statuses = [s.status for s in answers if s.status != 100]
    if "none" in tokens and not sent:
        return
    assert not (tokens == {"none"} and sent), f"{name}: expected silence, sent {sent}"
    assert statuses, f"{name}: expected {column}, nothing answered (sent {sent})"
    assert set(statuses) <= codes, f"{name}: answered {statuses}, expected {column}"


def check_destination(name: str, sent: Any, transport: str) -> None:
    """§18.2.2 / RFC 3581 §4, read from the Via softswitch echoed in the response."""
    if transport == "tcp":
        assert sent.destination == SOURCE, f"{name}: TCP response not on the connection"
        return
    top = sent.msg.top_via
    ip, port = SOURCE
    if strip_brackets(top.host) != ip:
        assert top.received == ip, f"{name}: Via {top} lacks received={ip}"
    host = strip_brackets(top.received or top.host)
    if top.has_rport:
        assert top.rport == str(port), f"{name}: Via {top} lacks rport={port}"
        expected = (host, port)
    else:
        expected = (host, top.port or 5060)
    assert sent.destination == expected, (
        f"{name}: sent to {sent.destination}, §18.2.2 says {expected}"
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["file"])
def test_udp(row: dict[str, str], make_b2bua: Any) -> None:
    b2bua, wire = make_b2bua()
    data = (TORTURE / row["file"]).read_bytes()
    sent = wire.deliver(data, SOURCE, "udp")
    check_answers(row["file"], row["preferred_udp"], sent, "udp")
    wire.run_out()  # whatever started must also end cleanly


@pytest.mark.parametrize("row", [r for r in ROWS if r["preferred_tcp"].strip()],
                         ids=lambda r: r["file"])
def test_tcp(row: dict[str, str], make_b2bua: Any) -> None:
    b2bua, wire = make_b2bua()
    data = (TORTURE / row["file"]).read_bytes()
    framer = StreamFramer(b2bua.endpoint.config.limits)
    sent: list[Any] = []
    try:
        frames = framer.feed(data)
    except ParseError:
        frames = []  # the edge closes the connection; nothing is answered
    for frame in frames:
        sent += wire.deliver(frame, SOURCE, "tcp")
    check_answers(row["file"], row["preferred_tcp"], sent, "tcp")
    wire.run_out()
