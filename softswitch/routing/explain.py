"""``softswitch route``: the plan a call would follow, explained without placing it.

The router is run on the call's facts with fresh counters, and every ``Dial`` is
answered "nobody answered", so the whole chain shows: which router and rule
matched, which numbers in which pattern with which timeouts, what happens on no
answer, which schedules are open.  Users check a config change with it before they
reload.
"""

from __future__ import annotations

from ..config import Config, TrackingNumber
from .conditions import CallFacts
from .counters import InMemoryCounters
from .router import Dial, LegResult, Outcome, Router, RoutingError, Target


def _describe(target: Target) -> str:
    via = f" via {target.proxy}" if target.proxy else ""
    shown = "the tracking number" if target.present_tracking_number else "the caller's number"
    return (
        f"{target.name} {target.number} ({target.label or 'no label'}) at {target.uri}{via}; "
        f"ring {target.ring_timeout:g} s, give up after {target.no_provisional_timeout:g} s "
        f"without a response; shows {shown}" + ("; adds Diversion" if target.diversion else "")
    )


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
    while isinstance(action, Dial):
        lines.extend(f"  {line}" for line in router.trace if line != action.why)
        router.trace.clear()
        step += 1
        lines.append(f"{step}. {action.why}")
        lines.extend(f"     {_describe(t)}" for t in action.targets)
        lines.append("   if nobody answers:")
        results = [LegResult(t.name, 480, Outcome.NO_ANSWER) for t in action.targets]
        try:
            action = router.next(results)
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
