"""Cutting a TCP byte stream into messages (StreamFramer, RFC 3261 §18.3, RFC 5626 §3.5.1).

Every input is fed whole, one byte at a time, and followed by trailing bytes (the start
of the next message split at arbitrary points), after h11's ``tests/test_io.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from softswitch.sip.errors import ParseError
from softswitch.sip.message import Limits, MessageParseError, StreamFramer, parse_message

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = sorted(p.name for p in DATA.glob("*.sip"))
PING = b"\r\n\r\n"


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


def feed_whole(framer: StreamFramer, data: bytes) -> list[bytes]:
    return framer.feed(data)


def feed_bytewise(framer: StreamFramer, data: bytes) -> list[bytes]:
    frames: list[bytes] = []
    for i in range(len(data)):
        frames.extend(framer.feed(data[i : i + 1]))
    return frames


def feed_chunks(framer: StreamFramer, data: bytes, rng: random.Random) -> list[bytes]:
    frames: list[bytes] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 40)
        frames.extend(framer.feed(data[i : i + n]))
        i += n
    return frames


FEEDERS = {
    "whole": feed_whole,
    "bytewise": feed_bytewise,
    "chunks": lambda f, d: feed_chunks(f, d, random.Random(len(d))),
}


def test_data_files_exist() -> None:
    assert len(FILES) >= 10, f"no data files in {DATA}"


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
@pytest.mark.parametrize("name", FILES)
def test_one_message(name: str, feeder: str) -> None:
    data = data_file(name)
    framer = StreamFramer()
    frames = FEEDERS[feeder](framer, data)
    assert frames == [data]
    assert framer.buffered == 0 and framer.pings == 0
    assert parse_message(frames[0], stream=True).body == parse_message(data).body


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
@pytest.mark.parametrize("name", FILES)
def test_message_then_start_of_the_next(name: str, feeder: str) -> None:
    data = data_file(name)
    nxt = data_file("sipp_uac_invite.sip")
    for cut in (1, 2, 17, nxt.find(b"\r\n\r\n") + 2, nxt.find(b"\r\n\r\n") + 4, len(nxt) - 1):
        framer = StreamFramer()
        frames = FEEDERS[feeder](framer, data + nxt[:cut])
        assert frames == [data], cut
        assert framer.buffered == cut
        assert framer.feed(nxt[cut:]) == [nxt]
        assert framer.buffered == 0


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
def test_every_file_back_to_back(feeder: str) -> None:
    messages = [data_file(n) for n in FILES]
    framer = StreamFramer()
    assert FEEDERS[feeder](framer, b"".join(messages)) == messages
    assert framer.pings == 0 and framer.buffered == 0


def test_random_splits_of_a_stream() -> None:
    messages = [data_file(n) for n in FILES] * 3
    stream = b"".join(messages)
    rng = random.Random(5626)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 30)))
        framer = StreamFramer()
        frames: list[bytes] = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            frames.extend(framer.feed(stream[a:b]))
        assert frames == messages


# --------------------------------------------------------------------------- keep-alives


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
def test_keepalive_pings_between_messages(feeder: str) -> None:
    a, b = data_file("sipp_uac_invite.sip"), data_file("sipp_uas_200.sip")
    framer = StreamFramer()
    frames = FEEDERS[feeder](framer, PING + a + PING + PING + b + PING)
    assert frames == [a, b]
    assert framer.pings == 4
    assert framer.buffered == 0


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
def test_a_lone_crlf_is_not_a_ping(feeder: str) -> None:
    # RFC 3261 §7.5: CRLFs before a start line are ignored; only CRLFCRLF is a ping.
    a = data_file("kamailio_options_ping.sip")
    framer = StreamFramer()
    assert FEEDERS[feeder](framer, b"\r\n" + a + b"\r\n" + a) == [a, a]
    assert framer.pings == 0


def test_ping_split_across_reads_is_counted_once() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r") == []
    assert framer.pings == 0
    assert framer.feed(b"\n") == []
    assert framer.pings == 1
    assert framer.buffered == 0


# --------------------------------------------------------------------------- Content-Length


def message(content_length: str | None, body: bytes = b"") -> bytes:
    head = (
        "OPTIONS sip:10.0.0.2:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKf7a2\r\n"
        "To: <sip:10.0.0.2:5060>\r\n"
        "From: <sip:dispatcher@localhost>;tag=7f3d\r\n"
        "CSeq: 10 OPTIONS\r\n"
        "Call-ID: 1b0d2a7e@10.0.0.1\r\n"
    )
    if content_length is not None:
        head += f"Content-Length: {content_length}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
def test_missing_content_length_means_zero(feeder: str) -> None:
    bare = message(None)
    framer = StreamFramer()
    frames = FEEDERS[feeder](framer, bare + bare)
    assert frames == [bare, bare]
    assert parse_message(frames[0], stream=True).body == b""


def test_missing_content_length_leaves_a_body_on_the_stream() -> None:
    framer = StreamFramer()
    assert framer.feed(message(None, b"v=0\r\n")) == [message(None)]
    assert framer.buffered == len(b"v=0\r\n")


@pytest.mark.parametrize("written", ["l: 5", "content-length:5", "CONTENT-LENGTH :   5"])
def test_content_length_spellings(written: str) -> None:
    data = message(None).replace(b"\r\n\r\n", f"\r\n{written}\r\n\r\n".encode()) + b"hello"
    framer = StreamFramer()
    assert feed_bytewise(framer, data + b"\r\n") == [data]
    assert parse_message(data, stream=True).body == b"hello"


def test_body_with_crlfcrlf_inside_is_framed_by_length() -> None:
    body = b"--boundary\r\n\r\n\r\n\r\nend"
    data = message(str(len(body)), body)
    framer = StreamFramer()
    assert feed_bytewise(framer, data + PING) == [data]
    assert framer.pings == 1


@pytest.mark.parametrize("value", ["-1", "-999", "abc", "", "0x10", "1 2", "5;x", "²", "٥", "+5"])
@pytest.mark.parametrize("feeder", sorted(FEEDERS))
def test_bad_content_length_is_a_framing_error(value: str, feeder: str) -> None:
    framer = StreamFramer()
    with pytest.raises(ParseError) as info:
        FEEDERS[feeder](framer, message(value, b"hello"))
    assert info.value.status_code == 400


def test_conflicting_content_lengths_are_a_framing_error() -> None:
    data = message("5", b"hello").replace(b"Content-Length: 5", b"Content-Length: 5\r\nl: 3")
    with pytest.raises(ParseError):
        StreamFramer().feed(data)


def test_equal_repeated_content_lengths_frame_but_do_not_parse() -> None:
    data = message("5", b"hello").replace(b"Content-Length: 5", b"Content-Length: 5\r\nl: 5")
    frames = StreamFramer().feed(data)
    assert frames == [data]
    with pytest.raises(MessageParseError):
        parse_message(frames[0], stream=True)


def test_waits_for_the_whole_body() -> None:
    data = message("10", b"0123456789")
    framer = StreamFramer()
    assert framer.feed(data[:-1]) == []
    assert framer.buffered == len(data) - 1
    assert framer.feed(data[-1:]) == [data]


# --------------------------------------------------------------------------- limits


def test_header_section_without_end_over_the_limit() -> None:
    framer = StreamFramer(Limits(max_message_bytes=1000))
    head = message("0")[:-4]  # no CRLFCRLF
    assert framer.feed(head) == []
    with pytest.raises(ParseError) as info:
        for _ in range(100):
            framer.feed(b"\r\nX-Filler: " + b"y" * 50)
    assert info.value.status_code == 513
    assert framer.buffered > 1000


def test_header_section_at_the_limit_waits() -> None:
    framer = StreamFramer(Limits(max_message_bytes=1000))
    assert framer.feed(b"X" * 1000) == []
    with pytest.raises(ParseError):
        framer.feed(b"X")


def test_declared_body_over_the_limit_is_refused_before_it_arrives() -> None:
    framer = StreamFramer(Limits(max_message_bytes=1000))
    with pytest.raises(ParseError) as info:
        framer.feed(message("5000"))
    assert info.value.status_code == 513


def test_message_exactly_at_the_limit() -> None:
    data = message("100", b"z" * 100)
    assert StreamFramer(Limits(max_message_bytes=len(data))).feed(data) == [data]
    with pytest.raises(ParseError):
        StreamFramer(Limits(max_message_bytes=len(data) - 1)).feed(data)
