"""Agents in the B2BUA (issue #5): REGISTER with digest, then calls to +1 800 555 0110
(dial agent alice, fallback R1) and to the lab queue of alice and bob (0112).

Phones are played on the fake wire: each REGISTER is answered 401, answered again
with credentials computed by the project's digest client, and the binding is used
for calls: INVITEs go where the phone registered from.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_b2bua_media import (  # type: ignore[import-not-found]
    R1,
    finish,
    ok_to_caller,
    scenario_factory,
)

from softswitch.sip.auth import authorization_header
from softswitch.sip.message import Response, parse_message

ALICE_PHONE = ("127.0.0.1", 40100)  # where alice's softphone sends from (behind NAT)
BOB_PHONE = ("127.0.0.1", 40200)
AGENT = "+18005550110"
QUEUE = "+18005550112"
PASSWORDS = {"alice": "alice-lab-secret", "bob": "bob-lab-secret"}


@pytest.fixture
def media_scenario(lab_config: Any, sip: Any) -> Any:
    return scenario_factory(lab_config, sip)


def register(s: Any, name: str, phone: tuple[str, int], at: float, *, expires: int = 600,
             password: str | None = None, contact_host: str = "10.0.0.5") -> Response:
    """REGISTER, 401, REGISTER with credentials; returns the final response."""
    sip = s.sip
    call_id = sip.unique("reg-") + "@phone"
    uri = "sip:127.0.0.1"
    contact = f"<sip:{name}@{contact_host}:5062>;expires={expires}"

    def send(cseq: int, headers: list[tuple[str, str]], when: float) -> Response:
        data = sip.request("REGISTER", uri, source=phone, call_id=call_id, from_tag="reg",
                           from_uri=f"sip:{name}@127.0.0.1", to_uri=f"sip:{name}@127.0.0.1",
                           cseq=cseq, contact=contact, headers=headers)
        sent = s.wire.deliver(data, phone, at=when)
        replies = [x.msg for x in sent if x.destination == phone and x.is_response]
        assert replies, sent
        return replies[-1]  # type: ignore[no-any-return]

    challenge = send(1, [], at)
    assert challenge.status == 401
    header, value = authorization_header(challenge, "REGISTER", uri, name,
                                         password or PASSWORDS[name], cnonce="c0ffee")
    return send(2, [(header, value)], at + 0.01)


def test_dial_agent_rings_alices_phone_where_it_registered(media_scenario: Any) -> None:
    s, engine = media_scenario(AGENT)
    ok = register(s, "alice", ALICE_PHONE, 0.0)
    assert ok.status == 200
    assert ok.headers.get("contact") is not None and "expires=600" in ok.headers.get("contact")
    s.invite(1.0)
    invites = s.invites_to(ALICE_PHONE)
    assert len(invites) == 1, "INVITE goes to the address alice registered from"
    assert str(invites[0].msg.uri) == "sip:alice@10.0.0.5:5062"
    assert s.invites_to(R1) == []
    s.answer(invites[0], 200, 2.0, sdp_port=7100)
    assert len(ok_to_caller(s)) == 1
    s.ack_2xx(ok_to_caller(s)[0], 2.1)
    bye = s.caller_request("BYE", 3.0, ok_to_caller(s)[0].msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 3.1)
    s.wire.run_out()
    assert s.b2bua.calls == {}


def test_a_wrong_password_never_binds_nor_rings(media_scenario: Any) -> None:
    s, engine = media_scenario(AGENT)
    reply = register(s, "alice", ALICE_PHONE, 0.0, password="guess")
    assert reply.status in (401, 403)
    assert s.b2bua.contacts("alice") == []
    s.invite(1.0)
    assert s.invites_to(ALICE_PHONE) == []
    assert len(s.invites_to(R1)) == 1, "no phone: the fallback R1"
    s.cancel(1.5)
    finish(s, engine)


def test_after_alice_unregisters_0110_reaches_r1(media_scenario: Any) -> None:
    s, engine = media_scenario(AGENT)
    assert register(s, "alice", ALICE_PHONE, 0.0).status == 200
    assert len(s.b2bua.contacts("alice")) == 1
    assert register(s, "alice", ALICE_PHONE, 1.0, expires=0).status == 200
    assert s.b2bua.contacts("alice") == []
    s.invite(2.0)
    assert s.invites_to(ALICE_PHONE) == [] and len(s.invites_to(R1)) == 1
    s.cancel(2.5)
    finish(s, engine)


def test_a_registration_expires_on_time(media_scenario: Any) -> None:
    s, engine = media_scenario(AGENT)
    assert register(s, "alice", ALICE_PHONE, 0.0, expires=120).status == 200
    s.wire.advance(120.0)
    assert s.b2bua.contacts("alice") == [] or s.b2bua.now < 120.01
    s.invite(121.0)
    assert s.invites_to(ALICE_PHONE) == [] and len(s.invites_to(R1)) == 1
    s.cancel(121.5)
    finish(s, engine)


def test_queue_rings_members_round_robin_and_the_third_caller_waits(
    media_scenario: Any, sip: Any
) -> None:
    from test_b2bua import Scenario  # type: ignore[import-not-found]

    s, engine = media_scenario(QUEUE)
    assert register(s, "alice", ALICE_PHONE, 0.0).status == 200
    assert register(s, "bob", BOB_PHONE, 0.1).status == 200
    callers = [s] + [Scenario(s.b2bua, s.wire, sip, QUEUE, source=("127.0.0.1", 5061 + n))
                     for n in (1, 2)]
    for n, c in enumerate(callers):
        c.offer = s.offer
        c.invite(1.0 + 0.1 * n)
    # Round robin: caller 1 → alice, caller 2 → bob, caller 3 waits.
    assert len(s.invites_to(ALICE_PHONE)) == 1 and len(s.invites_to(BOB_PHONE)) == 1
    hold = [st for st in engine.streams if st.plays and st.plays[0][0] == 150]
    assert len(hold) == 3
    s.b2bua.hangup_all(2.0, "test")
    s.wire.run_out()
    assert s.b2bua.calls == {}


def test_register_parses_as_sip(sip: Any) -> None:
    # The builder used above produces what a phone sends (sanity of the test itself).
    data = sip.request("REGISTER", "sip:127.0.0.1", source=ALICE_PHONE,
                       contact="<sip:alice@10.0.0.5:5062>")
    assert parse_message(data).method == "REGISTER"  # type: ignore[union-attr]
