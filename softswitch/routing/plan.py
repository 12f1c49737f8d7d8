"""From "a call reached a tracking number" to a plan of whom to ring.

Pure code: the config model and the call go in, a :class:`Plan` comes out.  A plan is
a list of *steps*; every target of a step rings at once, and when a step ends without
an answer the next step starts.  A simultaneous dial list is one step; a list dialed
in order is one step per number; a no-answer route adds its own steps after.

This first version follows dial lists and their no-answer chains with the
sequential/simultaneous shape only; the rotation of round robin, least connected,
hours, the fail-safe number, agents, menus, queues and routers come with the routing
issue (#3) and the agents issue (#5).  Targets this version cannot ring are skipped
and named in ``Plan.unsupported`` so the caller of ``plan_call`` can log them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Config, DialRoute, Pattern, ReceivingNumber, Route, RouteRef, TrackingNumber

MAX_DEPTH = 8  # no-answer chains deeper than this are cut: a guard against loops


@dataclass(frozen=True, slots=True)
class Target:
    """One receiving number to ring, with where and how long."""

    name: str
    number: str
    label: str
    uri: str  # Request-URI of the outbound INVITE (a sip:/sips: URI)
    proxy: str | None  # outbound proxy the INVITE is sent through, if any
    trunk: str | None
    ring_timeout: float


@dataclass(frozen=True, slots=True)
class Step:
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    tracking_number: str
    steps: tuple[Step, ...]
    unsupported: tuple[str, ...] = field(default=())


class RoutingError(Exception):
    """The route cannot be followed (a broken reference or a route kind not built yet)."""


def plan_call(config: Config, tracking: TrackingNumber) -> Plan:
    steps: list[Step] = []
    unsupported: list[str] = []
    seen: set[int] = set()
    route: Route | None = tracking.route
    depth = 0
    while route is not None and depth < MAX_DEPTH:
        depth += 1
        if id(route) in seen:
            break  # a route is never tried twice in one call
        seen.add(id(route))
        if isinstance(route, RouteRef):
            route = config.routes[route.name]
            continue
        if not isinstance(route, DialRoute):
            unsupported.append(type(route).__name__)
            break
        numbers = [config.receiving_numbers[name] for name in route.numbers]
        targets = [_target(config, n, route.ring_timeout) for n in numbers]
        if route.pattern is Pattern.SIMULTANEOUS:
            steps.append(Step(tuple(targets)))
        else:
            steps.extend(Step((t,)) for t in targets)
        route = route.no_answer
    return Plan(tracking.number, tuple(steps), tuple(unsupported))


def _target(config: Config, number: ReceivingNumber, ring_timeout: float | None) -> Target:
    proxy: str | None = None
    if number.uri is not None:
        uri = number.uri
    else:
        trunk = next(t for t in config.trunks if t.name == number.trunk)
        if trunk.outbound_proxy is None:
            raise RoutingError(f"trunk {trunk.name} has no outbound_proxy to reach {number.name}")
        proxy = trunk.outbound_proxy
        # The number becomes the user part of a URI at the proxy's host (config has
        # checked the proxy is a sip:/sips: URI).
        scheme, _, hostpart = proxy.partition(":")
        uri = f"{scheme}:{number.number}@{hostpart.split(';', 1)[0]}"
    return Target(
        name=number.name,
        number=number.number,
        label=number.label,
        uri=uri,
        proxy=proxy,
        trunk=number.trunk,
        ring_timeout=ring_timeout if ring_timeout is not None else number.ring_timeout,
    )
