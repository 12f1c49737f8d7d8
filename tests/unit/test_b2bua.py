"""The B2BUA on a fake wire, with the lab config (conf/lab.yaml).

The caller (a trunk at 127.0.0.1:5061) and the receiving numbers (R1..R3 at
127.0.0.1:5071..5073) are played here: every message softswitch sends is parsed,
and the peers answer with hand-built SIP texts.  Time is a number; timers run at the
deadlines the endpoint asks for.  Every scenario ends by running time out and checking
that nothing is left: no call, transaction, dialog or timer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from softswitch.config import parse_config
from softswitch.sip.message import Request

CALLER = ("127.0.0.1", 5061)
R1 = ("127.0.0.1", 5071)
R2 = ("127.0.0.1", 5072)
R3 = ("127.0.0.1", 5073)
SINGLE = "+18005550100"  # dial R1, ring_timeout 5
SIMULTANEOUS = "+18005550101"  # R1, R2, R3 at once, ring_timeout 5
CALLER_SDP_PORT = 6000
ZERO = {"calls": 0, "tracked_transactions": 0, "client_transactions": 0,
        "server_transactions": 0, "dialogs": 0, "timers": 0}
ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


class Scenario:
    """One caller and its call through softswitch, with the peers played by the test."""

    def __init__(self, b2bua: Any, wire: Any, sip: Any, number: str = SINGLE,
                 source: tuple[str, int] = CALLER) -> None:
        self.b2bua = b2bua
        self.wire = wire
        self.sip = sip
        self.number = number
        self.source = source
        self.call_id = sip.unique("caller-call-") + "@test"
        self.branch = sip.unique("z9hG4bK-caller-")
        self.from_tag = "caller-tag"
        self.uri = f"sip:{number}@127.0.0.1:5060"
        self.offer = sip.sdp(port=CALLER_SDP_PORT)
        self.cseq = 1
        self.invite_data = b""

    # ---- the caller -------------------------------------------------------------

    def invite(self, at: float = 0.0, **kw: Any) -> list[Any]:
        self.invite_data = self.sip.request(
            "INVITE", self.uri, source=self.source, branch=self.branch, call_id=self.call_id,
            from_tag=self.from_tag, body=self.offer, **kw)
        return self.wire.deliver(self.invite_data, self.source, at=at)

    def caller_request(self, method: str, at: float, to_tag: str, *, cseq: int | None = None,
                       branch: str | None = None, body: bytes = b"", uri: str | None = None,
                       ) -> list[Any]:
        if cseq is None and method not in ("ACK", "CANCEL"):
            self.cseq += 1
        data = self.sip.request(
            method, uri or "sip:127.0.0.1:5060", source=self.source, branch=branch,
            call_id=self.call_id, from_tag=self.from_tag, to_uri=self.uri, to_tag=to_tag,
            cseq=cseq if cseq is not None else self.cseq, body=body,
            contact="<sip:caller@127.0.0.1:5061>" if method in ("INVITE", "UPDATE") else None)
        return self.wire.deliver(data, self.source, at=at)

    def ack_2xx(self, ok: Any, at: float) -> list[Any]:
        contact = ok.msg.contacts[0].uri
        return self.caller_request("ACK", at, ok.msg.to.tag, cseq=ok.msg.cseq.number,
                                   uri=str(contact))

    def ack_non2xx(self, final: Any, at: float) -> list[Any]:
        return self.caller_request("ACK", at, final.msg.to.tag, cseq=1, branch=self.branch,
                                   uri=self.uri)

    def cancel(self, at: float) -> list[Any]:
        data = self.sip.request(
            "CANCEL", self.uri, source=self.source, branch=self.branch, call_id=self.call_id,
            from_tag=self.from_tag, cseq=1, contact=None)
        return self.wire.deliver(data, self.source, at=at)

    # ---- the receiving numbers ----------------------------------------------------

    def answer(self, req: Any, status: int, at: float, *, tag: str = "r-tag",
               sdp_port: int | None = None, headers: Any = (), to: Any = None) -> list[Any]:
        """The peer at ``req.destination`` answers ``req`` (a Sent request)."""
        host, port = req.destination
        body = self.sip.sdp(host, sdp_port) if sdp_port else b""
        data = self.sip.response_to(
            req.msg, status, to_tag=tag, contact=f"<sip:r@{host}:{port}>" if status < 300
            and req.msg.method in ("INVITE", "UPDATE") else None,
            body=body, headers=headers)
        return self.wire.deliver(data, to or req.destination, at=at)

    # ---- reading what was sent ------------------------------------------------------

    def to_caller(self, sent: list[Any] | None = None) -> list[Any]:
        return [s for s in (self.wire.log if sent is None else sent)
                if s.destination == self.source]

    def caller_statuses(self, sent: list[Any] | None = None) -> list[int]:
        return [s.status for s in self.to_caller(sent) if s.is_response
                and s.msg.cseq.method == "INVITE"]

    def invites_to(self, peer: tuple[str, int]) -> list[Any]:
        return [s for s in self.wire.log if s.method == "INVITE" and s.destination == peer]

    def leg(self, peer: tuple[str, int]) -> Any:
        invites = self.invites_to(peer)
        assert invites, f"no INVITE to {peer}"
        return invites[-1]

    def sent(self, method: str, peer: tuple[str, int]) -> list[Any]:
        return [s for s in self.wire.log if s.method == method and s.destination == peer]

    def finish(self) -> None:
        self.wire.run_out()
        assert self.b2bua.stats() == ZERO
        assert self.b2bua.calls == {}


@pytest.fixture
def scenario(make_b2bua: Any, sip: Any) -> Any:
    def make(number: str = SINGLE, config: Any = None,
             source: tuple[str, int] = CALLER) -> Scenario:
        b2bua, wire = make_b2bua(config)
        return Scenario(b2bua, wire, sip, number, source)

    return make


def connect(s: Scenario, peer: tuple[str, int] = R1, *, answer_at: float = 1.0,
            ack_at: float = 1.1) -> tuple[Any, Any]:
    """INVITE at 0, 180 at 0.1, 200 at ``answer_at``, caller ACK at ``ack_at``."""
    s.invite(0.0)
    leg = s.leg(peer)
    s.answer(leg, 180, 0.1)
    s.answer(leg, 200, answer_at, sdp_port=7000)
    ok = [x for x in s.to_caller() if x.status == 200][-1]
    s.ack_2xx(ok, ack_at)
    return leg, ok


# --------------------------------------------------------------------- basic call


def test_basic_call(scenario: Any, sip: Any) -> None:
    s = scenario()
    sent = s.invite(0.0)
    trying = [x for x in sent if x.destination == CALLER]
    assert [x.status for x in trying] == [100]
    invites = [x for x in sent if x.method == "INVITE"]
    assert [x.destination for x in invites] == [R1]
    inv: Request = invites[0].msg
    assert str(inv.uri) == "sip:+14155550101@127.0.0.1:5071"
    assert inv.call_id != s.call_id
    assert inv.from_.tag and inv.from_.tag != s.from_tag
    assert inv.from_.uri.user == "+14155550000"  # the caller's number
    assert str(inv.to.uri) == "sip:+14155550101@127.0.0.1:5071" and inv.to.tag is None
    assert inv.cseq.number == 1 and inv.cseq.method == "INVITE"
    assert len(inv.vias) == 1
    assert (inv.top_via.host, inv.top_via.port) == ("127.0.0.1", 5060)
    assert inv.top_via.branch.startswith("z9hG4bK") and inv.top_via.branch != s.branch
    assert inv.body == s.offer  # SDP passed through unchanged
    assert inv.content_type == "application/sdp"
    assert inv.max_forwards == 69

    ringing = s.answer(invites[0], 180, 0.1)
    assert [x.status for x in ringing if x.destination == CALLER] == [180]

    answered = s.answer(invites[0], 200, 1.0, sdp_port=7000)
    acks = [x for x in answered if x.method == "ACK"]
    assert [a.destination for a in acks] == [R1]
    ack: Request = acks[0].msg
    assert ack.cseq.number == 1 and ack.to.tag == "r-tag" and ack.call_id == inv.call_id
    assert str(ack.uri) == "sip:r@127.0.0.1:5071"  # R1's Contact
    oks = [x for x in answered if x.destination == CALLER]
    assert [x.status for x in oks] == [200]
    ok = oks[0].msg
    assert ok.body == sip.sdp("127.0.0.1", 7000)
    assert ok.content_type == "application/sdp"
    assert str(ok.contacts[0].uri) == "sip:127.0.0.1:5060"  # softswitch's, not R1's
    assert ok.call_id == s.call_id

    assert s.ack_2xx(oks[0], 1.1) == []
    assert s.b2bua.stats()["calls"] == 1

    bye = s.caller_request("BYE", 10.0, ok.to.tag)
    assert [x.status for x in bye if x.destination == CALLER] == [200]
    byes = [x for x in bye if x.method == "BYE"]
    assert [b.destination for b in byes] == [R1]
    assert byes[0].msg.call_id == inv.call_id and byes[0].msg.cseq.number == 2
    assert s.answer(byes[0], 200, 10.1) == []
    assert s.b2bua.calls == {}
    # Nothing was ever retransmitted to the caller after its ACK.
    assert s.caller_statuses() == [100, 180, 200]
    s.finish()


def test_bye_from_callee(scenario: Any) -> None:
    s = scenario()
    leg, ok = connect(s)
    bye = sip_request_from_r1(s, leg, "BYE", at=5.0)
    assert [x.status for x in bye if x.destination == R1] == [200]
    to_caller = [x for x in bye if x.method == "BYE"]
    assert [x.destination for x in to_caller] == [CALLER]
    b = to_caller[0].msg
    assert b.call_id == s.call_id
    assert b.from_.tag == ok.msg.to.tag and b.to.tag == s.from_tag
    assert str(b.uri) == "sip:caller@127.0.0.1:5061"  # the caller's Contact
    s.answer(to_caller[0], 200, 5.1, to=CALLER)
    assert s.b2bua.calls == {}
    s.finish()


def sip_request_from_r1(s: Scenario, leg: Any, method: str, at: float,
                        body: bytes = b"", cseq: int = 1) -> list[Any]:
    """An in-dialog request from R1 on the dialog its 200 made (R1 is the UAS there)."""
    inv = leg.msg
    ack = s.sent("ACK", R1)[-1].msg
    data = s.sip.request(
        method, str(inv.contacts[0].uri), source=R1, call_id=inv.call_id,
        from_uri=str(inv.to.uri), from_tag=ack.to.tag, to_uri=str(inv.from_.uri),
        to_tag=inv.from_.tag, cseq=cseq, body=body, contact="<sip:r@127.0.0.1:5071>")
    return s.wire.deliver(data, R1, at=at)


# --------------------------------------------------------------------- CANCEL


def test_cancel_before_answer(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 180, 0.1)
    sent = s.cancel(1.0)
    to_caller = s.to_caller(sent)
    assert sorted((x.status, x.msg.cseq.method) for x in to_caller) == [
        (200, "CANCEL"), (487, "INVITE")]
    cancels = [x for x in sent if x.method == "CANCEL"]
    assert [c.destination for c in cancels] == [R1]
    c = cancels[0].msg
    assert c.top_via.branch == leg.msg.top_via.branch  # §9.1
    assert c.call_id == leg.msg.call_id and c.cseq.number == 1
    assert str(c.uri) == str(leg.msg.uri)
    assert s.answer(cancels[0], 200, 1.1) == []
    acks = s.answer(leg, 487, 1.2)
    assert [a.method for a in acks] == ["ACK"]
    final = [x for x in to_caller if x.status == 487][0]
    s.ack_non2xx(final, 1.3)
    assert s.caller_statuses() == [100, 180, 487]
    s.finish()


def test_cancel_crossing_a_200(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 180, 0.1)
    sent = s.cancel(1.0)
    cancel = [x for x in sent if x.method == "CANCEL"][0]
    # R1 had already answered: its 200 to the INVITE arrives after the CANCEL went out.
    late = s.answer(leg, 200, 1.05, sdp_port=7000)
    assert [x.method for x in late] == ["ACK", "BYE"]
    assert all(x.destination == R1 for x in late)
    assert late[1].msg.to.tag == "r-tag"
    s.answer(cancel, 200, 1.1)  # too late to matter: the INVITE was answered already
    s.answer(late[1], 200, 1.2)
    final = [x for x in s.to_caller() if x.status == 487][0]
    s.ack_non2xx(final, 1.3)
    assert s.caller_statuses() == [100, 180, 487]
    s.finish()


# --------------------------------------------------------------------- failures


@pytest.mark.parametrize(("r1_status", "caller_status"), [
    (486, 486), (404, 404), (410, 404), (484, 404), (503, 503), (500, 503),
    (603, 603), (600, 603),
])
def test_failure_from_r1_is_mapped(scenario: Any, r1_status: int, caller_status: int) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 180, 0.1)
    sent = s.answer(leg, r1_status, 0.5)
    assert [x.method for x in sent if x.destination == R1] == ["ACK"]
    finals = [x for x in s.to_caller(sent) if x.status and x.status >= 200]
    assert [x.status for x in finals] == [caller_status]
    s.ack_non2xx(finals[0], 0.6)
    assert s.caller_statuses() == [100, 180, caller_status]
    s.finish()


def test_ring_timeout_cancels_at_exactly_5s(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 180, 0.1)
    assert s.wire.advance(4.999) == []
    sent = s.wire.advance(5.0)
    cancels = [x for x in sent if x.method == "CANCEL"]
    assert [(c.time, c.destination) for c in cancels] == [(5.0, R1)]
    assert cancels[0].msg.top_via.branch == leg.msg.top_via.branch
    finals = [x for x in s.to_caller(sent) if x.is_response]
    assert [(x.time, x.status) for x in finals] == [(5.0, 480)]
    s.answer(cancels[0], 200, 5.1)
    s.answer(leg, 487, 5.2)
    s.ack_non2xx(finals[0], 5.3)
    s.finish()


def test_silent_r1_with_lab_ring_timeout(scenario: Any) -> None:
    """R1 never answers: the caller hears 480 at the ring timeout, no CANCEL without a 1xx
    (§9.1), and the leg ends at Timer B."""
    s = scenario()
    s.invite(0.0)
    s.wire.advance(40.0)
    assert [x.time for x in s.invites_to(R1)] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert s.sent("CANCEL", R1) == []
    finals = [x for x in s.to_caller() if x.status and x.status >= 200]
    assert (finals[0].time, finals[0].status) == (5.0, 480)
    assert {x.data for x in finals} == {finals[0].data}  # Timer G retransmissions only
    assert s.b2bua.stats()["tracked_transactions"] == 0
    s.ack_non2xx(finals[0], 40.0)
    s.finish()


LONG_RING = """
sip: {listen: ["udp:127.0.0.1:5060"]}
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  R1: {number: "+1 415 555 0101", uri: "sip:+14155550101@127.0.0.1:5071", ring_timeout: 60,
       no_provisional_timeout: 60}
tracking_numbers:
  "+1 800 555 0100": {route: {dial: [R1]}}
"""


def test_timer_b_on_the_r1_leg(scenario: Any) -> None:
    s = scenario(config=parse_config(LONG_RING))
    s.invite(0.0)
    s.wire.advance(31.99)
    assert [x.status for x in s.to_caller()] == [100]
    sent = s.wire.advance(32.0)
    finals = [x for x in s.to_caller(sent) if x.is_response]
    assert [(x.time, x.status) for x in finals] == [(32.0, 408)]
    assert s.b2bua.stats()["tracked_transactions"] == 0
    s.ack_non2xx(finals[0], 32.1)
    s.finish()


def test_a_silent_target_is_abandoned_after_no_provisional_timeout(scenario: Any) -> None:
    """Not even 100 Trying in 5 s (the default): unreachable, the caller gets 408 at 5.0."""
    s = scenario(config=parse_config(LONG_RING.replace("no_provisional_timeout: 60", "")))
    s.invite(0.0)
    s.wire.advance(4.99)
    assert [x.status for x in s.to_caller()] == [100]
    sent = s.wire.advance(5.0)
    finals = [x for x in s.to_caller(sent) if x.is_response]
    assert [(x.time, x.status) for x in finals] == [(5.0, 408)]
    s.ack_non2xx(finals[0], 5.1)
    s.finish()


# --------------------------------------------------------------------- forking


def test_simultaneous_ring_r2_answers(scenario: Any) -> None:
    s = scenario(SIMULTANEOUS)
    s.invite(0.0)
    legs = {peer: s.leg(peer) for peer in (R1, R2, R3)}
    assert len({leg.msg.call_id for leg in legs.values()}) == 3
    for i, leg in enumerate(legs.values()):
        s.answer(leg, 180, 0.1 + i / 100, tag=f"t{i}")
    sent = s.answer(legs[R2], 200, 2.0, tag="t1", sdp_port=7002)
    cancels = [x for x in sent if x.method == "CANCEL"]
    assert sorted(c.destination for c in cancels) == [R1, R3]
    for c in cancels:
        assert c.msg.headers.get("reason") == ELSEWHERE
        assert c.msg.top_via.branch == legs[c.destination].msg.top_via.branch
    assert [x.method for x in sent if x.destination == R2] == ["ACK"]
    oks = [x for x in s.to_caller(sent) if x.status == 200]
    assert len(oks) == 1 and oks[0].msg.body == s.sip.sdp("127.0.0.1", 7002)
    for i, c in enumerate(cancels):
        s.answer(c, 200, 2.1 + i / 10)
        s.answer(legs[c.destination], 487, 2.15 + i / 10)
    s.ack_2xx(oks[0], 2.3)
    bye = s.caller_request("BYE", 3.0, oks[0].msg.to.tag)
    byes = [x for x in bye if x.method == "BYE"]
    assert [b.destination for b in byes] == [R2]
    s.answer(byes[0], 200, 3.1)
    s.finish()


def test_two_200s_at_once_the_late_one_is_acked_and_byed(scenario: Any) -> None:
    s = scenario(SIMULTANEOUS)
    s.invite(0.0)
    legs = {peer: s.leg(peer) for peer in (R1, R2, R3)}
    for leg in legs.values():
        s.answer(leg, 180, 0.1)
    first = s.answer(legs[R1], 200, 2.0, sdp_port=7001)
    second = s.answer(legs[R2], 200, 2.0, sdp_port=7002)
    assert [x.status for x in s.to_caller(first) if x.is_response] == [200]
    assert [x.method for x in second if x.destination == R2] == ["ACK", "BYE"]
    assert s.to_caller(second) == []  # never relayed
    # R2 was cancelled the moment R1 won; its 200 crossed that CANCEL.
    cancels = [x for x in s.wire.log if x.method == "CANCEL"]
    assert sorted(x.destination for x in cancels) == [R2, R3]
    assert all(x.msg.headers.get("reason") == ELSEWHERE for x in cancels)
    s.answer(s.sent("BYE", R2)[0], 200, 2.1)
    s.answer(s.sent("CANCEL", R2)[0], 200, 2.1)
    s.answer(s.sent("CANCEL", R3)[0], 200, 2.1)
    s.answer(legs[R3], 487, 2.2)
    ok = [x for x in s.to_caller() if x.status == 200][0]
    s.ack_2xx(ok, 2.3)
    assert s.caller_statuses().count(200) == 1
    bye = s.caller_request("BYE", 3.0, ok.msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 3.1)
    s.finish()


# --------------------------------------------------------------------- admission


def test_unknown_number_is_404(scenario: Any) -> None:
    s = scenario("+18005550199")
    sent = s.invite(0.0)
    assert [x.status for x in sent] == [404]
    assert all(x.destination == CALLER for x in sent)
    s.ack_non2xx(sent[0], 0.1)
    s.finish()


def test_untrusted_source_is_403(scenario: Any) -> None:
    s = scenario(source=("10.0.0.1", 5061))
    sent = s.invite(0.0)
    assert [(x.status, x.destination) for x in sent] == [(403, ("10.0.0.1", 5061))]
    s.ack_non2xx(sent[0], 0.1)
    s.finish()


def test_max_forwards_zero_is_483(scenario: Any) -> None:
    s = scenario()
    sent = s.invite(0.0, max_forwards=0)
    assert [x.status for x in sent] == [483]
    assert s.invites_to(R1) == []
    s.ack_non2xx(sent[0], 0.1)
    s.finish()


# --------------------------------------------------------------------- in-dialog


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_offer_from_caller_is_relayed_and_answered(scenario: Any, method: str) -> None:
    s = scenario()
    leg, ok = connect(s)
    new_offer = s.sip.sdp(port=6002, session="2")
    sent = s.caller_request(method, 5.0, ok.msg.to.tag, body=new_offer)
    relayed = [x for x in sent if x.method == method]
    assert [x.destination for x in relayed] == [R1]
    r = relayed[0].msg
    assert r.call_id == leg.msg.call_id and r.cseq.number == 2 and r.body == new_offer
    assert r.to.tag == "r-tag" and r.from_.tag == leg.msg.from_.tag
    back = s.answer(relayed[0], 200, 5.1, sdp_port=7010)
    answers = [x for x in s.to_caller(back) if x.is_response]
    assert [(x.status, x.msg.cseq.method) for x in answers] == [(200, method)]
    assert answers[0].msg.body == s.sip.sdp("127.0.0.1", 7010)
    assert str(answers[0].msg.contacts[0].uri) == "sip:127.0.0.1:5060"
    if method == "INVITE":
        acks = [x for x in back if x.method == "ACK"]
        assert [a.destination for a in acks] == [R1]
        assert acks[0].msg.cseq.number == 2
        s.caller_request("ACK", 5.2, ok.msg.to.tag, cseq=2, uri="sip:127.0.0.1:5060")
    bye = s.caller_request("BYE", 10.0, ok.msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 10.1)
    s.finish()


def test_reinvite_200_to_caller_is_retransmitted_until_ack(scenario: Any) -> None:
    """§13.3.1.4 holds for re-INVITEs too: the 2xx is re-sent until the ACK comes."""
    s = scenario()
    leg, ok = connect(s)
    sent = s.caller_request("INVITE", 5.0, ok.msg.to.tag, body=s.sip.sdp(port=6002))
    relayed = [x for x in sent if x.method == "INVITE"][0]
    s.answer(relayed, 200, 5.1, sdp_port=7010)
    later = s.wire.advance(5.65)
    assert [(x.time, x.status) for x in s.to_caller(later)] == [(5.6, 200)]
    s.caller_request("ACK", 6.0, ok.msg.to.tag, cseq=2, uri="sip:127.0.0.1:5060")
    bye = s.caller_request("BYE", 10.0, ok.msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 10.1)
    s.finish()


# --------------------------------------------------------------------- 2xx and loss


def test_2xx_to_caller_retransmitted_until_ack(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 200, 1.0, sdp_port=7000)
    ok = [x for x in s.to_caller() if x.status == 200]
    later = s.wire.advance(9.0)
    assert [x.time for x in s.to_caller(later)] == [1.5, 2.5, 4.5, 8.5]
    assert all(x.data == ok[0].data for x in s.to_caller(later))
    s.ack_2xx(ok[0], 9.0)
    assert s.to_caller(s.wire.advance(40.0)) == []
    bye = s.caller_request("BYE", 40.0, ok[0].msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 40.1)
    s.finish()


def test_no_ack_from_caller_byes_both_legs_at_64_t1(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 200, 1.0, sdp_port=7000)
    sent = s.wire.advance(33.0)
    retrans = [x.time for x in s.to_caller(sent) if x.status == 200]
    assert retrans == [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    byes = [x for x in sent if x.method == "BYE"]
    assert sorted((b.time, b.destination) for b in byes) == [(33.0, CALLER), (33.0, R1)]
    for b in byes:
        s.answer(b, 200, 33.1, to=b.destination)
    assert s.b2bua.calls == {}
    s.finish()


def test_callee_hangs_up_before_the_callers_ack_that_never_comes(scenario: Any) -> None:
    """The BYE toward the caller waits for its ACK (§15); with no ACK in 64*T1 it goes
    anyway (§13.3.1.4), and the call ends."""
    s = scenario()
    s.invite(0.0)
    leg = s.leg(R1)
    s.answer(leg, 200, 1.0, sdp_port=7000)
    sip_bye = sip_request_from_r1(s, leg, "BYE", 2.0)
    assert [x for x in sip_bye if x.method == "BYE"] == []
    sent = s.wire.advance(33.0)
    byes = [x for x in sent if x.method == "BYE"]
    assert [(b.time, b.destination) for b in byes] == [(33.0, CALLER)]
    s.answer(byes[0], 200, 33.1, to=CALLER)
    s.finish()


def test_lost_invite_to_r1_is_retransmitted_at_t1(scenario: Any) -> None:
    s = scenario()
    s.invite(0.0)
    lost = s.leg(R1)  # dropped: R1 never hears it
    again = [x for x in s.wire.advance(0.5) if x.method == "INVITE"]
    assert [(x.time, x.destination) for x in again] == [(0.5, R1)]
    assert again[0].data == lost.data
    s.answer(again[0], 180, 0.6)
    assert s.wire.advance(3.0) == []  # a 1xx stops Timer A
    s.answer(again[0], 486, 3.0)
    final = [x for x in s.to_caller() if x.status == 486][0]
    s.ack_non2xx(final, 3.1)
    s.finish()


def test_retransmitted_200_from_r1_gets_the_ack_again(scenario: Any) -> None:
    s = scenario()
    leg, ok = connect(s)
    first_ack = s.sent("ACK", R1)[0]
    again = s.answer(leg, 200, 1.6, sdp_port=7000)
    assert [(x.method, x.destination) for x in again] == [("ACK", R1)]
    assert again[0].data == first_ack.data
    assert s.caller_statuses().count(200) == 1
    bye = s.caller_request("BYE", 5.0, ok.msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 5.1)
    s.finish()


# --------------------------------------------------------------------- digest


CARRIER = """
sip: {listen: ["udp:127.0.0.1:5060"]}
trunks:
  - {name: lab, networks: ["127.0.0.0/8"]}
  - name: carrier
    networks: ["192.0.2.0/24"]
    outbound_proxy: "sip:127.0.0.1:5080"
    credentials: {username: acct, password: s3cret}
receiving_numbers:
  C1: {number: "+1 415 555 0199", trunk: carrier}
tracking_numbers:
  "+1 800 555 0100": {route: {dial: [C1]}}
"""
PROXY = ("127.0.0.1", 5080)
CHALLENGE = 'Digest realm="carrier.example", nonce="n0nce", qop="auth", algorithm=MD5'


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_digest_407_is_answered_once(scenario: Any) -> None:
    s = scenario(config=parse_config(CARRIER))
    s.invite(0.0)
    first = s.leg(PROXY)
    assert first.msg.headers.get("route") == "<sip:127.0.0.1:5080;lr>"
    assert str(first.msg.uri) == "sip:+14155550199@127.0.0.1:5080"
    sent = s.answer(first, 407, 0.1, headers=[("Proxy-Authenticate", CHALLENGE)])
    assert [x.method for x in sent if x.destination == PROXY] == ["ACK", "INVITE"]
    assert [x for x in s.to_caller(sent) if x.is_response] == []
    retry = [x for x in sent if x.method == "INVITE"][0].msg
    assert retry.cseq.number == 2
    assert retry.call_id == first.msg.call_id and retry.from_.tag == first.msg.from_.tag
    assert retry.top_via.branch != first.msg.top_via.branch
    assert retry.body == first.msg.body
    p = s.sip.header_params(retry.headers.get("proxy-authorization"))
    assert p["username"] == "acct" and p["realm"] == "carrier.example"
    assert p["nonce"] == "n0nce" and p["uri"] == str(retry.uri) and p["qop"] == "auth"
    ha1 = md5("acct:carrier.example:s3cret")
    ha2 = md5(f"INVITE:{retry.uri}")
    assert p["response"] == md5(f"{ha1}:n0nce:{p['nc']}:{p['cnonce']}:auth:{ha2}")

    second = s.answer(s.leg(PROXY), 407, 0.2,
                      headers=[("Proxy-Authenticate", CHALLENGE.replace("n0nce", "n2"))])
    assert [x.method for x in second if x.destination == PROXY] == ["ACK"]  # no loop
    assert len(s.invites_to(PROXY)) == 2
    finals = [x for x in s.to_caller(second) if x.is_response]
    assert len(finals) == 1 and finals[0].status >= 400
    s.ack_non2xx(finals[0], 0.3)
    s.finish()


def test_digest_retry_then_answer(scenario: Any) -> None:
    s = scenario(config=parse_config(CARRIER))
    s.invite(0.0)
    s.answer(s.leg(PROXY), 407, 0.1, headers=[("Proxy-Authenticate", CHALLENGE)])
    retry = s.leg(PROXY)
    s.answer(retry, 200, 0.5, sdp_port=7000)
    ok = [x for x in s.to_caller() if x.status == 200]
    assert len(ok) == 1
    ack = s.sent("ACK", ("127.0.0.1", 5080))[-1].msg
    assert ack.cseq.number == 2 and ack.cseq.method == "ACK"
    s.ack_2xx(ok[0], 0.6)
    bye = s.caller_request("BYE", 2.0, ok[0].msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 2.1)
    s.finish()
