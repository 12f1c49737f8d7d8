"""Live counters the router reads: round-robin positions and calls in progress.

They sit behind one small interface so that a later issue can share them between
several softswitch nodes; :class:`InMemoryCounters` is the single-node version.
Positions are keyed by route (tracking number and the route's place in the config),
not by config objects, so they survive a config reload.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class LiveCounters(Protocol):
    def take_turn(self, key: str, size: int) -> int:
        """Round robin: the index this call starts at (0..size-1); the next call starts
        one further on."""

    def in_progress(self, number: str) -> int:
        """Calls in progress through softswitch on this receiving number (by name)."""

    def leg_started(self, number: str) -> None: ...

    def leg_ended(self, number: str) -> None: ...


class InMemoryCounters:
    """Counters for one process.  Every call is handled on the event loop's thread, so
    a read-modify-write here is never interleaved with another call's."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._legs: Counter[str] = Counter()

    def take_turn(self, key: str, size: int) -> int:
        position = self._positions.get(key, 0)
        self._positions[key] = position + 1
        return position % size

    def in_progress(self, number: str) -> int:
        return self._legs[number]

    def leg_started(self, number: str) -> None:
        self._legs[number] += 1

    def leg_ended(self, number: str) -> None:
        self._legs[number] -= 1
        if self._legs[number] <= 0:
            del self._legs[number]
