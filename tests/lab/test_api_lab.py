"""The management API over real HTTP against a running softswitch with real SIPp calls.

softswitch runs on a copy of conf/lab.yaml (records in tmp_path; API on
127.0.0.1:8088 with the lab token).  HTTP is spoken with the standard library.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import SippRunner, Softswitch

pytestmark = pytest.mark.lab

API = "http://127.0.0.1:8088"
TOKEN = "lab-api-token"
TRACKING = "+18005550100"


def http(method: str, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(API + path, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    text = body.decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@pytest.fixture
def lab_copy(lab_config_copy: Callable[[dict[str, str]], Path], tmp_path: Path) -> Path:
    return lab_config_copy({"path: ../var/lab-calls.sqlite3": f"path: {tmp_path / 'c.sqlite3'}"})


def wait_for_calls(softswitch: Softswitch, count: int) -> None:
    deadline = time.monotonic() + 15
    while softswitch.stats()["calls"] != count:
        assert time.monotonic() < deadline, softswitch.tail()
        time.sleep(0.2)


def test_auth_and_hanging_up_a_live_call(
    lab_copy: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    switch = softswitch_on(lab_copy)
    assert http("GET", "/health", token=None)[0] == 200
    assert http("GET", "/calls", token=None)[0] == 401
    assert http("GET", "/calls", token="wrong")[0] == 401
    r1 = sipp_runner.uas("r1", "uas", 5071, "-m", "1")
    caller = sipp_runner.start("caller", "uac_callee_bye.xml", 5061, "-s", TRACKING, "-m", "1",
                               remote=("127.0.0.1", 5060), timeout=40)
    wait_for_calls(switch, 1)
    status, live = http("GET", "/calls")
    assert status == 200 and len(live) == 1
    call_id = live[0]["id"]
    assert live[0]["tracking_number"] == TRACKING and live[0]["state"] == "bridged"
    assert http("POST", "/calls/no-such-call/hangup")[0] == 404
    assert http("POST", f"/calls/{call_id}/hangup")[0] == 202
    caller.wait(timeout=20).assert_successful(1)  # the caller received softswitch's BYE
    r1.wait(timeout=20).assert_successful(1)  # and so did R1
    wait_for_calls(switch, 0)
    status, found = http("GET", f"/records/{call_id}")
    assert status == 200 and found["hangup_by"] == "softswitch"
    assert found["disposition"] == "answered"


def test_reload_applies_route_changes_to_new_calls_and_refuses_a_broken_config(
    lab_copy: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_copy)
    original = lab_copy.read_text()
    old_route = "route: {dial: [R1], ring_timeout: 5}"
    assert old_route in original
    lab_copy.write_text(original.replace(old_route, "route: {dial: [R2], ring_timeout: 5}"))
    status, body = http("POST", "/reload")
    assert status == 200 and body["reloaded"] is True

    r2 = sipp_runner.uas("r2", "uas", 5072, "-m", "1")
    sipp_runner.run("caller", "uac", 5061, "-s", TRACKING, "-m", "1", timeout=20
                    ).assert_successful(1)
    r2.wait(timeout=15).assert_successful(1)  # the new route took the call

    lab_copy.write_text(original.replace(old_route, "route: {dial: [R9]}"))
    status, body = http("POST", "/reload")
    assert status == 422 and body["reloaded"] is False and "R9" in body["problems"]
    r2 = sipp_runner.uas("r2-again", "uas", 5072, "-m", "1")
    sipp_runner.run("caller-2", "uac", 5061, "-s", TRACKING, "-m", "1", timeout=20
                    ).assert_successful(1)
    r2.wait(timeout=15).assert_successful(1)  # the refused config changed nothing


def test_metrics_and_records_are_served(
    lab_copy: Path, softswitch_on: Callable[[Path], Softswitch], sipp_runner: SippRunner
) -> None:
    softswitch_on(lab_copy)
    r1 = sipp_runner.uas("r1", "uas", 5071, "-m", "2")
    sipp_runner.run("caller", "uac", 5061, "-s", TRACKING, "-m", "2", timeout=20
                    ).assert_successful(2)
    r1.wait(timeout=15).assert_successful(2)
    status, page = http("GET", "/records?limit=1")
    assert status == 200 and page["total"] == 2 and len(page["records"]) == 1
    status, metrics = http("GET", "/metrics")
    assert status == 200
    assert 'softswitch_calls_total{disposition="answered"} 2.0' in metrics
    assert 'softswitch_sip_messages_total{direction="in",kind="INVITE"} 2.0' in metrics
