"""Agents on the lab (issue #5): alice registers with SIPp and takes the calls of
+1 800 555 0110; a wrong password, or an un-registration, leaves them to R1.

Alice's phone is one SIPp process on 127.0.0.1:5081: its main scenario registers
(REGISTER, 401, REGISTER with ``[authentication username=alice ...]``, 200) and
stays up for ``-d`` ms; the INVITEs softswitch sends it carry Call-IDs of their
own, so SIPp plays them with the out-of-call scenario (``-oocsf
agent_answer.xml``), which answers.  SIPp counts no out-of-call call in its
statistics: what the phone received is read from its ``-trace_msg`` log
(:func:`sip_log`).  R1 is a SIPp UAS on 127.0.0.1:5071, the caller SIPp on 5063.

SIPp 3.6.1 reads only the first WWW-Authenticate and knows only MD5, so the lab
config orders the challenges MD5 first (``sip.registrar.algorithms``); with RFC
8760's order (SHA-256 first) SIPp aborts ("createAuthHeader: authentication must
use MD5 or AKAv1-MD5") without sending credentials.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import SippProcess, SippResult, SippRunner, Softswitch

pytestmark = pytest.mark.lab

SOFTSWITCH = ("127.0.0.1", 5060)
SCENARIOS = Path(__file__).resolve().parent / "sipp"
R1, R2, R3 = 5071, 5072, 5073
ALICE_PORT, BOB_PORT = 5081, 5082
CALLER_PORT = 5063

AGENT_NUMBER = "+18005550110"
REALM = "softswitch-lab"
PASSWORDS = {"alice": "alice-lab-secret", "bob": "bob-lab-secret"}
API = "http://127.0.0.1:8088"
TOKEN = "lab-api-token"


# ---------------------------------------------------------------- management API


def api(path: str) -> Any:
    request = urllib.request.Request(API + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def bindings(agent: str) -> list[dict[str, Any]]:
    """``GET /registrations`` for one agent."""
    return [b for b in api("/registrations") if b["agent"] == agent]


def wait_registered(*agents: str, limit: float = 5.0) -> dict[str, list[dict[str, Any]]]:
    """Wait until every agent has a binding (``GET /registrations``); the bindings."""
    deadline = time.monotonic() + limit
    while True:
        bound = {agent: bindings(agent) for agent in agents}
        if all(bound.values()):
            return bound
        assert time.monotonic() < deadline, f"not registered within {limit} s: {bound}"
        time.sleep(0.05)


# ---------------------------------------------------------------- SIPp agents and logs


def start_agent(sipp_runner: SippRunner, name: str, scenario: str, port: int, hold_ms: int,
                answer: str = "agent_answer.xml", *args: str) -> SippProcess:
    """An agent's phone: ``scenario`` (register, stay ``hold_ms``...) with ``answer``
    as its out-of-call scenario for the INVITEs routed to it."""
    return sipp_runner.start(
        name, scenario, port, "-m", "1", "-d", str(hold_ms),
        "-oocsf", str(SCENARIOS / answer), *args, remote=SOFTSWITCH, timeout=30,
    )


@dataclass(frozen=True)
class Logged:
    """One SIP message in a SIPp ``-trace_msg`` log."""

    at: datetime
    received: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def header(self, name: str) -> str | None:
        match = re.search(rf"^{name}\s*:\s*(.*?)\s*$", self.text, re.I | re.M)
        return match.group(1) if match else None

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID") or self.header("i")

    @property
    def cseq(self) -> str | None:
        return self.header("CSeq")

    @property
    def from_user(self) -> str | None:
        value = self.header("From") or self.header("f") or ""
        match = re.search(r"(?:sip|sips|tel):([^@;>\s]+)", value)
        return match.group(1) if match else None

    @property
    def status(self) -> int | None:
        parts = self.first_line.split()
        if len(parts) > 1 and parts[0] == "SIP/2.0" and parts[1].isdigit():
            return int(parts[1])
        return None


_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(.*?)(?=^-{20,} |\Z)",
                    re.M | re.S)


def sip_log(workdir: Path) -> list[Logged]:
    """Every SIP message a SIPp process sent or received, in order."""
    path = workdir / "messages.log"
    if not path.exists():
        return []
    messages = []
    for stamp, block in _BLOCK.findall(path.read_text("utf-8", "replace")):
        head, _, message = block.partition("\n\n")
        messages.append(Logged(datetime.fromisoformat(stamp), "received" in head,
                               message.strip("\n").replace("\r", "")))
    return messages


def invites_received(workdir: Path) -> list[Logged]:
    """The INVITEs a SIPp process received, one per Call-ID (no retransmissions)."""
    seen: set[str | None] = set()
    invites = []
    for m in sip_log(workdir):
        if m.received and m.first_line.startswith("INVITE ") and m.call_id not in seen:
            seen.add(m.call_id)
            invites.append(m)
    return invites


def assert_answered(workdir: Path, invite: Logged) -> None:
    """The phone answered ``invite`` with 200 and got its ACK and a BYE (either way)."""
    same = [m for m in sip_log(workdir) if m.call_id == invite.call_id]
    sent_ok = [m for m in same if not m.received and m.status == 200 and m.cseq
               and m.cseq.endswith("INVITE")]
    acks = [m for m in same if m.received and m.first_line.startswith("ACK ")]
    byes = [m for m in same if m.first_line.startswith("BYE ")]
    assert sent_ok and acks and byes, "\n\n".join(m.text for m in same)


def wait_logged(process: SippProcess, predicate: Callable[[Logged], bool],
                limit: float = 5.0) -> Logged:
    """Wait until a SIPp process has logged a message matching ``predicate``."""
    deadline = time.monotonic() + limit
    while True:
        found = [m for m in sip_log(process.workdir) if predicate(m)]
        if found:
            return found[0]
        assert time.monotonic() < deadline and process.proc.poll() is None, (
            f"SIPp {process.name}: no such message within {limit} s\n"
            + process.output_path.read_text("utf-8", "replace")[-1500:]
        )
        time.sleep(0.05)


def call(sipp_runner: SippRunner, name: str, who: str, number: str = AGENT_NUMBER,
         port: int = CALLER_PORT) -> SippResult:
    """One call from ``who`` (the From user part) to ``number``; the caller hangs up."""
    return sipp_runner.run(name, "routing_uac_from.xml", port, "-s", number, "-m", "1",
                           "-key", "caller", who, timeout=15)


def finish(uas: SippProcess, callers: list[str]) -> SippResult:
    """A receiving number that answered one call from each of ``callers``, in order,
    and got the BYE of each."""
    result = uas.wait(timeout=20)
    result.assert_successful(len(callers))
    assert [m.from_user for m in invites_received(result.workdir)] == callers, result.report()
    assert result.count("_BYE_Recv") == len(callers), result.report()
    return result


def never_rung(uas: SippProcess) -> None:
    """A SIPp UAS (or phone) that must have received no INVITE at all."""
    result = uas.wait(timeout=20)
    assert result.stats, result.report()  # SIPp ran and wrote its statistics
    assert invites_received(result.workdir) == [], result.report()


# ---------------------------------------------------------------- tests


def test_registered_alice_takes_the_call(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """SIPp registers as alice from 127.0.0.1:5081 (401, then digest credentials,
    200 listing the binding); a call to 0110 then rings that registered address,
    alice's SIPp answers it, the caller's call succeeds, and R1 (the fallback for
    an agent with no phone) is not rung."""
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1", timeout=5)
    alice = start_agent(sipp_runner, "alice", "agent_register_answer.xml", ALICE_PORT, 2500)
    bound = wait_registered("alice")["alice"]
    assert [(b["contact"], b["source"]) for b in bound] == [
        (f"sip:alice@127.0.0.1:{ALICE_PORT}", f"127.0.0.1:{ALICE_PORT}")
    ]

    call(sipp_runner, "caller", "+14155550001").assert_successful(1)

    phone = alice.wait()
    phone.assert_successful(1)  # the registration: 401, credentials, 200 with the binding
    invites = invites_received(phone.workdir)
    assert [m.from_user for m in invites] == ["+14155550001"], phone.report()
    assert invites[0].first_line.startswith(f"INVITE sip:alice@127.0.0.1:{ALICE_PORT} ")
    assert_answered(phone.workdir, invites[0])
    never_rung(r1)


def test_wrong_password_registers_nothing_and_rings_no_one(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """SIPp as alice with a wrong password is refused (401 again, or 403; never 200)
    and no binding exists; a call to 0110 then goes to R1, which answers, while the
    impostor's SIPp, still listening on alice's port, receives no INVITE."""
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1", timeout=10)
    impostor = start_agent(sipp_runner, "impostor", "agent_register_wrong.xml", ALICE_PORT, 2500)
    refusal = wait_logged(
        impostor, lambda m: m.received and m.cseq == "2 REGISTER" and m.status is not None
    )
    assert refusal.status in (401, 403), refusal.text
    assert bindings("alice") == []

    call(sipp_runner, "caller", "+14155550002").assert_successful(1)

    finish(r1, ["+14155550002"])
    phone = impostor.wait()
    phone.assert_successful(1)  # refused, never a 200
    assert invites_received(phone.workdir) == [], phone.report()


def test_after_unregistering_calls_go_to_r1(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """Alice registers and takes a first call to 0110; then her phone un-registers
    (REGISTER ``Contact: *``, ``Expires: 0``, challenged and authenticated; its 200
    lists no binding) and the next call to 0110 goes to R1, while a SIPp listening
    on alice's old address receives nothing."""
    alice = start_agent(sipp_runner, "alice", "agent_unregister.xml", ALICE_PORT, 2000)
    wait_registered("alice")
    call(sipp_runner, "caller-1", "+14155550003").assert_successful(1)

    phone = alice.wait()
    phone.assert_successful(1)  # registered, then un-registered: 200 without Contact
    assert [m.from_user for m in invites_received(phone.workdir)] == ["+14155550003"]
    assert bindings("alice") == []

    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1", timeout=10)
    old_address = sipp_runner.uas("alice-old-address", "uas", ALICE_PORT, "-m", "1", timeout=3)
    call(sipp_runner, "caller-2", "+14155550004").assert_successful(1)
    finish(r1, ["+14155550004"])
    never_rung(old_address)
