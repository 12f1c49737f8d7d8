"""Routing through the B2BUA on a fake wire: the router's plans as SIP (issue #3).

The lab config (conf/lab.yaml) and a few custom configs are driven end to end: the
caller (a trunk at 127.0.0.1:5061) and the receiving numbers (R1..R3 at
127.0.0.1:5071..5073, R1-unreachable at 5079) are played here.  Time is a number and
the wall clock (for hours) is fixed.  Every scenario ends by running time past every
timer and checking that nothing is left: no call, transaction, dialog, timer, and no
leg still counted as in progress on any receiving number.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from softswitch.b2bua.service import B2BUA
from softswitch.config import Config, parse_config
from softswitch.routing.router import Router
from softswitch.sip.endpoint import EndpointConfig

CALLER = ("127.0.0.1", 5061)
R1 = ("127.0.0.1", 5071)
R2 = ("127.0.0.1", 5072)
R3 = ("127.0.0.1", 5073)
UNREACHABLE = ("127.0.0.1", 5079)  # R1-unreachable: nothing listens there
PEERS = {R1: "R1", R2: "R2", R3: "R3", UNREACHABLE: "R1-unreachable"}

SINGLE = "+18005550100"  # dial R1, no fail-safe
SIMULTANEOUS = "+18005550101"  # R1, R2, R3 at once
ROUND_ROBIN = "+18005550102"
SEQUENTIAL = "+18005550103"  # R1, R2, R3, ring_timeout 2
LEAST_CONNECTED = "+18005550104"
NO_ANSWER = "+18005550105"  # R1 for 2 s, then R2
FAIL_SAFE = "+18005550107"  # R1-unreachable, fail-safe R3
CLOSED = "+18005550109"  # R1-closed (never open), then R2
MENU = "+18005550111"  # a menu: not built yet, the router raises
GEO = "+18005550113"
CONDITIONAL = "+18005550114"

ZERO = {"calls": 0, "tracked_transactions": 0, "client_transactions": 0,
        "server_transactions": 0, "dialogs": 0, "timers": 0}
ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
NOON_UTC = datetime.datetime(2026, 11, 25, 17, 0, tzinfo=datetime.UTC)


# ---------------------------------------------------------------------------- harness


@pytest.fixture
def switch(lab_config: Config, sip: Any) -> Callable[..., tuple[B2BUA, Any]]:
    """A B2BUA on a fake wire with a fixed wall clock (the lab config by default)."""

    def make(config: Config | None = None) -> tuple[B2BUA, Any]:
        b2bua = B2BUA(config or lab_config, EndpointConfig(local=dict(sip.LOCAL)),
                      rng=random.Random(1), wall_clock=lambda: NOON_UTC)
        return b2bua, sip.Wire(b2bua.endpoint)

    return make


class Caller:
    """One call from the trunk; several may share a B2BUA and its wire."""

    def __init__(self, b2bua: B2BUA, wire: Any, sip: Any, number: str,
                 caller: str = "+14155550000") -> None:
        self.b2bua = b2bua
        self.wire = wire
        self.sip = sip
        self.number = number
        self.caller = caller
        self.call_id = sip.unique("caller-call-") + "@test"
        self.branch = sip.unique("z9hG4bK-caller-")
        self.uri = f"sip:{number}@127.0.0.1:5060"
        self.offer = sip.sdp(port=6000)
        self.cseq = 1

    def invite(self, at: float, headers: Iterable[tuple[str, str]] = ()) -> list[Any]:
        data = self.sip.request(
            "INVITE", self.uri, source=CALLER, branch=self.branch, call_id=self.call_id,
            from_uri=f"sip:{self.caller}@127.0.0.1:5061", from_tag="caller-tag",
            headers=headers, body=self.offer)
        return self.wire.deliver(data, CALLER, at=at)

    def mine(self, sent: list[Any] | None = None) -> list[Any]:
        """Responses to this caller's INVITE (retransmissions included)."""
        return [s for s in (self.wire.log if sent is None else sent)
                if s.destination == CALLER and s.is_response and s.msg.call_id == self.call_id
                and s.msg.cseq.method == "INVITE"]

    def statuses(self, sent: list[Any] | None = None) -> list[int]:
        return [s.status for s in self.mine(sent)]

    def finals(self) -> list[Any]:
        return [s for s in self.mine() if s.status >= 200]

    def _request(self, method: str, at: float, to_tag: str, *, cseq: int,
                 branch: str | None = None, uri: str = "sip:127.0.0.1:5060") -> list[Any]:
        data = self.sip.request(
            method, uri, source=CALLER, branch=branch, call_id=self.call_id,
            from_tag="caller-tag", to_uri=self.uri, to_tag=to_tag, cseq=cseq, contact=None)
        return self.wire.deliver(data, CALLER, at=at)

    def ack(self, at: float) -> list[Any]:
        """ACK the final response (a 2xx in a new transaction, others in the INVITE's)."""
        final = self.finals()[0]
        if final.status < 300:
            return self._request("ACK", at, final.msg.to.tag, cseq=1,
                                 uri=str(final.msg.contacts[0].uri))
        return self._request("ACK", at, final.msg.to.tag, cseq=1, branch=self.branch,
                             uri=self.uri)

    def bye(self, at: float) -> list[Any]:
        self.cseq += 1
        return self._request("BYE", at, self.finals()[0].msg.to.tag, cseq=self.cseq)


def respond(wire: Any, sip: Any, req: Any, status: int, at: float, *, tag: str = "r-tag",
            sdp_port: int | None = None) -> list[Any]:
    """The peer ``req`` (a Sent request) went to answers it."""
    host, port = req.destination
    body = sip.sdp(host, sdp_port) if sdp_port else b""
    contact = (f"<sip:r@{host}:{port}>"
               if status < 300 and req.msg.method == "INVITE" else None)
    data = sip.response_to(req.msg, status, to_tag=tag, contact=contact, body=body)
    return wire.deliver(data, req.destination, at=at)


def outbound_invites(wire: Any, sent: Iterable[Any]) -> list[Any]:
    """The new INVITEs among ``sent``: first transmissions only (no Timer A
    retransmission), one per leg."""
    first: dict[str, int] = {}
    for s in wire.log:
        if s.method == "INVITE" and s.destination != CALLER:
            first.setdefault(s.msg.top_via.branch, id(s))
    return [s for s in sent if s.method == "INVITE" and s.destination != CALLER
            and first.get(s.msg.top_via.branch) == id(s)]


def leg_to(wire: Any, sent: Iterable[Any], peer: tuple[str, int]) -> Any:
    invites = [s for s in outbound_invites(wire, sent) if s.destination == peer]
    assert len(invites) == 1, f"expected one INVITE to {peer}: {invites}"
    return invites[0]


def requests_to(sent: Iterable[Any], method: str, peer: tuple[str, int]) -> list[Any]:
    return [s for s in sent if s.method == method and s.destination == peer]


def cancelled(wire: Any, sip: Any, leg: Any, at: float) -> None:
    """The peer of ``leg`` takes the CANCEL softswitch sent: 200 to it, 487 to the INVITE."""
    cancels = [s for s in requests_to(wire.log, "CANCEL", leg.destination)
               if s.msg.top_via.branch == leg.msg.top_via.branch]
    assert len(cancels) == 1, cancels
    respond(wire, sip, cancels[0], 200, at)
    acks = respond(wire, sip, leg, 487, at)
    assert [a.method for a in acks] == ["ACK"]


def answered(wire: Any, sip: Any, c: Caller, leg: Any, at: float, sdp_port: int) -> Any:
    """``leg`` answers with SDP; the caller gets one 200 with that SDP and ACKs it."""
    sent = respond(wire, sip, leg, 200, at, sdp_port=sdp_port)
    acks = [s for s in sent if s.method == "ACK" and s.destination == leg.destination]
    assert len(acks) == 1 and acks[0].msg.call_id == leg.msg.call_id
    oks = [s for s in c.mine(sent) if s.status == 200]
    assert len(oks) == 1
    assert oks[0].msg.body == sip.sdp("127.0.0.1", sdp_port)
    c.ack(at + 0.05)
    return oks[0]


def hang_up(wire: Any, sip: Any, c: Caller, at: float) -> None:
    """The caller hangs up a bridged call; softswitch BYEs the callee, which says 200."""
    sent = c.bye(at)
    assert [s.status for s in sent if s.destination == CALLER] == [200]
    byes = [s for s in sent if s.method == "BYE"]
    assert len(byes) == 1
    respond(wire, sip, byes[0], 200, at + 0.05)


def finish(b2bua: B2BUA, wire: Any) -> None:
    """Time runs past every timer; nothing is left, no leg is counted as in progress."""
    wire.run_out()
    assert b2bua.stats() == ZERO
    assert b2bua.calls == {}
    assert {name: b2bua.counters.in_progress(name)
            for name in b2bua.config.receiving_numbers} == dict.fromkeys(
        b2bua.config.receiving_numbers, 0)


def in_progress(b2bua: B2BUA) -> dict[str, int]:
    return {name: b2bua.counters.in_progress(name) for name in ("R1", "R2", "R3")
            if b2bua.counters.in_progress(name)}


def broken(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("router broken on purpose")


# ---------------------------------------------------------------------------- 1. router fails


def test_router_start_raising_sends_the_call_to_the_fail_safe(
    switch: Any, sip: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(Router, "start", broken)
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    sent = c.invite(0.0)
    invites = outbound_invites(wire, sent)
    assert [i.destination for i in invites] == [R3]
    assert str(invites[0].msg.uri) == "sip:+14155550103@127.0.0.1:5073"
    assert c.statuses(sent) == [100]
    ringing = respond(wire, sip, invites[0], 180, 0.1)
    assert c.statuses(ringing) == [180]
    answered(wire, sip, c, invites[0], 1.0, 7003)
    assert c.statuses() == [100, 180, 200]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "routing failed" in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
    hang_up(wire, sip, c, 5.0)
    finish(b2bua, wire)


def test_router_start_raising_without_fail_safe_gets_a_final_error(
    switch: Any, sip: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(Router, "start", broken)
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SINGLE)
    sent = c.invite(0.0)
    assert outbound_invites(wire, sent) == []
    statuses = c.statuses(sent)
    assert statuses[0] == 100 and len(statuses) == 2 and statuses[1] >= 400
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "routing failed" in errors[0].getMessage()
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
    c.ack(0.1)
    finish(b2bua, wire)


def test_router_next_raising_sends_the_call_to_the_fail_safe(
    switch: Any, sip: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """R1-unreachable is given up at 5 s; the router then breaks: R3 takes the call."""
    monkeypatch.setattr(Router, "next", broken)
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    c.invite(0.0)
    sent = wire.advance(5.0)
    r3 = leg_to(wire, sent, R3)
    assert r3.time == 5.0
    assert any(r.levelno >= logging.ERROR and r.exc_info and r.exc_info[0] is RuntimeError
               for r in caplog.records)
    answered(wire, sip, c, r3, 6.0, 7003)
    hang_up(wire, sip, c, 10.0)
    finish(b2bua, wire)


def test_router_next_raising_without_fail_safe_gets_a_final_error(
    switch: Any, sip: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Router, "next", broken)
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SEQUENTIAL)
    r1 = leg_to(wire, c.invite(0.0), R1)
    sent = respond(wire, sip, r1, 486, 0.5)
    assert outbound_invites(wire, sent) == []
    finals = [s.status for s in c.mine(sent) if s.status >= 200]
    assert len(finals) == 1 and finals[0] >= 400
    c.ack(0.6)
    finish(b2bua, wire)


def test_a_menu_softswitch_cannot_answer_takes_its_default(
    switch: Any, sip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """0111 is a voice menu; with no media engine softswitch cannot play it, so the
    caller is not answered by softswitch and the menu's default (R3) is dialled."""
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, MENU)
    sent = c.invite(0.0)
    assert [x.destination for x in outbound_invites(wire, sent)] == [("127.0.0.1", 5073)]
    assert c.statuses(sent) == [100]
    assert any("cannot answer the caller here" in r.getMessage() for r in caplog.records)
    leg = outbound_invites(wire, sent)[0]
    respond(wire, sip, leg, 486, 0.2)
    assert c.statuses() == [100, 486]
    c.ack(0.3)
    finish(b2bua, wire)


CARRIER_WITHOUT_PROXY = """
sip: {listen: ["udp:127.0.0.1:5060"]}
trunks:
  - {name: lab, networks: ["127.0.0.0/8"]}
  - {name: carrier, networks: ["192.0.2.0/24"]}
receiving_numbers:
  C1: {number: "+1 415 555 0199", trunk: carrier}
  C2: {number: "+1 415 555 0198", trunk: carrier}
tracking_numbers:
  "+1 800 555 0100": {route: {dial: [C1]}, fail_safe: C2}
"""


def test_a_fail_safe_that_cannot_be_reached_still_answers_the_caller(
    switch: Any, sip: Any,
) -> None:
    """Both the route's number and the fail-safe are on a trunk without outbound_proxy
    (the config accepts it): make_target raises RoutingError for each.  The caller must
    still get a final response, and the call must not be left behind."""
    b2bua, wire = switch(parse_config(CARRIER_WITHOUT_PROXY))
    c = Caller(b2bua, wire, sip, "+18005550100")
    raised: Exception | None = None
    try:
        c.invite(0.0)
    except Exception as exc:  # the bug: the exception escapes Endpoint.receive
        raised = exc
        wire.take()
    wire.advance(60.0)  # long past Timer C / Timer B: still nothing more for the caller
    assert outbound_invites(wire, wire.log) == []
    statuses = c.statuses()
    assert raised is None and len(statuses) >= 2 and statuses[-1] >= 400, (
        f"receiving the INVITE raised {raised!r}; the caller got {statuses}; "
        f"calls left: {len(b2bua.calls)}")
    c.ack(60.1)
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 2. unreachable


def test_every_target_unreachable_goes_to_the_fail_safe_at_5s(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    sent = c.invite(0.0)
    silent = leg_to(wire, sent, UNREACHABLE)
    assert str(silent.msg.uri) == "sip:+14155550109@127.0.0.1:5079"
    before = wire.advance(4.999)
    assert outbound_invites(wire, before) == []  # Timer A retransmissions only
    assert c.statuses() == [100]
    sent = wire.advance(5.0)
    r3 = leg_to(wire, sent, R3)
    assert r3.time == 5.0
    assert requests_to(sent, "CANCEL", UNREACHABLE) == []  # no CANCEL without a 1xx (§9.1)
    assert c.finals() == []
    assert in_progress(b2bua) == {"R3": 1}
    assert b2bua.counters.in_progress("R1-unreachable") == 0
    respond(wire, sip, r3, 180, 5.1)
    ok = answered(wire, sip, c, r3, 6.0, 7003)
    assert ok.msg.body == sip.sdp("127.0.0.1", 7003)
    hang_up(wire, sip, c, 10.0)
    # The silent leg's INVITE transaction keeps retransmitting until Timer B (64*T1).
    wire.advance(40.0)
    times = [s.time for s in wire.log
             if s.method == "INVITE" and s.destination == UNREACHABLE]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert requests_to(wire.log, "CANCEL", UNREACHABLE) == []
    assert c.statuses() == [100, 180, 200]
    assert b2bua.calls == {}
    finish(b2bua, wire)


def test_a_silent_leg_does_not_hold_the_ended_call(switch: Any, sip: Any) -> None:
    """LAB: BYE ends both legs within 1 s.  The silent leg may not be cancelled before a
    1xx (§9.1), but the call ends at the BYE; the leg lingers alone until Timer B."""
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    silent = leg_to(wire, c.invite(0.0), UNREACHABLE)
    r3 = leg_to(wire, wire.advance(5.0), R3)
    answered(wire, sip, c, r3, 6.0, 7003)
    hang_up(wire, sip, c, 10.0)
    assert b2bua.calls == {}
    assert b2bua.stats()["dialogs"] == 0
    # Still tracked: the silent INVITE, and R3's answered INVITE (whose 2xx
    # retransmissions would be re-ACKed) until the silent leg is done.
    assert b2bua.stats()["tracked_transactions"] == 2
    # A late 180 gets the CANCEL it was owed; the 487 ends the leg.
    respond(wire, sip, silent, 180, 12.0)
    cancels = requests_to(wire.log, "CANCEL", UNREACHABLE)
    assert [x.msg.top_via.branch for x in cancels] == [silent.msg.top_via.branch]
    cancelled(wire, sip, silent, 12.1)
    assert c.statuses() == [100, 200]  # nothing reached the caller from the late leg
    finish(b2bua, wire)


def test_a_late_200_on_a_silent_leg_after_the_call_ended_is_acked_and_byed(
    switch: Any, sip: Any,
) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    silent = leg_to(wire, c.invite(0.0), UNREACHABLE)
    r3 = leg_to(wire, wire.advance(5.0), R3)
    answered(wire, sip, c, r3, 6.0, 7003)
    hang_up(wire, sip, c, 10.0)
    sent = respond(wire, sip, silent, 200, 12.0, tag="late")
    assert [x.method for x in sent if x.destination == UNREACHABLE] == ["ACK", "BYE"]
    bye = requests_to(sent, "BYE", UNREACHABLE)[0]
    respond(wire, sip, bye, 200, 12.1)
    assert c.statuses() == [100, 200]
    finish(b2bua, wire)


def test_the_fail_safe_unreachable_too_is_dialled_once_then_the_caller_hears_it(
    switch: Any, sip: Any,
) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    c.invite(0.0)
    wire.advance(5.0)
    sent = wire.advance(10.0)
    assert outbound_invites(wire, sent) == []
    finals = c.finals()
    assert [(s.time, s.status) for s in finals[:1]] == [(10.0, 408)]
    assert len(outbound_invites(wire, wire.log)) == 2  # R1-unreachable and R3, R3 only once
    c.ack(10.1)
    finish(b2bua, wire)


def test_a_transport_error_is_unreachable_and_goes_to_the_fail_safe_at_once(
    switch: Any, sip: Any,
) -> None:
    """The edge could not send to R1-unreachable (ICMP / refused): no 5 s wait."""
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    c.invite(0.0)
    wire.advance(0.2)
    wire.endpoint.transport_error(UNREACHABLE, "udp", 0.2)
    r3 = leg_to(wire, wire.take(), R3)
    assert r3.time == 0.2
    assert in_progress(b2bua) == {"R3": 1}
    answered(wire, sip, c, r3, 1.0, 7003)
    hang_up(wire, sip, c, 3.0)
    finish(b2bua, wire)
    # The failed transaction was terminated: nothing more went to 127.0.0.1:5079.
    assert [s.time for s in requests_to(wire.log, "INVITE", UNREACHABLE)] == [0.0]


def test_a_late_100_from_the_given_up_leg_gets_its_cancel(switch: Any, sip: Any) -> None:
    """R1-unreachable was given up at 5 s without a 1xx (no CANCEL then, §9.1); its
    100 Trying arrives at 6 s: the CANCEL goes out now, and the fail-safe call is not
    disturbed."""
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, FAIL_SAFE)
    silent = leg_to(wire, c.invite(0.0), UNREACHABLE)
    r3 = leg_to(wire, wire.advance(5.0), R3)
    respond(wire, sip, r3, 180, 5.1)
    sent = respond(wire, sip, silent, 100, 6.0)
    cancels = requests_to(sent, "CANCEL", UNREACHABLE)
    assert len(cancels) == 1 and cancels[0].msg.top_via.branch == silent.msg.top_via.branch
    assert c.mine(sent) == []
    cancelled(wire, sip, silent, 6.1)
    answered(wire, sip, c, r3, 7.0, 7003)
    hang_up(wire, sip, c, 9.0)
    assert c.statuses() == [100, 180, 200]
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 3. overload


OVERLOAD = """
sip: {listen: ["udp:127.0.0.1:5060"]}
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
routing: {max_calls: 1}
receiving_numbers:
  R1: {number: "+1 415 555 0101", uri: "sip:+14155550101@127.0.0.1:5071"}
  R3: {number: "+1 415 555 0103", uri: "sip:+14155550103@127.0.0.1:5073"}
tracking_numbers:
  "+1 800 555 0100": {route: {dial: [R1]}, fail_safe: R3}
  "+1 800 555 0101": {route: {dial: [R1]}}
"""


def test_overload_sends_the_second_call_straight_to_the_fail_safe(
    switch: Any, sip: Any,
) -> None:
    b2bua, wire = switch(parse_config(OVERLOAD))
    first = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, first.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.1)
    second = Caller(b2bua, wire, sip, "+18005550100", caller="+12125550000")
    sent = second.invite(0.5)
    assert [i.destination for i in outbound_invites(wire, sent)] == [R3]
    r3 = leg_to(wire, sent, R3)
    assert r3.msg.from_.uri.user == "+12125550000"
    respond(wire, sip, r3, 180, 0.6)
    answered(wire, sip, second, r3, 1.0, 7003)
    answered(wire, sip, first, r1, 1.5, 7001)
    hang_up(wire, sip, second, 3.0)
    hang_up(wire, sip, first, 4.0)
    assert first.statuses() == [100, 180, 200] and second.statuses() == [100, 180, 200]
    finish(b2bua, wire)


def test_overload_without_fail_safe_is_503(switch: Any, sip: Any) -> None:
    b2bua, wire = switch(parse_config(OVERLOAD))
    first = Caller(b2bua, wire, sip, "+18005550101")
    r1 = leg_to(wire, first.invite(0.0), R1)
    second = Caller(b2bua, wire, sip, "+18005550101")
    sent = second.invite(0.5)
    assert outbound_invites(wire, sent) == []
    assert second.statuses(sent) == [100, 503]
    second.ack(0.6)
    answered(wire, sip, first, r1, 1.0, 7001)
    hang_up(wire, sip, first, 2.0)
    finish(b2bua, wire)


def test_overload_fail_safe_reason_is_logged(
    switch: Any, sip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """The reason the fail-safe was dialled must reach the call's log when it is dialled
    (the router's trace is only flushed by ``Call._route``)."""
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch(parse_config(OVERLOAD))
    first = Caller(b2bua, wire, sip, "+18005550100")
    r1 = leg_to(wire, first.invite(0.0), R1)
    second = Caller(b2bua, wire, sip, "+18005550100")
    r3 = leg_to(wire, second.invite(0.5), R3)
    logged = [r.getMessage() for r in caplog.records]
    try:
        assert any("overload" in line for line in logged), logged
    finally:
        answered(wire, sip, second, r3, 1.0, 7003)
        answered(wire, sip, first, r1, 1.5, 7001)
        hang_up(wire, sip, second, 3.0)
        hang_up(wire, sip, first, 4.0)
        finish(b2bua, wire)


# ---------------------------------------------------------------------------- 4. sequential


def test_sequential_busy_then_ring_timeout_then_third_answers(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SEQUENTIAL)
    sent = c.invite(0.0)
    assert [i.destination for i in outbound_invites(wire, sent)] == [R1]
    r1 = leg_to(wire, sent, R1)
    respond(wire, sip, r1, 180, 0.1)
    sent = respond(wire, sip, r1, 486, 0.5)
    assert [s.method for s in sent if s.destination == R1] == ["ACK"]
    r2 = leg_to(wire, sent, R2)
    assert r2.time == 0.5
    assert c.finals() == []
    respond(wire, sip, r2, 180, 0.6)
    assert outbound_invites(wire, wire.advance(2.499)) == []
    sent = wire.advance(2.5)  # R2's ring timeout: 2 s after its INVITE
    cancels = requests_to(sent, "CANCEL", R2)
    assert [(x.time, x.msg.top_via.branch) for x in cancels] == [(2.5, r2.msg.top_via.branch)]
    r3 = leg_to(wire, sent, R3)
    assert r3.time == 2.5
    assert c.finals() == []
    cancelled(wire, sip, r2, 2.6)
    respond(wire, sip, r3, 180, 2.7)
    answered(wire, sip, c, r3, 3.0, 7003)
    assert c.statuses().count(200) == 1
    assert [s for s in c.statuses() if s >= 200] == [200]
    hang_up(wire, sip, c, 6.0)
    finish(b2bua, wire)
    assert c.statuses().count(200) == 1


# ---------------------------------------------------------------------------- 5. 6xx


def test_simultaneous_603_cancels_the_others_and_the_caller_gets_603(
    switch: Any, sip: Any,
) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SIMULTANEOUS)
    sent = c.invite(0.0)
    legs = {peer: leg_to(wire, sent, peer) for peer in (R1, R2, R3)}
    for i, leg in enumerate(legs.values()):
        respond(wire, sip, leg, 180, 0.1, tag=f"t{i}")
    assert in_progress(b2bua) == {"R1": 1, "R2": 1, "R3": 1}
    sent = respond(wire, sip, legs[R2], 603, 1.0, tag="t1")
    assert [s.method for s in sent if s.destination == R2] == ["ACK"]
    cancels = [s for s in sent if s.method == "CANCEL"]
    assert sorted(x.destination for x in cancels) == [R1, R3]
    for x in cancels:
        assert x.msg.top_via.branch == legs[x.destination].msg.top_via.branch
    assert outbound_invites(wire, sent) == []
    assert [s.status for s in c.mine(sent) if s.status >= 200] == [603]
    assert in_progress(b2bua) == {}
    cancelled(wire, sip, legs[R1], 1.1)
    cancelled(wire, sip, legs[R3], 1.1)
    c.ack(1.2)
    assert [s for s in c.statuses() if s >= 200] == [603]
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 6. round robin


def test_round_robin_through_the_b2bua(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    got = []
    for i in range(4):
        t = 10.0 * i
        c = Caller(b2bua, wire, sip, ROUND_ROBIN)
        invites = outbound_invites(wire, c.invite(t))
        assert len(invites) == 1
        got.append(PEERS[invites[0].destination])
        respond(wire, sip, invites[0], 180, t + 0.1)
        answered(wire, sip, c, invites[0], t + 1.0, 7000 + i)
        hang_up(wire, sip, c, t + 3.0)
        assert b2bua.calls == {}
    assert got == ["R1", "R2", "R3", "R1"]
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 7. least connected


def test_least_connected_through_the_b2bua(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    calls: list[Caller] = []
    got = []

    def call(t: float) -> Caller:
        c = Caller(b2bua, wire, sip, LEAST_CONNECTED)
        invites = outbound_invites(wire, c.invite(t))
        assert len(invites) == 1
        got.append(PEERS[invites[0].destination])
        respond(wire, sip, invites[0], 180, t + 0.1)
        answered(wire, sip, c, invites[0], t + 0.5, 7000 + len(calls))
        calls.append(c)
        return c

    call(0.0)
    assert in_progress(b2bua) == {"R1": 1}
    call(1.0)
    assert in_progress(b2bua) == {"R1": 1, "R2": 1}
    call(2.0)
    assert in_progress(b2bua) == {"R1": 1, "R2": 1, "R3": 1}
    hang_up(wire, sip, calls[0], 3.0)
    assert in_progress(b2bua) == {"R2": 1, "R3": 1}
    call(4.0)
    assert got == ["R1", "R2", "R3", "R1"]
    for i, c in enumerate(calls[1:]):
        hang_up(wire, sip, c, 6.0 + i)
    assert in_progress(b2bua) == {}
    finish(b2bua, wire)


def test_failed_and_cancelled_legs_stop_counting_at_once(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SIMULTANEOUS)
    sent = c.invite(0.0)
    legs = {peer: leg_to(wire, sent, peer) for peer in (R1, R2, R3)}
    for i, leg in enumerate(legs.values()):
        respond(wire, sip, leg, 180, 0.1, tag=f"t{i}")
    assert in_progress(b2bua) == {"R1": 1, "R2": 1, "R3": 1}
    respond(wire, sip, legs[R1], 486, 0.5, tag="t0")  # failed
    assert in_progress(b2bua) == {"R2": 1, "R3": 1}
    sent = respond(wire, sip, legs[R2], 200, 1.0, tag="t1", sdp_port=7002)
    cancels = [s for s in sent if s.method == "CANCEL"]
    assert [x.destination for x in cancels] == [R3]
    assert cancels[0].msg.headers.get("reason") == ELSEWHERE
    assert in_progress(b2bua) == {"R2": 1}  # R3 cancelled: no longer counted
    cancelled(wire, sip, legs[R3], 1.1)
    c.ack(1.2)
    # A least-connected call now avoids only R2.
    other = Caller(b2bua, wire, sip, LEAST_CONNECTED)
    first = outbound_invites(wire, other.invite(2.0))
    assert [i.destination for i in first] == [R1]
    other_sent = respond(wire, sip, first[0], 486, 2.1)  # busy: R3 is next, not R2
    assert [i.destination for i in outbound_invites(wire, other_sent)] == [R3]
    r3 = leg_to(wire, other_sent, R3)
    respond(wire, sip, r3, 480, 2.2)
    # R2, the only number left, is already busy with the first call but is still tried.
    r2 = [i for i in outbound_invites(wire, wire.log) if i.destination == R2][-1]
    assert r2.time == 2.2
    respond(wire, sip, r2, 486, 2.3, tag="t9")
    assert [s for s in other.statuses() if s >= 200] == [486]
    other.ack(2.4)
    hang_up(wire, sip, c, 3.0)
    finish(b2bua, wire)


def test_caller_cancel_releases_every_ringing_leg(switch: Any, sip: Any) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, SIMULTANEOUS)
    sent = c.invite(0.0)
    legs = {peer: leg_to(wire, sent, peer) for peer in (R1, R2, R3)}
    for i, leg in enumerate(legs.values()):
        respond(wire, sip, leg, 180, 0.1, tag=f"t{i}")
    data = sip.request("CANCEL", c.uri, source=CALLER, branch=c.branch, call_id=c.call_id,
                       from_tag="caller-tag", cseq=1, contact=None)
    wire.deliver(data, CALLER, at=1.0)
    assert in_progress(b2bua) == {}
    for leg in legs.values():
        cancelled(wire, sip, leg, 1.1)
    assert [s for s in c.statuses() if s >= 200] == [487]
    c.ack(1.2)
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 8, 12. hours


def test_closed_hours_number_is_never_rung_and_tags_are_logged(
    switch: Any, sip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="softswitch")
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, CLOSED)
    sent = c.invite(0.0)
    assert [i.destination for i in outbound_invites(wire, sent)] == [R2]
    r2 = leg_to(wire, sent, R2)
    respond(wire, sip, r2, 180, 0.1)
    assert not any("tags:" in r.getMessage() for r in caplog.records)
    answered(wire, sip, c, r2, 1.0, 7002)
    tags = [r.getMessage() for r in caplog.records if "tags:" in r.getMessage()]
    assert len(tags) == 1 and tags[0].endswith("tags: lab-closed=closed")
    hang_up(wire, sip, c, 3.0)
    finish(b2bua, wire)
    assert requests_to(wire.log, "INVITE", R1) == []


# ---------------------------------------------------------------------------- 9. no answer


def test_no_answer_routing_cancels_r1_and_dials_r2_in_the_same_instant(
    switch: Any, sip: Any,
) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, NO_ANSWER)
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.1)
    assert wire.advance(1.999) == []
    sent = wire.advance(2.0)
    cancels = requests_to(sent, "CANCEL", R1)
    r2 = leg_to(wire, sent, R2)
    assert [x.time for x in cancels] == [2.0] and r2.time == 2.0
    assert c.finals() == []
    cancelled(wire, sip, r1, 2.1)
    respond(wire, sip, r2, 180, 2.2)
    answered(wire, sip, c, r2, 3.0, 7002)
    hang_up(wire, sip, c, 5.0)
    finish(b2bua, wire)


def test_a_reload_changes_new_calls_only(switch: Any, sip: Any, lab_config: Config) -> None:
    """A call ringing when the config is reloaded keeps the routing it started with."""
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, NO_ANSWER)
    r1 = leg_to(wire, c.invite(0.0), R1)
    respond(wire, sip, r1, 180, 0.1)
    text = Path("conf/lab.yaml").read_text().replace(
        "      no_answer: {dial: [R2]}\n\n  \"+1 800 555 0106\"",
        "      no_answer: {dial: [R3]}\n\n  \"+1 800 555 0106\"",
    )
    reloaded = parse_config(text, "lab.yaml", Path("conf"))
    assert "R3" in str(reloaded.tracking_number(NO_ANSWER))
    b2bua.config = reloaded  # what SIGHUP and POST /reload do
    sent = wire.advance(2.0)
    r2 = leg_to(wire, sent, R2)  # the old no-answer route, not R3
    cancelled(wire, sip, r1, 2.1)
    answered(wire, sip, c, r2, 3.0, 7002)
    hang_up(wire, sip, c, 5.0)
    later = Caller(b2bua, wire, sip, NO_ANSWER)
    r1_again = leg_to(wire, later.invite(6.0), R1)
    respond(wire, sip, r1_again, 180, 6.1)
    assert leg_to(wire, wire.advance(8.0), R3)  # a new call follows the new config
    finish_r3 = [x for x in wire.log if x.method == "INVITE" and x.destination == R3]
    respond(wire, sip, finish_r3[0], 486, 8.1)
    cancelled(wire, sip, r1_again, 8.2)
    later.ack(8.3)
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 10. caller ID


PRESENTATION = """
sip: {listen: ["udp:127.0.0.1:5060"]}
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  R1: {number: "+1 415 555 0101", uri: "sip:+14155550101@127.0.0.1:5071",
       caller_id: tracking, diversion: true}
  R2: {number: "+1 415 555 0102", uri: "sip:+14155550102@127.0.0.1:5072"}
tracking_numbers:
  "+1 800 555 0150": {route: {dial: [R1]}}
  "+1 800 555 0151": {route: {dial: [R2]}}
"""


@pytest.mark.parametrize(("tracking", "peer", "shown", "diversion"), [
    ("+18005550150", R1, "+18005550150",
     "<sip:+18005550150@127.0.0.1>;reason=unconditional"),
    ("+18005550151", R2, "+14155550000", None),
])
def test_caller_id_and_diversion(switch: Any, sip: Any, tracking: str, peer: Any,
                                 shown: str, diversion: str | None) -> None:
    b2bua, wire = switch(parse_config(PRESENTATION))
    c = Caller(b2bua, wire, sip, tracking)
    leg = leg_to(wire, c.invite(0.0), peer)
    inv = leg.msg
    assert inv.from_.uri.user == shown
    assert inv.headers.get("diversion") == diversion
    assert len(inv.headers.values("diversion")) == (1 if diversion else 0)
    answered(wire, sip, c, leg, 1.0, 7000)
    hang_up(wire, sip, c, 2.0)
    finish(b2bua, wire)


# ---------------------------------------------------------------------------- 11. geo, rules


@pytest.mark.parametrize(("tracking", "caller", "headers", "peer"), [
    (GEO, "+12125550000", (), R2),  # New York: east
    (GEO, "+14155550000", (), R1),  # California: west
    (GEO, "+18005550000", (), R3),  # toll-free: cannot be placed, out of area
    (CONDITIONAL, "+14155550000", (), R1),  # rule 1: caller prefix +1415
    (CONDITIONAL, "+12125550000", (("X-Lab-Route", "r2"),), R2),  # rule 2: header
    (CONDITIONAL, "+12125550000", (), R3),  # default
])
def test_geo_and_conditional_routers_through_the_b2bua(
    switch: Any, sip: Any, tracking: str, caller: str,
    headers: tuple[tuple[str, str], ...], peer: Any,
) -> None:
    b2bua, wire = switch()
    c = Caller(b2bua, wire, sip, tracking, caller=caller)
    sent = c.invite(0.0, headers=headers)
    assert [i.destination for i in outbound_invites(wire, sent)] == [peer]
    leg = leg_to(wire, sent, peer)
    assert leg.msg.from_.uri.user == caller
    answered(wire, sip, c, leg, 1.0, 7000)
    hang_up(wire, sip, c, 2.0)
    finish(b2bua, wire)
