"""The router: what happens between "a call reached a tracking number" and "someone
answered", as a pure state machine.

Theory of operation
-------------------
A :class:`Router` is made per call from the config, the call's facts (tracking
number, caller, headers, time) and the live counters.  ``start()`` returns the first
:class:`Action`; after the legs of a :class:`Dial` have all ended without an answer,
``next(results)`` is told how each ended and returns the next action, until a
:class:`Finish` (the final status for the caller).  The B2BUA executes actions; the
router never touches SIP.

Routes are followed on an *agenda* (a stack of frames).  A ``dial`` route becomes a
frame that hands out its receiving numbers in the route's pattern:

- *simultaneous*: one :class:`Dial` of every number; the first answer wins.  A
  receiving number's own no-answer route does not apply here (the product page: "if
  you choose this then the no answer routing will NOT work"); the route's does.
- *sequential*: one number at a time in list order, every call from the top.
- *round robin*: one at a time, each call starting one further along the list than
  the previous call of the same route (the position lives in the counters, so it
  survives a config reload); a number that does not answer passes the call on.
- *least connected*: one at a time, fewest calls in progress first, ties in list
  order.  A busy number is simply passed over for this call.

A number outside its ``hours`` is skipped as if it had not answered, and the
schedule's state is recorded in ``tags``.  When a frame runs out, its no-answer
route (the route's own, or for a one-number list the number's own) is pushed.
Loops are cut: a named route is never entered twice in one call, a number is never
dialled twice, and chains deeper than ``routing.max_depth`` stop.  A final status in
the route's ``hunt_stop`` set (default: 6xx) ends the search at once.

An ``agent`` route rings every phone the agent has registered at once (the
:class:`AgentDirectory` the B2BUA passes in knows them); with none, the agent's
``inbound_number``; an agent already in a call is passed over unless
``ring_when_busy``.  If nobody answers, its ``fallback`` follows.

A ``menu`` or ``queue`` route is not a dial: the router returns :class:`RunMenu` or
:class:`JoinQueue` and the B2BUA runs it with the caller answered.  A menu's outcome
comes back through :meth:`Router.menu_choice` (the chosen key's route, or the
default); a queue that could not connect the caller in its ``max_wait`` comes back
through :meth:`Router.next` with no results, and its ``no_answer`` follows.

The fail-safe number (``fail_safe`` of the tracking number) is for when routing
itself cannot be followed: :meth:`Router.fail_safe` is called by the B2BUA when the
router raised, when every target was unreachable at the transport level, or on
overload.  It is dialled at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from ..config import (
    Agent,
    AgentRoute,
    ConditionalRoute,
    Config,
    DialExtension,
    DialRoute,
    GeoRoute,
    Menu,
    MenuRoute,
    Pattern,
    Queue,
    QueueRoute,
    ReceivingNumber,
    Route,
    RouteRef,
    Screening,
    TrackingNumber,
)
from . import geo
from .conditions import CallFacts, choose
from .counters import LiveCounters


class RoutingError(Exception):
    """The route cannot be followed: the B2BUA turns to the fail-safe number."""


class Outcome(Enum):
    """How a leg ended without being the call's answer."""

    BUSY = "busy"  # 486 / 600
    NO_ANSWER = "no answer"  # ring timeout, 480, 487
    FAILED = "failed"  # another final status
    UNREACHABLE = "unreachable"  # no response at all, or the transport failed


@dataclass(frozen=True, slots=True)
class Target:
    """One receiving number to ring, with where and how."""

    name: str
    number: str
    label: str
    uri: str  # Request-URI of the outbound INVITE
    proxy: str | None  # outbound proxy the INVITE is sent through, if any
    trunk: str | None
    ring_timeout: float
    no_provisional_timeout: float
    present_tracking_number: bool  # caller_id: tracking
    diversion: bool
    # What happens between this number answering and the caller being connected:
    dial_extension: DialExtension | None = None
    whisper: Path | None = None  # the tracking number's whisper, else the number's own
    screening: Screening | None = None
    # A registered phone is reached where it registered from, over the same
    # transport (RFC 3581 received/rport; a TCP registration's own connection).
    destination: tuple[str, int, str] | None = None  # (host, port, transport)

    @property
    def needs_media(self) -> bool:
        """softswitch must be in the media path of this leg (anchored RTP)."""
        return bool(self.dial_extension or self.whisper or self.screening)


@dataclass(frozen=True, slots=True)
class LegResult:
    target: str  # receiving number name
    status: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Dial:
    targets: tuple[Target, ...]
    why: str
    pattern: str  # the dial pattern, or "fail-safe" (call records are rated by it)


@dataclass(frozen=True, slots=True)
class Finish:
    status: int
    why: str


@dataclass(frozen=True, slots=True)
class RunMenu:
    """Answer the caller and run this voice menu; report with ``menu_choice``."""

    menu: Menu
    why: str


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """Answer the caller and queue it; ``next([])`` if the queue gives up."""

    queue: Queue
    why: str


Action = Dial | Finish | RunMenu | JoinQueue


@dataclass(frozen=True, slots=True)
class AgentContact:
    """One phone an agent registered: its Contact URI and where it registered from."""

    uri: str
    host: str
    port: int
    transport: str


class AgentDirectory(Protocol):
    def contacts(self, agent: str) -> Sequence[AgentContact]:
        """The agent's registered phones now (none: not registered)."""
        ...


class NoAgents:
    """A directory where nobody is registered (``softswitch route``, tests)."""

    def contacts(self, agent: str) -> Sequence[AgentContact]:
        return ()


def final_status(statuses: Sequence[int], default: int = 480) -> int:
    """What the caller hears when nobody answered.

    A 6xx becomes 603; busy stays 486; a number that does not exist (404, 410, 484 on
    every leg) is 404; server failures on every leg are 503; transaction timeouts on
    every leg are 408; anything else (no answer, unreachable, other 4xx, or nothing
    dialled at all) is ``default`` (``routing.final_status``, 480).
    """
    if not statuses:
        return default
    if any(s >= 600 for s in statuses):
        return 603
    if 486 in statuses:
        return 486
    if all(s in (404, 410, 484) for s in statuses):
        return 404
    if all(500 <= s < 600 for s in statuses):
        return 503
    if all(s == 408 for s in statuses):
        return 408
    return default


def make_target(
    config: Config,
    number: ReceivingNumber,
    ring_timeout: float | None,
    tracking: TrackingNumber | None = None,
) -> Target:
    """How to ring ``number``; ``tracking``'s whisper, if it has one, replaces the
    number's own (the product page: a receiving number's whisper is skipped when its
    tracking number has a whisper configured)."""
    proxy: str | None = None
    if number.uri is not None:
        uri = number.uri
    else:
        trunk = next(t for t in config.trunks if t.name == number.trunk)
        if trunk.outbound_proxy is None:
            raise RoutingError(f"trunk {trunk.name} has no outbound_proxy to reach {number.name}")
        proxy = trunk.outbound_proxy
        # The number becomes the user part of a URI at the proxy's host and port.
        scheme, _, hostpart = proxy.partition(":")
        uri = f"{scheme}:{number.number}@{hostpart.split(';', 1)[0].split('@')[-1]}"
    return Target(
        name=number.name,
        number=number.number,
        label=number.label,
        uri=uri,
        proxy=proxy,
        trunk=number.trunk,
        ring_timeout=ring_timeout if ring_timeout is not None else number.ring_timeout,
        no_provisional_timeout=number.no_provisional_timeout,
        present_tracking_number=number.caller_id == "tracking",
        diversion=number.diversion,
        dial_extension=number.dial_extension,
        whisper=tracking.whisper if tracking and tracking.whisper else number.whisper,
        screening=number.screening,
    )


def agent_target(name: str, contact: AgentContact, ring_timeout: float, label: str) -> Target:
    """One registered phone of agent ``name``, reached where it registered from."""
    return Target(
        name=name,
        number=name,
        label=label,
        uri=contact.uri,
        proxy=None,
        trunk=None,
        ring_timeout=ring_timeout,
        no_provisional_timeout=5.0,
        present_tracking_number=False,
        diversion=False,
        destination=(contact.host, contact.port, contact.transport),
    )


class _Frame:
    """What the agenda holds: a route being worked through.  ``next`` gives its next
    action or None when it is spent; then its ``no_answer`` route (if any) follows."""

    key: str
    depth: int
    no_answer: Route | None = None
    hunt_stop: frozenset[int] = frozenset(range(600, 700))

    def next(self, router: Router) -> Action | None:
        raise NotImplementedError


class _OnceFrame(_Frame):
    """A route that yields one action (an agent's phones, a menu, a queue)."""

    def __init__(self, action: Action, key: str, depth: int, no_answer: Route | None) -> None:
        self.action: Action | None = action
        self.key = key
        self.depth = depth
        self.no_answer = no_answer

    def next(self, router: Router) -> Action | None:
        action, self.action = self.action, None
        return action


class _DialFrame(_Frame):
    """A dial list being worked through."""

    def __init__(
        self, router: Router, route: DialRoute, key: str, depth: int, order: list[str]
    ) -> None:
        self.route = route
        self.key = key
        self.depth = depth
        self.pending = order
        self.simultaneous = route.pattern is Pattern.SIMULTANEOUS and len(route.numbers) > 1
        no_answer = route.no_answer
        if no_answer is None and len(route.numbers) == 1:
            no_answer = router.config.receiving_numbers[route.numbers[0]].no_answer
        self.no_answer = no_answer
        self.hunt_stop = frozenset(route.hunt_stop)

    def next(self, router: Router) -> Dial | None:
        chosen: list[Target] = []
        while self.pending:
            name = self.pending.pop(0)
            if router.usable(name):
                chosen.append(make_target(router.config, router.config.receiving_numbers[name],
                                          self.route.ring_timeout, router.tracking))
                if not self.simultaneous:
                    break
        if not chosen:
            return None
        names = ", ".join(t.name for t in chosen)
        if self.simultaneous:
            how = " simultaneously"
        elif len(self.route.numbers) > 1:
            how = f" ({self.route.pattern.value.replace('_', ' ')})"
        else:
            how = ""
        pattern = self.route.pattern.value if len(self.route.numbers) > 1 else "single"
        return Dial(tuple(chosen), f"dial {names}{how} [{self.key}]", pattern)


class Router:
    def __init__(
        self,
        config: Config,
        tracking: TrackingNumber,
        facts: CallFacts,
        counters: LiveCounters,
        agents: AgentDirectory | None = None,
    ) -> None:
        self.config = config
        self.tracking = tracking
        self.facts = facts
        self.counters = counters
        self.agents: AgentDirectory = agents if agents is not None else NoAgents()
        self.trace: list[str] = []
        self.tags: dict[str, str] = {}
        self._agenda: list[_Frame] = []
        self._entered: set[str] = set()
        self._dialed: set[str] = set()
        self._statuses: list[int] = []
        self._reached_someone = False
        self._fail_safe_used = False
        for name in tracking.schedule_tags:
            self._schedule_open(name)

    # ---- the protocol with the B2BUA ---------------------------------------------------

    def start(self) -> Action:
        self._enter(self.tracking.route, f"{self.tracking.number}.route", 0)
        return self._advance()

    def next(self, results: Sequence[LegResult]) -> Action:
        for result in results:
            self._statuses.append(result.status)
            if result.outcome is not Outcome.UNREACHABLE:
                self._reached_someone = True
            self.trace.append(f"{result.target}: {result.outcome.value} ({result.status})")
        stop = [r.status for r in results if self.stops_hunt(r.status)]
        if stop:
            return self._finish(final_status(stop), f"hunt stopped by {stop[0]}")
        return self._advance()

    def menu_choice(self, route: Route | None, key: str | None) -> Action:
        """The menu the call ran (the last :class:`RunMenu`) chose ``route`` for
        ``key`` (None: no key, the default); None as route: nothing to follow."""
        frame = self._agenda[-1] if self._agenda else None
        if frame is None or not isinstance(frame, _OnceFrame):
            return self._finish(self.config.routing.final_status, "no menu is running")
        if route is None:
            return self._finish(self.config.routing.final_status, "the menu has no default")
        self._agenda.pop()
        self._enter(route, f"{frame.key}.{'keys.' + key if key else 'default'}", frame.depth + 1)
        return self._advance()

    def stops_hunt(self, status: int) -> bool:
        """Whether a leg's final status ends the search now (the current route's set)."""
        if self._agenda:
            return status in self._agenda[-1].hunt_stop
        return status >= 600

    def fail_safe(self, why: str) -> Action:
        name = self.tracking.fail_safe
        if name is None or self._fail_safe_used:
            # Routing could not be followed and nobody is left to take the call:
            # 503 tells a carrier it may try another route.
            return self._finish(503, f"{why}; no fail-safe number left")
        self._fail_safe_used = True
        self._agenda.clear()
        self._dialed.add(name)
        target = make_target(self.config, self.config.receiving_numbers[name], None, self.tracking)
        self.trace.append(f"fail-safe: {why}")
        return Dial((target,), f"dial fail-safe {name} ({why})", "fail-safe")

    # ---- internals -----------------------------------------------------------------------

    def usable(self, name: str) -> bool:
        """Not dialled yet in this call and inside its hours."""
        if name in self._dialed:
            self.trace.append(f"{name}: already tried in this call, skipped")
            return False
        number = self.config.receiving_numbers[name]
        if number.hours is not None and not self._schedule_open(number.hours):
            self.trace.append(f"{name}: outside its hours ({number.hours} closed), skipped")
            return False
        self._dialed.add(name)
        return True

    def _schedule_open(self, name: str) -> bool:
        is_open = self.config.schedules[name].is_open(self.facts.at)
        self.tags[name] = "open" if is_open else "closed"
        return is_open

    def _advance(self) -> Action:
        while self._agenda:
            frame = self._agenda[-1]
            action = frame.next(self)
            if action is not None:
                self.trace.append(action.why)
                return action
            self._agenda.pop()
            if frame.no_answer is not None:
                self._enter(frame.no_answer, f"{frame.key}.no_answer", frame.depth + 1)
        unreachable = self._statuses and not self._reached_someone
        if unreachable and self.tracking.fail_safe and not self._fail_safe_used:
            return self.fail_safe("every target was unreachable")
        return self._finish(
            final_status(self._statuses, self.config.routing.final_status), "nothing left to try"
        )

    def _finish(self, status: int, why: str) -> Finish:
        self._agenda.clear()
        self.trace.append(f"finish {status}: {why}")
        return Finish(status, why)

    def _enter(self, route: Route, key: str, depth: int) -> None:
        """Push the frame for ``route``, resolving references and routers on the way."""
        while True:
            if depth > self.config.routing.max_depth:
                self.trace.append(f"{key}: deeper than routing.max_depth, not followed")
                return
            if isinstance(route, RouteRef):
                key = f"routes.{route.name}"
                if key in self._entered:
                    self.trace.append(f"{key}: already followed in this call, not again")
                    return
                self._entered.add(key)
                route = self.config.routes[route.name]
                continue
            if isinstance(route, DialRoute):
                self._agenda.append(_DialFrame(self, route, key, depth, self._order(route, key)))
                return
            if isinstance(route, GeoRoute):
                route, key = self._geo(route)
            elif isinstance(route, ConditionalRoute):
                router = self.config.conditional_routers[route.conditional_router]
                route, why = choose(router, self.facts, self.config.schedules)
                self.trace.append(f"conditional router {router.name}: {why}")
                key = f"conditional_routers.{router.name}"
            elif isinstance(route, AgentRoute):
                dial = self._agent(route, key)
                if dial is not None:
                    self._agenda.append(_OnceFrame(dial, key, depth, route.fallback))
                    return
                if route.fallback is None:
                    return
                route, key = route.fallback, f"{key}.fallback"
            elif isinstance(route, MenuRoute):
                menu = self.config.menus[route.menu]
                run = RunMenu(menu, f"voice menu {menu.name} [{key}]")
                self._agenda.append(_OnceFrame(run, f"menus.{menu.name}", depth, None))
                return
            elif isinstance(route, QueueRoute):
                queue = self.config.queues[route.queue]
                join = JoinQueue(queue, f"call queue {queue.name} [{key}]")
                self._agenda.append(
                    _OnceFrame(join, f"queues.{queue.name}", depth, queue.no_answer)
                )
                return
            else:
                raise RoutingError(f"unknown route kind {type(route).__name__}")
            if key in self._entered:
                self.trace.append(f"{key}: already followed in this call, not again")
                return
            self._entered.add(key)
            depth += 1

    def _agent(self, route: AgentRoute, key: str) -> Dial | None:
        """Every registered phone of the agent, else its inbound number, else None."""
        agent: Agent = self.config.agents[route.agent]
        if self.counters.in_progress(agent.name) and not agent.ring_when_busy:
            self.trace.append(f"agent {agent.name}: in a call, not rung again")
            return None
        contacts = self.agents.contacts(agent.name)
        if contacts:
            targets = tuple(
                agent_target(agent.name, contact, route.ring_timeout, f"agent {agent.name}")
                for contact in contacts
            )
            return Dial(targets, f"dial agent {agent.name} on {len(targets)} phone(s) [{key}]",
                        "agent")
        self.trace.append(f"agent {agent.name}: no registered phone")
        name = agent.inbound_number
        if name is None or not self.usable(name):
            return None
        target = make_target(self.config, self.config.receiving_numbers[name], None, self.tracking)
        return Dial((target,), f"dial agent {agent.name}'s inbound number {name} [{key}]",
                    "agent")

    def _order(self, route: DialRoute, key: str) -> list[str]:
        names = list(route.numbers)
        if route.pattern is Pattern.ROUND_ROBIN:
            start = self.counters.take_turn(f"{self.tracking.number}:{key}", len(names))
            return names[start:] + names[:start]
        if route.pattern is Pattern.LEAST_CONNECTED:
            # sorted() is stable: ties stay in list order.
            return sorted(names, key=self.counters.in_progress)
        return names

    def _geo(self, route: GeoRoute) -> tuple[Route, str]:
        router = self.config.geo_routers[route.geo_router]
        where = geo.caller_location(self.facts.caller_e164) if self.facts.caller_e164 else None
        if where is None:
            self.trace.append(f"geo router {router.name}: caller cannot be placed, out of area")
            return router.out_of_area, f"geo_routers.{router.name}"
        places = [
            (
                location.name,
                geo.state_location(location.state)
                if location.state is not None
                else geo.Location(location.latitude or 0.0, location.longitude or 0.0, "", ""),
            )
            for location in router.locations
        ]
        name, distance = geo.nearest(where, places)
        if router.max_distance_km is not None and distance > router.max_distance_km:
            self.trace.append(
                f"geo router {router.name}: caller in {where.source}, nearest {name} is "
                f"{distance:.0f} km away (over {router.max_distance_km:g}), out of area"
            )
            return router.out_of_area, f"geo_routers.{router.name}"
        self.trace.append(
            f"geo router {router.name}: caller in {where.source}, nearest is {name} "
            f"({distance:.0f} km)"
        )
        chosen = next(location for location in router.locations if location.name == name)
        return chosen.route, f"geo_routers.{router.name}"

