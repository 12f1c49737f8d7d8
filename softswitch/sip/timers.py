"""A timer queue driven by ``now``: the one clock of the sans-IO layers.

Transactions, dialogs and calls ask for callbacks at absolute times; the edge asks for
``next_deadline()`` after every input, arms a single loop timer for it and calls
``run(now)`` when it fires.  Tests call ``run`` with whatever ``now`` they like.
Cancelled entries stay in the heap until they reach its top or until they outnumber
the live ones, when the heap is rebuilt.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

TimerCallback = Callable[[float], None]


class TimerHandle:
    __slots__ = ("when", "callback", "cancelled", "_queue")

    def __init__(self, when: float, callback: TimerCallback, queue: TimerQueue) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._queue = queue

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._queue._cancelled += 1


class TimerQueue:
    __slots__ = ("_heap", "_seq", "_cancelled")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled = 0

    def call_at(self, when: float, callback: TimerCallback) -> TimerHandle:
        handle = TimerHandle(when, callback, self)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
            self._compact()
        return handle

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(self._heap)
        self._cancelled = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def run(self, now: float) -> int:
        """Fire every timer due at ``now``, earliest first; returns how many fired."""
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, handle = heapq.heappop(heap)
            if handle.cancelled:
                self._cancelled -= 1
                continue
            handle.cancelled = True  # fired: a late cancel() must not count it again
            handle.callback(now)
            fired += 1
        return fired

    def __len__(self) -> int:
        """Live (not cancelled) timers."""
        return len(self._heap) - self._cancelled
