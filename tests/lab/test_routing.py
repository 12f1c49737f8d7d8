"""Routing patterns of the lab's tracking numbers, end to end against real SIPp peers.

softswitch runs on ``conf/lab.yaml`` (127.0.0.1:5060); R1/R2/R3 are SIPp UASes on
127.0.0.1:5071/5072/5073 and the callers SIPp UACs on 127.0.0.1:5063-5069 (other
lab modules use 5061/5062).  Where the caller's number matters (geo and
conditional routing) the caller is ``routing_uac_from.xml``: SIPp's built-in uac
with the From user part set by ``-key caller <number>``.

Verdicts come from SIPp: exit status (0: every call successful), counters
(``IncomingCall(C)``, ``<n>_INVITE_Recv``, ...), ``ResponseTime1`` (INVITE to
200 at the caller, ``rtd``) and, to tell which caller reached which receiving
number, the INVITEs in each UAS's ``-trace_msg`` log.  A receiving number that
must not be rung is a built-in uas that runs until its ``-timeout`` and must
count no INVITE at all.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SippProcess, SippResult, SippRunner, Softswitch

pytestmark = pytest.mark.lab

SOFTSWITCH = ("127.0.0.1", 5060)
R1, R2, R3 = 5071, 5072, 5073
CALLER_PORTS = (5063, 5064, 5065, 5066, 5067, 5068, 5069)
UNREACHABLE_PORT = 5079  # R1-unreachable of +1 800 555 0107: nothing listens

SIMULTANEOUS = "+18005550101"
ROUND_ROBIN = "+18005550102"
SEQUENTIAL = "+18005550103"
LEAST_CONNECTED = "+18005550104"
NO_ANSWER = "+18005550105"
FAIL_SAFE = "+18005550107"
CLOSED_HOURS = "+18005550109"
GEO = "+18005550113"
CONDITIONAL = "+18005550114"

CALIFORNIA = "+14155550000"
NEW_YORK = "+12125550000"


# ---------------------------------------------------------------- helpers


def caller(sipp_runner: SippRunner, name: str, number: str, port: int = CALLER_PORTS[0],
           *args: str, who: str = CALIFORNIA, route: str | None = None,
           timeout: float = 20.0) -> SippResult:
    """One call from ``who`` to ``number``, run to the end (the caller hangs up)."""
    scenario, extra = "routing_uac_from.xml", ["-key", "caller", who]
    if route is not None:
        scenario = "routing_uac_from_header.xml"
        extra += ["-key", "route", route]
    return sipp_runner.run(name, scenario, port, "-s", number, "-m", "1", *extra, *args,
                           timeout=timeout)


def finish(uas: SippProcess, calls: int, timeout: float = 20.0) -> SippResult:
    """A receiving number that answered (or refused) exactly ``calls`` calls."""
    result = uas.wait(timeout=timeout)
    result.assert_successful(calls)
    assert result.stat("IncomingCall(C)") == calls, result.report()
    assert result.count("_INVITE_Recv") == calls, result.report()
    return result


def never_rung(uas: SippProcess) -> SippResult:
    """A receiving number that must not have been dialled: it ran until its own
    ``-timeout`` (so SIPp exits non-zero) and counts no call and no INVITE."""
    result = uas.wait()
    assert result.stats, result.report()  # the final statistics were written
    assert result.stat("IncomingCall(C)") == 0, result.report()
    assert result.count("_INVITE_Recv") == 0, result.report()
    assert invite_callers(result) == [], result.report()
    return result


def assert_calls_gone(softswitch: Softswitch, limit: float = 1.5) -> None:
    """Every call through softswitch is over: no call and no dialog left (SIGUSR1 stats).

    LAB.md: BYE from either side ends both legs within 1 s, and nothing outlives its
    call.  Called once the callers' SIPp have exited (their BYE got its 200, so the
    call is over for the caller); the 0.5 s over LAB's 1 s is margin.  Transactions
    may rightly linger (Timer J/K, RFC 6026 Timer M) and are not checked here;
    test_load.py checks them after 40 s.
    """
    deadline = time.monotonic() + limit
    while True:
        stats = softswitch.stats()
        if stats["calls"] == 0 and stats["dialogs"] == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"{limit:g} s after the last call ended softswitch still holds {stats}\n"
                + softswitch.tail(25)
            )
        time.sleep(0.1)


def seconds(value: str) -> float:
    """SIPp's ``HH:MM:SS:micro`` (``ResponseTime1(C)``) or ``HH:MM:SS`` in seconds."""
    parts = value.split(":")
    total = float(int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2]))
    if len(parts) > 3:
        total += int(parts[3]) / 1_000_000
    return total


def answer_time(uac: SippResult) -> float:
    """Seconds from the caller's INVITE to the 200 that answered it (``rtd``)."""
    return seconds(uac.stats["ResponseTime1(C)"])


_FROM_USER = re.compile(r"^(?:From|f)\s*:[^\r\n]*?<?(?:sip|sips|tel):([^@;>\s]+)", re.I | re.M)


def invite_callers(result: SippResult) -> list[str]:
    """The From user part of every INVITE (not retransmission) a UAS received,
    read from its ``-trace_msg`` log, in order."""
    log = result.workdir / "messages.log"
    if not log.exists():
        return []
    users: list[str] = []
    seen: set[str] = set()
    for block in re.split(r"\n-{20,}[^\n]*\n", log.read_text("utf-8", "replace")):
        if "message received" not in block:
            continue
        message = block.split("\n\n", 1)[-1].lstrip()
        if not message.startswith("INVITE "):
            continue
        call_id = re.search(r"^(?:Call-ID|i)\s*:\s*(\S+)", message, re.I | re.M)
        key = call_id.group(1) if call_id else message
        if key in seen:
            continue
        seen.add(key)
        match = _FROM_USER.search(message)
        users.append(match.group(1) if match else "?")
    return users


def udp_port_unbound(port: int) -> bool:
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    table = Path("/proc/net/udp")
    if not table.exists():
        return True
    return all(line.split()[1] not in wanted for line in table.read_text().splitlines()[1:])


# ---------------------------------------------------------------- tests


def test_round_robin_spreads_30_calls_evenly(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0102: every call answered at once, so the round robin position moves
    one number per call: 30 calls give exactly 10 to each of R1, R2, R3."""
    uases = [sipp_runner.uas(f"r{i}", "uas", port, "-m", "10", timeout=40)
             for i, port in ((1, R1), (2, R2), (3, R3))]
    uac = sipp_runner.run("caller", "uac", CALLER_PORTS[0], "-s", ROUND_ROBIN,
                          "-m", "30", "-r", "10", timeout=40)
    uac.assert_successful(30)
    assert uac.stat("OutgoingCall(C)") == 30, uac.report()
    assert_calls_gone(softswitch)
    for uas in uases:
        r = finish(uas, 10)
        assert r.count("_BYE_Recv") == 10, r.report()


def test_sequential_busy_first_moves_to_second(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0103: R1 busy (486) → R2 answers; R3 is never dialled."""
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "1", timeout=4)
    r1 = sipp_runner.uas("r1", "uas_486.xml", R1, "-m", "1")
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1")
    uac = caller(sipp_runner, "caller", SEQUENTIAL)
    uac.assert_successful(1)
    assert uac.count("_486_Recv") == 0, uac.report()  # R1's busy stays inside softswitch
    assert_calls_gone(softswitch)
    r1_result = finish(r1, 1)
    assert r1_result.count("_ACK_Recv") == 1, r1_result.report()  # softswitch ACKed the 486
    r2_result = finish(r2, 1)
    assert r2_result.count("_BYE_Recv") == 1, r2_result.report()
    never_rung(r3)


def test_simultaneous_cancels_the_others_completed_elsewhere(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0101: R1, R2, R3 ring together; R2 answers after 1 s of ringing;
    R1 and R3 (ringing, never answering) get CANCEL carrying
    ``Reason: SIP;cause=200;text="Call completed elsewhere"`` (RFC 3326; their SIPp
    fails the call otherwise); the caller talks to R2 and its BYE reaches R2."""
    r1 = sipp_runner.uas("r1", "routing_uas_ring_cancel_reason.xml", R1, "-m", "1")
    r3 = sipp_runner.uas("r3", "routing_uas_ring_cancel_reason.xml", R3, "-m", "1")
    r2 = sipp_runner.uas("r2", "routing_uas_answer_later.xml", R2, "-m", "1")
    uac = caller(sipp_runner, "caller", SIMULTANEOUS)
    uac.assert_successful(1)
    assert uac.count("_200_Recv") == 2, uac.report()  # the answer and the BYE's 200
    assert_calls_gone(softswitch)
    for uas in (r1, r3):
        result = finish(uas, 1)
        assert result.count("_CANCEL_Recv") == 1, result.report()
    r2_result = finish(r2, 1)
    assert r2_result.count("_BYE_Recv") == 1, r2_result.report()
    assert invite_callers(r2_result) == [CALIFORNIA], r2_result.report()


def test_no_answer_routing_after_ring_timeout(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0105: R1 rings and never answers; after its 2 s ring timeout it is
    cancelled and R2 answers: the call was answered no sooner than 2 s after the INVITE."""
    r1 = sipp_runner.uas("r1", "uas_ring_cancel.xml", R1, "-m", "1")
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1")
    started = time.monotonic()
    uac = caller(sipp_runner, "caller", NO_ANSWER)
    wall = time.monotonic() - started
    uac.assert_successful(1)
    assert_calls_gone(softswitch)
    r1_result = finish(r1, 1)
    assert r1_result.count("_CANCEL_Recv") == 1, r1_result.report()
    r2_result = finish(r2, 1)
    assert r2_result.count("_BYE_Recv") == 1, r2_result.report()
    assert 2.0 <= answer_time(uac) < 4.0, uac.report()
    assert wall >= 2.0, wall


def test_fail_safe_when_the_target_is_unreachable(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0107: R1-unreachable (127.0.0.1:5079) never responds; after
    ``no_provisional_timeout`` (5 s) it counts as unreachable and the call goes to the
    fail-safe number R3, which answers: the caller gets 200 from R3 about 5 s in.
    Once the caller has hung up the call must be gone from softswitch (LAB.md: BYE ends
    both legs within 1 s, nothing outlives its call), although the INVITE transaction
    to 5079 may go on retransmitting until its Timer B (32 s)."""
    assert udp_port_unbound(UNREACHABLE_PORT), f"something listens on udp:{UNREACHABLE_PORT}"
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "1", timeout=30)
    uac = caller(sipp_runner, "caller", FAIL_SAFE, timeout=30)
    uac.assert_successful(1)
    assert 4.5 <= answer_time(uac) < 9.0, uac.report()
    r3_result = finish(r3, 1)
    assert r3_result.count("_BYE_Recv") == 1, r3_result.report()
    # The abandoned leg to 5079 (no response, so no CANCEL allowed, RFC 3261 §9.1)
    # must not keep the finished call alive.  Checked last so that the routing
    # assertions above are reported on their own; R3's built-in uas lingers 4 s
    # (timewait) after the BYE, so this check starts ~4 s after the call ended.
    assert_calls_gone(softswitch)


def test_least_connected_fewest_calls_ties_in_list_order(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0104, the number with the fewest calls in progress, ties in list order,
    busy skipped.  Calls (all R answer at once unless said):

    A (held ~7 s): all idle, tie → R1.                               R1=1 R2=0 R3=0
    B (held ~5 s): R2 and R3 (0 calls) come before R1 (1 call); both answer 486 busy
       (``uas_486.xml``, one call each) and are skipped → R1.        R1=2 R2=0 R3=0
       "two long calls held on R1".  R2 and R3 are then replaced by answering UASes.
    C (short): R2/R3 tie at 0, list order → R2; then C ends.         R1=2 R2=0 R3=0
    D (held ~3 s): R2 again (tie at 0, list order; C's leg no longer counts)
       where round robin would have moved on to R3.                  R1=2 R2=1 R3=0
    E (short): R3, the only number with no call.                     R1=2 R2=1 R3=1

    Expected counts: R1 2 answered (A, B); busy R2 1 and busy R3 1 (B); R2 2 (C, D);
    R3 1 (E).  Which caller reached which number is checked through the From user
    (each call has its own caller number).
    """
    who = {name: f"+1415555000{i}" for i, name in enumerate("ABCDE", start=1)}
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "2", timeout=40)
    r2_busy = sipp_runner.uas("r2-busy", "uas_486.xml", R2, "-m", "1", timeout=20)
    r3_busy = sipp_runner.uas("r3-busy", "uas_486.xml", R3, "-m", "1", timeout=20)

    def hold(name: str, port: int, hold_ms: int) -> SippProcess:
        return sipp_runner.start(
            f"caller-{name}", "routing_uac_from.xml", port, "-s", LEAST_CONNECTED, "-m", "1",
            "-key", "caller", who[name], "-d", str(hold_ms), remote=SOFTSWITCH, timeout=30,
        )

    a = hold("A", CALLER_PORTS[0], 7000)
    time.sleep(1.0)  # A answered by R1 (R1 answers at once)
    b = hold("B", CALLER_PORTS[1], 5000)
    # B's hunt is over once both busy numbers have had their one call (486 + ACK).
    busy2, busy3 = finish(r2_busy, 1), finish(r3_busy, 1)
    assert invite_callers(busy2) == [who["B"]], busy2.report()
    assert invite_callers(busy3) == [who["B"]], busy3.report()
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "2", timeout=30)
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "1", timeout=30)
    time.sleep(0.5)  # B answered by R1

    c = caller(sipp_runner, "caller-C", LEAST_CONNECTED, CALLER_PORTS[2], who=who["C"])
    c.assert_successful(1)
    d = hold("D", CALLER_PORTS[3], 3000)
    time.sleep(1.0)  # D answered by R2
    assert a.proc.poll() is None and b.proc.poll() is None and d.proc.poll() is None
    e = caller(sipp_runner, "caller-E", LEAST_CONNECTED, CALLER_PORTS[4], who=who["E"])
    e.assert_successful(1)

    for background in (a, b, d):
        background.wait().assert_successful(1)
    assert_calls_gone(softswitch)
    r1_result = finish(r1, 2)
    r2_result = finish(r2, 2)
    r3_result = finish(r3, 1)
    assert invite_callers(r1_result) == [who["A"], who["B"]], r1_result.report()
    assert invite_callers(r2_result) == [who["C"], who["D"]], r2_result.report()
    assert invite_callers(r3_result) == [who["E"]], r3_result.report()


def test_closed_hours_go_straight_to_no_answer_routing(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0109: R1-closed is outside its hours (schedule lab-closed, never open),
    so R1 (127.0.0.1:5071) is never rung and R2 answers at once (no ring timeout spent)."""
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1", timeout=4)
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1")
    uac = caller(sipp_runner, "caller", CLOSED_HOURS)
    uac.assert_successful(1)
    assert_calls_gone(softswitch)
    r2_result = finish(r2, 1)
    assert r2_result.count("_BYE_Recv") == 1, r2_result.report()
    assert answer_time(uac) < 1.5, uac.report()
    never_rung(r1)


def test_geo_router_by_caller_area(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    """+1 800 555 0113: a California caller (+1 415) → R1, a New York caller (+1 212) → R2,
    a caller it cannot place (toll-free +1 800) → R3 (out of area)."""
    toll_free = "+18005550000"
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "1")
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1")
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "1")
    for name, who in (("west", CALIFORNIA), ("east", NEW_YORK), ("tollfree", toll_free)):
        caller(sipp_runner, f"caller-{name}", GEO, who=who).assert_successful(1)
    assert_calls_gone(softswitch)
    for uas, expected in ((r1, CALIFORNIA), (r2, NEW_YORK), (r3, toll_free)):
        result = finish(uas, 1)
        assert invite_callers(result) == [expected], result.report()


def test_conditional_router_caller_prefix_then_header(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    """+1 800 555 0114, first matching rule wins: caller +1415… → R1 (even with
    ``X-Lab-Route: r2``); else ``X-Lab-Route: r2`` → R2; else R3 (no header, or a header
    value the anchored ``^r2$`` does not match)."""
    ca_plain, ca_header = "+14155550001", "+14155550002"
    ny_header, ny_plain, ny_other = "+12125550001", "+12125550002", "+12125550003"
    r1 = sipp_runner.uas("r1", "uas", R1, "-m", "2")
    r2 = sipp_runner.uas("r2", "uas", R2, "-m", "1")
    r3 = sipp_runner.uas("r3", "uas", R3, "-m", "2")
    calls = (
        ("ca-plain", ca_plain, None),
        ("ca-header", ca_header, "r2"),
        ("ny-header", ny_header, "r2"),
        ("ny-plain", ny_plain, None),
        ("ny-other", ny_other, "r2x"),
    )
    for name, who, route in calls:
        caller(sipp_runner, f"caller-{name}", CONDITIONAL, who=who, route=route
               ).assert_successful(1)
    assert_calls_gone(softswitch)
    for uas, calls_in, expected in ((r1, 2, [ca_plain, ca_header]), (r2, 1, [ny_header]),
                                    (r3, 2, [ny_plain, ny_other])):
        result = finish(uas, calls_in)
        assert invite_callers(result) == expected, result.report()

