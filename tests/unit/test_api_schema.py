"""The OpenAPI document is true: it names exactly the router's routes, its record
schemas match the CallRecord fields, and schemathesis, driving the real API on
127.0.0.1 with generated requests, finds every status code, content type, header
and body as documented.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from softswitch.api import create_app, start_api, stop_api
from softswitch.api.openapi import document
from softswitch.config import ApiSettings
from softswitch.control import RecordsView
from softswitch.records.model import CallRecord, Disposition, LegRecord
from softswitch.records.store import RecordStore, record_to_dict

# Self-contained on purpose (no import from test_api: tests/lab/test_api.py has the
# same module name).
TOKEN = "schema-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1748768400.0  # 2025-06-01T09:00:00Z


def make_record(call_id: str, started_at: float, disposition: Disposition) -> CallRecord:
    """A record with one answered leg; nullable fields filled unevenly on purpose."""
    final = disposition is not Disposition.IN_PROGRESS
    leg = LegRecord(number=1, name="sales", phone="+441632960001", label="Sales",
                    tried_at=started_at, rang_at=started_at + 1.0,
                    ended_at=started_at + 30.0 if final else None,
                    status=486 if disposition is Disposition.BUSY else None,
                    outcome="busy" if disposition is Disposition.BUSY else None,
                    reason='SIP;cause=486;text="Busy Here"')
    second = LegRecord(number=2, name="support", phone="+441632960002", label="Support",
                       tried_at=started_at + 1.5)
    return CallRecord(
        id=call_id, tracking_number="+442071838750", tracking_label="Ad A",
        caller_number="+447700900001", caller_name=None, pattern=None, started_at=started_at,
        ended_at=started_at + 30.0 if final else None, disposition=disposition,
        final_status=486 if final else None, tags={"campaign": "summer", "hours": "open"},
        legs=[leg, second], billable_seconds=0, cost=0.0,
    )


class FakeControl(RecordsView):
    """Control's API-facing methods over a real RecordStore and two canned live calls;
    hangup changes nothing, reload is alternately accepted and refused."""

    def __init__(self, store: RecordStore) -> None:
        super().__init__(store)
        self.reloads = 0
        self.calls: dict[str, dict[str, Any]] = {}
        for i, call_id in enumerate(("live-1", "live-2")):
            data = record_to_dict(make_record(call_id, T0 + 10_000 + i, Disposition.IN_PROGRESS))
            data["state"] = "routing"
            for leg, state in zip(data["legs"], ("ringing", "calling"), strict=True):
                leg["state"] = state
            self.calls[call_id] = data

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "version": "0.1.0", "uptime_seconds": 1.0,
                "calls_in_progress": len(self.calls)}

    def ready(self) -> bool:
        return True

    def live_calls(self) -> list[dict[str, Any]]:
        return list(self.calls.values())

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self.calls.get(call_id)

    def hangup(self, call_id: str) -> bool:
        return call_id in self.calls

    def reload(self) -> tuple[bool, str]:
        self.reloads += 1
        if self.reloads % 2:
            return True, "config reloaded"
        return False, "conf.yaml: trunks: got 'x'; expected a mapping"

    def agents(self) -> list[dict[str, Any]]:
        return []

    def queues(self) -> list[dict[str, Any]]:
        return []

    def registrations(self) -> list[dict[str, Any]]:
        return []

    def metrics(self) -> dict[str, Any]:
        return {"calls_in_progress": len(self.calls),
                "calls_by_disposition": {"answered": 1}, "sip_messages": {"in INVITE": 2}}


def fill(store: RecordStore) -> None:
    for i, disposition in enumerate((Disposition.ANSWERED, Disposition.BUSY,
                                     Disposition.INTERRUPTED)):
        record = make_record(f"r{i + 1}", T0 + 3600 * i, Disposition.IN_PROGRESS)
        store.start(record)
        record.disposition = disposition
        record.ended_at = T0 + 3600 * i + 30.0
        store.finish(record)
    store.start(make_record("r4", T0 + 9000, Disposition.IN_PROGRESS))  # still in progress


class ServedApi:
    """start_api on 127.0.0.1, a random port, in an event loop of its own thread (the
    schemathesis calls are synchronous)."""

    def __init__(self, control: FakeControl) -> None:
        self.control = control
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        api_settings = ApiSettings(host="127.0.0.1", port=0, token=TOKEN)
        self.runner: web.AppRunner = self.run(start_api(control, api_settings))
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def close(self) -> None:
        self.run(stop_api(self.runner))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    path: Path = tmp_path_factory.mktemp("api") / "calls.sqlite"
    store = RecordStore(path)
    fill(store)
    control = FakeControl(store)
    api = ServedApi(control)
    yield api
    api.close()
    store.close()


# The document as built; test_served_document_is_the_document shows it is what the API
# serves.  (schemathesis.pytest.from_fixture, which would load it from the running API,
# does not work with pytest 9: it sets Function._nodeid, which pytest 9 removed.)
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any, served: ServedApi) -> None:
    excluded = []
    if case.operation.path == "/reload":
        # A refused reload (422) is about the config file, not the (empty) request.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(base_url=served.url, headers=AUTH, excluded_checks=excluded)


@pytest.mark.parametrize(
    ("method", "path", "call_id"),
    [
        ("GET", "/calls/{id}", "live-1"),
        ("POST", "/calls/{id}/hangup", "live-2"),
        ("GET", "/records/{id}", "r1"),
        ("GET", "/records/{id}", "r4"),
    ],
)
def test_existing_ids_conform(served: ServedApi, method: str, path: str, call_id: str) -> None:
    """Generated ids almost never exist: the 200/202 answers, checked by hand."""
    case = schema[path][method].Case(path_parameters={"id": call_id})
    response = case.call_and_validate(base_url=served.url, headers=AUTH)
    assert response.status_code in (200, 202)


# ---- the document against the router and the model ---------------------------------------


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = create_app(FakeControl.__new__(FakeControl), TOKEN)
    routed = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    doc = document()
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert routed == documented
    names = {route.name for route in app.router.routes()}
    operation_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert names == operation_ids


def test_record_schemas_name_exactly_the_record_fields() -> None:
    schemas = document()["components"]["schemas"]
    record = {f.name for f in dataclasses.fields(CallRecord)}
    leg = {f.name for f in dataclasses.fields(LegRecord)}
    assert set(schemas["Record"]["properties"]) == record
    assert set(schemas["Record"]["required"]) == record
    assert set(schemas["Leg"]["properties"]) == leg
    assert set(schemas["LiveCall"]["properties"]) == record | {"state"}
    assert set(schemas["LiveLeg"]["properties"]) == leg | {"state"}


def test_protected_operations_document_401_and_public_ones_need_no_token() -> None:
    doc = document()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http",
                                                               "scheme": "bearer"}
    for path, item in doc["paths"].items():
        for op in item.values():
            if path in ("/health", "/openapi.json"):
                assert op["security"] == []
            else:
                assert "security" not in op  # the document-wide bearer requirement
                assert "401" in op["responses"]


def test_served_document_is_the_document(served: ServedApi) -> None:
    response = requests.get(f"{served.url}/openapi.json", timeout=5)
    assert response.status_code == 200
    assert response.json() == document()
