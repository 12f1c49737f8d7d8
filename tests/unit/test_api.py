"""The management API over real HTTP on 127.0.0.1 (aiohttp's test server), in front
of a fake Control: auth, every route's answers and errors, metrics, start/stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
from aiohttp.test_utils import TestClient, TestServer

from softswitch.api import create_app, start_api, stop_api
from softswitch.api.metrics import make_registry, render
from softswitch.api.openapi import document
from softswitch.api.server import ROUTES, BadRequest, parse_time
from softswitch.config import ApiSettings
from softswitch.control import RecordsView
from softswitch.records.model import CallRecord, Disposition, LegRecord
from softswitch.records.store import RecordStore, record_to_dict

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC).timestamp()


def make_record(
    call_id: str,
    started_at: float,
    *,
    tracking: str = "+442071838750",
    caller: str = "+447700900001",
    disposition: Disposition = Disposition.ANSWERED,
) -> CallRecord:
    leg = LegRecord(number=1, name="sales", phone="+441632960001", label="Sales",
                    tried_at=started_at + 0.01, rang_at=started_at + 0.5,
                    answered_at=started_at + 3.0, ended_at=started_at + 60.0, status=200,
                    outcome="answered")
    return CallRecord(
        id=call_id, tracking_number=tracking, tracking_label="Ad A", caller_number=caller,
        caller_name="Alice", pattern="sequential", started_at=started_at,
        first_ring_at=started_at + 0.5, answered_at=started_at + 3.0,
        bridged_at=started_at + 3.1, ended_at=started_at + 60.0, hangup_by="caller",
        disposition=disposition, final_status=200, tags={"campaign": "summer"},
        legs=[leg], billable_seconds=60, cost=0.05,
    )


def live_call(call_id: str, started_at: float) -> dict[str, Any]:
    """The shape Control._call gives: a record so far plus call and leg states."""
    record = make_record(call_id, started_at, disposition=Disposition.IN_PROGRESS)
    record.ended_at = None
    record.legs[0].ended_at = None
    data = record_to_dict(record)
    data["state"] = "bridged"
    data["legs"][0]["state"] = "confirmed"
    return data


class FakeControl(RecordsView):
    """Control's API-facing methods over a real RecordStore and canned live calls."""

    def __init__(self, store: RecordStore) -> None:
        super().__init__(store)
        self.draining = False
        self.calls = {c: live_call(c, T0 + 3600 + i) for i, c in enumerate(("live-1", "live-2"))}
        self.hung_up: list[str] = []
        self.reload_result = (True, "config reloaded: 3 tracking numbers")
        self.reloads = 0

    def health(self) -> dict[str, Any]:
        return {"status": "draining" if self.draining else "ok", "version": "0.1.0",
                "uptime_seconds": 12.5, "calls_in_progress": len(self.calls)}

    def ready(self) -> bool:
        return not self.draining

    def live_calls(self) -> list[dict[str, Any]]:
        return list(self.calls.values())

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self.calls.get(call_id)

    def hangup(self, call_id: str) -> bool:
        if call_id not in self.calls:
            return False
        self.hung_up.append(call_id)
        return True

    def reload(self) -> tuple[bool, str]:
        self.reloads += 1
        return self.reload_result

    def agents(self) -> list[dict[str, Any]]:
        return []

    def queues(self) -> list[dict[str, Any]]:
        return []

    def registrations(self) -> list[dict[str, Any]]:
        return []

    def metrics(self) -> dict[str, Any]:
        return {
            "calls_in_progress": len(self.calls),
            "calls_by_disposition": {"answered": 7, "no answer": 2, "busy": 0},
            "sip_messages": {"in INVITE": 9, "out 200": 7, "out 486": 1},
            "transaction_timeouts": 3,
            "retransmissions_received": 4,
            "parse_errors": 5,
            "transactions": 6,
            "rtp_packets_relayed": 0,
            "rtp_packets_lost": 0,
            "rtp_ports_active": 0,
            "event_loop_lag_seconds": 0.0025,
        }


def fill(store: RecordStore) -> None:
    """Five finished calls an hour apart from T0, one refused call."""
    kinds = [
        ("r1", Disposition.ANSWERED, "+442071838750", "+447700900001"),
        ("r2", Disposition.BUSY, "+442071838750", "+447700900002"),
        ("r3", Disposition.NO_ANSWER, "+442071838751", "+447700900001"),
        ("r4", Disposition.ANSWERED, "+442071838751", "+447700900003"),
        ("r5", Disposition.CANCELLED, "+442071838750", "+447700900001"),
    ]
    for i, (call_id, disposition, tracking, caller) in enumerate(kinds):
        record = make_record(call_id, T0 + 3600 * i, tracking=tracking, caller=caller,
                             disposition=Disposition.IN_PROGRESS)
        store.start(record)
        record.disposition = disposition
        store.finish(record)


@pytest.fixture
def control(tmp_path: Path) -> FakeControl:
    store = RecordStore(tmp_path / "calls.sqlite")
    fill(store)
    return FakeControl(store)


@pytest.fixture
async def client(control: FakeControl) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(control, TOKEN), host="127.0.0.1")) as client:
        yield client
    control.store.close()


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


# ---- auth ----------------------------------------------------------------------------

PROTECTED = [
    (m, p.replace("{id}", "r1" if p.startswith("/records") else "live-1"))
    for m, p, _, name in ROUTES
    if name not in ("health", "openapi")
]


async def test_health_needs_no_token(client: TestClient[Any, Any]) -> None:
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "version": "0.1.0",
                                     "uptime_seconds": 12.5, "calls_in_progress": 2}


async def test_openapi_needs_no_token(client: TestClient[Any, Any]) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == document()


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_other_route_needs_the_token(
    client: TestClient[Any, Any], control: FakeControl, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"}):
        response = await client.request(method, path, headers=headers)
        assert response.status == 401, (headers, await response.text())
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.content_type == "application/json"
        assert "token" in (await response.json())["error"]
    assert control.hung_up == [] and control.reloads == 0


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_the_right_token_is_accepted(
    client: TestClient[Any, Any], method: str, path: str
) -> None:
    response = await client.request(method, path, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status < 400, await response.text()


async def test_unknown_route_and_wrong_method_are_json_errors(
    client: TestClient[Any, Any],
) -> None:
    assert (await client.get("/nope")).status == 401  # no token: nothing is revealed
    body = await get_json(client, "/nope", 404)
    assert body == {"error": "not found"}
    response = await client.delete("/calls", headers=AUTH)
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert (await response.json()) == {"error": "method not allowed"}


# ---- health, live calls, reload, lists ------------------------------------------------


async def test_ready_is_503_while_draining(
    client: TestClient[Any, Any], control: FakeControl
) -> None:
    assert await get_json(client, "/ready") == {"ready": True}
    control.draining = True
    assert await get_json(client, "/ready", 503) == {"ready": False}
    assert (await client.get("/health")).status == 200  # alive, if not ready


async def test_live_calls(client: TestClient[Any, Any], control: FakeControl) -> None:
    calls = await get_json(client, "/calls")
    assert [c["id"] for c in calls] == ["live-1", "live-2"]
    assert calls[0]["state"] == "bridged" and calls[0]["legs"][0]["state"] == "confirmed"
    assert await get_json(client, "/calls/live-2") == control.calls["live-2"]
    assert await get_json(client, "/calls/unknown", 404) == {"error": "no live call 'unknown'"}


async def test_hangup(client: TestClient[Any, Any], control: FakeControl) -> None:
    response = await client.post("/calls/live-1/hangup", headers=AUTH)
    assert response.status == 202
    assert await response.json() == {"hung_up": "live-1"}
    assert control.hung_up == ["live-1"]
    response = await client.post("/calls/gone/hangup", headers=AUTH)
    assert response.status == 404
    assert await response.json() == {"error": "no live call 'gone'"}
    assert control.hung_up == ["live-1"]


async def test_reload_accepted_and_refused(
    client: TestClient[Any, Any], control: FakeControl
) -> None:
    response = await client.post("/reload", headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"reloaded": True,
                                     "message": "config reloaded: 3 tracking numbers"}
    control.reload_result = (False, "conf.yaml: trunks.a.port: got 'x'; expected a number")
    response = await client.post("/reload", headers=AUTH)
    assert response.status == 422
    assert await response.json() == {
        "reloaded": False, "problems": "conf.yaml: trunks.a.port: got 'x'; expected a number"}


@pytest.mark.parametrize("path", ["/agents", "/queues", "/registrations"])
async def test_lists_empty_until_issue_5(client: TestClient[Any, Any], path: str) -> None:
    assert await get_json(client, path) == []


# ---- records --------------------------------------------------------------------------


async def ids(client: TestClient[Any, Any], query: str) -> list[str]:
    body = await get_json(client, f"/records?{query}")
    return [r["id"] for r in body["records"]]


async def test_records_default_page(client: TestClient[Any, Any]) -> None:
    body = await get_json(client, "/records")
    assert body["total"] == 5 and body["limit"] == 100 and body["offset"] == 0
    assert [r["id"] for r in body["records"]] == ["r5", "r4", "r3", "r2", "r1"]
    first = body["records"][-1]
    assert first["legs"][0]["outcome"] == "answered" and first["tags"] == {"campaign": "summer"}
    assert first["started_at"] == T0


async def test_records_filters_and_paging(client: TestClient[Any, Any]) -> None:
    assert await ids(client, "tracking_number=%2B442071838751") == ["r4", "r3"]
    assert await ids(client, "caller=%2B447700900001") == ["r5", "r3", "r1"]
    assert await ids(client, "disposition=answered") == ["r4", "r1"]
    assert await ids(client, "disposition=no%20answer") == ["r3"]
    assert await ids(client, "since=2025-06-01T10:00:00Z&until=2025-06-01T12:00:00Z") == [
        "r3", "r2"]
    # 11:00+02:00 is 09:00Z, when r1 started (since is inclusive)
    assert await ids(client, "since=2025-06-01T11:00:00%2B02:00") == ["r5", "r4", "r3", "r2", "r1"]
    assert await ids(client, "since=2025-06-01T11:00:01%2B02:00") == ["r5", "r4", "r3", "r2"]
    assert await ids(client, "since=2025-06-01T12:00:00") == ["r5", "r4"]  # UTC
    assert await ids(client, "until=2025-06-01") == []
    body = await get_json(client, "/records?limit=2&offset=1&caller=%2B447700900001")
    assert [r["id"] for r in body["records"]] == ["r3", "r1"]
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 1)
    assert await ids(client, "offset=10") == []


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=0", "limit=0 is out of range; expected 1..1000"),
        ("limit=1001", "limit=1001 is out of range"),
        ("limit=ten", "limit='ten' is not a whole number"),
        ("limit=1.5", "not a whole number"),
        ("offset=-1", "offset=-1 is out of range"),
        ("tracking=%2B442071838750", "unknown query parameter 'tracking'; expected: "),
        ("disposition=lost", "disposition='lost' is not a disposition; expected one of:"),
        ("since=yesterday", "since='yesterday' is not a date-time"),
        ("until=2025-13-01T00:00:00Z", "until='2025-13-01T00:00:00Z' is not a date-time"),
    ],
)
async def test_records_bad_query(client: TestClient[Any, Any], query: str, words: str) -> None:
    body = await get_json(client, f"/records?{query}", 400)
    assert words in body["error"]


async def test_one_record(client: TestClient[Any, Any], control: FakeControl) -> None:
    body = await get_json(client, "/records/r2")
    assert body == record_to_dict(control.store.get("r2"))  # type: ignore[arg-type]
    assert body["disposition"] == "busy"
    assert await get_json(client, "/records/zz", 404) == {"error": "no record of call 'zz'"}


def test_parse_time() -> None:
    base = datetime(2025, 6, 1, 9, 30, tzinfo=UTC).timestamp()
    assert parse_time("since", "2025-06-01T09:30:00Z") == base
    assert parse_time("since", "2025-06-01t09:30:00z") == base
    assert parse_time("since", "2025-06-01 09:30:00") == base
    assert parse_time("since", "2025-06-01T11:30:00+02:00") == base
    assert parse_time("since", "2025-06-01T09:30:00.250Z") == base + 0.25
    assert parse_time("since", "2025-06-01T09:30:00.123456789Z") == base + 0.123456
    assert parse_time("since", "2025-06-01T09:29:60Z") == base - 1  # leap second
    assert parse_time("since", "2025-06-01") == base - 9.5 * 3600
    for bad in ("", "2025", "2025-06-01T09:30Z", "2025-06-31T00:00:00Z", "1717234200",
                "2025-06-01T09:30:00+2"):
        with pytest.raises(BadRequest, match="is not a date-time"):
            parse_time("since", bad)


# ---- metrics --------------------------------------------------------------------------


async def test_metrics_exposition(client: TestClient[Any, Any]) -> None:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    for line in (
        "# TYPE softswitch_calls_in_progress gauge",
        "softswitch_calls_in_progress 2.0",
        "# TYPE softswitch_calls_total counter",
        'softswitch_calls_total{disposition="answered"} 7.0',
        'softswitch_calls_total{disposition="no answer"} 2.0',
        'softswitch_calls_total{disposition="busy"} 0.0',
        "# TYPE softswitch_sip_messages_total counter",
        'softswitch_sip_messages_total{direction="in",kind="INVITE"} 9.0',
        'softswitch_sip_messages_total{direction="out",kind="200"} 7.0',
        'softswitch_sip_messages_total{direction="out",kind="486"} 1.0',
        "softswitch_transaction_timeouts_total 3.0",
        "softswitch_retransmissions_received_total 4.0",
        "softswitch_parse_errors_total 5.0",
        "# TYPE softswitch_transactions gauge",
        "softswitch_transactions 6.0",
        "softswitch_rtp_packets_relayed_total 0.0",
        "softswitch_rtp_packets_lost_total 0.0",
        "# TYPE softswitch_rtp_ports_active gauge",
        "softswitch_rtp_ports_active 0.0",
        "# TYPE softswitch_event_loop_lag_seconds gauge",
        "softswitch_event_loop_lag_seconds 0.0025",
    ):
        assert line in text.splitlines(), line


async def test_metrics_read_at_scrape_time(
    client: TestClient[Any, Any], control: FakeControl
) -> None:
    control.calls.pop("live-2")
    text = await (await client.get("/metrics", headers=AUTH)).text()
    assert "softswitch_calls_in_progress 1.0" in text.splitlines()


def test_metrics_use_a_private_registry(control: FakeControl) -> None:
    registry = make_registry(control)
    assert b"softswitch_calls_total" in render(registry)
    make_registry(control)  # a second instance does not collide
    assert b"softswitch_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
    control.store.close()


# ---- start_api / stop_api -------------------------------------------------------------


async def test_start_and_stop(control: FakeControl) -> None:
    runner = await start_api(control, ApiSettings(host="127.0.0.1", port=0, token=TOKEN))
    try:
        host, port = runner.addresses[0][:2]
        assert host == "127.0.0.1"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/calls", headers=AUTH) as response:
                assert response.status == 200
                assert len(await response.json()) == 2
        taken = ApiSettings(host="127.0.0.1", port=port, token=TOKEN)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await start_api(control, taken)
    finally:
        await stop_api(runner)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/health")
    control.store.close()


async def test_no_token_no_api(control: FakeControl) -> None:
    with pytest.raises(ValueError, match="token"):
        await start_api(control, ApiSettings(host="127.0.0.1", port=0))
    with pytest.raises(ValueError, match="token"):
        create_app(control, "")
    await asyncio.sleep(0)
    control.store.close()
