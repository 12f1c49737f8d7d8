"""The call queues of a running softswitch: callers waiting, members rung.

Theory of operation
-------------------
Each configured queue has one live :class:`~softswitch.routing.queues.CallQueue`
(pure: members' states, waiting callers in arrival order, the strategy).  This
service connects it to calls: a call that reaches a ``queue`` route joins (it is
answered by softswitch and hears hold music), and whenever something changes — a
caller joins or leaves, a member does not answer, a member's call ends and its
wrap-up passes, an agent registers — the queue is asked for offers, and each offer
makes the waiting call ring those members (``Call.queue_offer``).  The call reports
back when a member answers or does not.

A member is *available* when it can be rung at all: an agent with a registered
phone who is not in another call (unless ``ring_when_busy``), a receiving number
with no call in progress through softswitch.  A member that did not answer is
offered again only after a pause (``RETRY_PAUSE``), so an unreachable member cannot
make a queue spin.  Queues are keyed by name, so a config reload keeps their
callers, members' states and round-robin memory.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ..config import Queue
from ..routing.queues import CallQueue
from ..routing.router import Target, agent_target, make_target
from ..sip.timers import TimerHandle

if TYPE_CHECKING:
    from .call import Call
    from .service import B2BUA

RETRY_PAUSE = 1.0  # seconds before members are offered again after a no-answer


class QueueService:
    def __init__(self, service: B2BUA, rng: random.Random | None = None) -> None:
        self.service = service
        self.rng = rng or random.Random()
        self.queues: dict[str, CallQueue] = {}
        self.callers: dict[str, Call] = {}  # waiting calls by call id
        self.timers: dict[str, TimerHandle] = {}  # a pending dispatch per queue

    def _live(self, config: Queue) -> CallQueue:
        queue = self.queues.get(config.name)
        if queue is None:
            queue = CallQueue(config.name, config.members, config.strategy, config.wrap_up,
                              self.rng)
            self.queues[config.name] = queue
        else:
            queue.configure(config.members, config.strategy, config.wrap_up)
        return queue

    # ---- calls report ------------------------------------------------------------------

    def join(self, call: Call, config: Queue, now: float) -> int:
        queue = self._live(config)
        position = queue.join(call.id, now)
        self.callers[call.id] = call
        self.dispatch(config.name, now)
        return position

    def leave(self, call: Call, now: float) -> None:
        self.callers.pop(call.id, None)
        for queue in self.queues.values():
            if queue.position(call.id) is not None:
                queue.leave(call.id, now)
                self.dispatch(queue.name, now)

    def no_answer(self, call: Call, member: str, now: float) -> None:
        queue = self._queue_of(call)
        if queue is None or queue.position(call.id) is None:
            return
        queue.no_answer(call.id, member, now)
        self._dispatch_at(queue.name, now + RETRY_PAUSE)

    def answered(self, call: Call, member: str, now: float) -> None:
        queue = self._queue_of(call)
        self.callers.pop(call.id, None)
        if queue is not None and queue.position(call.id) is not None:
            queue.answered(call.id, member, now)
            self.dispatch(queue.name, now)

    def call_ended(self, name: str, member: str, now: float) -> None:
        queue = self.queues.get(name)
        if queue is None:
            return
        queue.call_ended(member, now)
        self._dispatch_at(name, now + queue.wrap_up)

    def position(self, call: Call) -> int | None:
        """The caller's place in its queue (1: next to be served)."""
        queue = self._queue_of(call)
        return queue.position(call.id) if queue is not None else None

    def _queue_of(self, call: Call) -> CallQueue | None:
        return self.queues.get(call.queue.name) if call.queue is not None else None

    # ---- offers ------------------------------------------------------------------------

    def _dispatch_at(self, name: str, when: float) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            timer.cancel()

        def fire(now: float) -> None:
            self.timers.pop(name, None)
            self.dispatch(name, now)

        self.timers[name] = self.service.endpoint.timers.call_at(when, fire)

    def dispatch(self, name: str, now: float) -> None:
        """Ring members for waiting callers, as the queue's strategy says."""
        queue = self.queues.get(name)
        if queue is None or not queue.waiting:
            return
        for offer in queue.offers(now, self.available):
            call = self.callers.get(offer.caller)
            if call is not None:
                call.queue_offer(offer.members, now)

    def dispatch_all(self, now: float) -> None:
        """Something changed for every queue (an agent registered): offer again."""
        for name in list(self.queues):
            self.dispatch(name, now)

    def available(self, member: str) -> bool:
        config = self.service.config
        agent = config.agents.get(member)
        in_call = self.service.counters.in_progress(member) > 0
        if agent is not None:
            registered = bool(self.service.contacts(member))
            return registered and (agent.ring_when_busy or not in_call)
        return member in config.receiving_numbers and not in_call

    def targets(self, config: Queue, member: str, call: Call) -> list[Target]:
        """Who to ring for ``member``: every phone of an agent, or a receiving number."""
        settings = self.service.config
        if member in settings.agents:
            label = f"agent {member} (queue {config.name})"
            return [
                agent_target(member, contact, config.ring_timeout, label)
                for contact in self.service.contacts(member)
            ]
        number = settings.receiving_numbers.get(member)
        if number is None:
            return []
        return [make_target(settings, number, config.ring_timeout, call.router.tracking)]

    # ---- what the API shows -------------------------------------------------------------

    def snapshot(self, now: float) -> list[dict[str, object]]:
        return [queue.snapshot(now, self.available) for queue in self.queues.values()]

    def stop(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
