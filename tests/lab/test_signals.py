"""SIGTERM drains (app.py): exit 0 at once when idle; a live call continues until the
drain limit, then softswitch BYEs both legs and exits 0."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SippRunner, Softswitch

pytestmark = pytest.mark.lab

TRACKING = "+18005550100"
DRAIN_LIMIT = 2.0


def test_sigterm_idle_exits_0_quickly(softswitch: Softswitch) -> None:
    started = time.monotonic()
    code = softswitch.terminate(timeout=5.0)
    elapsed = time.monotonic() - started
    assert code == 0, softswitch.tail()
    assert elapsed < 3.0, f"idle softswitch took {elapsed:.1f} s to exit on SIGTERM"


def test_sigterm_lets_a_call_continue_then_byes_it(
    lab_config_copy: Callable[[dict[str, str]], Path],
    softswitch_on: Callable[[Path], Softswitch],
    sipp_runner: SippRunner,
) -> None:
    switch = softswitch_on(lab_config_copy({"drain_limit: 30": f"drain_limit: {DRAIN_LIMIT:g}"}))
    # R1 is the built-in uas (expects BYE); the caller expects softswitch's BYE.
    uas = sipp_runner.uas("r1", "uas", 5071, "-m", "1")
    caller = sipp_runner.start("caller", "uac_callee_bye.xml", 5063, "-s", TRACKING, "-m", "1",
                               remote=("127.0.0.1", 5060), timeout=20)
    deadline = time.monotonic() + 5.0
    while switch.stats()["dialogs"] < 2:  # both legs confirmed
        assert time.monotonic() < deadline, switch.tail()
        time.sleep(0.1)
    sent = time.monotonic()
    switch.proc.send_signal(signal.SIGTERM)
    time.sleep(DRAIN_LIMIT / 2)
    assert caller.proc.poll() is None, "the call ended before the drain limit"
    code = switch.terminate(timeout=DRAIN_LIMIT + 10)
    elapsed = time.monotonic() - sent
    assert code == 0, switch.tail()
    assert DRAIN_LIMIT - 0.2 <= elapsed <= DRAIN_LIMIT + 6, f"exited {elapsed:.1f} s after SIGTERM"
    result = caller.wait(timeout=10)
    result.assert_successful(1)
    assert result.count("_BYE_Recv") == 1
    r1 = uas.wait(timeout=10)
    r1.assert_successful(1)
    assert r1.count("_BYE_Recv") == 1
