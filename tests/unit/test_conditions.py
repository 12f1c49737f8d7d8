"""softswitch.routing.conditions: a table of rules × call facts, then choose().

Every condition kind is checked both ways; the schedule on both sides of the
2025-03-09 change from EST to EDT in America/New_York (13:30 UTC is 08:30 the
Saturday before, closed, and 09:30 the Monday after, open).
"""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path
from typing import Any

import pytest

from softswitch.config import (
    Condition,
    ConditionalRouter,
    DialRoute,
    Route,
    load_config,
    parse_config,
)
from softswitch.routing.conditions import CallFacts, choose, rule_matches

LAB = Path(__file__).resolve().parents[2] / "conf" / "lab.yaml"

SCHEDULES = parse_config(
    textwrap.dedent("""
    schedules:
      office:
        timezone: America/New_York
        weekly: [{days: [mon, tue, wed, thu, fri, sat, sun], start: "09:00", end: "17:00"}]
""")
).schedules

UTC = datetime.UTC
# Saturday 2025-03-08 is EST (UTC-5); Monday 2025-03-10 is EDT (UTC-4).
BEFORE_DST_0830 = datetime.datetime(2025, 3, 8, 13, 30, tzinfo=UTC)  # 08:30 EST: closed
BEFORE_DST_0930 = datetime.datetime(2025, 3, 8, 14, 30, tzinfo=UTC)  # 09:30 EST: open
AFTER_DST_0930 = datetime.datetime(2025, 3, 10, 13, 30, tzinfo=UTC)  # 09:30 EDT: open
AFTER_DST_1630 = datetime.datetime(2025, 3, 10, 20, 30, tzinfo=UTC)  # 16:30 EDT: open
AFTER_DST_1730 = datetime.datetime(2025, 3, 10, 21, 30, tzinfo=UTC)  # 17:30 EDT: closed
BEFORE_DST_1630 = datetime.datetime(2025, 3, 8, 21, 30, tzinfo=UTC)  # 16:30 EST: open


def _rule(**conditions: Any) -> Condition:
    return Condition.model_validate({**conditions, "route": {"dial": ["R1"]}})


def _facts(
    caller: str = "+14155550100",
    *,
    e164: str | None | bool = True,
    tracking: str = "+18005550113",
    headers: dict[str, tuple[str, ...]] | None = None,
    at: datetime.datetime = AFTER_DST_0930,
) -> CallFacts:
    return CallFacts(
        tracking_number=tracking,
        caller=caller,
        caller_e164=caller if e164 is True else (None if e164 is False else e164),
        headers=headers or {},
        at=at,
    )


RULES: dict[str, Condition] = {
    "prefixes": _rule(caller_prefixes=["+1415", "+1650"]),
    "regex +44": _rule(caller_regex=r"^\+44"),
    "regex anonymous": _rule(caller_regex="^anon"),
    "country 44": _rule(caller_country="44"),
    "country 1": _rule(caller_country=["1"]),
    "country 353": _rule(caller_country="353"),
    "area codes": _rule(caller_area_codes=["212", "646"]),
    "tracking": _rule(tracking_numbers=["+1 800 555 0113"]),
    "open": _rule(schedule="office"),
    "closed": _rule(schedule="office", open=False),
    "headers": _rule(headers={"X-Campaign": "^spring", "User-Agent": "Acme"}),
    "prefix and open": _rule(caller_prefixes="+1212", schedule="office"),
}

SF = _facts("+14155550100")
OAKLAND_650 = _facts("+16505550100")
NEW_YORK = _facts("+12125550100")
MANHATTAN_646 = _facts("+16465550100")
LONDON = _facts("+442079460000")
DUBLIN = _facts("+35312345678")
JAMAICA = _facts("+18765550100")  # NANP, so country 1, area code 876
ANONYMOUS = _facts("anonymous", e164=False)
SPRING = _facts(headers={"x-campaign": ("spring-2025",), "user-agent": ("Acme/1.0",)})
SPRING_MIXED_CASE = _facts(
    headers={"X-CAMPAIGN": ("autumn", "Spring", "spring"), "User-agent": ("softphone Acme",)}
)
AUTUMN = _facts(headers={"x-campaign": ("autumn",), "user-agent": ("Acme",)})
NO_AGENT = _facts(headers={"x-campaign": ("spring",)})
OTHER_TRACKING = _facts(tracking="+18005550114")

TABLE: list[tuple[str, CallFacts, bool]] = [
    ("prefixes", SF, True),
    ("prefixes", OAKLAND_650, True),
    ("prefixes", NEW_YORK, False),
    ("prefixes", ANONYMOUS, False),
    ("regex +44", LONDON, True),
    ("regex +44", SF, False),
    ("regex +44", ANONYMOUS, False),
    ("regex anonymous", ANONYMOUS, True),  # the raw caller when not a number
    ("regex anonymous", SF, False),
    ("country 44", LONDON, True),
    ("country 44", SF, False),
    ("country 44", ANONYMOUS, False),
    ("country 1", SF, True),
    ("country 1", JAMAICA, True),
    ("country 1", LONDON, False),
    ("country 353", DUBLIN, True),  # longest match: 353, not 3 or 35
    ("country 353", LONDON, False),
    ("area codes", NEW_YORK, True),
    ("area codes", MANHATTAN_646, True),
    ("area codes", SF, False),
    ("area codes", JAMAICA, False),
    ("area codes", LONDON, False),  # +44 212... is not NANP area code 212
    ("area codes", _facts("+442125550100"), False),
    ("area codes", ANONYMOUS, False),
    ("tracking", SF, True),
    ("tracking", OTHER_TRACKING, False),
    ("open", _facts(at=BEFORE_DST_0830), False),
    ("open", _facts(at=BEFORE_DST_0930), True),
    ("open", _facts(at=AFTER_DST_0930), True),  # same UTC time of day as BEFORE_DST_0830
    ("open", _facts(at=BEFORE_DST_1630), True),
    ("open", _facts(at=AFTER_DST_1630), True),
    ("open", _facts(at=AFTER_DST_1730), False),  # same UTC time of day as BEFORE_DST_1630
    ("closed", _facts(at=BEFORE_DST_0830), True),
    ("closed", _facts(at=AFTER_DST_0930), False),
    ("closed", _facts(at=BEFORE_DST_1630), False),
    ("closed", _facts(at=AFTER_DST_1730), True),
    ("headers", SPRING, True),
    ("headers", SPRING_MIXED_CASE, True),  # names any case; one value matching is enough
    ("headers", AUTUMN, False),
    ("headers", NO_AGENT, False),  # every header named must match
    ("headers", SF, False),
    ("prefix and open", _facts("+12125550100", at=AFTER_DST_0930), True),
    ("prefix and open", _facts("+12125550100", at=AFTER_DST_1730), False),
    ("prefix and open", _facts("+14155550100", at=AFTER_DST_0930), False),
]


@pytest.mark.parametrize(
    ("rule", "facts", "expected"),
    TABLE,
    ids=[
        f"{rule}-{i}-{'yes' if expected else 'no'}" for i, (rule, _, expected) in enumerate(TABLE)
    ],
)
def test_rule_matches(rule: str, facts: CallFacts, expected: bool) -> None:
    matched, why = rule_matches(RULES[rule], facts, SCHEDULES)
    assert matched is expected, why
    assert why and "\n" not in why


def test_every_rule_kind_is_in_the_table_both_ways() -> None:
    for name in RULES:
        assert {expected for rule, _, expected in TABLE if rule == name} == {True, False}, name


@pytest.mark.parametrize(
    ("rule", "facts", "fragment"),
    [
        ("prefixes", SF, "caller +14155550100 starts with +1415"),
        ("prefixes", NEW_YORK, "does not start with one of +1415, +1650"),
        ("prefixes", ANONYMOUS, "caller anonymous is not a phone number"),
        ("country 44", SF, "caller +14155550100 has country code 1, not 44"),
        ("area codes", JAMAICA, "has area code 876, not one of 212, 646"),
        ("tracking", OTHER_TRACKING, "tracking number +18005550114 is not +18005550113"),
        ("open", _facts(at=BEFORE_DST_0830), "schedule office is closed at Sat 2025-03-08 08:30"),
        ("closed", _facts(at=AFTER_DST_0930), "is open at Mon 2025-03-10 09:30 America/New_York"),
        ("headers", SF, "header x-campaign is absent"),
        ("headers", AUTUMN, "header x-campaign 'autumn' does not match /^spring/"),
        ("regex +44", LONDON, r"caller +442079460000 matches /^\+44/"),
    ],
)
def test_explanations(rule: str, facts: CallFacts, fragment: str) -> None:
    assert fragment in rule_matches(RULES[rule], facts, SCHEDULES)[1]


def test_unknown_schedule_does_not_match() -> None:
    # The config loader rejects it; a stale schedule mapping must not crash a call.
    matched, why = rule_matches(RULES["open"], SF, {})
    assert not matched and why == "schedule office is not defined"


def test_call_facts_normalizes_headers_and_needs_aware_time() -> None:
    facts = CallFacts(
        tracking_number="+18005550113",
        caller="+14155550100",
        caller_e164="+14155550100",
        headers={"X-Campaign": ("a",), "x-campaign": ("b",)},
        at=AFTER_DST_0930,
    )
    assert dict(facts.headers) == {"x-campaign": ("a", "b")}
    with pytest.raises(TypeError):
        facts.headers["x"] = ()  # type: ignore[index]
    with pytest.raises(ValueError, match="aware"):
        _facts(at=datetime.datetime(2025, 3, 10, 9, 30))


def _router(*rules: Condition, default: Route) -> ConditionalRouter:
    return ConditionalRouter(name="r", rules=rules, default=default)


def _to(name: str) -> DialRoute:
    return DialRoute.model_validate({"dial": [name]})


def _rule_to(target: str, **conditions: Any) -> Condition:
    return Condition.model_validate({**conditions, "route": {"dial": [target]}})


ROUTER = _router(
    _rule_to("R1", caller_country="1"),
    _rule_to("R2", caller_prefixes="+1415"),  # also true for SF, but rule 1 comes first
    _rule_to("R3", caller_regex="^anonymous$", schedule="office", open=False),
    default=_to("R9"),
)


@pytest.mark.parametrize(
    ("facts", "target", "why"),
    [
        (SF, "R1", "rule 1 matched: caller +14155550100 is in country code 1"),
        (_facts("anonymous", e164=False, at=AFTER_DST_1730), "R3", "rule 3 matched: "),
        (_facts("anonymous", e164=False, at=AFTER_DST_0930), "R9", "no rule matched: default"),
        (LONDON, "R9", "no rule matched: default"),
    ],
)
def test_choose_first_match_wins(facts: CallFacts, target: str, why: str) -> None:
    route, explanation = choose(ROUTER, facts, SCHEDULES)
    assert route == _to(target)
    assert explanation.startswith(why), explanation


def test_choose_explains_every_rule_when_none_matched() -> None:
    _, explanation = choose(ROUTER, LONDON, SCHEDULES)
    assert explanation == (
        "no rule matched: default (rule 1: caller +442079460000 has country code 44, not 1; "
        "rule 2: caller +442079460000 does not start with +1415; "
        "rule 3: caller +442079460000 does not match /^anonymous$/)"
    )


@pytest.mark.parametrize(
    ("caller", "headers", "target", "why"),
    [
        ("+14155550100", {}, "R1", "rule 1 matched"),
        ("+12125550100", {"X-Lab-Route": ("r2",)}, "R2", "rule 2 matched"),
        ("+14155550100", {"x-lab-route": ("r2",)}, "R1", "rule 1 matched"),
        ("+12125550100", {"x-lab-route": ("r2x",)}, "R3", "no rule matched: default"),
        ("anonymous", {}, "R3", "no rule matched: default"),
    ],
)
def test_lab_rules(caller: str, headers: dict[str, tuple[str, ...]], target: str, why: str) -> None:
    lab = load_config(LAB)
    facts = _facts(
        caller,
        e164=caller.startswith("+"),
        tracking="+18005550114",
        headers=headers,
    )
    route, explanation = choose(lab.conditional_routers["lab-rules"], facts, lab.schedules)
    assert route == _to(target) and explanation.startswith(why)
