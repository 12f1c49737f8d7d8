"""softswitch.media.dtmf: RFC 4733 payloads, the dial-string schedule, the packets that
play it, the receiver's once-per-key-press rule, and SIP INFO bodies.

Test vectors.  The text of RFC 4733 was not available where these tests were written,
so the payload vectors below are built by hand from the bit layout of §2.3 (Figure 1:
event 8 bits, E 1, R 1, volume 6, duration 16, network order), each annotated with
its fields.  One packet is a real capture: aiortc's ``tests/rtp_dtmf.bin`` (commit
8a2864630bf417d977a06dda8d0254b1c1501bfb), 16 bytes reproduced here as hex.
"""

from __future__ import annotations

import re

import pytest
from aiortc.rtp import RtpPacket

from softswitch.media.dtmf import (
    EVENTS,
    DtmfReceiver,
    EventPacket,
    ScheduledDigit,
    TelephoneEvent,
    digit_schedule,
    event_packets,
    info_body,
    parse_info,
    schedule_length,
)

# --- payload, §2.3 -------------------------------------------------------------------------

VECTORS = [
    # '9' (event 9), E=0 R=0 volume 10 (-10 dBm0), 400 units = 50 ms at 8000 Hz
    ("090a0190", TelephoneEvent(9, False, 10, 400)),
    # '9' final packet: E=1 -> 0x80 | 10 = 0x8a, 1600 units = 200 ms
    ("098a0640", TelephoneEvent(9, True, 10, 1600)),
    # '*' is event 10 (§3.2), volume 0, duration 0 (only a state may send 0, §2.3.5)
    ("0a000000", TelephoneEvent(10, False, 0, 0)),
    # '#' is event 11; E=1, volume 63 -> 0x80 | 0x3f = 0xbf; the largest duration
    ("0bbfffff", TelephoneEvent(11, True, 63, 0xFFFF)),
    # 'D' is event 15, volume 7, 160 units = one 20 ms frame
    ("0f0700a0", TelephoneEvent(15, False, 7, 160)),
    # event 16 (flash, RFC 4734): a valid payload that is not a DTMF digit
    ("100a0320", TelephoneEvent(16, False, 10, 800)),
]

# aiortc tests/rtp_dtmf.bin: V=2, M=1, PT=101, seq 24152, timestamp 4021352124, then the
# payload 01 8a 03 c0: digit '1', E=1, volume 10, duration 960 (120 ms).
AIORTC_RTP_DTMF = bytes.fromhex("80e55e58efb0f6bca6a144f2018a03c0")


@pytest.mark.parametrize(("wire", "event"), VECTORS)
def test_payload_vectors_parse_and_serialise_byte_exact(wire: str, event: TelephoneEvent) -> None:
    assert TelephoneEvent.parse(bytes.fromhex(wire)) == event
    assert bytes(event) == bytes.fromhex(wire)
    assert bytes(TelephoneEvent.parse(bytes.fromhex(wire))) == bytes.fromhex(wire)


def test_captured_packet_from_aiortc() -> None:
    packet = RtpPacket.parse(AIORTC_RTP_DTMF)
    event = TelephoneEvent.parse(packet.payload)
    assert event == TelephoneEvent(1, True, 10, 960)
    assert event.digit == "1"
    assert bytes(event) == AIORTC_RTP_DTMF[12:]


def test_every_payload_round_trips() -> None:
    for code in (0, 1, 9, 15, 16, 127, 255):
        for end in (False, True):
            for volume in (0, 1, 10, 63):
                for duration in (0, 1, 255, 256, 0xFFFF):
                    event = TelephoneEvent(code, end, volume, duration)
                    assert TelephoneEvent.parse(bytes(event)) == event


def test_reserved_bit_is_ignored_on_receipt_and_zero_on_send() -> None:
    # §2.3: R is reserved; "MUST be zero" on send, the receiver ignores it.
    event = TelephoneEvent.parse(bytes.fromhex("09ca0190"))  # 0xca = E | R | 10
    assert event == TelephoneEvent(9, True, 10, 400)
    assert bytes(event) == bytes.fromhex("098a0190")
    assert TelephoneEvent.parse(bytes.fromhex("094a0190")) == TelephoneEvent(9, False, 10, 400)


def test_bytes_after_the_first_four_are_not_read() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("090a0190deadbeef")) == TelephoneEvent(
        9, False, 10, 400
    )


@pytest.mark.parametrize("payload", [b"", b"\x09", b"\x09\x0a\x01"])
def test_short_payload_is_an_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="4 needed"):
        TelephoneEvent.parse(payload)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((256, False, 10, 0), "code"),
        ((-1, False, 10, 0), "code"),
        ((1, False, 64, 0), "volume"),
        ((1, False, -1, 0), "volume"),
        ((1, False, 10, 0x10000), "duration"),
        ((1, False, 10, -1), "duration"),
    ],
)
def test_fields_out_of_range_are_refused(fields: tuple[int, bool, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TelephoneEvent(*fields)


def test_digits_of_event_codes() -> None:
    # RFC 4733 §3.2 and the IANA registry: 0-9, then * # A B C D for 10-15.
    assert [TelephoneEvent(code, False, 10, 400).digit for code in range(16)] == list(
        "0123456789*#ABCD"
    )
    assert EVENTS == "0123456789*#ABCD"
    assert TelephoneEvent(16, False, 10, 400).digit is None
    assert TelephoneEvent(255, False, 10, 400).digit is None


# --- the dial-string schedule ----------------------------------------------------------------


def times(schedule: tuple[ScheduledDigit, ...]) -> list[tuple[float, str]]:
    return [(item.at, item.digit) for item in schedule]


def test_schedule_with_defaults() -> None:
    schedule = digit_schedule("12#")
    assert times(schedule) == [(0.0, "1"), (0.2, "2"), (0.4, "#")]
    assert {item.duration for item in schedule} == {0.1}


def test_every_digit_is_accepted() -> None:
    assert "".join(item.digit for item in digit_schedule("0123456789*#ABCD")) == EVENTS


def test_long_strings_do_not_drift() -> None:
    schedule = digit_schedule("0" * 50)
    assert [item.at for item in schedule] == [round(n * 0.2, 6) for n in range(50)]
    assert schedule[-1].at == 9.8


def test_duration_and_gap() -> None:
    assert times(digit_schedule("12", duration=0.25, gap=0.05)) == [(0.0, "1"), (0.3, "2")]
    assert times(digit_schedule("12", duration=0.08, gap=0.0)) == [(0.0, "1"), (0.08, "2")]
    assert {item.duration for item in digit_schedule("12", duration=0.25)} == {0.25}


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("1w2", [(0.0, "1"), (0.7, "2")]),  # 0.1 tone + 0.1 gap + 0.5 pause
        ("1W2", [(0.0, "1"), (1.2, "2")]),  # 0.1 tone + 0.1 gap + 1.0 pause
        ("1wW2", [(0.0, "1"), (1.7, "2")]),  # pauses add up
        ("w1", [(0.5, "1")]),  # a leading pause delays the first digit
        ("ww1", [(1.0, "1")]),
        ("W1w2", [(1.0, "1"), (1.7, "2")]),
        ("1w", [(0.0, "1")]),  # a trailing pause has nothing to delay
        ("", []),
        ("w", []),
    ],
)
def test_pauses(digits: str, expected: list[tuple[float, str]]) -> None:
    assert times(digit_schedule(digits)) == expected


@pytest.mark.parametrize(
    ("digits", "bad"),
    [
        ("1 2", "' ' at position 1"),
        ("a", "'a' at position 0"),
        ("+18005550100", "'+'"),
        ("12x", "'x' at position 2"),
        ("1,2", "','"),
        ("p", "'p'"),
    ],
)
def test_other_characters_are_refused(digits: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(bad)):
        digit_schedule(digits)


def test_bad_timing_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        digit_schedule("1", duration=0)
    with pytest.raises(ValueError, match="gap"):
        digit_schedule("1", gap=-0.1)
    with pytest.raises(ValueError, match="DTMF digit"):
        ScheduledDigit(0.0, "x", 0.1)
    with pytest.raises(ValueError, match="before the start"):
        ScheduledDigit(-1.0, "1", 0.1)
    with pytest.raises(ValueError, match="must last"):
        ScheduledDigit(0.0, "1", 0.0)


def test_schedule_length_includes_the_trailing_gap() -> None:
    assert schedule_length(digit_schedule("12#"), 0.1) == 0.6  # '#' 0.4-0.5, then the gap
    assert schedule_length(digit_schedule("1"), 0.1) == 0.2
    assert schedule_length(digit_schedule("1", gap=0.3), 0.3) == 0.4
    assert schedule_length(digit_schedule("1w2"), 0.1) == 0.9
    assert schedule_length(digit_schedule("1W"), 0.1) == 0.2  # the trailing pause is gone
    assert schedule_length((), 0.1) == 0.0


# --- event packets, §2.5.1 ----------------------------------------------------------------------


def decoded(packets: list[EventPacket]) -> list[tuple[float, int, bool, TelephoneEvent]]:
    return [(p.at, p.timestamp_offset, p.marker, TelephoneEvent.parse(p.payload)) for p in packets]


def test_one_digit_with_defaults_byte_exact() -> None:
    packets = event_packets(digit_schedule("9"))
    assert packets == [
        EventPacket(0.0, 0, True, bytes.fromhex("090a0190")),  # start: marker, one interval
        EventPacket(0.05, 0, False, bytes.fromhex("090a0320")),  # update: 800
        EventPacket(0.1, 0, False, bytes.fromhex("098a0320")),  # end: E, full 800
        EventPacket(0.15, 0, False, bytes.fromhex("098a0320")),  # end, again
        EventPacket(0.2, 0, False, bytes.fromhex("098a0320")),  # end, a third time
    ]


def test_end_packet_is_sent_three_times_at_the_update_interval() -> None:
    packets = decoded(event_packets(digit_schedule("5", duration=0.2), interval=0.04))
    ends = [(at, event) for at, _, _, event in packets if event.end]
    assert [at for at, _ in ends] == [0.2, 0.24, 0.28]
    assert {event for _, event in ends} == {TelephoneEvent(5, True, 10, 1600)}
    # the end is the last thing sent for the event
    assert all(event.end for _, _, _, event in packets[-3:])


def test_durations_grow_and_are_never_zero() -> None:
    # 120 ms = 960 units: updates at 0, 50, 100 ms report 400, 800 and (capped) 960.
    packets = decoded(event_packets(digit_schedule("1", duration=0.12)))
    assert [(at, event.duration, event.end) for at, _, _, event in packets] == [
        (0.0, 400, False),
        (0.05, 800, False),
        (0.1, 960, False),
        (0.12, 960, True),
        (0.17, 960, True),
        (0.22, 960, True),
    ]
    durations = [event.duration for *_, event in packets]
    assert durations == sorted(durations) and 0 not in durations


def test_a_tone_shorter_than_one_interval() -> None:
    packets = decoded(event_packets(digit_schedule("1", duration=0.03)))
    assert [(at, marker, event.duration, event.end) for at, _, marker, event in packets] == [
        (0.0, True, 240, False),
        (0.03, False, 240, True),
        (0.08, False, 240, True),
        (0.13, False, 240, True),
    ]


def test_several_digits_share_timestamps_per_event() -> None:
    packets = decoded(event_packets(digit_schedule("12#")))
    assert len(packets) == 15
    assert [offset for _, offset, _, _ in packets] == [0] * 5 + [1600] * 5 + [3200] * 5
    assert [packet[0] for packet in packets][::5] == [0.0, 0.2, 0.4]
    assert [packet[3].event for packet in packets][::5] == [1, 2, 11]
    assert sum(marker for _, _, marker, _ in packets) == 3  # one marker per event
    assert sum(event.end for *_, event in packets) == 9  # three ends per event
    # at 0.2 s the last end of '1' and the first packet of '2' are both due: '1' first
    assert packets[4][:3] == (0.2, 0, False) and packets[5][:3] == (0.2, 1600, True)


def test_overlapping_retransmissions_are_ordered_by_time() -> None:
    packets = event_packets(digit_schedule("12", gap=0.0))
    ats = [p.at for p in packets]
    assert ats == sorted(ats)
    assert [(p.at, p.timestamp_offset, p.marker) for p in packets[:5]] == [
        (0.0, 0, True),
        (0.05, 0, False),
        (0.1, 0, False),  # '1' ends
        (0.1, 800, True),  # '2' starts at the same instant
        (0.15, 0, False),  # '1' end, second copy, between '2''s packets
    ]


def test_clock_rate_volume_and_pauses() -> None:
    packets = decoded(event_packets(digit_schedule("w7"), clock_rate=16000, volume=6))
    assert {offset for _, offset, _, _ in packets} == {8000}  # 0.5 s at 16000 Hz
    assert [event.duration for *_, event in packets] == [800, 1600, 1600, 1600, 1600]
    assert {event.volume for *_, event in packets} == {6}
    assert packets[0][0] == 0.5


def test_bad_packet_parameters() -> None:
    with pytest.raises(ValueError, match="volume"):
        event_packets(digit_schedule("1"), volume=64)
    with pytest.raises(ValueError, match="interval"):
        event_packets(digit_schedule("1"), interval=0.0)
    with pytest.raises(ValueError, match="1-65535"):
        event_packets(digit_schedule("1", duration=9.0))  # 72000 units: needs segments
    assert event_packets(()) == []


# --- the receiver, §2.5.2 -------------------------------------------------------------------


def play(receiver: DtmfReceiver, packets: list[EventPacket], base: int = 0) -> list[str]:
    reported = []
    for packet in packets:
        timestamp = (base + packet.timestamp_offset) % 2**32
        digit = receiver.feed(timestamp, packet.payload, packet.marker)
        if digit is not None:
            reported.append(digit)
    return reported


def test_sender_to_receiver() -> None:
    receiver = DtmfReceiver()
    assert play(receiver, event_packets(digit_schedule("0123456789*#ABCD"))) == list(EVENTS)
    assert receiver.malformed == 0


def test_digit_is_reported_at_the_first_packet_only() -> None:
    receiver = DtmfReceiver()
    packets = event_packets(digit_schedule("5"))
    results = [receiver.feed(1000 + p.timestamp_offset, p.payload, p.marker) for p in packets]
    assert results == ["5", None, None, None, None]


def test_retransmitted_end_packets_are_not_reported_again() -> None:
    receiver = DtmfReceiver()
    end = bytes(TelephoneEvent(3, True, 10, 800))
    assert receiver.feed(4000, bytes(TelephoneEvent(3, False, 10, 400)), True) == "3"
    assert [receiver.feed(4000, end, False) for _ in range(3)] == [None, None, None]


def test_lost_start_reports_at_the_end_packet() -> None:
    receiver = DtmfReceiver()
    end = bytes(TelephoneEvent(8, True, 10, 800))
    assert [receiver.feed(7777, end, False) for _ in range(3)] == ["8", None, None]


def test_the_same_digit_twice_is_reported_twice() -> None:
    receiver = DtmfReceiver()
    assert play(receiver, event_packets(digit_schedule("11"))) == ["1", "1"]
    assert play(receiver, event_packets(digit_schedule("77")), base=50_000) == ["7", "7"]


def test_same_digit_twice_when_both_starts_are_lost() -> None:
    receiver = DtmfReceiver()
    end = bytes(TelephoneEvent(4, True, 10, 800))
    assert receiver.feed(1000, end, False) == "4"
    assert receiver.feed(2600, end, False) == "4"


def test_a_late_packet_of_an_earlier_event_is_not_reported() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(100, bytes(TelephoneEvent(1, False, 10, 400)), True) == "1"
    assert receiver.feed(1700, bytes(TelephoneEvent(2, False, 10, 400)), True) == "2"
    assert receiver.feed(100, bytes(TelephoneEvent(1, True, 10, 800)), False) is None
    assert receiver.feed(1700, bytes(TelephoneEvent(2, True, 10, 800)), False) is None


def test_same_timestamp_after_the_end_continues_the_event() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(500, bytes(TelephoneEvent(6, True, 10, 800)), False) == "6"
    assert receiver.feed(500, bytes(TelephoneEvent(6, False, 10, 1200)), False) is None
    assert receiver.feed(500, bytes(TelephoneEvent(6, True, 10, 1600)), False) is None


@pytest.mark.parametrize("start", [10_000, 2**32 - 100])
def test_next_segment_of_a_long_event_is_the_same_key_press(start: int) -> None:
    # §2.5.1.3: past 65535 units the event goes on in a new segment whose timestamp is
    # the old one plus 65535, same event code, no marker.
    receiver = DtmfReceiver()
    assert receiver.feed(start, bytes(TelephoneEvent(0, False, 10, 400)), True) == "0"
    assert receiver.feed(start, bytes(TelephoneEvent(0, False, 10, 0xFFFF)), False) is None
    segment = (start + 0xFFFF) % 2**32
    assert receiver.feed(segment, bytes(TelephoneEvent(0, False, 10, 400)), False) is None
    assert receiver.feed(segment, bytes(TelephoneEvent(0, True, 10, 800)), False) is None
    # a marked packet at a fresh timestamp is a new press of the same key
    later = (segment + 8000) % 2**32
    assert receiver.feed(later, bytes(TelephoneEvent(0, False, 10, 400)), True) == "0"


def test_a_new_timestamp_that_is_not_a_segment_is_a_new_press() -> None:
    # same code, no marker, 65535 units on, but the event never reached 65535 units
    receiver = DtmfReceiver()
    assert receiver.feed(0, bytes(TelephoneEvent(0, False, 10, 800)), True) == "0"
    assert receiver.feed(0xFFFF, bytes(TelephoneEvent(0, False, 10, 400)), False) == "0"
    # the event did reach 65535 units, but the next timestamp is not where a segment starts
    receiver = DtmfReceiver()
    assert receiver.feed(0, bytes(TelephoneEvent(0, False, 10, 0xFFFF)), True) == "0"
    assert receiver.feed(0x10000, bytes(TelephoneEvent(0, False, 10, 400)), False) == "0"
    # a different code at the segment's timestamp: a different key
    receiver = DtmfReceiver()
    assert receiver.feed(0, bytes(TelephoneEvent(0, False, 10, 0xFFFF)), True) == "0"
    assert receiver.feed(0xFFFF, bytes(TelephoneEvent(1, False, 10, 400)), False) == "1"


def test_timestamps_wrap() -> None:
    receiver = DtmfReceiver()
    assert play(receiver, event_packets(digit_schedule("12")), base=2**32 - 1000) == ["1", "2"]


def test_events_that_are_not_digits_report_nothing() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(0, bytes(TelephoneEvent(16, False, 10, 400)), True) is None
    assert receiver.feed(0, bytes(TelephoneEvent(16, True, 10, 800)), False) is None
    assert receiver.feed(800, bytes(TelephoneEvent(64, False, 10, 400)), True) is None
    assert receiver.malformed == 0
    assert receiver.feed(1600, bytes(TelephoneEvent(15, False, 10, 400)), True) == "D"


def test_malformed_payloads_are_counted() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(0, b"\x01\x0a", True) is None
    assert receiver.feed(0, b"", True) is None
    assert receiver.malformed == 2
    # a malformed packet does not consume the event: its next packet reports it
    assert receiver.feed(0, bytes(TelephoneEvent(1, False, 10, 400)), False) == "1"
    assert receiver.malformed == 2


def test_zero_duration_first_packet_still_reports_once() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(10, bytes(TelephoneEvent(2, False, 10, 0)), True) == "2"
    assert receiver.feed(10, bytes(TelephoneEvent(2, False, 10, 400)), False) is None


def test_captured_packet_reports_its_digit() -> None:
    packet = RtpPacket.parse(AIORTC_RTP_DTMF)
    receiver = DtmfReceiver()
    assert receiver.feed(packet.timestamp, packet.payload, bool(packet.marker)) == "1"
    assert receiver.feed(packet.timestamp, packet.payload, bool(packet.marker)) is None


# --- SIP INFO ------------------------------------------------------------------------------------


def test_info_body() -> None:
    assert info_body("1") == b"Signal=1\r\nDuration=100\r\n"
    assert info_body("#", 250) == b"Signal=#\r\nDuration=250\r\n"
    with pytest.raises(ValueError, match="DTMF digit"):
        info_body("x")
    with pytest.raises(ValueError, match="DTMF digit"):
        info_body("12")
    with pytest.raises(ValueError, match="duration"):
        info_body("1", 0)


@pytest.mark.parametrize("digit", list(EVENTS))
def test_info_round_trip(digit: str) -> None:
    assert parse_info("application/dtmf-relay", info_body(digit)) == digit


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"signal = 5\r\nduration = 160\r\n", "5"),
        ("application/dtmf-relay", b"SIGNAL=5", "5"),
        ("application/dtmf-relay", b"Duration=100\r\nSignal=9\r\n", "9"),
        ("application/dtmf-relay", b"Signal= 7\n Duration= 100\n", "7"),
        ("Application/DTMF-Relay; charset=UTF-8", b"Signal=*\r\n", "*"),
        ("application/dtmf-relay", b"Signal=#\r\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\n", "*"),
        ("application/dtmf-relay", b"Signal=11\r\n", "#"),
        ("application/dtmf-relay", b"Signal=12\r\n", "A"),
        ("application/dtmf-relay", b"Signal=15\r\n", "D"),
        ("application/dtmf-relay", b"Signal=d\r\n", "D"),
        ("application/dtmf-relay", b"Signal=0\r\n", "0"),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf", b"#\r\n", "#"),
        ("application/dtmf", b"11", "#"),
        ("APPLICATION/DTMF", b" 3 ", "3"),
    ],
)
def test_parse_info(content_type: str, body: bytes, digit: str) -> None:
    assert parse_info(content_type, body) == digit


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, b"Signal=5\r\n"),
        ("text/plain", b"Signal=5\r\n"),
        ("application/sdp", b"5"),
        ("application/dtmf-relay", b""),
        ("application/dtmf-relay", b"Duration=100\r\n"),
        ("application/dtmf-relay", b"Signal=\r\n"),
        ("application/dtmf-relay", b"Signal=16\r\n"),
        ("application/dtmf-relay", b"Signal=x\r\n"),
        ("application/dtmf-relay", b"Signal=55\r\n"),
        ("application/dtmf-relay", b"Signal 5\r\n"),
        ("application/dtmf-relay", "Signal=\u00b2".encode()),  # a superscript two
        ("application/dtmf-relay", b"\xff\xfe\x00"),
        ("application/dtmf", b""),
        ("application/dtmf", b"12345"),
        ("application/dtmf", b"Signal=5"),
    ],
)
def test_parse_info_without_a_digit(content_type: str | None, body: bytes) -> None:
    assert parse_info(content_type, body) is None
