"""The router as tables: config + call facts + counters in, actions out (issue #3)."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import pytest

from softswitch.config import Config, load_config, parse_config
from softswitch.routing.conditions import CallFacts
from softswitch.routing.counters import InMemoryCounters
from softswitch.routing.router import (
    AgentContact,
    Dial,
    Finish,
    JoinQueue,
    LegResult,
    Outcome,
    Router,
    RunMenu,
    final_status,
)

LAB = Path(__file__).resolve().parents[2] / "conf" / "lab.yaml"
NOON_UTC = datetime.datetime(2026, 11, 25, 17, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def lab() -> Config:
    return load_config(LAB)


def facts(
    tracking: str,
    caller: str = "+14155550000",
    at: datetime.datetime = NOON_UTC,
    headers: dict[str, tuple[str, ...]] | None = None,
) -> CallFacts:
    e164 = caller if caller.startswith("+") else None
    return CallFacts(tracking, caller, e164, headers or {}, at)


def router(config: Config, tracking: str, counters: InMemoryCounters | None = None,
           **kw: object) -> Router:
    number = config.tracking_number(tracking)
    assert number is not None
    return Router(config, number, facts(number.number, **kw), counters or InMemoryCounters())  # type: ignore[arg-type]


def names(action: Dial | Finish) -> list[str]:
    assert isinstance(action, Dial), action
    return [t.name for t in action.targets]


def no_answer(action: Dial | Finish, status: int = 480) -> list[LegResult]:
    outcome = {486: Outcome.BUSY, 480: Outcome.NO_ANSWER}.get(status, Outcome.FAILED)
    return [LegResult(name, status, outcome) for name in names(action)]


def walk(r: Router, status: int = 480) -> list[list[str] | int]:
    """Every action of a call nobody answers: dial lists, then the final status."""
    seen: list[list[str] | int] = []
    action = r.start()
    while isinstance(action, Dial):
        seen.append(names(action))
        action = r.next(no_answer(action, status))
    seen.append(action.status)
    return seen


# ---- the lab's tracking numbers -------------------------------------------------


@pytest.mark.parametrize(
    ("tracking", "expected"),
    [
        ("+18005550100", [["R1"], 480]),
        ("+18005550101", [["R1", "R2", "R3"], 480]),
        ("+18005550103", [["R1"], ["R2"], ["R3"], 480]),
        ("+18005550104", [["R1"], ["R2"], ["R3"], 480]),
        ("+18005550105", [["R1"], ["R2"], 480]),
        ("+18005550109", [["R2"], 480]),  # R1-closed is outside its hours
        ("+18005550110", [["R1"], 480]),  # agent alice has no phone: fallback
    ],
)
def test_lab_routes_when_nobody_answers(lab: Config, tracking: str, expected: list[object]) -> None:
    assert walk(router(lab, tracking)) == expected


def test_ring_timeouts_come_from_the_route_or_the_number(lab: Config) -> None:
    first = router(lab, "+18005550100").start()
    assert isinstance(first, Dial) and first.targets[0].ring_timeout == 5.0
    r = router(lab, "+18005550105")
    assert [t.ring_timeout for t in r.start().targets] == [2.0]  # type: ignore[union-attr]
    second = r.next([LegResult("R1", 480, Outcome.NO_ANSWER)])
    assert isinstance(second, Dial)
    assert second.targets[0].ring_timeout == lab.receiving_numbers["R2"].ring_timeout


def test_round_robin_spreads_30_calls_10_10_10(lab: Config) -> None:
    counters = InMemoryCounters()
    firsts = Counter(names(router(lab, "+18005550102", counters).start())[0] for _ in range(30))
    assert firsts == {"R1": 10, "R2": 10, "R3": 10}


def test_round_robin_no_answer_moves_on_in_rotation(lab: Config) -> None:
    counters = InMemoryCounters()
    router(lab, "+18005550102", counters).start()  # the first call starts at R1
    assert walk(router(lab, "+18005550102", counters)) == [["R2"], ["R3"], ["R1"], 480]


def test_round_robin_position_survives_a_reload(lab: Config) -> None:
    counters = InMemoryCounters()
    router(lab, "+18005550102", counters).start()
    reloaded = load_config(LAB)
    assert names(router(reloaded, "+18005550102", counters).start()) == ["R2"]


def test_least_connected_prefers_the_idlest_ties_in_list_order(lab: Config) -> None:
    counters = InMemoryCounters()
    for _ in range(2):
        counters.leg_started("R1")
    counters.leg_started("R3")
    assert walk(router(lab, "+18005550104", counters)) == [["R2"], ["R3"], ["R1"], 480]


def test_least_connected_skips_a_busy_number(lab: Config) -> None:
    r = router(lab, "+18005550104")
    assert names(r.start()) == ["R1"]
    assert names(r.next([LegResult("R1", 486, Outcome.BUSY)])) == ["R2"]


def test_sequential_busy_hunts_on_and_busy_is_what_the_caller_hears(lab: Config) -> None:
    assert walk(router(lab, "+18005550103"), status=486) == [["R1"], ["R2"], ["R3"], 486]


def test_a_6xx_stops_the_hunt(lab: Config) -> None:
    r = router(lab, "+18005550103")
    r.start()
    assert r.stops_hunt(603) and not r.stops_hunt(486)
    action = r.next([LegResult("R1", 603, Outcome.FAILED)])
    assert isinstance(action, Finish) and action.status == 603


def test_closed_hours_are_recorded_as_tags(lab: Config) -> None:
    r = router(lab, "+18005550109")
    r.start()
    assert r.tags == {"lab-closed": "closed"}


# ---- fail-safe ------------------------------------------------------------------


def test_every_target_unreachable_goes_to_the_fail_safe_once(lab: Config) -> None:
    r = router(lab, "+18005550107")
    assert names(r.start()) == ["R1-unreachable"]
    fail_safe = r.next([LegResult("R1-unreachable", 408, Outcome.UNREACHABLE)])
    assert names(fail_safe) == ["R3"]
    final = r.next([LegResult("R3", 480, Outcome.NO_ANSWER)])
    assert isinstance(final, Finish) and final.status == 480


def test_a_target_that_answered_something_is_not_unreachable(lab: Config) -> None:
    r = router(lab, "+18005550107")
    r.start()
    final = r.next([LegResult("R1-unreachable", 480, Outcome.NO_ANSWER)])
    assert isinstance(final, Finish)


def test_fail_safe_when_routing_breaks(lab: Config) -> None:
    r = router(lab, "+18005550107")
    assert names(r.fail_safe("routing failed: boom")) == ["R3"]
    again = r.fail_safe("routing failed: boom")
    assert isinstance(again, Finish)


def test_no_fail_safe_configured_finishes(lab: Config) -> None:
    r = router(lab, "+18005550100")
    action = r.fail_safe("overload: routing.max_calls reached")
    assert isinstance(action, Finish) and action.status == 503


def test_a_menu_route_runs_the_menu_then_the_chosen_keys_route(lab: Config) -> None:
    r = router(lab, "+18005550111")
    action = r.start()
    assert isinstance(action, RunMenu) and action.menu.name == "lab-menu"
    chosen = r.menu_choice(action.menu.keys["2"], "2")
    assert names(chosen) == ["R2"]
    assert "menus.lab-menu.keys.2" in chosen.why  # type: ignore[union-attr]
    assert isinstance(r.next(no_answer(chosen)), Finish)


def test_a_menu_with_no_key_takes_its_default_and_without_one_finishes(lab: Config) -> None:
    r = router(lab, "+18005550111")
    action = r.start()
    assert isinstance(action, RunMenu)
    assert names(r.menu_choice(action.menu.default, None)) == ["R3"]
    r = router(lab, "+18005550111")
    r.start()
    finish = r.menu_choice(None, None)
    assert isinstance(finish, Finish) and finish.status == 480


def test_a_queue_that_gives_up_takes_its_no_answer_route(lab: Config) -> None:
    r = router(lab, "+18005550112")
    action = r.start()
    assert isinstance(action, JoinQueue) and action.queue.members == ("alice", "bob")
    assert names(r.next([])) == ["R3"]


class Phones:
    def __init__(self, **contacts: list[AgentContact]) -> None:
        self.table = contacts

    def contacts(self, agent: str) -> list[AgentContact]:
        return self.table.get(agent, [])


def test_an_agent_with_phones_rings_them_all_where_they_registered(lab: Config) -> None:
    phones = Phones(alice=[AgentContact("sip:alice@10.0.0.5:5062", "127.0.0.1", 40001, "udp"),
                           AgentContact("sip:alice@10.0.0.6;transport=tcp", "127.0.0.1", 40002,
                                        "tcp")])
    number = lab.tracking_number("+18005550110")
    assert number is not None
    r = Router(lab, number, facts(number.number), InMemoryCounters(), phones)
    action = r.start()
    assert isinstance(action, Dial) and action.pattern == "agent"
    assert [t.uri for t in action.targets] == ["sip:alice@10.0.0.5:5062",
                                                "sip:alice@10.0.0.6;transport=tcp"]
    assert [t.destination for t in action.targets] == [("127.0.0.1", 40001, "udp"),
                                                        ("127.0.0.1", 40002, "tcp")]
    assert names(r.next(no_answer(action))) == ["R1"]  # the fallback


def test_an_agent_in_a_call_is_not_rung_again(lab: Config) -> None:
    phones = Phones(alice=[AgentContact("sip:alice@10.0.0.5", "127.0.0.1", 40001, "udp")])
    counters = InMemoryCounters()
    counters.leg_started("alice")
    number = lab.tracking_number("+18005550110")
    assert number is not None
    r = Router(lab, number, facts(number.number), counters, phones)
    assert names(r.start()) == ["R1"]
    assert "agent alice: in a call, not rung again" in r.trace


def test_an_agent_without_phones_gets_its_inbound_number() -> None:
    config = parse_config(BASE + """agents: {zoe: {password: x, inbound_number: C}}
tracking_numbers:
  "+18005550150": {route: {agent: zoe, fallback: {dial: [A]}}}
""")
    r = router(config, "+18005550150")
    first = r.start()
    assert names(first) == ["C"]
    assert names(r.next(no_answer(first))) == ["A"]


# ---- loops, depth and custom configs --------------------------------------------

BASE = """
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  A: {number: "+14155550001", uri: "sip:a@127.0.0.1:5071", no_answer: {dial: [B]}}
  B: {number: "+14155550002", uri: "sip:b@127.0.0.1:5072", no_answer: {dial: [A]}}
  C: {number: "+14155550003", uri: "sip:c@127.0.0.1:5073"}
"""


def test_numbers_pointing_at_each_other_are_tried_once_each() -> None:
    config = parse_config(BASE + 'tracking_numbers:\n  "+18005550150": {route: {dial: [A]}}\n')
    assert walk(router(config, "+18005550150")) == [["A"], ["B"], 480]


def test_max_depth_cuts_a_long_chain() -> None:
    text = BASE + (
        "routing: {max_depth: 1}\n"
        'tracking_numbers:\n  "+18005550150":\n'
        "    route: {dial: [C], no_answer: {dial: [A], no_answer: {dial: [B]}}}\n"
    )
    assert walk(router(parse_config(text), "+18005550150")) == [["C"], ["A"], 480]


def test_final_status_is_configurable() -> None:
    text = BASE + (
        'routing: {final_status: 486}\ntracking_numbers:\n  "+18005550150": {route: {dial: [C]}}\n'
    )
    assert walk(router(parse_config(text), "+18005550150")) == [["C"], 486]


def test_hunt_stop_codes_are_configurable() -> None:
    text = BASE + (
        'tracking_numbers:\n  "+18005550150":\n'
        "    route: {dial: [C, A], pattern: sequential, hunt_stop: [486]}\n"
    )
    r = router(parse_config(text), "+18005550150")
    r.start()
    action = r.next([LegResult("C", 486, Outcome.BUSY)])
    assert isinstance(action, Finish) and action.status == 486


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], 480),
        ([480], 480),
        ([486, 480], 486),
        ([404], 404),
        ([404, 410, 484], 404),
        ([404, 480], 480),
        ([500, 503], 503),
        ([603], 603),
        ([600, 486], 603),
        ([408], 408),
        ([408, 480], 480),
        ([403], 480),
    ],
)
def test_final_status_mapping(statuses: list[int], expected: int) -> None:
    assert final_status(statuses) == expected


# ---- hours across a DST change ----------------------------------------------------

@pytest.mark.parametrize(
    ("at", "open_"),
    [
        # 13:30 UTC is 08:30 EST on Friday 6 March 2026 (closed) ...
        (datetime.datetime(2026, 3, 6, 13, 30, tzinfo=datetime.UTC), False),
        # ... and 09:30 EDT on Monday 9 March, after the change on the 8th (open).
        (datetime.datetime(2026, 3, 9, 13, 30, tzinfo=datetime.UTC), True),
        # 21:30 UTC: 16:30 EDT before the November change (open), 16:30 EST after (open)
        (datetime.datetime(2026, 10, 30, 20, 30, tzinfo=datetime.UTC), True),
        (datetime.datetime(2026, 11, 2, 21, 30, tzinfo=datetime.UTC), True),
        (datetime.datetime(2026, 10, 30, 21, 30, tzinfo=datetime.UTC), False),
    ],
)
def test_hours_on_both_sides_of_a_dst_change(at: datetime.datetime, open_: bool) -> None:
    text = BASE.replace(
        'C: {number: "+14155550003", uri: "sip:c@127.0.0.1:5073"}',
        'C: {number: "+14155550003", uri: "sip:c@127.0.0.1:5073", hours: office}',
    ) + (
        "schedules:\n  office:\n    timezone: America/New_York\n"
        '    weekly: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]\n'
        'tracking_numbers:\n  "+18005550150": {route: {dial: [C], no_answer: {dial: [B]}}}\n'
    )
    r = router(parse_config(text), "+18005550150", at=at)
    assert names(r.start()) == (["C"] if open_ else ["B"])
    assert r.tags == {"office": "open" if open_ else "closed"}


# ---- geo and conditional routers (lab 0113 and 0114) ----------------------------------


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+14155550100", ["R1"]),  # San Francisco: CA is nearest
        ("+12125550100", ["R2"]),  # New York
        ("+13125550100", ["R2"]),  # Chicago: nearer New York than California
        ("+18885550100", ["R3"]),  # toll-free: cannot be placed
        ("anonymous", ["R3"]),  # withheld
    ],
)
def test_geo_router(lab: Config, caller: str, expected: list[str]) -> None:
    assert names(router(lab, "+18005550113", caller=caller).start()) == expected


@pytest.mark.parametrize(
    ("caller", "headers", "expected"),
    [
        ("+14155550100", {}, ["R1"]),
        ("+12125550100", {"x-lab-route": ("r2",)}, ["R2"]),
        ("+12125550100", {}, ["R3"]),
    ],
)
def test_conditional_router(
    lab: Config, caller: str, headers: dict[str, tuple[str, ...]], expected: list[str]
) -> None:
    r = router(lab, "+18005550114", caller=caller, headers=headers)
    assert names(r.start()) == expected
