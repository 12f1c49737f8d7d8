"""DTMF: RFC 4733 telephone-events on RTP, and the SIP INFO bodies some peers use instead.

Theory of operation
-------------------

A DTMF key press travels in-band as a sequence of RTP packets of the
``telephone-event`` payload type (RFC 4733 §2), each carrying one 4-byte
:class:`TelephoneEvent`.  Every packet of one event carries the same RTP timestamp,
the instant the event began (§2.5.1.2); the ``duration`` field grows as the event
goes on (§2.5.1.2); the last packet sets the E bit and is sent three times because
it is the one that matters most and UDP may lose it (§2.5.1.4).  The RTP marker
bit is set on the first packet of an event (§2.5.1.2).

Sending is split in two pure steps so that every instant can be asserted in a test:

1. :func:`digit_schedule` turns a dial string (``"12#"``, ``"1w2"``) into tones:
   which digit starts when, and for how long.
2. :func:`event_packets` turns the tones into the RTP packets to send, each with the
   time it goes out and its RTP timestamp offset.  The media edge adds its base
   timestamp (mod 2**32) and its sequence numbers, and sends each packet at
   ``start + packet.at`` in loop time.

Receiving is :class:`DtmfReceiver`: fed every telephone-event packet of one RTP
stream, it reports each key press exactly once, whatever the loss and
retransmission (§2.5.2).

Some peers signal keys out of band in SIP INFO requests instead (no RFC; the
``application/dtmf-relay`` body is common practice, ``application/dtmf`` rarer):
:func:`info_body` and :func:`parse_info`.

Everything here is standard library only and never reads a clock.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

EVENTS = "0123456789*#ABCD"  # DTMF event codes 0-15, RFC 4733 §3.2 and the IANA registry

# Pauses a dial string may hold: 'w' waits half a second, 'W' a full second, the
# convention of dialers since the modem era.  See digit_schedule for how they add up.
PAUSES = {"w": 0.5, "W": 1.0}

MAX_DURATION = 0xFFFF  # the 16-bit duration field, RFC 4733 §2.3.5
END_RETRANSMISSIONS = 3  # "the final packet ... SHOULD be sent a total of three times", §2.5.1.4

_PAYLOAD = struct.Struct("!BBH")  # event(8), E(1) R(1) volume(6), duration(16): §2.3
_END_BIT = 0x80
_VOLUME_MASK = 0x3F  # the R bit (0x40) is reserved: zero on send, ignored on receipt (§2.3.3)
_TIMESTAMP_MODULUS = 2**32


def _instant(seconds: float) -> float:
    """Times rounded to the microsecond: "12#" starts at 0.0, 0.2, 0.4, not 0.6000000000000001."""
    return round(seconds, 6)


def _code(value: str) -> str | None:
    """A digit written as itself ("5", "*", "a") or as its event code ("10" is '*')."""
    value = value.strip().upper()
    if len(value) == 1 and value in EVENTS:
        return value
    if value.isascii() and value.isdigit() and int(value) < len(EVENTS):
        return EVENTS[int(value)]
    return None


# --- The payload, RFC 4733 §2.3 --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One named telephone event, the 4-byte payload of RFC 4733 §2.3 (Figure 1)::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
        |     event     |E|R| volume    |          duration             |
        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    ``volume`` is the power level in dBm0 below zero (10 means -10 dBm0, §2.3.4);
    ``duration`` is in RTP timestamp units since the event (or segment) began (§2.3.5).
    """

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise ValueError(f"telephone-event code {self.event} is not 0-255")
        if not 0 <= self.volume <= _VOLUME_MASK:
            raise ValueError(f"telephone-event volume {self.volume} is not 0-63 (-dBm0)")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"telephone-event duration {self.duration} is not 0-65535")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """The event in the first four bytes; anything after them is not looked at."""
        if len(payload) < _PAYLOAD.size:
            raise ValueError(f"telephone-event payload of {len(payload)} bytes, 4 needed")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & _END_BIT), flags & _VOLUME_MASK, duration)

    def __bytes__(self) -> bytes:
        flags = (_END_BIT if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit for event codes 0-15 (§3.2), None for any other event."""
        return EVENTS[self.event] if self.event < len(EVENTS) else None


# --- Sending: dial string -> tones -> packets --------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduledDigit:
    """One tone of a dial string: ``digit`` starts ``at`` seconds after the schedule
    starts and lasts ``duration`` seconds."""

    at: float
    digit: str
    duration: float

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in EVENTS:
            raise ValueError(f"{self.digit!r} is not a DTMF digit (0-9 * # A-D)")
        if self.at < 0:
            raise ValueError(f"digit {self.digit!r} scheduled at {self.at} s, before the start")
        if self.duration <= 0:
            raise ValueError(f"digit {self.digit!r} lasts {self.duration} s; it must last > 0 s")


def digit_schedule(
    digits: str, duration: float = 0.1, gap: float = 0.1
) -> tuple[ScheduledDigit, ...]:
    """The tones of a dial string, as a pure function of the string.

    Each digit (0-9 * # A-D) sounds for ``duration`` seconds and is followed by
    ``gap`` seconds of silence; the next digit starts when that gap is over.  With
    the defaults "12#" sounds at 0.0, 0.2 and 0.4 s.

    A pause adds its length to the silence before the next digit, on top of the
    gap: ``w`` adds 0.5 s and ``W`` 1.0 s.  So "1w2" sounds '1' at 0.0 and '2' at
    0.1 + 0.1 + 0.5 = 0.7 s, "1W2" sounds '2' at 1.2 s, "ww1" starts '1' at 1.0 s.
    A trailing pause has no digit to delay and leaves no trace in the schedule.

    Any other character (spaces, lower-case a-d, '+') raises ValueError naming it.
    """
    if duration <= 0:
        raise ValueError(f"digit duration {duration} s must be > 0")
    if gap < 0:
        raise ValueError(f"inter-digit gap {gap} s must be >= 0")
    schedule: list[ScheduledDigit] = []
    cursor = 0.0
    for position, char in enumerate(digits):
        if char in PAUSES:
            cursor = _instant(cursor + PAUSES[char])
        elif char in EVENTS:
            schedule.append(ScheduledDigit(cursor, char, duration))
            cursor = _instant(cursor + duration + gap)
        else:
            raise ValueError(
                f"dial string {digits!r}: {char!r} at position {position} is neither "
                f"a DTMF digit (0-9 * # A-D) nor a pause (w W)"
            )
    return tuple(schedule)


def schedule_length(schedule: Sequence[ScheduledDigit], gap: float) -> float:
    """Seconds from the schedule's start until its last tone is over *and* the
    inter-digit ``gap`` after it has passed: the instant a following digit would
    start, so the caller may start whatever comes next (another dial string,
    bridged audio) with the same silence before it as between digits.  0.0 for an
    empty schedule.

    With :func:`event_packets`' defaults this is also when the last retransmission
    of the last end packet goes out, as long as ``gap >= 2 * interval``.
    """
    if not schedule:
        return 0.0
    return _instant(max(item.at + item.duration for item in schedule) + gap)


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One RTP packet of telephone-events to send.

    ``at``: seconds after the schedule's start when it goes out.
    ``timestamp_offset``: its RTP timestamp, in clock-rate units from the schedule's
    start: the instant its event began, shared by all packets of the event
    (RFC 4733 §2.5.1.2).  The sender adds its base timestamp, mod 2**32.
    ``marker``: the RTP marker bit, set on the first packet of an event (§2.5.1.2).
    ``payload``: the :class:`TelephoneEvent` bytes.
    """

    at: float
    timestamp_offset: int
    marker: bool
    payload: bytes


def event_packets(
    schedule: Sequence[ScheduledDigit],
    clock_rate: int = 8000,
    interval: float = 0.05,
    volume: int = 10,
) -> list[EventPacket]:
    """The telephone-event packets that play ``schedule``, in the order they go out.

    For a tone starting at ``t`` and lasting ``d`` (RFC 4733 §2.5.1):

    - updates at ``t``, ``t + interval``, ``t + 2*interval``, ... while before
      ``t + d``; the first carries the marker bit (§2.5.1.2).  Each reports the
      duration the tone will have reached at the end of its interval, capped at
      ``d``.  The first packet therefore goes out at the very start with one
      interval, not zero: §2.3.5 reserves duration 0 for state events and forbids
      sending it for any other.  (We generate the tone, so the future is known.)
    - the final packet, E bit set and the full duration, at ``t + d`` and
      retransmitted at ``t + d + interval`` and ``t + d + 2*interval``: three in
      all, "at the interval used by the source for updates" (§2.5.1.4).

    With the defaults a 100 ms digit is five packets: 0.00 s (M, 400), 0.05 s (800),
    then 0.10, 0.15, 0.20 s (E, 800).  All packets of a tone share its timestamp
    offset, ``round(t * clock_rate)``.  If ``gap < 2 * interval`` the retransmitted
    end packets of one tone interleave with the next tone's packets: the list is
    sorted by ``at``, and packets due at the same instant keep schedule order.

    A tone longer than 65535 timestamp units (8.19 s at 8000 Hz) would need the
    long-event segments of §2.5.1.3, which no dial string needs: ValueError.
    Audio should pause while events are sent; that is the sender's business.
    """
    interval_units = round(interval * clock_rate)
    if interval_units <= 0:
        raise ValueError(f"update interval {interval} s is shorter than one timestamp unit")
    packets: list[EventPacket] = []
    for item in schedule:
        code = EVENTS.index(item.digit)
        start = round(item.at * clock_rate)
        length = round(item.duration * clock_rate)
        if not 0 < length <= MAX_DURATION:
            raise ValueError(
                f"digit {item.digit!r} lasts {length} timestamp units; "
                f"one event carries 1-{MAX_DURATION} (RFC 4733 §2.3.5)"
            )
        step = 0
        while step * interval_units < length:
            update = TelephoneEvent(code, False, volume, min((step + 1) * interval_units, length))
            at = _instant(item.at + step * interval)
            packets.append(EventPacket(at, start, step == 0, bytes(update)))
            step += 1
        final = bytes(TelephoneEvent(code, True, volume, length))
        for repeat in range(END_RETRANSMISSIONS):
            at = _instant(item.at + item.duration + repeat * interval)
            packets.append(EventPacket(at, start, False, final))
    packets.sort(key=lambda packet: packet.at)
    return packets


# --- Receiving, RFC 4733 §2.5.2 -----------------------------------------------------------


@dataclass(slots=True)
class _Event:
    timestamp: int
    code: int
    duration: int


class DtmfReceiver:
    """Reports each DTMF key press of one RTP stream once (RFC 4733 §2.5.2).

    An event is identified by its RTP timestamp (§2.5.1.2).  The first packet seen
    with a new timestamp reports the digit, whatever that packet is: the marked
    first packet, an update, or an end packet when everything before it was lost.
    Later packets with that timestamp (updates, the three end packets, late
    duplicates) report nothing.  Two presses of the same key have two timestamps
    and are reported twice.

    The next segment of a long event (§2.5.1.3) starts a new timestamp, exactly
    65535 units after the previous one, with the same event code and no marker; it
    continues the event and reports nothing.

    Event codes above 15 (tones, modem signals) report nothing.  A payload too
    short to parse reports nothing and is counted in ``malformed``.

    §2.3.5 lets a receiver ignore a zero duration for events that are not states;
    we report such a packet all the same, since a key was pressed either way and
    some gateways send their first packet with duration 0.
    """

    RECENT = 16  # timestamps remembered: enough for any late retransmission to be seen again

    def __init__(self) -> None:
        self.malformed = 0
        self._recent: deque[int] = deque(maxlen=self.RECENT)
        self._current: _Event | None = None

    def feed(self, timestamp: int, payload: bytes, marker: bool) -> str | None:
        """The digit a newly seen event reports, or None for anything else."""
        try:
            event = TelephoneEvent.parse(payload)
        except ValueError as error:
            self.malformed += 1
            log.debug("telephone-event dropped: %s (payload %s)", error, payload.hex())
            return None
        current = self._current
        if timestamp in self._recent:
            if current is not None and current.timestamp == timestamp:
                current.duration = max(current.duration, event.duration)
            return None
        self._recent.append(timestamp)
        self._current = _Event(timestamp, event.event, event.duration)
        if (
            current is not None
            and not marker
            and event.event == current.code
            and current.duration == MAX_DURATION
            and timestamp == (current.timestamp + MAX_DURATION) % _TIMESTAMP_MODULUS
        ):
            return None
        if event.digit is None:
            log.debug("telephone-event %d at %d is not a DTMF digit", event.event, timestamp)
        return event.digit


# --- SIP INFO ---------------------------------------------------------------------------


def info_body(digit: str, duration_ms: int = 100) -> bytes:
    """An ``application/dtmf-relay`` body: ``Signal=1\\r\\nDuration=100\\r\\n``."""
    if len(digit) != 1 or digit not in EVENTS:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")
    if duration_ms <= 0:
        raise ValueError(f"DTMF duration {duration_ms} ms must be > 0")
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode("ascii")


def parse_info(content_type: str | None, body: bytes) -> str | None:
    """The digit a SIP INFO carries, or None.

    ``application/dtmf-relay``: ``key=value`` lines; keys are case-insensitive and
    spaces around keys and values are allowed; the ``Signal`` value is the digit
    (``5``, ``*``, ``#``, ``A``-``D``, lower case accepted) or its event code
    (``10`` for '*', ``11`` for '#', ``12``-``15`` for A-D), as common practice has it.
    ``application/dtmf``: the whole body is the digit or its event code.

    None when the content type is neither (parameters such as ``;charset=`` are
    ignored, the type is case-insensitive) or the body holds no valid digit.
    """
    if content_type is None:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("latin-1")
    if media_type == "application/dtmf":
        return _code(text)
    if media_type != "application/dtmf-relay":
        return None
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip().lower() == "signal":
            return _code(value)
    return None
