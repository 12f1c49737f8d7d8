"""Voice menus and call queues in the B2BUA, on the fake wire and fake media (issue #5).

+1 800 555 0111 (lab): softswitch answers, plays lab-menu.wav (2.0 s), waits 5 s for
a key, once more, then R3; key 1 → R1, 2 → R2.  Queues are tried on a small config
whose members are receiving numbers R1 and R2 (agents need registrations: see
test_b2bua_agents.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_b2bua_media import (  # type: ignore[import-not-found]
    R1,
    FakeEngine,
    finish,
    ok_to_caller,
    scenario_factory,
)

from softswitch.config import Config, parse_config
from softswitch.sip.sdp import SessionDescription

PROJECT = Path(__file__).resolve().parents[2]
R2 = ("127.0.0.1", 5072)
R3 = ("127.0.0.1", 5073)
MENU = "+18005550111"
PROMPT = 2.0  # lab-menu.wav


@pytest.fixture
def media_scenario(lab_config: Config, sip: Any) -> Any:
    return scenario_factory(lab_config, sip)


def answered_by_softswitch(s: Any, engine: FakeEngine) -> Any:
    oks = ok_to_caller(s)
    assert len(oks) == 1
    sd = SessionDescription.parse(oks[0].msg.body)
    assert sd.audio is not None and sd.audio.port == engine.streams[0].local[1]
    assert [c.name for c in sd.audio.codecs] == ["PCMU", "telephone-event"]
    return oks[0]


def test_menu_key_2_lands_on_r2_and_bridges(media_scenario: Any) -> None:
    s, engine = media_scenario(MENU)
    s.invite(0.0)
    ok = answered_by_softswitch(s, engine)
    s.ack_2xx(ok, 0.05)
    caller = engine.streams[0]
    assert caller.plays == [(100, 0.0, False)]  # the prompt, once, at once
    assert caller.on_dtmf is not None
    caller.on_dtmf("2", 1.0)  # barge-in during the prompt
    s.wire.take()
    leg = s.leg(R2)
    offer = SessionDescription.parse(leg.msg.body)
    assert offer.audio is not None
    assert [c.name for c in offer.audio.codecs] == ["PCMU", "telephone-event"]
    assert caller.plays[-1][2] is True, "ringback loops while R2 rings"
    s.answer(leg, 200, 2.0, sdp_port=7002)
    assert len(ok_to_caller(s)) == 1, "no second 200 for the caller"
    r2 = engine.streams[1]
    assert caller.other is r2 and r2.other is caller and not caller.playing
    bye = s.caller_request("BYE", 5.0, ok.msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 5.1)
    record = s.b2bua.calls
    assert record == {}
    finish(s, engine)


def test_menu_without_a_key_replays_then_takes_the_default(media_scenario: Any) -> None:
    s, engine = media_scenario(MENU)
    s.invite(0.0)
    s.ack_2xx(answered_by_softswitch(s, engine), 0.05)
    caller = engine.streams[0]
    s.wire.advance(PROMPT + 5.0 - 0.01)
    assert len(caller.plays) == 1
    s.wire.advance(PROMPT + 5.0 + 0.01)
    assert caller.plays[1][:2] == (100, pytest.approx(PROMPT + 5.0))
    s.wire.advance(2 * (PROMPT + 5.0) - 0.01)
    assert s.invites_to(R3) == []
    s.wire.advance(2 * (PROMPT + 5.0) + 0.01)
    assert len(s.invites_to(R3)) == 1
    # Nobody at R3 answers: the caller, answered long ago, gets a BYE.
    s.answer(s.leg(R3), 486, 15.0)
    byes = [x for x in s.wire.log if x.method == "BYE" and x.destination == s.source]
    assert len(byes) == 1
    s.answer(byes[0], 200, 15.1, to=s.source)
    finish(s, engine)


def test_caller_hangs_up_in_the_menu_is_cancelled(media_scenario: Any) -> None:
    s, engine = media_scenario(MENU)
    s.invite(0.0)
    ok = answered_by_softswitch(s, engine)
    s.ack_2xx(ok, 0.05)
    s.caller_request("BYE", 1.0, ok.msg.to.tag)
    s.wire.run_out()
    assert s.b2bua.calls == {}
    assert all(stream.closed for stream in engine.streams)


QUEUE = """
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  R1: {number: "+1 415 555 0101", uri: "sip:+14155550101@127.0.0.1:5071"}
  R2: {number: "+1 415 555 0102", uri: "sip:+14155550102@127.0.0.1:5072"}
  R3: {number: "+1 415 555 0103", uri: "sip:+14155550103@127.0.0.1:5073"}
queues:
  q:
    members: [R1, R2]
    strategy: linear
    ring_timeout: 10
    max_wait: 60
    hold_music: conf/audio/lab-hold.wav
    no_answer: {dial: [R3]}
tracking_numbers:
  "+1 800 555 0112": {route: {queue: q}}
"""


@pytest.fixture
def queue_config() -> Config:
    return parse_config(QUEUE, "queue.yaml", PROJECT / "conf")


def test_three_callers_two_members_the_third_waits_hearing_hold_music(
    media_scenario: Any, queue_config: Config, sip: Any
) -> None:
    from test_b2bua import Scenario  # type: ignore[import-not-found]

    s, engine = media_scenario("+18005550112", queue_config)
    callers = [s] + [Scenario(s.b2bua, s.wire, sip, "+18005550112",
                              source=("127.0.0.1", 5061 + n)) for n in (1, 2)]
    for n, c in enumerate(callers):
        c.offer = s.offer
        c.invite(0.1 * n)
        c.ack_2xx([x for x in c.to_caller() if x.status == 200][0], 0.1 * n + 0.05)
    # Linear: caller 1 → R1, caller 2 → R2, caller 3 waits with its hold music.
    assert len({x.msg.call_id for x in s.invites_to(R1)}) == 1
    assert len({x.msg.call_id for x in s.invites_to(R2)}) == 1
    third = [x for x in engine.streams if x.plays and x.plays[0][0] == 150]
    assert len(third) == 3, "every caller hears the hold music (150 frames, looped)"
    assert all(stream.plays[0][2] for stream in third)
    # R1 answers caller 1; R2 rings for 10 s without answering.
    s.answer(s.leg(R2), 180, 0.5)
    s.answer(s.leg(R1), 200, 1.0, sdp_port=7001)
    s.wire.advance(10.3)
    cancels = [x for x in s.wire.log if x.method == "CANCEL" and x.destination == R2]
    assert len(cancels) == 1
    # Caller 1 hangs up: R1 is free (no wrap-up) and the next waiting caller gets it.
    first_ok = [x for x in s.to_caller() if x.status == 200][0]
    sent = s.caller_request("BYE", 11.0, first_ok.msg.to.tag)
    s.answer([x for x in sent if x.method == "BYE" and x.destination == R1][0], 200, 11.05)
    s.wire.advance(12.5)
    assert len({x.msg.call_id for x in s.invites_to(R1)}) == 2, "R1 rung for the next caller"
    for c in callers:
        c.b2bua.hangup_all(13.0, "test")
    s.wire.run_out()
    assert s.b2bua.calls == {}


def test_max_wait_takes_the_queues_no_answer_route(media_scenario: Any,
                                                   queue_config: Config) -> None:
    s, engine = media_scenario("+18005550112", queue_config)
    s.invite(0.0)
    s.ack_2xx(ok_to_caller(s)[0], 0.05)
    s.wire.advance(59.9)
    assert s.invites_to(R3) == []
    s.wire.advance(60.1)
    assert len(s.invites_to(R3)) == 1
    s.b2bua.hangup_all(61.0, "test")
    s.wire.run_out()
    assert s.b2bua.calls == {}
    assert all(stream.closed for stream in engine.streams)


ANNOUNCED = """
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  R3: {number: "+1 415 555 0103", uri: "sip:+14155550103@127.0.0.1:5073"}
agents: {zoe: {password: secret}}
queues:
  q:
    members: [zoe]
    max_wait: 60
    hold_music: conf/audio/lab-hold.wav
    announce: {every: 10, prompts: [conf/audio/lab-menu.wav, conf/audio/lab-whisper.wav]}
tracking_numbers:
  "+1 800 555 0112": {route: {queue: q}}
"""


def test_a_waiting_caller_hears_its_position_every_period(media_scenario: Any) -> None:
    """zoe is not registered: the caller waits, hearing the music, and every 10 s the
    recording for position 1, then the music again."""
    config = parse_config(ANNOUNCED, "announce.yaml", PROJECT / "conf")
    s, engine = media_scenario("+18005550112", config)
    s.invite(0.0)
    s.ack_2xx(ok_to_caller(s)[0], 0.05)
    caller = engine.streams[0]
    assert caller.plays == [(150, 0.0, True)]
    s.wire.advance(10.0)
    assert caller.plays[-1] == (100, 10.0, False)  # lab-menu.wav: "you are number 1"
    s.wire.advance(12.0)  # 100 frames from 10.0: the last is due at 11.98 and ends at 12.0
    assert caller.plays[-1] == (150, pytest.approx(12.0), True)
    s.wire.advance(22.0)
    assert caller.plays[-1] == (100, pytest.approx(22.0), False)
    s.b2bua.hangup_all(23.0, "test")
    s.wire.run_out()
    assert s.b2bua.calls == {}
