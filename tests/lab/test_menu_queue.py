"""The voice menu (+1 800 555 0111) and the call queue (+1 800 555 0112) on the lab,
issue #5.

Menu: a SIPp caller presses 2 with RFC 4733 telephone-events, played from
sip-tester's ``dtmf_2833_2.pcap`` (payload type 101, which the caller's SDP offers
as telephone-event) by ``uac_menu_dtmf_2.xml``; R1/R2/R3 are SIPp UASes.

Queue: alice and bob are SIPp phones (``agent_register_answer*.xml`` with the
out-of-call scenario ``agent_answer_hangup.xml`` and ``-rtp_echo``: ring 1 s,
answer, echo the audio, hang up 2.5 s later) registered on the lab.  The callers are
:class:`media_peer.MediaCaller` s, which record every RTP packet they get.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from media_peer import MediaCaller, audio_segments
from test_agents import (
    ALICE_PORT,
    BOB_PORT,
    CALLER_PORT,
    R1,
    R2,
    R3,
    api,
    finish,
    invites_received,
    never_rung,
    start_agent,
    wait_registered,
)

if TYPE_CHECKING:
    from conftest import SippRunner, Softswitch

pytestmark = pytest.mark.lab

MENU = "+18005550111"
QUEUE = "+18005550112"
HOLD_NOTES = (440.0, 659.25)  # conf/audio/lab-hold.wav: A4 and E5 alternating
TALK = 800.0  # what each caller says once connected (the agents echo it)


def test_menu_key_2_by_rfc4733_reaches_r2(softswitch: Softswitch, sipp_runner: SippRunner
                                          ) -> None:
    """0111: softswitch answers the caller and plays the prompt; 0.5 s in, the caller
    sends RFC 4733 '2' (SIPp ``play_pcap_audio`` of dtmf_2833_2.pcap).  R2 is rung,
    answers, and gets the caller's BYE 3 s later; the caller's scenario completes;
    R1 (key 1) and R3 (no key) see nothing."""
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1", timeout=6)
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "1", timeout=6)
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1", timeout=10)
    caller = sipp_runner.run("caller", "uac_menu_dtmf_2.xml", CALLER_PORT, "-s", MENU,
                             "-m", "1", "-key", "caller", "+14155550011", timeout=15)
    caller.assert_successful(1)
    finish(r2, ["+14155550011"])
    never_rung(r1)
    never_rung(r3)


async def wait_queue(predicate: Callable[[dict[str, Any]], bool], limit: float
                     ) -> dict[str, Any]:
    """Poll ``GET /queues`` until lab-queue satisfies ``predicate``; its snapshot."""
    deadline = time.monotonic() + limit
    while True:
        queues = await asyncio.to_thread(api, "/queues")
        queue = next((q for q in queues if q["name"] == "lab-queue"), None)
        if queue is not None and predicate(queue):
            return queue
        assert time.monotonic() < deadline, f"lab-queue never got there: {queue}"
        await asyncio.sleep(0.1)


async def test_queue_round_robin_third_caller_holds_then_connects(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """0112 with alice and bob registered, three callers 0.3 s apart.  Round robin
    rings alice for the first, bob for the second; the third waits alone in the
    queue (both members in a call, nobody ringing for it) hearing the hold music
    (RTP with the hold notes), and when alice hangs up her first call it is offered
    to alice (next after bob), who answers: the hold music stops and the caller
    hears its own voice echoed by the agent.  Every caller's call is ended by its
    agent's BYE."""
    phones = {
        "alice": start_agent(sipp_runner, "alice", "agent_register_answer.xml", ALICE_PORT,
                             10000, "agent_answer_hangup.xml", "-rtp_echo"),
        "bob": start_agent(sipp_runner, "bob", "agent_register_answer_bob.xml", BOB_PORT,
                           10000, "agent_answer_hangup.xml", "-rtp_echo"),
    }
    await asyncio.to_thread(wait_registered, "alice", "bob")
    who = ["+14155550021", "+14155550022", "+14155550023"]

    async with (
        MediaCaller(QUEUE, caller_id=who[0]) as c1,
        MediaCaller(QUEUE, caller_id=who[1]) as c2,
        MediaCaller(QUEUE, caller_id=who[2]) as c3,
    ):
        callers = (c1, c2, c3)
        for caller in callers:
            await caller.call(timeout=5.0)  # softswitch answers at once: the queue
            caller.start_tone(TALK, 8.0)
            await asyncio.sleep(0.3)
        waiting = await wait_queue(
            lambda q: len(q["waiting"]) == 1
            and {m["name"]: m["state"] for m in q["members"]}
            == {"alice": "in_call", "bob": "in_call"},
            limit=3.0,
        )
        assert waiting["waiting"][0]["ringing"] == [], waiting
        await asyncio.gather(*(caller.wait_ended(timeout=15.0) for caller in callers))
        for caller in callers:
            assert caller.byes, "the agent's BYE did not reach the caller"
            assert not caller.errors, caller.errors

    results = {name: await asyncio.to_thread(p.wait) for name, p in phones.items()}
    rung = sorted((invite.at, name, invite.from_user)
                  for name, result in results.items()
                  for invite in invites_received(result.workdir))
    assert [(name, user) for _, name, user in rung] == [
        ("alice", who[0]), ("bob", who[1]), ("alice", who[2])
    ], rung
    for result in results.values():
        result.assert_successful(1)  # the registration

    for number, caller in enumerate(callers, start=1):
        segments = audio_segments(caller.rtp, candidates=(*HOLD_NOTES, TALK))
        hold = [s for s in segments if s.freq in HOLD_NOTES]
        echo = [s for s in segments if s.freq == TALK]
        assert hold and echo, f"caller {number}: {segments}"
        assert {s.freq for s in hold} == set(HOLD_NOTES), f"caller {number}: {segments}"
        assert max(s.end for s in hold) < min(s.start for s in echo), (
            f"caller {number}: hold music after the agent answered: {segments}")
    held = [sum(s.duration for s in audio_segments(c.rtp, candidates=(*HOLD_NOTES, TALK))
                if s.freq in HOLD_NOTES) for c in callers]
    # The first two hear ~1 s (their agent rings 1 s); the third waits for alice's
    # first call to end: ~1 s ring + 2.5 s talk + its own 1 s ring.
    assert held[2] > 2.5 and held[2] > held[0] + 1.5, held
