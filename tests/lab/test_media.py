"""The media path on the lab (issue #4): softswitch between a caller and R4, with RTP
really inspected on both sides by the lab's media peer (tests/lab/media_peer.py).

+1 800 555 0106: R4 answers; 1 s later it gets the telephone-events 1, 2, #, then
about 1.0 s of 1000 Hz (its whisper), and only then does the caller get its 200 OK;
audio the caller sends afterwards reaches R4 and R4's echo comes back.
+1 800 555 0108: the same, but R4 hears the tracking number's 1500 Hz and not its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from media_peer import (
    MediaCallee,
    MediaCaller,
    audio_segments,
    check_rtp_grid,
    info_digits,
    telephone_events,
)

if TYPE_CHECKING:
    from conftest import Softswitch

pytestmark = pytest.mark.lab

R4_PORT = 5074
TONES = (1000, 1500, 800)


async def call_r4(number: str, offer_events: bool = True) -> tuple[MediaCaller, MediaCallee]:
    """Caller → softswitch → R4 (answers after 0.3 s, echoes); the caller sends 0.5 s of
    800 Hz once connected, then hangs up.  Returns both peers, their recordings done."""
    async with (
        MediaCallee(R4_PORT, answer_after=0.3, echo=True,
                    offer_telephone_event=offer_events) as r4,
        MediaCaller(number) as caller,
    ):
        await caller.call(timeout=10.0)
        await caller.send_tone(800, 0.5)
        await caller.wait_rtp(20, timeout=3.0)
        bye = await caller.bye()
        assert bye.status == 200
        await r4.wait_ended(timeout=3.0)
        assert not caller.errors and not r4.errors
        return caller, r4


def segment(r4: MediaCallee, freq: int) -> list[object]:
    return [s for s in audio_segments(r4.rtp, candidates=TONES) if s.freq == freq]


async def test_0106_extension_then_whisper_then_bridge(softswitch: Softswitch) -> None:
    caller, r4 = await call_r4("+18005550106")
    assert r4.answered_at is not None and caller.answered_at is not None
    events = telephone_events(r4.rtp)
    assert [e.digit for e in events] == ["1", "2", "#"]
    assert all(e.end_seen for e in events)
    # "starting about 1 s after answer"
    assert 0.9 <= events[0].arrival - r4.answered_at <= 1.3
    whisper = segment(r4, 1000)
    assert len(whisper) == 1, audio_segments(r4.rtp, candidates=TONES)
    assert abs(whisper[0].duration - 1.0) < 0.1  # type: ignore[attr-defined]
    assert events[-1].arrival < whisper[0].start < caller.answered_at  # type: ignore[attr-defined]
    # Then the caller's own audio reaches R4, and R4's echo of it reaches the caller.
    heard = segment(r4, 800)
    assert heard and heard[0].start > caller.answered_at  # type: ignore[attr-defined]
    echoed = [s for s in audio_segments(caller.rtp, candidates=TONES) if s.freq == 800]
    assert echoed, "R4's echo did not come back to the caller"
    # One stream toward R4 across the whisper-to-bridge switch: one SSRC, no gaps.
    assert len({p.ssrc for p in r4.rtp}) == 1
    assert check_rtp_grid(r4.rtp, pt=None, step=None) == []
    # The caller never heard the whisper.
    assert not [s for s in audio_segments(caller.rtp, candidates=TONES) if s.freq == 1000]
    # Every RTP port went back to the pool once the call ended.
    deadline = time.monotonic() + 3.0
    while (streams := softswitch.stats()["rtp_streams"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert streams == 0


async def test_0108_tracking_whisper_replaces_r4s_own(softswitch: Softswitch) -> None:
    caller, r4 = await call_r4("+18005550108")
    assert [e.digit for e in telephone_events(r4.rtp)] == ["1", "2", "#"]
    tracking = segment(r4, 1500)
    assert len(tracking) == 1 and abs(tracking[0].duration - 1.0) < 0.1  # type: ignore[attr-defined]
    assert segment(r4, 1000) == [], "R4's own whisper is skipped"
    assert caller.answered_at is not None
    assert tracking[0].start < caller.answered_at  # type: ignore[attr-defined]


async def test_0106_extension_by_sip_info_without_telephone_event(
    softswitch: Softswitch,
) -> None:
    _, r4 = await call_r4("+18005550106", offer_events=False)
    assert telephone_events(r4.rtp) == []
    assert info_digits(r4.infos) == "12#"
    assert len(segment(r4, 1000)) == 1


SCREENING = {
    "    whisper: conf/audio/lab-whisper.wav\n": (
        "    whisper: conf/audio/lab-whisper.wav\n    screening: {key: \"1\", timeout: 2}\n"
    ),
    "    route: {dial: [R4]}\n    whisper: conf/audio/lab-tracking-whisper.wav": (
        "    route: {dial: [R4, R1], pattern: sequential}\n"
        "    whisper: conf/audio/lab-tracking-whisper.wav"
    ),
}


async def test_screening_no_key_moves_on_to_the_next_number(
    lab_config_copy: Callable[[dict[str, str]], Path],
    softswitch_on: Callable[[Path], Softswitch],
) -> None:
    """R4 is a voicemail that answers and never presses 1: after the whisper and the
    2 s screening timeout R4 gets BYE and R1 is rung and connects the caller."""
    softswitch_on(lab_config_copy(SCREENING))
    async with (
        MediaCallee(R4_PORT, answer_after=0.2) as r4,
        MediaCallee(5071, answer_after=0.2) as r1,
        MediaCaller("+18005550108") as caller,
    ):
        await caller.call(timeout=15.0)
        assert r4.call is not None and r4.call.bye_received_at is not None
        assert r1.call is not None and r1.answered_at is not None
        assert r4.call.bye_received_at < r1.call.received_at
        assert len(segment(r4, 1500)) == 1
        await caller.bye()
        await r1.wait_ended(timeout=3.0)
