"""One call at a time through softswitch, each outcome a caller can meet (LAB.md, issue 2).

The caller is SIPp on 127.0.0.1:5061 dialling softswitch at 127.0.0.1:5060; R1
(+1 415 555 0101, the route of +1 800 555 0100) is SIPp on 127.0.0.1:5071.  Each
test asserts both SIPps' exit status (0: every call successful) and counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SippProcess, SippResult, SippRunner, Softswitch

pytestmark = pytest.mark.lab

TRACKING = "+18005550100"  # dial R1, ring timeout 5 s
UNKNOWN = "+18005559999"
UAC_PORT = 5061


def finish(uas: SippProcess, calls: int) -> SippResult:
    result = uas.wait(timeout=15)
    result.assert_successful(calls)
    assert result.stat("IncomingCall(C)") == calls, result.report()
    return result


def test_basic_call_caller_hangs_up(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    uas = sipp_runner.uas("r1", "uas", 5071, "-m", "1")
    uac = sipp_runner.run("caller", "uac", UAC_PORT, "-s", TRACKING, "-m", "1", timeout=20)
    uac.assert_successful(1)
    assert uac.count("_200_Recv") == 2  # 200 for the INVITE and for the BYE
    r1 = finish(uas, 1)
    assert r1.count("_BYE_Recv") == 1  # the caller's BYE reached R1


def test_basic_call_callee_hangs_up(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    uas = sipp_runner.uas("r1", "uas_callee_bye.xml", 5071, "-m", "1")
    uac = sipp_runner.run("caller", "uac_callee_bye.xml", UAC_PORT, "-s", TRACKING, "-m", "1",
                          timeout=20)
    uac.assert_successful(1)
    assert uac.count("_BYE_Recv") == 1
    r1 = finish(uas, 1)
    assert r1.count("_BYE_Sent") == 1


def test_cancel_before_answer(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    uas = sipp_runner.uas("r1", "uas_ring_cancel.xml", 5071, "-m", "1")
    uac = sipp_runner.run("caller", "uac_cancel.xml", UAC_PORT, "-s", TRACKING, "-m", "1",
                          timeout=20)
    uac.assert_successful(1)
    assert uac.count("_487_Recv") == 1
    r1 = finish(uas, 1)
    assert r1.count("_CANCEL_Recv") == 1  # softswitch cancelled the ringing leg


def test_busy_reaches_caller(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    uas = sipp_runner.uas("r1", "uas_486.xml", 5071, "-m", "1")
    uac = sipp_runner.run("caller", "uac_expect_486.xml", UAC_PORT, "-s", TRACKING, "-m", "1",
                          timeout=20)
    uac.assert_successful(1)
    assert uac.count("_486_Recv") == 1
    r1 = finish(uas, 1)
    assert r1.count("_ACK_Recv") == 1  # softswitch ACKed R1's 486


def test_ring_timeout_cancels_and_answers_480(
    softswitch: Softswitch, sipp_runner: SippRunner
) -> None:
    uas = sipp_runner.uas("r1", "uas_ring_cancel.xml", 5071, "-m", "1")
    uac = sipp_runner.run("caller", "uac_expect_480.xml", UAC_PORT, "-s", TRACKING, "-m", "1",
                          timeout=25)
    uac.assert_successful(1)
    assert uac.count("_480_Recv") == 1
    r1 = finish(uas, 1)
    assert r1.count("_CANCEL_Recv") == 1  # the ring timeout cancelled R1
    # The ring timeout is 5 s: the call cannot have ended much sooner.
    assert uac.stats["ElapsedTime(C)"] >= "00:00:04", uac.report()


def test_unknown_number_gets_404(softswitch: Softswitch, sipp_runner: SippRunner) -> None:
    uac = sipp_runner.run("caller", "uac_expect_404.xml", UAC_PORT, "-s", UNKNOWN, "-m", "1",
                          timeout=15)
    uac.assert_successful(1)
    assert uac.count("_404_Recv") == 1


def test_options_answered_200(softswitch: Softswitch) -> None:
    for _ in range(3):
        assert softswitch.options(timeout=2.0) == 200
