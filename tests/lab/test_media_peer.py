"""Self-test of the lab's media peer (tests/lab/media_peer.py), without softswitch.

MediaCaller INVITEs MediaCallee directly on loopback; the analysis helpers must
find in the callee's recording the tone and the telephone-event the caller sent,
and in the caller's recording the callee's echo.  The pure helpers are checked on
synthetic packets.  Ports: 5090-5099 (SIP) and 40000-40999 (RTP), never the lab's.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from media_peer import (
    HOST,
    MediaCallee,
    MediaCaller,
    RtpPacket,
    audio_segments,
    build_rtp,
    check_rtp_grid,
    dominant,
    goertzel,
    info_digits,
    parse_rtp,
    telephone_events,
    tone_present,
    tone_samples,
    ulaw_decode,
    ulaw_encode,
)

pytestmark = pytest.mark.lab

CALLEE_SIP, CALLEE_RTP = 5091, 40110
CALLER_SIP, CALLER_RTP = 5092, 40112
R4 = "+14155550104"


async def test_call_tone_event_echo_bye() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with (
        MediaCallee(CALLEE_SIP, rtp_port=CALLEE_RTP, answer_after=0.1, echo=True) as callee,
        MediaCaller(R4, target=(HOST, CALLEE_SIP), sip_port=CALLER_SIP,
                    rtp_port=CALLER_RTP) as caller,
    ):
        answer = await caller.call(timeout=2.0)
        assert answer.status == 200
        assert [p.status for p in caller.provisionals] == [100, 180]
        assert not any(p.has_sdp for p in caller.provisionals)
        assert caller.remote_rtp == (HOST, CALLEE_RTP)
        assert caller.remote_event_pt == 101
        call = await callee.wait_answered(timeout=1.0)
        assert callee.remote_rtp == (HOST, CALLER_RTP)
        assert callee.answered_at is not None and caller.answered_at is not None
        assert callee.answered_at <= caller.answered_at
        assert len(callee.invites) == 1 and call.invite.call_id == answer.call_id

        tone_start = loop.time() + 0.02
        frames = await caller.send_tone(1000, 0.5, start_at=tone_start)
        assert frames == 25
        await caller.send_dtmf("5", duration=0.1, start_at=tone_start + 0.5 + 0.04)
        await callee.wait_rtp(25 + 7, timeout=1.0)
        await caller.wait_rtp(25, timeout=1.0, pt=0)  # the echo

        # The callee heard 0.5 s of 1000 Hz, on a clean grid, then one '5'.
        tones = [s for s in audio_segments(callee.rtp, candidates=(1000, 1500)) if s.freq]
        assert [(s.freq, s.packets) for s in tones] == [(1000, 25)]
        assert tones[0].duration == pytest.approx(0.5)
        assert tones[0].start >= tone_start
        assert check_rtp_grid(callee.rtp) == []
        events = telephone_events(callee.rtp)
        assert [(e.digit, e.end_seen) for e in events] == [("5", True)]
        assert events[0].arrival > tones[0].end
        assert tone_present(ulaw_decode(callee.audio()[10].payload), 1000)
        assert not tone_present(ulaw_decode(callee.audio()[10].payload), 1500)

        # The echo came back to the caller: the same tone, its own clean stream.
        echoed = [s for s in audio_segments(caller.rtp, candidates=(1000, 1500)) if s.freq]
        assert [(s.freq, s.packets) for s in echoed] == [(1000, 25)]
        assert check_rtp_grid(caller.rtp) == []
        assert caller.rtp[0].ssrc != callee.rtp[0].ssrc
        assert telephone_events(caller.rtp) == []  # events are not echoed

        bye = await caller.bye(timeout=1.0)
        assert bye.status == 200
        assert callee.byes and call.ended_at is not None
        assert caller.ended_at is not None
        assert not callee.errors and not caller.errors
    assert loop.time() - began < 3.0


async def test_callee_hangs_up_and_records_info() -> None:
    async with (
        MediaCallee(CALLEE_SIP, rtp_port=CALLEE_RTP, answer_after=0.0) as callee,
        MediaCaller(R4, target=(HOST, CALLEE_SIP), sip_port=CALLER_SIP,
                    rtp_port=CALLER_RTP) as caller,
    ):
        await caller.call(timeout=2.0)
        await callee.wait_answered(timeout=1.0)
        info = await caller.send_info("Signal=7\r\nDuration=160\r\n", timeout=1.0)
        assert info.status == 200
        assert [(i.content_type, info_digits([i])) for i in callee.infos] == [
            ("application/dtmf-relay", "7")
        ]
        assert caller.answered_at is not None
        assert callee.infos[0].arrival >= caller.answered_at
        await callee.send_tone((440, 480), 0.2)
        await caller.wait_rtp(10, timeout=1.0)
        segments = audio_segments(caller.rtp)
        assert [(s.freq, s.packets) for s in segments] == [((440.0, 480.0), 10)]
        response = await callee.hangup(timeout=1.0)
        assert response.status == 200
        await caller.wait_ended(timeout=1.0)
        assert len(caller.byes) == 1
        assert not callee.errors and not caller.errors


async def test_cancel_while_ringing() -> None:
    async with (
        MediaCallee(CALLEE_SIP, rtp_port=CALLEE_RTP, answer_after=None) as callee,
        MediaCaller(R4, target=(HOST, CALLEE_SIP), sip_port=CALLER_SIP,
                    rtp_port=CALLER_RTP) as caller,
    ):
        await caller.invite()
        await caller.wait_provisional(180, timeout=1.0)
        cancel = await caller.cancel(timeout=1.0)
        assert cancel.status == 200
        final = await caller.wait_final(timeout=1.0)
        assert final.status == 487
        await callee.wait_for(lambda: len(callee.acks) == 1, 1.0, "the ACK of 487")
        assert callee.call.cancelled_at is not None and callee.call.answered_at is None
        assert len(callee.cancels) == 1
        assert not callee.errors and not caller.errors


async def test_reject() -> None:
    async with (
        MediaCallee(CALLEE_SIP, rtp_port=CALLEE_RTP, answer_after=0.0, reject=486),
        MediaCaller(R4, target=(HOST, CALLEE_SIP), sip_port=CALLER_SIP,
                    rtp_port=CALLER_RTP) as caller,
    ):
        await caller.invite()
        final = await caller.wait_final(timeout=1.0)
        assert final.status == 486 and caller.ended_at is not None
        with pytest.raises(AssertionError):
            await caller.wait_answer(timeout=0.1)


def test_ulaw_tables() -> None:
    # G.711 reference points: 0xFF and 0x7F are zero, 0x80 / 0x00 the extremes.
    assert ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xF0, 0x70])) == [
        0, 0, 32124, -32124, 120, -120,
    ]
    for value in (-30000, -1000, -5, 0, 7, 999, 12345, 32000):
        (back,) = ulaw_decode(ulaw_encode([value]))
        assert abs(back - value) <= max(8, abs(value) // 16)


def test_tone_analysis() -> None:
    tone = ulaw_decode(ulaw_encode(tone_samples(1000, 160)))
    assert goertzel(tone, 1000) > 100 * goertzel(tone, 1500)
    assert dominant(tone, (440, 1000, 1500)) == 1000
    assert dominant([0] * 160, (1000,)) is None
    ring = ulaw_decode(ulaw_encode(tone_samples((440, 480), 160)))
    assert dominant(ring, (440, 480, (440, 480), 1000)) == (440, 480)
    assert tone_present(ring, (440, 480)) and not tone_present(ring, 1000)
    pure = ulaw_decode(ulaw_encode(tone_samples(440, 160)))
    assert dominant(pure, (440, 480, (440, 480))) == 440


def _packet(seq: int, ts: int, pt: int = 0, payload: bytes = b"\xff" * 160,
            arrival: float = 0.0, marker: bool = False) -> RtpPacket:
    parsed = parse_rtp(build_rtp(pt, seq, ts, 0x1234, payload, marker), arrival, (HOST, 1))
    assert parsed is not None
    return parsed


def test_events_and_grid() -> None:
    events = [
        _packet(65534, 1000, 101, struct.pack("!BBH", 11, 10, 160), 0.00, True),
        _packet(65535, 1000, 101, struct.pack("!BBH", 11, 0x8A, 320), 0.02),
        _packet(0, 1000, 101, struct.pack("!BBH", 11, 0x8A, 320), 0.04),
        _packet(1, 2000, 101, struct.pack("!BBH", 1, 10, 160), 0.10, True),
    ]
    assert telephone_events(events) == [("#", 0.0, 1000, True), ("1", 0.10, 2000, False)]
    assert check_rtp_grid([_packet(65535, 0), _packet(0, 160), _packet(1, 320)]) == []
    problems = check_rtp_grid([_packet(1, 0), _packet(3, 160), _packet(4, 400)])
    assert len(problems) == 2 and "seq 1 -> 3" in problems[0] and "+240" in problems[1]
