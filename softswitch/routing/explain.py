"""``softswitch route``: the plan a call would follow, explained without placing it.

The router is run on the call's facts with fresh counters, and every ``Dial`` is
answered "nobody answered", so the whole chain shows: which router and rule
matched, which numbers in which pattern with which timeouts, what happens on no
answer, which schedules are open.  Users check a config change with it before they
reload.
"""

from __future__ import annotations

from ..config import (
    AgentRoute,
    ConditionalRoute,
    Config,
    DialRoute,
    GeoRoute,
    MenuRoute,
    QueueRoute,
    Route,
    RouteRef,
    TrackingNumber,
)
from .conditions import CallFacts
from .counters import InMemoryCounters
from .router import (
    Action,
    Dial,
    Finish,
    JoinQueue,
    LegResult,
    Outcome,
    Router,
    RoutingError,
    RunMenu,
    Target,
)


def _describe(target: Target) -> str:
    via = f" via {target.proxy}" if target.proxy else ""
    shown = "the tracking number" if target.present_tracking_number else "the caller's number"
    return (
        f"{target.name} {target.number} ({target.label or 'no label'}) at {target.uri}{via}; "
        f"ring {target.ring_timeout:g} s, give up after {target.no_provisional_timeout:g} s "
        f"without a response; shows {shown}" + ("; adds Diversion" if target.diversion else "")
    )


def _route_text(route: Route) -> str:
    """A route in one phrase, as written in the config."""
    if isinstance(route, DialRoute):
        return f"dial {', '.join(route.numbers)}"
    if isinstance(route, RouteRef):
        return f"route {route.name}"
    if isinstance(route, AgentRoute):
        return f"agent {route.agent}"
    if isinstance(route, MenuRoute):
        return f"voice menu {route.menu}"
    if isinstance(route, QueueRoute):
        return f"call queue {route.queue}"
    if isinstance(route, GeoRoute):
        return f"geo router {route.geo_router}"
    assert isinstance(route, ConditionalRoute)
    return f"conditional router {route.conditional_router}"


def _follow(router: Router, action: Action, lines: list[str]) -> Action:
    """Describe ``action`` and take its "nobody answers" branch."""
    if isinstance(action, Dial):
        lines.extend(f"     {_describe(t)}" for t in action.targets)
        lines.append("   if nobody answers:")
        return router.next([LegResult(t.name, 480, Outcome.NO_ANSWER) for t in action.targets])
    if isinstance(action, RunMenu):
        menu = action.menu
        lines.append(
            f"     the caller is answered and hears {menu.prompt.name}; waits {menu.timeout:g} s "
            f"for a key, {menu.retries + 1} time(s) in all"
        )
        lines.extend(f"     key {key}: {_route_text(route)}" for key, route in menu.keys.items())
        lines.append("   if no key is pressed:")
        return router.menu_choice(menu.default, None)
    assert isinstance(action, JoinQueue)
    queue = action.queue
    music = queue.hold_music.name if queue.hold_music else "silence"
    lines.append(
        f"     the caller is answered and waits hearing {music}; members "
        f"{', '.join(queue.members)} ({queue.strategy.value.replace('_', ' ')}), "
        f"ring {queue.ring_timeout:g} s each, wrap-up {queue.wrap_up:g} s"
    )
    lines.append(f"   if nobody takes the call in {queue.max_wait:g} s:")
    return router.next([])


def explain(config: Config, tracking: TrackingNumber, facts: CallFacts) -> list[str]:
    lines = [
        f"tracking number {tracking.number}" + (f" ({tracking.label})" if tracking.label else ""),
        f"caller {facts.caller} at {facts.at.isoformat()}",
    ]
    for name, schedule in config.schedules.items():
        state = "open" if schedule.is_open(facts.at) else "closed"
        lines.append(f"schedule {name} ({schedule.timezone}): {state}")
    if tracking.fail_safe:
        lines.append(
            f"fail-safe number: {tracking.fail_safe} (if routing fails, every target is "
            "unreachable, or softswitch is overloaded)"
        )
    router = Router(config, tracking, facts, InMemoryCounters())
    try:
        action = router.start()
    except RoutingError as exc:
        lines.append(f"routing cannot be followed: {exc}")
        action = router.fail_safe(f"routing failed: {exc}")
    step = 0
    while not isinstance(action, Finish):
        lines.extend(f"  {line}" for line in router.trace if line != action.why)
        router.trace.clear()
        step += 1
        lines.append(f"{step}. {action.why}")
        try:
            action = _follow(router, action, lines)
        except RoutingError as exc:
            lines.append(f"  routing cannot be followed: {exc}")
            action = router.fail_safe(f"routing failed: {exc}")
    lines.extend(f"  {line}" for line in router.trace if not line.startswith("finish"))
    lines.append(f"the caller gets {action.status} ({action.why})")
    if router.tags:
        lines.append("tags: " + ", ".join(f"{k}={v}" for k, v in router.tags.items()))
    lines.append(
        "(round robin and least connected start here as with no calls in progress; the "
        "running softswitch uses its live counters)"
    )
    return lines
