"""A voice menu (IVR) as a pure state machine, fed keys and time.

Theory of operation
-------------------
A :class:`MenuSession` is made per caller from a :class:`~softswitch.config.Menu`
and the lengths of its recordings (the media layer knows them; the session never
opens a file).  ``start(now)``, ``digit(key, now)`` and ``tick(now)`` return
:data:`MenuAction` values for the B2BUA to execute: :class:`Play` a recording from
a given loop time, :class:`StopPlaying` what is playing, and finally one
:class:`Chosen` (the route the caller takes, or ``None``: hang up).  After every
input the B2BUA re-arms one timer at :attr:`MenuSession.deadline` and calls
``tick`` when it fires.

The rules, from the product page:

- The prompt plays; once it has finished, the caller has ``timeout`` seconds to
  press a key.  A key pressed while a recording plays counts (barge-in) and stops it.
- A key listed in ``keys`` takes its route.
- A key not listed plays ``invalid_prompt`` (if there is one) and then the prompt
  again; no key within ``timeout`` plays the prompt again.  Each of these uses one
  of ``retries``, so without wrong keys the prompt plays ``retries + 1`` times.
- When no retry is left, no key or a wrong key takes ``default`` at once (the
  invalid prompt is not played: it announces a replay that will not come);
  without a default the caller is hung up.
- Keys after the end are ignored (traced).

Time is exact: a recording started at ``at`` ends at ``at + its length``, the wait
for a key ends ``timeout`` seconds after the prompt's scheduled end, and a replay
starts at the instant the previous step ended, even when ``tick`` runs late (a late
tick runs every step that fell due, so the schedule never drifts).  A key at exactly
a deadline is on time: ``digit`` first runs only the steps due strictly before it.

States and transitions (``k`` a key; ``retry``: a retry is left; "tick at X": ``tick``
reached the deadline X, and X is the time the next step starts from):

===========  ======================  =========================================  ==========
state        input                   actions                                    next state
===========  ======================  =========================================  ==========
READY        start                   Play(prompt, now)                          PROMPT
READY        any k                   (none; traced)                             READY
PROMPT       tick at prompt end      (none: the wait begins)                    WAITING
PROMPT       listed k                StopPlaying, Chosen(keys[k])               DONE
PROMPT       other k, retry,         StopPlaying, Play(invalid_prompt, now)     INVALID
             invalid_prompt
PROMPT       other k, retry, no      StopPlaying, Play(prompt, now)             PROMPT
             invalid_prompt
PROMPT       other k, no retry       StopPlaying, Chosen(default)               DONE
INVALID      tick at its end         Play(prompt, end)                          PROMPT
INVALID      any k                   as in PROMPT (barge-in)                    as PROMPT
WAITING      listed k                Chosen(keys[k])                            DONE
WAITING      other k                 as in PROMPT, without StopPlaying          as PROMPT
WAITING      tick at timeout, retry  Play(prompt, timeout)                      PROMPT
WAITING      tick at timeout,        Chosen(default)                            DONE
             no retry
DONE         any k                   (none; traced)                             DONE
===========  ======================  =========================================  ==========

``deadline`` is the prompt's end in PROMPT, the invalid prompt's end in INVALID, the
end of the wait in WAITING, and ``None`` in READY and DONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..config import Menu, Route


@dataclass(frozen=True, slots=True)
class Play:
    """Start playing ``path`` at loop time ``at`` (replacing anything playing)."""

    path: Path
    at: float


@dataclass(frozen=True, slots=True)
class StopPlaying:
    """Stop the recording that is playing (a key barged in)."""


@dataclass(frozen=True, slots=True)
class Chosen:
    """The menu is over: take ``route`` (``None``: no default, hang up the caller).

    ``key`` is the key whose press ended the menu (a listed key, or the wrong key
    that used up the last retry); ``None`` when the last wait timed out."""

    route: Route | None
    key: str | None
    why: str


MenuAction = Play | StopPlaying | Chosen


class MenuState(Enum):
    READY = "ready"  # not started
    PROMPT = "prompt"  # the prompt is playing
    INVALID = "invalid"  # the invalid prompt is playing
    WAITING = "waiting"  # the prompt has ended; waiting `timeout` seconds for a key
    DONE = "done"  # Chosen was returned


class MenuSession:
    """One caller in one menu; see the module docstring for the state table."""

    def __init__(self, menu: Menu, prompt_seconds: float, invalid_seconds: float = 0.0) -> None:
        if prompt_seconds < 0 or invalid_seconds < 0:
            raise ValueError(
                f"recording lengths must be >= 0 s (prompt {prompt_seconds}, "
                f"invalid prompt {invalid_seconds})"
            )
        self.menu = menu
        self.prompt_seconds = prompt_seconds
        self.invalid_seconds = invalid_seconds
        self.trace: list[str] = []
        self._state = MenuState.READY
        self._deadline: float | None = None
        self._retries_used = 0

    @property
    def deadline(self) -> float | None:
        """When ``tick`` must next run: the end of a recording or of the wait."""
        return self._deadline

    @property
    def done(self) -> bool:
        return self._state is MenuState.DONE

    # ---- inputs ------------------------------------------------------------------------

    def start(self, now: float) -> list[MenuAction]:
        if self._state is not MenuState.READY:
            raise RuntimeError(f"menu {self.menu.name} already started")
        return [self._prompt(now)]

    def digit(self, digit: str, now: float) -> list[MenuAction]:
        """A key the caller pressed at ``now`` (one of 0-9 * # A-D)."""
        if len(digit) != 1:
            raise ValueError(f"{digit!r} is not one key")
        actions = self._run_due(now, inclusive=False)
        if self._state in (MenuState.READY, MenuState.DONE):
            when = "before the menu started" if self._state is MenuState.READY else "after the end"
            self.trace.append(f"key {digit} {when}, ignored")
            return actions
        if self._state is not MenuState.WAITING:
            playing = "prompt" if self._state is MenuState.PROMPT else "invalid prompt"
            self.trace.append(f"key {digit} during the {playing}")
            actions.append(StopPlaying())
        route = self.menu.keys.get(digit)
        if route is not None:
            actions.append(self._finish(route, digit, f"key {digit}"))
            return actions
        self.trace.append(f"key {digit} not in the menu")
        actions.append(self._retry(now, digit, f"key {digit} not in the menu"))
        return actions

    def tick(self, now: float) -> list[MenuAction]:
        """Run every step due at or before ``now`` (call at or after ``deadline``)."""
        return self._run_due(now, inclusive=True)

    # ---- steps -------------------------------------------------------------------------

    def _run_due(self, now: float, *, inclusive: bool) -> list[MenuAction]:
        actions: list[MenuAction] = []
        while self._deadline is not None and (
            self._deadline <= now if inclusive else self._deadline < now
        ):
            actions.extend(self._expire(self._deadline))
        return actions

    def _expire(self, at: float) -> list[MenuAction]:
        """The deadline ``at`` has passed in the current state."""
        if self._state is MenuState.PROMPT:
            self._state = MenuState.WAITING
            self._deadline = at + self.menu.timeout
            self.trace.append(f"prompt ended; waiting {self.menu.timeout:g} s for a key")
            return []
        if self._state is MenuState.INVALID:
            return [self._prompt(at)]
        self.trace.append(f"no key within {self.menu.timeout:g} s")
        return [self._retry(at, None, "no key")]

    def _retry(self, now: float, key: str | None, why: str) -> MenuAction:
        """A wrong key or a timeout: play again while a retry is left, else the default."""
        if self._retries_used >= self.menu.retries:
            prompts = self._retries_used + 1
            return self._finish(
                self.menu.default, key, f"{why} after {prompts} prompt{'s' * (prompts > 1)}"
            )
        self._retries_used += 1
        if key is not None and self.menu.invalid_prompt is not None:
            self._state = MenuState.INVALID
            self._deadline = now + self.invalid_seconds
            self.trace.append("invalid prompt")
            return Play(self.menu.invalid_prompt, now)
        return self._prompt(now)

    def _prompt(self, at: float) -> Play:
        self._state = MenuState.PROMPT
        self._deadline = at + self.prompt_seconds
        self.trace.append(f"prompt {self._retries_used + 1} of {self.menu.retries + 1}")
        return Play(self.menu.prompt, at)

    def _finish(self, route: Route | None, key: str | None, why: str) -> Chosen:
        self._state = MenuState.DONE
        self._deadline = None
        if route is None:
            why += "; no default, hang up"
        self.trace.append(f"chosen: {why}")
        return Chosen(route, key, why)
