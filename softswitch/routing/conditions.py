"""Conditional routers: which rule's route a call takes, and why.

Theory
------
A conditional router (``conditional_routers:`` in the config) is a list of rules
tried in order; the first rule whose conditions all hold gives the route, and a
call no rule takes goes to the router's ``default``.  What a rule may look at is
gathered once per call in :class:`CallFacts`: the tracking number dialled, the
caller (as received and, when it is a phone number, in E.164), the INVITE's
headers and the call's arrival time.  Deciding is then a pure function of the
rule, the facts and the schedules — no clock, no I/O — so it is tested with
tables and explained to a user by ``softswitch route``.

Each condition, as documented on :class:`softswitch.config.Condition`:

* ``tracking_numbers``: the call came in on one of them;
* ``caller_prefixes``: the caller's E.164 number starts with one of them;
* ``caller_country``: the caller's country calling code (longest match over the
  ITU assignments, :func:`softswitch.config.calling_code`; ``"1"`` for NANP) is
  one of them;
* ``caller_area_codes``: the caller is a NANP number (+1) whose three digits
  after the ``1`` are one of them;
* ``caller_regex``: ``re.search`` finds it in the caller's E.164 number, or in the
  caller as received when that is not a number (``"anonymous"``);
* ``headers``: for every header named (case-insensitive), its regex finds a match
  (``re.search``) in at least one of that header's values; an absent header fails;
* ``schedule`` / ``open``: the schedule is open (``open: true``) or closed
  (``open: false``) at the call's arrival time.

A caller that is not a phone number meets none of the number conditions.

This module is pure routing: standard library and softswitch.config only.
"""

from __future__ import annotations

import datetime
import types
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import Condition, ConditionalRouter, Route, Schedule, calling_code

__all__ = ["CallFacts", "choose", "rule_matches"]


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a rule may look at, gathered once per call.

    ``headers`` maps a header name to its values; names are lower-cased (and
    values of names differing only in case merged) on construction, so lookups
    are case-insensitive whatever the caller passed.  ``at`` must be aware.
    """

    tracking_number: str
    """The tracking number dialled, E.164 (``"+18005550113"``)."""
    caller: str
    """The caller as received (the From user part): ``"+14155550100"``, ``"anonymous"``."""
    caller_e164: str | None
    """The caller normalized to E.164 when it is a phone number, else None."""
    headers: Mapping[str, tuple[str, ...]]
    """INVITE headers: lower-case name -> values, in order."""
    at: datetime.datetime
    """When the call arrived (aware; UTC by convention)."""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("CallFacts.at must be an aware datetime (UTC)")
        merged: dict[str, tuple[str, ...]] = {}
        for name, values in self.headers.items():
            if isinstance(values, str):  # one value given bare: not a tuple of letters
                values = (values,)
            key = name.lower()
            merged[key] = merged.get(key, ()) + tuple(values)
        object.__setattr__(self, "headers", types.MappingProxyType(merged))


def _any_of(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else "one of " + ", ".join(items)


def _check_tracking(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    if facts.tracking_number in rule.tracking_numbers:
        return True, f"tracking number {facts.tracking_number} is listed"
    return False, (
        f"tracking number {facts.tracking_number} is not {_any_of(rule.tracking_numbers)}"
    )


def _check_prefixes(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    number = facts.caller_e164
    if number is None:
        return False, f"caller {facts.caller} is not a phone number (caller_prefixes)"
    for prefix in rule.caller_prefixes:
        if number.startswith(prefix):
            return True, f"caller {number} starts with {prefix}"
    return False, f"caller {number} does not start with {_any_of(rule.caller_prefixes)}"


def _check_country(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    number = facts.caller_e164
    if number is None:
        return False, f"caller {facts.caller} is not a phone number (caller_country)"
    try:
        code = calling_code(number)
    except ValueError:
        return False, f"caller {number} has no country calling code"
    if code in rule.caller_country:
        return True, f"caller {number} is in country code {code}"
    return False, (f"caller {number} has country code {code}, not {_any_of(rule.caller_country)}")


def _check_area(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    number = facts.caller_e164
    if number is None:
        return False, f"caller {facts.caller} is not a phone number (caller_area_codes)"
    if not number.startswith("+1") or len(number) < 5:
        return False, f"caller {number} is not a NANP (+1) number (caller_area_codes)"
    area = number[2:5]
    if area in rule.caller_area_codes:
        return True, f"caller {number} is in area code {area}"
    return False, f"caller {number} has area code {area}, not {_any_of(rule.caller_area_codes)}"


def _check_regex(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    pattern = rule.caller_pattern
    assert pattern is not None  # only called when caller_regex is set
    subject = facts.caller_e164 if facts.caller_e164 is not None else facts.caller
    if pattern.search(subject):
        return True, f"caller {subject} matches /{pattern.pattern}/"
    return False, f"caller {subject} does not match /{pattern.pattern}/"


def _check_headers(rule: Condition, facts: CallFacts) -> tuple[bool, str]:
    shown: list[str] = []
    for name, pattern in rule.header_patterns.items():
        values = facts.headers.get(name, ())
        if not values:
            return False, f"header {name} is absent"
        match = next((value for value in values if pattern.search(value)), None)
        if match is None:
            return False, f"header {name} {_quoted(values)} does not match /{pattern.pattern}/"
        shown.append(f"header {name} {_quoted((match,))} matches /{pattern.pattern}/")
    return True, ", ".join(shown)


def _quoted(values: tuple[str, ...]) -> str:
    return " ".join(repr(value) for value in values)


def _check_schedule(
    rule: Condition, facts: CallFacts, schedules: Mapping[str, Schedule]
) -> tuple[bool, str]:
    assert rule.schedule is not None  # only called when a schedule is set
    schedule = schedules.get(rule.schedule)
    if schedule is None:
        return False, f"schedule {rule.schedule} is not defined"
    is_open = schedule.is_open(facts.at)
    local = facts.at.astimezone(zoneinfo.ZoneInfo(schedule.timezone))
    state = "open" if is_open else "closed"
    when = f"at {local:%a %Y-%m-%d %H:%M} {schedule.timezone}"
    if is_open == rule.open:
        return True, f"schedule {rule.schedule} is {state} {when}"
    wanted = "open" if rule.open else "closed"
    return False, f"schedule {rule.schedule} is {state} {when}, not {wanted}"


def rule_matches(
    rule: Condition, facts: CallFacts, schedules: Mapping[str, Schedule]
) -> tuple[bool, str]:
    """Whether every condition of ``rule`` holds for the call, with a one-line
    explanation: the conditions that held, or the first that did not."""
    # Cheapest first; stop at the first condition that fails.
    checks: list[Callable[[], tuple[bool, str]]] = []
    if rule.tracking_numbers:
        checks.append(lambda: _check_tracking(rule, facts))
    if rule.caller_prefixes:
        checks.append(lambda: _check_prefixes(rule, facts))
    if rule.caller_country:
        checks.append(lambda: _check_country(rule, facts))
    if rule.caller_area_codes:
        checks.append(lambda: _check_area(rule, facts))
    if rule.caller_regex is not None:
        checks.append(lambda: _check_regex(rule, facts))
    if rule.headers:
        checks.append(lambda: _check_headers(rule, facts))
    if rule.schedule is not None:
        checks.append(lambda: _check_schedule(rule, facts, schedules))
    if not checks:  # the config never allows this; say so rather than match silently
        return False, "the rule has no condition"
    held: list[str] = []
    for check in checks:
        matched, why = check()
        if not matched:
            return False, why
        held.append(why)
    return True, "; ".join(held)


def choose(
    router: ConditionalRouter, facts: CallFacts, schedules: Mapping[str, Schedule]
) -> tuple[Route, str]:
    """The route of the first rule of ``router`` that matches, else its default.

    The explanation reads ``"rule 2 matched: <why>"`` (rules counted from 1) or
    ``"no rule matched: default (rule 1: <why not>; rule 2: <why not>)"``.
    """
    reasons: list[str] = []
    for number, rule in enumerate(router.rules, start=1):
        matched, why = rule_matches(rule, facts, schedules)
        if matched:
            return rule.route, f"rule {number} matched: {why}"
        reasons.append(f"rule {number}: {why}")
    return router.default, f"no rule matched: default ({'; '.join(reasons)})"
