"""A call queue's live state: who waits, which member rings for whom, who is next.

Theory of operation
-------------------
One :class:`CallQueue` lives per configured queue for as long as the process runs
(a config reload calls :meth:`CallQueue.configure`, it does not make a new one).
It is pure: the B2BUA tells it what happened (a caller joined or left, a member's
ring ended unanswered, a member answered, a queue call ended), each time with
``now``, and asks :meth:`CallQueue.offers` which members to ring next.  It never
rings anyone, never runs a timer, and never reads a clock.

Members are names (agents or receiving numbers); callers are whatever unique key
the B2BUA gives a waiting call (its call id: one number may call twice).  A
member's state:

============  =====================================================================
state         meaning
============  =====================================================================
IDLE          may be offered a caller
RINGING       offered to one caller; ringing until :meth:`~CallQueue.no_answer`,
              :meth:`~CallQueue.answered` or the caller's :meth:`~CallQueue.leave`
IN_CALL       answered a queue caller, until :meth:`~CallQueue.call_ended`
WRAP_UP       the ``wrap_up`` seconds after a queue call, then IDLE; computed from
              ``now`` and the current ``wrap_up`` (a reload that shortens it frees
              members at once), so no timer is needed
UNAVAILABLE   only in :meth:`~CallQueue.snapshot`: an IDLE member the B2BUA says it
              cannot ring (``available(name)`` is false: no registered phone, busy
              in a call outside the queue)
============  =====================================================================

Transitions: IDLE → RINGING (offers), RINGING → IDLE (no_answer; leave of its
caller; another member answered its caller), RINGING → IN_CALL (answered),
IN_CALL → WRAP_UP (call_ended), WRAP_UP → IDLE (``now`` ≥ call end + ``wrap_up``).

Offers
------
Waiting callers are served in arrival order.  :meth:`CallQueue.offers` walks them
and, for each caller with no member ringing for it, picks among the members that
are IDLE at ``now`` and available, by strategy (:class:`QueueStrategy`):

- ``ring_all``: all of them;
- ``round_robin``: the first in list order after the member last offered (by any
  caller; the memory outlives calls and reloads);
- ``longest_idle``: the one whose last answered queue call ended longest ago (never
  answered one: longest of all); ties in list order.  A ring without answer does
  not reset it;
- ``fewest_calls``: fewest answered queue calls; ties in list order;
- ``linear``: the first in list order;
- ``random``: ``rng.choice`` among them, in list order.

The picked members ring for that caller, and the walk goes on to the next caller
while idle members are left.

*Retrying a member who did not answer.*  For every strategy but ``ring_all``, a
member whose ring for a caller ended unanswered is skipped for that caller while
another candidate has failed that caller fewer times: every candidate is tried
once before anyone is tried twice, and a member who is the only one idle is
retried rather than leaving the caller unserved.  ``ring_all`` rings every idle
member each time, the one who just let it ring included: they all had the same
chance at once.

Mistimed events (an answer for a caller who has left, a ring ending for a member
who rings for someone else) raise :class:`QueueError`: the B2BUA, which cancelled
those legs, must not report them.  A member removed by a reload while it rings or
is in a call is kept until that ring or call ends, so its events stay valid; it is
never offered again.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..config import QueueStrategy


class QueueError(LookupError):
    """An event that does not match the queue's state (a bug in its caller)."""


class MemberState(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``members`` for ``caller`` now (one, or every idle one for ring_all)."""

    caller: str
    members: tuple[str, ...]


@dataclass(slots=True)
class _Member:
    # WRAP_UP is stored until the next transition; what it means at a given time
    # is computed by CallQueue._state.
    state: MemberState = MemberState.IDLE
    since: float | None = None  # None: since the queue was made
    ringing_for: str | None = None
    calls_taken: int = 0
    last_call_ended: float | None = None


@dataclass(slots=True)
class _Caller:
    joined: float
    ringing: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # member -> rings unanswered


class CallQueue:
    strategy: QueueStrategy
    wrap_up: float

    def __init__(
        self,
        name: str,
        members: Sequence[str],
        strategy: QueueStrategy,
        wrap_up: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.rng = rng if rng is not None else random.Random()
        self._order: tuple[str, ...] = ()
        self._members: dict[str, _Member] = {}
        self._callers: dict[str, _Caller] = {}  # in arrival order
        self._last_offered: str | None = None
        self.configure(members, strategy, wrap_up)

    def configure(self, members: Sequence[str], strategy: QueueStrategy, wrap_up: float) -> None:
        """Apply a reloaded config: waiting callers, the state and call counts of
        members still listed, and the round-robin memory are kept."""
        order = tuple(members)
        if len(set(order)) != len(order):
            raise ValueError(f"queue {self.name}: a member is listed twice in {order}")
        if wrap_up < 0:
            raise ValueError(f"queue {self.name}: wrap_up {wrap_up} s must be >= 0")
        if self._last_offered is not None and self._last_offered not in order:
            self._last_offered = self._before_successor(self._last_offered, order)
        self._order = order
        self.strategy = strategy
        self.wrap_up = wrap_up
        for name in order:
            self._members.setdefault(name, _Member())
        for name in list(self._members):
            self._retire_if_removed(name)

    # ---- callers -----------------------------------------------------------------------

    @property
    def waiting(self) -> list[str]:
        """Waiting callers, next to be served first."""
        return list(self._callers)

    def join(self, caller: str, now: float) -> int:
        """Put ``caller`` at the back; returns its position (1 = next to be served)."""
        if caller in self._callers:
            raise QueueError(f"{caller} is already waiting in queue {self.name}")
        self._callers[caller] = _Caller(joined=now)
        return len(self._callers)

    def leave(self, caller: str, now: float) -> list[str]:
        """``caller`` hung up or gave up: its offers are withdrawn.  Returns the
        members that were ringing for it (to be cancelled), who are IDLE again."""
        waiting = self._caller(caller)
        del self._callers[caller]
        for member in waiting.ringing:
            self._set(member, MemberState.IDLE, now)
        return list(waiting.ringing)

    def position(self, caller: str) -> int | None:
        """1 for the next caller to be served; None for a caller not waiting."""
        for index, name in enumerate(self._callers, start=1):
            if name == caller:
                return index
        return None

    # ---- offers ------------------------------------------------------------------------

    def offers(self, now: float, available: Callable[[str], bool]) -> list[Offer]:
        """Which members to ring now, for which callers (see the module docstring).
        The members offered are RINGING for their caller when this returns."""
        idle = [
            name
            for name in self._order
            if self._state(name, now) is MemberState.IDLE and available(name)
        ]
        offers: list[Offer] = []
        for caller, waiting in self._callers.items():
            if not idle:
                break
            if waiting.ringing:
                continue
            chosen = self._choose(idle, waiting)
            for member in chosen:
                idle.remove(member)
                self._set(member, MemberState.RINGING, now, ringing_for=caller)
            waiting.ringing.extend(chosen)
            offers.append(Offer(caller, chosen))
        return offers

    def _choose(self, idle: list[str], waiting: _Caller) -> tuple[str, ...]:
        if self.strategy is QueueStrategy.RING_ALL:
            return tuple(idle)
        fewest = min(waiting.failures[name] for name in idle)
        candidates = [name for name in idle if waiting.failures[name] == fewest]
        if self.strategy is QueueStrategy.ROUND_ROBIN:
            start = (
                self._order.index(self._last_offered) + 1 if self._last_offered is not None else 0
            )
            rotated = self._order[start:] + self._order[:start]
            pick = next(name for name in rotated if name in candidates)
        elif self.strategy is QueueStrategy.LONGEST_IDLE:
            pick = min(candidates, key=self._idle_since)  # min(): first of equals
        elif self.strategy is QueueStrategy.FEWEST_CALLS:
            pick = min(candidates, key=lambda name: self._members[name].calls_taken)
        elif self.strategy is QueueStrategy.RANDOM:
            pick = self.rng.choice(candidates)
        else:
            pick = candidates[0]  # LINEAR
        self._last_offered = pick
        return (pick,)

    def _idle_since(self, name: str) -> float:
        ended = self._members[name].last_call_ended
        return -math.inf if ended is None else ended

    def _before_successor(self, removed: str, order: tuple[str, ...]) -> str | None:
        """The round-robin memory for a reload that removed ``removed``, the member
        last offered: the member that would have come next (the first one after it
        in the old list that is still listed) stays next."""
        index = self._order.index(removed)
        after = self._order[index + 1 :] + self._order[:index]
        successor = next((name for name in after if name in order), None)
        if successor is None:
            return None
        return order[order.index(successor) - 1]

    # ---- members -----------------------------------------------------------------------

    def no_answer(self, caller: str, member: str, now: float) -> None:
        """``member``'s ring for ``caller`` ended unanswered: the member is IDLE, the
        caller keeps its place."""
        waiting = self._ringing(caller, member)
        waiting.ringing.remove(member)
        waiting.failures[member] += 1
        self._set(member, MemberState.IDLE, now)

    def answered(self, caller: str, member: str, now: float) -> list[str]:
        """``member`` took ``caller``, who leaves the queue.  Returns the other members
        that were ringing for it (to be cancelled), who are IDLE again."""
        waiting = self._ringing(caller, member)
        del self._callers[caller]
        self._members[member].calls_taken += 1
        self._set(member, MemberState.IN_CALL, now)
        others = [name for name in waiting.ringing if name != member]
        for name in others:
            self._set(name, MemberState.IDLE, now)
        return others

    def call_ended(self, member: str, now: float) -> None:
        """``member``'s queue call ended: WRAP_UP for ``wrap_up`` seconds, then IDLE."""
        state = self._member(member)
        if state.state is not MemberState.IN_CALL:
            raise QueueError(f"{member} of queue {self.name} is {state.state}, not in a call")
        state.last_call_ended = now
        self._set(member, MemberState.WRAP_UP, now)

    def state(self, member: str, now: float) -> MemberState:
        """The member's queue state at ``now`` (never UNAVAILABLE; see snapshot)."""
        self._member(member)
        return self._state(member, now)

    def snapshot(self, now: float, available: Callable[[str], bool]) -> dict[str, object]:
        """The queue as JSON-ready values (the management API's view).  An idle
        member the B2BUA cannot ring shows as unavailable; ``since`` is when the
        state began (None: since start), ``waited`` is in seconds."""
        members: list[dict[str, object]] = []
        for name in self._order:
            member = self._members[name]
            state = self._state(name, now)
            since = member.since
            if state is MemberState.IDLE and member.state is MemberState.WRAP_UP:
                since = self._wrap_up_end(member)
            if state is MemberState.IDLE and not available(name):
                state = MemberState.UNAVAILABLE
            members.append(
                {
                    "name": name,
                    "state": state.value,
                    "since": since,
                    "calls_taken": member.calls_taken,
                }
            )
        return {
            "name": self.name,
            "strategy": self.strategy.value,
            "waiting": [
                {
                    "caller": caller,
                    "position": position,
                    "waited": now - waiting.joined,
                    "ringing": list(waiting.ringing),
                }
                for position, (caller, waiting) in enumerate(self._callers.items(), start=1)
            ],
            "members": members,
        }

    # ---- internals ---------------------------------------------------------------------

    def _state(self, name: str, now: float) -> MemberState:
        member = self._members[name]
        if member.state is MemberState.WRAP_UP and now >= self._wrap_up_end(member):
            return MemberState.IDLE
        return member.state

    def _wrap_up_end(self, member: _Member) -> float:
        assert member.last_call_ended is not None
        return member.last_call_ended + self.wrap_up

    def _set(
        self, name: str, state: MemberState, now: float, ringing_for: str | None = None
    ) -> None:
        member = self._members[name]
        member.state = state
        member.since = now
        member.ringing_for = ringing_for
        self._retire_if_removed(name)

    def _retire_if_removed(self, name: str) -> None:
        """Forget a member no longer listed once nothing refers to it."""
        member = self._members[name]
        if name not in self._order and member.state not in (
            MemberState.RINGING,
            MemberState.IN_CALL,
        ):
            del self._members[name]

    def _member(self, name: str) -> _Member:
        member = self._members.get(name)
        if member is None:
            raise QueueError(f"{name} is not a member of queue {self.name}")
        return member

    def _caller(self, caller: str) -> _Caller:
        waiting = self._callers.get(caller)
        if waiting is None:
            raise QueueError(f"{caller} is not waiting in queue {self.name}")
        return waiting

    def _ringing(self, caller: str, member: str) -> _Caller:
        waiting = self._caller(caller)
        if self._member(member).ringing_for != caller:
            raise QueueError(f"{member} of queue {self.name} is not ringing for {caller}")
        return waiting
