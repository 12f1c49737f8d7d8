"""Between *answered* and *bridged*: what a receiving number goes through first.

Theory of operation
-------------------
When a receiving number with a dial extension, a whisper or screening answers,
the caller is not connected yet: the caller keeps hearing ringing and only gets its
200 OK when this sequence has run to its end.

1. *Dial extension.*  ``delay`` seconds after the 200, the digits go out as RFC 4733
   telephone-events on the leg's stream, or, when the receiving end did not offer
   telephone-event, as one SIP INFO ``application/dtmf-relay`` per digit at the
   same moments.  ``w``/``W`` pause 0.5 s / 1 s.
2. *Whisper.*  The audio (the tracking number's whisper if it has one, else the
   number's own) is played to the receiving number only, on the 20 ms grid.
3. *Screening.*  The person who answered must press the key within the timeout
   (a key pressed during the whisper counts).  No key, or another key, counts as no
   answer: the leg is hung up and the route moves on, so a mobile's voicemail
   cannot swallow the call.
4. *Confirmed.*  The call answers the caller and bridges.

Every step is a timer on the endpoint's clock, so the whole sequence runs in unit
tests on a fake clock; the media layer only executes the timed sends it is given.
A hangup on either side stops the sequence (:meth:`Confirmation.stop`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from ..media import audio
from ..media.dtmf import digit_schedule, event_packets, info_body, schedule_length
from ..media.streams import MediaStream, Remote
from ..sip.timers import TimerHandle

if TYPE_CHECKING:
    from .call import Call
    from .legs import OutboundLeg


class Step(Enum):
    EXTENSION = "dial extension"
    WHISPER = "whisper"
    SCREENING = "screening"
    CONFIRMED = "confirmed"
    FAILED = "not confirmed"
    STOPPED = "stopped"


# A whisper's last frame is due at the returned time; the next step waits one frame.
FRAME = 0.020


class Confirmation:
    """The answer-time sequence of one leg (see the module docstring)."""

    def __init__(
        self,
        call: Call,
        leg: OutboundLeg,
        stream: MediaStream | None,
        remote: Remote | None,
        on_done: Callable[[bool, str, float], None],
    ) -> None:
        self.call = call
        self.leg = leg
        self.stream = stream
        self.remote = remote
        self.on_done = on_done  # (confirmed, why, now)
        self.step = Step.EXTENSION
        self.timers: list[TimerHandle] = []

    def _at(self, when: float, callback: Callable[[float], None]) -> None:
        self.timers.append(self.call.endpoint.timers.call_at(when, callback))

    def _cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    def start(self, now: float) -> None:
        extension = self.leg.target.dial_extension
        if extension is None:
            self._whisper(now)
            return
        at = now + extension.delay
        schedule = digit_schedule(extension.digits, extension.duration, extension.gap)
        by_rtp = (
            self.stream is not None
            and self.remote is not None
            and self.remote.event_payload_type is not None
        )
        if by_rtp:
            assert self.stream is not None
            self.stream.send_events(event_packets(schedule), at)
        else:
            for digit in schedule:
                self._at(at + digit.at, self._info(digit.digit, round(digit.duration * 1000)))
        how = "RFC 4733" if by_rtp else "SIP INFO"
        self.call.log_event(
            f"leg {self.leg.number}: dial extension {extension.digits} by {how} "
            f"in {extension.delay:g} s"
        )
        self._at(at + schedule_length(schedule, extension.gap), self._whisper)

    def _info(self, digit: str, duration_ms: int) -> Callable[[float], None]:
        def send(now: float) -> None:
            self.call.send_in_dialog(
                self.leg, "INFO", now, info_body(digit, duration_ms), "application/dtmf-relay"
            )

        return send

    def _whisper(self, now: float) -> None:
        self.step = Step.WHISPER
        path = self.leg.target.whisper
        if path is None or self.stream is None or self.remote is None:
            self._screen(now)
            return
        try:
            frames = audio.frames(path, self.remote.codec)
        except audio.AudioError as exc:  # checked at load; the file changed since
            self.call.log_event(f"leg {self.leg.number}: whisper skipped: {exc}")
            self._screen(now)
            return
        if self.leg.target.screening is not None:
            self._listen()
        end = self.stream.play(frames, now)
        seconds = end - now + FRAME
        self.call.log_event(f"leg {self.leg.number}: whisper {path.name} ({seconds:.1f} s)")
        self._at(end + FRAME, self._screen)

    def _listen(self) -> None:
        if self.stream is not None:
            self.stream.listen(self.digit, None)

    def _screen(self, now: float) -> None:
        if self.step is not Step.WHISPER:
            return
        screening = self.leg.target.screening
        if screening is None:
            self._finish(True, "confirmed", now)
            return
        self.step = Step.SCREENING
        self._listen()
        self._at(now + screening.timeout, self._no_key)

    def _no_key(self, now: float) -> None:
        screening = self.leg.target.screening
        assert screening is not None
        self._finish(False, f"no key {screening.key} in {screening.timeout:g} s", now)

    def digit(self, digit: str, now: float) -> None:
        """A digit from the receiving number (RFC 4733 or SIP INFO)."""
        screening = self.leg.target.screening
        if screening is None or self.step not in (Step.WHISPER, Step.SCREENING):
            return
        if digit == screening.key:
            self._finish(True, f"key {digit} pressed", now)
        else:
            self._finish(False, f"key {digit} pressed, expected {screening.key}", now)

    def _finish(self, confirmed: bool, why: str, now: float) -> None:
        self._cancel_timers()
        if self.stream is not None:
            self.stream.stop_playing()
            self.stream.listen(None, None)
        self.step = Step.CONFIRMED if confirmed else Step.FAILED
        self.on_done(confirmed, why, now)

    def stop(self) -> None:
        """A hangup or another leg's answer: nothing more is sent."""
        if self.step in (Step.CONFIRMED, Step.FAILED, Step.STOPPED):
            return
        self._cancel_timers()
        self.step = Step.STOPPED
        if self.stream is not None:
            self.stream.stop_playing()
            self.stream.listen(None, None)
