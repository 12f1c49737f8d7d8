"""softswitch.routing.queues: a call queue's live state and its strategies (issue #5).

Scenarios are scripts of events with what the queue answers:

- ``join X T`` → X's position;
- ``offers T`` → ``"X:A; Y:B+C"`` (members rung for each caller), ``""`` for none;
- ``miss X A T`` (A's ring for X ended unanswered), ``end A T`` (A's call ended);
- ``answer X A T`` and ``leave X T`` → the members to cancel, ``"A,B"``;
- ``away A`` / ``back A``: the B2BUA's ``available(A)`` turns false / true.
"""

from __future__ import annotations

import random
from typing import Any, cast

import pytest

from softswitch.config import QueueStrategy
from softswitch.routing.queues import CallQueue, MemberState, Offer, QueueError

S = QueueStrategy


class Driver:
    def __init__(self, queue: CallQueue) -> None:
        self.queue = queue
        self.away: set[str] = set()

    def available(self, name: str) -> bool:
        return name not in self.away

    def step(self, step: str) -> str:
        kind, *args = step.split()
        q = self.queue
        if kind == "join":
            return str(q.join(args[0], float(args[1])))
        if kind == "offers":
            return "; ".join(
                f"{o.caller}:{'+'.join(o.members)}"
                for o in q.offers(float(args[0]), self.available)
            )
        if kind == "miss":
            q.no_answer(args[0], args[1], float(args[2]))
            return ""
        if kind == "answer":
            return ",".join(q.answered(args[0], args[1], float(args[2])))
        if kind == "end":
            q.call_ended(args[0], float(args[1]))
            return ""
        if kind == "leave":
            return ",".join(q.leave(args[0], float(args[1])))
        if kind == "away":
            self.away.add(args[0])
            return ""
        assert kind == "back", step
        self.away.discard(args[0])
        return ""

    def run(self, script: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(step, self.step(step)) for step, _ in script]


def driver(strategy: QueueStrategy, members: str = "A B C", wrap_up: float = 0.0,
           seed: int = 0) -> Driver:
    return Driver(CallQueue("sales", members.split(), strategy, wrap_up, random.Random(seed)))


def member_rows(d: Driver, now: float) -> list[dict[str, object]]:
    return cast(list[dict[str, object]], d.queue.snapshot(now, d.available)["members"])


Script = list[tuple[str, str]]

STRATEGIES: dict[str, tuple[QueueStrategy, Script]] = {
    "round robin: memory across callers and calls": (S.ROUND_ROBIN, [
        ("join x 0", "1"),
        ("offers 0", "x:A"),
        ("answer x A 1", ""),
        ("join y 2", "1"),
        ("offers 2", "y:B"),
        ("miss y B 17", ""),
        ("offers 17", "y:C"),
        ("answer y C 18", ""),
        ("join z 19", "1"),
        ("offers 19", "z:B"),  # after C comes A, in a call: B
        ("end A 20", ""),
        ("miss z B 34", ""),
        ("offers 34", "z:A"),  # C in a call; B already failed z
        ("answer z A 35", ""),
        ("end C 36", ""),
        ("join w 40", "1"),
        ("offers 40", "w:B"),  # after A comes B, whoever asked last
    ]),
    "round robin: wraps around the list": (S.ROUND_ROBIN, [
        ("join x 0", "1"), ("offers 0", "x:A"), ("miss x A 15", ""),
        ("offers 15", "x:B"), ("miss x B 30", ""),
        ("offers 30", "x:C"), ("miss x C 45", ""),
        ("offers 45", "x:A"),
    ]),
    "longest idle: calls ended at different times": (S.LONGEST_IDLE, [
        ("join x 0", "1"),
        ("offers 0", "x:A"),  # nobody called yet: list order
        ("answer x A 0", ""),
        ("join y 1", "1"),
        ("offers 1", "y:B"),
        ("answer y B 1", ""),
        ("end B 10", ""),
        ("end A 20", ""),
        ("join z 30", "1"),
        ("offers 30", "z:C"),  # never called: idle longest of all
        ("answer z C 30", ""),
        ("end C 40", ""),
        ("join w 50", "1"),
        ("offers 50", "w:B"),  # B's call ended at 10, A's at 20, C's at 40
        ("miss w B 65", ""),
        ("join v 66", "2"),
        ("offers 66", "w:A; v:B"),  # a missed ring does not reset B's idle time
    ]),
    "fewest calls: answered queue calls, ties in list order": (S.FEWEST_CALLS, [
        ("join x 0", "1"), ("offers 0", "x:A"), ("answer x A 1", ""), ("end A 2", ""),
        ("join y 3", "1"), ("offers 3", "y:B"), ("answer y B 4", ""), ("end B 5", ""),
        ("join z 6", "1"), ("offers 6", "z:C"), ("miss z C 21", ""),
        ("offers 21", "z:A"),  # C failed z; A and B tie at one call: A
        ("answer z A 22", ""), ("end A 23", ""),
        ("join w 24", "1"),
        ("offers 24", "w:C"),  # C: 0 calls (a missed ring is not a call), B: 1, A: 2
        ("answer w C 25", ""), ("end C 26", ""),
        ("join v 27", "1"),
        ("offers 27", "v:B"),  # B and C: 1, A: 2
    ]),
    "linear: always from the top": (S.LINEAR, [
        ("join x 0", "1"), ("offers 0", "x:A"), ("answer x A 1", ""),
        ("join y 2", "1"), ("offers 2", "y:B"),  # A in a call
        ("end A 3", ""),
        ("miss y B 17", ""),
        ("offers 17", "y:A"),
        ("miss y A 32", ""),
        ("offers 32", "y:C"),
        ("miss y C 47", ""),
        ("offers 47", "y:A"),  # everyone failed y once: from the top again
        ("answer y A 48", ""), ("end A 49", ""),
        ("join z 50", "1"), ("offers 50", "z:A"),
    ]),
    "ring all: every idle member, again after they all missed": (S.RING_ALL, [
        ("join x 0", "1"),
        ("offers 0", "x:A+B+C"),
        ("answer x B 3", "A,C"),
        ("join y 4", "1"),
        ("offers 4", "y:A+C"),  # B in a call
        ("miss y A 19", ""),
        ("offers 19", ""),  # C still rings for y
        ("miss y C 19", ""),
        ("end B 19", ""),
        ("offers 19", "y:A+B+C"),
    ]),
}


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy(name: str) -> None:
    strategy, script = STRATEGIES[name]
    assert driver(strategy).run(script) == script


def test_random_with_a_seeded_rng() -> None:
    d = driver(S.RANDOM, "A B C D", seed=7)
    expected_rng = random.Random(7)
    picks = []
    for n in range(40):
        caller = f"c{n}"
        d.step(f"join {caller} {n}")
        [offer] = d.queue.offers(float(n), d.available)
        picks.append(offer.members[0])
        assert offer.members == (expected_rng.choice(["A", "B", "C", "D"]),)
        d.step(f"answer {caller} {picks[-1]} {n}")
        d.step(f"end {picks[-1]} {n}")
    assert set(picks) == {"A", "B", "C", "D"}


def test_random_picks_only_idle_available_untried_members() -> None:
    d = driver(S.RANDOM, "A B C D", seed=3)
    d.away.add("B")
    d.step("join x 0")
    [first] = d.queue.offers(0.0, d.available)
    d.step("join y 1")
    picks = []
    for n in range(20):
        [offer] = d.queue.offers(1.0 + n, d.available)
        assert offer.caller == "y"
        picks.append(offer.members[0])
        d.step(f"miss y {picks[-1]} {1.5 + n}")
    assert set(picks) == {"A", "C", "D"} - set(first.members)
    # Each candidate is tried once before either is tried again.
    assert all(set(picks[i : i + 2]) == set(picks) for i in range(0, 20, 2))


def test_fifo_three_callers_two_members() -> None:
    d = driver(S.LINEAR, "A B", wrap_up=10.0)
    script: Script = [
        ("join x 0", "1"),
        ("join y 1", "2"),
        ("join z 2", "3"),
        ("offers 2", "x:A; y:B"),  # z waits: no member left
        ("answer x A 3", ""),
        ("answer y B 4", ""),
        ("offers 5", ""),
        ("end A 30", ""),
        ("offers 39.999", ""),  # A wraps up until 40
        ("offers 40", "z:A"),
    ]
    assert d.run(script) == script
    assert d.queue.waiting == ["z"]


def test_positions_move_up_as_callers_are_served_or_leave() -> None:
    d = driver(S.LINEAR, "A")
    d.run([("join x 0", ""), ("join y 1", ""), ("join z 2", ""), ("offers 2", "")])
    q = d.queue
    assert [q.position(c) for c in ("x", "y", "z", "nobody")] == [1, 2, 3, None]
    assert q.leave("y", 3.0) == []
    assert [q.position(c) for c in ("x", "y", "z")] == [1, None, 2]
    q.answered("x", "A", 4.0)
    assert [q.position(c) for c in ("x", "z")] == [None, 1]
    assert q.join("w", 5.0) == 2


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (2.0, MemberState.RINGING),
        (3.0, MemberState.IN_CALL),
        (29.999, MemberState.IN_CALL),
        (30.0, MemberState.WRAP_UP),
        (44.999, MemberState.WRAP_UP),
        (45.0, MemberState.IDLE),
        (1000.0, MemberState.IDLE),
    ],
)
def test_wrap_up_is_computed_from_now(now: float, state: MemberState) -> None:
    d = driver(S.LINEAR, "A", wrap_up=15.0)
    d.run([("join x 1", ""), ("offers 1", "")])
    if now >= 3.0:
        d.step("answer x A 3")
    if now >= 30.0:
        d.step("end A 30")
    assert d.queue.state("A", now) is state


def test_no_wrap_up_means_idle_at_once() -> None:
    d = driver(S.LINEAR, "A")
    d.run([("join x 0", ""), ("offers 0", ""), ("answer x A 1", ""), ("end A 9", "")])
    assert d.queue.state("A", 9.0) is MemberState.IDLE


def test_unavailable_members_are_skipped() -> None:
    d = driver(S.LINEAR, "A B C")
    script: Script = [
        ("away A", ""),
        ("away B", ""),
        ("join x 0", "1"),
        ("offers 0", "x:C"),
        ("join y 1", "2"),
        ("offers 1", ""),  # A and B idle but unavailable, C rings for x
        ("back B", ""),
        ("offers 2", "y:B"),
    ]
    assert d.run(script) == script
    states = [m["state"] for m in member_rows(d, 2.0)]
    assert states == ["unavailable", "ringing", "ringing"]


def test_ring_all_skips_unavailable_members() -> None:
    d = driver(S.RING_ALL, "A B C")
    assert d.run([("away B", ""), ("join x 0", ""), ("offers 0", "")])[-1] == ("offers 0", "x:A+C")


def test_leave_withdraws_the_offers() -> None:
    d = driver(S.RING_ALL, "A B")
    script: Script = [
        ("join x 0", "1"),
        ("join y 1", "2"),
        ("offers 1", "x:A+B"),
        ("leave x 5", "A,B"),
        ("offers 5", "y:A+B"),
        ("leave y 6", "A,B"),
    ]
    assert d.run(script) == script
    assert d.queue.waiting == []
    assert [d.queue.state(m, 6.0) for m in "AB"] == [MemberState.IDLE] * 2
    with pytest.raises(QueueError, match="x is not waiting"):
        d.queue.no_answer("x", "A", 7.0)


def test_leave_keeps_other_callers_offers() -> None:
    d = driver(S.LINEAR, "A B")
    script: Script = [
        ("join x 0", "1"), ("join y 0", "2"), ("join z 0", "3"),
        ("offers 0", "x:A; y:B"),
        ("leave y 2", "B"),
        ("offers 2", "z:B"),
    ]
    assert d.run(script) == script
    assert d.queue.state("A", 2.0) is MemberState.RINGING


def test_answered_returns_the_other_ringing_members() -> None:
    d = driver(S.RING_ALL, "A B C")
    d.run([("join x 0", ""), ("offers 0", "")])
    assert d.queue.answered("x", "C", 2.0) == ["A", "B"]
    assert [d.queue.state(m, 2.0) for m in "ABC"] == [
        MemberState.IDLE, MemberState.IDLE, MemberState.IN_CALL
    ]
    assert d.queue.waiting == []


def test_snapshot() -> None:
    d = driver(S.ROUND_ROBIN, "A B C", wrap_up=5.0)
    d.run([
        ("join x 10", ""), ("join y 11", ""), ("offers 11", ""),  # x:A, y:B
        ("answer x A 12", ""), ("end A 20", ""),
        ("join z 21", ""), ("offers 21", ""),  # z:C
        ("away C", ""),
    ])
    assert d.queue.snapshot(23.5, d.available) == {
        "name": "sales",
        "strategy": "round_robin",
        "waiting": [
            {"caller": "y", "position": 1, "waited": 12.5, "ringing": ["B"]},
            {"caller": "z", "position": 2, "waited": 2.5, "ringing": ["C"]},
        ],
        "members": [
            {"name": "A", "state": "wrap_up", "since": 20.0, "calls_taken": 1},
            {"name": "B", "state": "ringing", "since": 11.0, "calls_taken": 0},
            {"name": "C", "state": "ringing", "since": 21.0, "calls_taken": 0},
        ],
    }
    d.step("miss z C 30")
    assert member_rows(d, 30.0) == [
        {"name": "A", "state": "idle", "since": 25.0, "calls_taken": 1},  # wrap-up ended
        {"name": "B", "state": "ringing", "since": 11.0, "calls_taken": 0},
        {"name": "C", "state": "unavailable", "since": 30.0, "calls_taken": 0},
    ]


def test_snapshot_of_a_new_queue() -> None:
    q = CallQueue("support", ["A"], S.LINEAR)
    assert q.snapshot(0.0, lambda _: True) == {
        "name": "support",
        "strategy": "linear",
        "waiting": [],
        "members": [{"name": "A", "state": "idle", "since": None, "calls_taken": 0}],
    }


# ---- configure(): a config reload ---------------------------------------------------


def test_configure_keeps_callers_states_counts_and_memory() -> None:
    d = driver(S.ROUND_ROBIN, "A B C")
    d.run([
        ("join x 0", ""), ("offers 0", "x:A"), ("answer x A 1", ""),
        ("join y 2", ""), ("offers 2", "y:B"),
    ])
    q = d.queue
    q.configure(["B", "D", "C"], S.ROUND_ROBIN, 5.0)
    assert q.waiting == ["y"]
    assert q.state("B", 3.0) is MemberState.RINGING
    assert q.state("D", 3.0) is MemberState.IDLE
    script: Script = [
        ("join z 3", "2"),
        ("offers 3", "z:D"),  # after B, in the new list
        ("answer y B 4", ""),
        ("end A 5", ""),  # A left the list but its call was still valid
    ]
    assert d.run(script) == script
    with pytest.raises(QueueError, match="A is not a member"):
        q.state("A", 6.0)
    assert [m["calls_taken"] for m in member_rows(d, 6.0)] == [1, 0, 0]
    d.step("end B 6")
    assert q.state("B", 10.999) is MemberState.WRAP_UP  # the new wrap_up
    assert q.state("B", 11.0) is MemberState.IDLE


def test_configure_removing_a_ringing_member_lets_its_ring_end() -> None:
    d = driver(S.LINEAR, "A B")
    d.run([("join x 0", ""), ("offers 0", "x:A")])
    d.queue.configure(["B"], S.LINEAR, 0.0)
    script: Script = [
        ("offers 1", ""),  # A still rings for x
        ("miss x A 15", ""),
        ("offers 15", "x:B"),
    ]
    assert d.run(script) == script
    with pytest.raises(QueueError):
        d.queue.state("A", 15.0)


def test_configure_changes_the_strategy() -> None:
    d = driver(S.LINEAR, "A B C")
    d.run([("join x 0", ""), ("offers 0", "x:A")])
    d.queue.configure(["A", "B", "C"], S.RING_ALL, 0.0)
    assert d.run([("join y 1", ""), ("offers 1", "y:B+C")])[-1] == ("offers 1", "y:B+C")


def test_configure_shorter_wrap_up_frees_members_at_once() -> None:
    d = driver(S.LINEAR, "A", wrap_up=60.0)
    d.run([("join x 0", ""), ("offers 0", ""), ("answer x A 1", ""), ("end A 10", "")])
    assert d.queue.state("A", 20.0) is MemberState.WRAP_UP
    d.queue.configure(["A"], S.LINEAR, 5.0)
    assert d.queue.state("A", 20.0) is MemberState.IDLE


@pytest.mark.parametrize(
    ("members", "next_member"),
    [
        ("A B C D", "C"),  # unchanged: after B
        ("A C D", "C"),  # B removed: the one after it stays next
        ("D A", "D"),  # B and C removed: D was next after them
        ("C E A", "C"),  # a new member does not jump the turn
        ("E", "E"),  # nobody left from before
    ],
)
def test_configure_round_robin_memory_when_the_last_offered_member_goes(
    members: str, next_member: str
) -> None:
    d = driver(S.ROUND_ROBIN, "A B C D")
    d.run([
        ("join x 0", ""), ("offers 0", "x:A"), ("answer x A 0", ""), ("end A 0", ""),
        ("join y 0", ""), ("offers 0", "y:B"), ("answer y B 0", ""), ("end B 0", ""),
    ])
    d.queue.configure(members.split(), S.ROUND_ROBIN, 0.0)
    d.step("join z 1")
    assert d.queue.offers(1.0, d.available) == [Offer("z", (next_member,))]


# ---- misuse -------------------------------------------------------------------------


def _ringing_a_for_x() -> CallQueue:
    d = driver(S.LINEAR, "A B")
    d.run([("join x 0", ""), ("join y 0", ""), ("offers 0", "x:A; y:B")])
    return d.queue


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda q: q.join("x", 1.0), "x is already waiting"),
        (lambda q: q.leave("nobody", 1.0), "nobody is not waiting"),
        (lambda q: q.answered("x", "B", 1.0), "B of queue sales is not ringing for x"),
        (lambda q: q.no_answer("y", "A", 1.0), "A of queue sales is not ringing for y"),
        (lambda q: q.no_answer("x", "Z", 1.0), "Z is not a member"),
        (lambda q: q.call_ended("A", 1.0), "A of queue sales is ringing, not in a call"),
        (lambda q: q.state("Z", 1.0), "Z is not a member"),
    ],
)
def test_mistimed_events_raise(call: Any, message: str) -> None:
    with pytest.raises(QueueError, match=message):
        call(_ringing_a_for_x())


def test_answer_after_leave_raises() -> None:
    q = _ringing_a_for_x()
    q.leave("x", 1.0)
    with pytest.raises(QueueError, match="x is not waiting"):
        q.answered("x", "A", 1.5)


@pytest.mark.parametrize(
    ("members", "wrap_up", "message"),
    [(["A", "B", "A"], 0.0, "listed twice"), (["A"], -1.0, "must be >= 0")],
)
def test_bad_configuration(members: list[str], wrap_up: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallQueue("sales", members, S.LINEAR, wrap_up)
