"""Call records as the B2BUA fills them: one per call, field by field (issue #6).

The fake wire and helpers are test_b2bua_routing.py's; the wall clock is loop time
plus ``epoch_offset`` (1,000,000 s here), so record times read as offsets.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from test_b2bua_routing import (
    CALLER,
    ELSEWHERE,
    FAIL_SAFE,
    NOON_UTC,
    R1,
    R2,
    R3,
    SIMULTANEOUS,
    Caller,
    answered,
    cancelled,
    finish,
    hang_up,
    leg_to,
    respond,
)

from softswitch.b2bua.service import B2BUA
from softswitch.config import Config
from softswitch.records.model import CallRecord, Disposition
from softswitch.sip.endpoint import EndpointConfig

EPOCH = 1_000_000.0


@pytest.fixture
def recorded(lab_config: Config, sip: Any) -> Any:
    def make(config: Config | None = None) -> tuple[B2BUA, Any, list[CallRecord], list[str]]:
        b2bua = B2BUA(config or lab_config, EndpointConfig(local=dict(sip.LOCAL)),
                      rng=random.Random(1), wall_clock=lambda: NOON_UTC, epoch_offset=EPOCH)
        ended: list[CallRecord] = []
        started: list[str] = []
        b2bua.events.on("call_started", lambda call: started.append(call.record.id))
        b2bua.events.on("call_ended", lambda call: ended.append(call.record))
        return b2bua, sip.Wire(b2bua.endpoint), ended, started

    return make


def test_answered_call_caller_hangs_up(recorded: Any, sip: Any) -> None:
    b2bua, wire, ended, started = recorded()
    c = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.5)
    answered(wire, sip, c, r1, 2.0, 7001)
    hang_up(wire, sip, c, 12.0)
    assert len(ended) == 1 and started == [ended[0].id]
    record = ended[0]
    assert (record.tracking_number, record.tracking_label) == (
        "+18005550100", "Lab 0100 single number")
    assert record.caller_number == c.caller == "+14155550000"
    assert record.started_at == EPOCH
    assert record.first_ring_at == EPOCH + 0.5
    assert record.answered_at == EPOCH + 2.0
    assert record.bridged_at == EPOCH + 2.05  # the caller's ACK
    assert record.ended_at == EPOCH + 12.0  # the caller's BYE reached the socket
    assert record.disposition is Disposition.ANSWERED and record.final_status == 200
    assert record.hangup_by == "caller" and record.pattern == "single"
    assert (record.ring_seconds, record.talk_seconds, record.total_seconds) == (2.0, 10.0, 12.0)
    [leg] = record.legs
    assert (leg.name, leg.phone, leg.label, leg.outcome, leg.status) == (
        "R1", "+14155550101", "Lab R1", "answered", 200)
    assert (leg.tried_at, leg.rang_at, leg.answered_at) == (EPOCH, EPOCH + 0.5, EPOCH + 2.0)
    # Lab billing is 6/6 at +1 0.02/min for the leg plus 0.01/min inbound: 12 s each.
    assert record.billable_seconds == 12
    assert record.cost == pytest.approx(12 / 60 * 0.02 + 12 / 60 * 0.01)
    finish(b2bua, wire)


def test_busy(recorded: Any, sip: Any) -> None:
    b2bua, wire, ended, _ = recorded()
    c = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 486, 1.0)
    c.ack(1.1)
    [record] = ended
    assert record.disposition is Disposition.BUSY and record.final_status == 486
    assert [(leg.name, leg.status, leg.outcome) for leg in record.legs] == [("R1", 486, "busy")]
    assert record.answered_at is None and record.talk_seconds == 0.0
    assert (record.billable_seconds, record.cost) == (0, 0.0)
    finish(b2bua, wire)


def test_cancelled_by_the_caller(recorded: Any, sip: Any) -> None:
    b2bua, wire, ended, _ = recorded()
    c = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.2)
    data = sip.request("CANCEL", c.uri, source=CALLER, branch=c.branch, call_id=c.call_id,
                       from_uri=f"sip:{c.caller}@127.0.0.1:5061", from_tag="caller-tag",
                       cseq=1)
    wire.deliver(data, CALLER, at=3.0)
    cancelled(wire, sip, r1, 3.1)
    c.ack(3.2)
    [record] = ended
    assert record.disposition is Disposition.CANCELLED and record.final_status == 487
    assert record.hangup_by == "caller"
    finish(b2bua, wire)


def test_no_answer(recorded: Any, sip: Any) -> None:
    b2bua, wire, ended, _ = recorded()
    c = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.2)
    wire.advance(5.0)
    cancelled(wire, sip, r1, 5.1)
    c.ack(5.2)
    [record] = ended
    assert record.disposition is Disposition.NO_ANSWER and record.final_status == 480
    assert [(leg.status, leg.outcome) for leg in record.legs] == [(480, "no answer")]
    assert record.legs[0].ended_at == EPOCH + 5.0
    finish(b2bua, wire)


def test_fail_safe(recorded: Any, sip: Any) -> None:
    b2bua, wire, ended, _ = recorded()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    c.invite(0.0)
    r3 = leg_to(wire, wire.advance(5.0), R3)
    answered(wire, sip, c, r3, 6.0, 7003)
    hang_up(wire, sip, c, 10.0)
    [record] = ended
    assert record.disposition is Disposition.FAIL_SAFE and record.pattern == "fail-safe"
    assert [(leg.name, leg.outcome) for leg in record.legs] == [
        ("R1-unreachable", "unreachable"), ("R3", "answered")]
    finish(b2bua, wire)


def test_simultaneous_losers_are_cancelled_answered_elsewhere_and_billed(
    recorded: Any, sip: Any
) -> None:
    b2bua, wire, ended, _ = recorded()
    c = Caller(b2bua, wire, sip, SIMULTANEOUS)
    sent = c.invite(0.0)
    legs = {peer: leg_to(wire, sent, peer) for peer in (R1, R2, R3)}
    for i, leg in enumerate(legs.values()):
        respond(wire, sip, leg, 180, 0.1, tag=f"t{i}")
    answered(wire, sip, c, legs[R2], 3.0, 7002)
    cancelled(wire, sip, legs[R1], 3.1)
    cancelled(wire, sip, legs[R3], 3.1)
    hang_up(wire, sip, c, 13.0)
    [record] = ended
    assert record.disposition is Disposition.ANSWERED and record.pattern == "simultaneous"
    outcomes = {leg.name: (leg.outcome, leg.reason, leg.status) for leg in record.legs}
    assert outcomes == {
        "R1": ("cancelled", ELSEWHERE, None),
        "R2": ("answered", None, 200),
        "R3": ("cancelled", ELSEWHERE, None),
    }
    # Simultaneous rings cost every leg's time up: R1, R3 3 s (6 s billed at 6/6),
    # R2 13 s (18 s billed); lab rates: +1415 simultaneous 0.03/min; inbound 10 s at 0.01.
    assert record.billable_seconds == 6 + 18 + 6
    assert record.cost == pytest.approx((6 + 18 + 6) / 60 * 0.03 + 12 / 60 * 0.01)
    finish(b2bua, wire)
