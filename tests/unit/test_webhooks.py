"""Webhooks against a real aiohttp receiver on 127.0.0.1 (random port).

The receiver scripts its answer to each try (``"500"``, ``"reset"``, ``"slow"``,
``"ok"``); every try it sees is kept with its headers and body, so a test can
check retries, signatures, delivery ids and ordering from the receiving side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pyee import EventEmitter

from softswitch.config import Webhook
from softswitch.records.model import CallRecord, LegRecord
from softswitch.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookSender,
    sign,
    verify,
)

SECRET = "s3cret-for-tests"
LOG = "softswitch.webhooks"


# ---- fakes -------------------------------------------------------------------------


def fake_call(call_id: str = "c1") -> SimpleNamespace:
    record = CallRecord(
        id=call_id,
        tracking_number="+18005550100",
        tracking_label="Billboard",
        caller_number="+14155550123",
        caller_name="Ada",
        pattern="sequential",
        started_at=1_767_225_600.0,
        legs=[
            LegRecord(
                number=1,
                name="R1",
                phone="+14155550101",
                label="Sales",
                tried_at=1_767_225_600.5,
            )
        ],
    )
    return SimpleNamespace(id=call_id, record=record)


def fake_leg(name: str = "R1") -> SimpleNamespace:
    return SimpleNamespace(target=SimpleNamespace(name=name))


def hook(url: str, events: tuple[str, ...], *, timeout: float = 2.0, retries: int = 3) -> Webhook:
    return Webhook(url=url, secret=SECRET, events=events, timeout=timeout, retries=retries)


@dataclass
class Attempt:
    headers: dict[str, str]
    body: bytes
    answer: str

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """A local webhook endpoint; ``script`` is consumed one answer per try, then "ok"."""

    script: list[str] = field(default_factory=list)
    slow_seconds: float = 1.0
    attempts: list[Attempt] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.answer == "ok"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = self.script.pop(0) if self.script else "ok"
        self.attempts.append(Attempt(dict(request.headers), body, answer))
        self.arrived.set()
        if answer == "500":
            return web.Response(status=500, text="boom")
        if answer == "reset":
            assert request.transport is not None
            request.transport.abort()  # the connection drops without a response
            return web.Response(status=200)
        if answer in ("slow", "hang"):
            # "slow" answers after the client's timeout; "hang" until released.
            delay = self.slow_seconds if answer == "slow" else 30.0
            try:
                await asyncio.wait_for(self.release.wait(), delay)
            except TimeoutError:
                pass
            return web.Response(status=200)
        return web.Response(status=204)

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self.accepted) < count:
            assert time.monotonic() < deadline, f"{len(self.accepted)} of {count} accepted"
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    recv.url = f"http://127.0.0.1:{port}/hook"
    yield recv
    recv.release.set()
    await runner.cleanup()


@pytest.fixture
def dead_url() -> Any:
    """A URL on a port that is bound but not listening: every connect is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"
    sock.close()


def counting_session() -> tuple[Callable[[], aiohttp.ClientSession], list[str]]:
    """A session factory whose sessions note the delivery id of every request sent."""
    sent: list[str] = []

    async def on_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(params.headers.get(DELIVERY_HEADER, ""))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return (lambda: aiohttp.ClientSession(trace_configs=[trace])), sent


# ---- sign / verify ---------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    import hashlib
    import hmac

    body = b'{"event":"call_ended"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"
    assert verify(SECRET, body, f"sha256={expected}")


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "sha256=é", "garbage"],
)
def test_verify_refuses_bad_headers(header: str | None) -> None:
    assert not verify(SECRET, b"{}", header)


def test_verify_refuses_another_secret_or_body() -> None:
    header = sign(SECRET, b"{}")
    assert not verify("other", b"{}", header)
    assert not verify(SECRET, b"{} ", header)


# ---- delivery ---------------------------------------------------------------------


@pytest.mark.parametrize("second_failure", ["reset", "slow"])
async def test_retries_until_accepted_exactly_once_in_order(
    receiver: Receiver, second_failure: str
) -> None:
    receiver.script = ["500", second_failure]
    receiver.slow_seconds = 1.0
    events = EventEmitter()
    sender = WebhookSender(
        [hook(receiver.url, ("call_started", "leg_ringing", "leg_failed", "call_ended"),
              timeout=0.3, retries=2)],
        backoff=0.01,
    )
    sender.attach(events)
    await sender.start()
    call = fake_call("call-42")
    events.emit("call_started", call)
    events.emit("leg_ringing", call, fake_leg("R1"))
    events.emit("leg_failed", call, fake_leg("R1"), 486)
    events.emit("call_ended", call)
    await receiver.wait_for(4)
    await sender.stop(timeout=1.0)

    first = receiver.attempts[:3]
    assert [a.answer for a in first] == ["500", second_failure, "ok"]
    assert len({a.headers[DELIVERY_HEADER] for a in first}) == 1
    assert len({a.body for a in first}) == 1

    accepted = receiver.accepted
    assert len(accepted) == 4  # each payload accepted exactly once
    assert len({a.headers[DELIVERY_HEADER] for a in accepted}) == 4
    assert [a.payload["event"] for a in accepted] == [
        "call_started", "leg_ringing", "leg_failed", "call_ended"
    ]
    assert [a.headers[EVENT_HEADER] for a in accepted] == [
        a.payload["event"] for a in accepted
    ]
    for attempt in accepted:
        assert attempt.headers["Content-Type"] == "application/json"
        assert verify(SECRET, attempt.body, attempt.headers[SIGNATURE_HEADER])
        assert attempt.payload["call"]["id"] == "call-42"
        assert attempt.payload["call"]["tracking_number"] == "+18005550100"
        assert attempt.payload["call"]["disposition"] == "in progress"
        assert attempt.payload["call"]["legs"][0]["name"] == "R1"
        assert isinstance(attempt.payload["sent_at"], float)
    assert [(a.payload["leg"], a.payload["status"]) for a in accepted] == [
        (None, None), ("R1", None), ("R1", 486), (None, None)
    ]
    assert sender.stats() == [
        {"url": receiver.url, "queued": 0, "delivered": 4, "failed": 0, "dropped": 0}
    ]


async def test_events_the_hook_did_not_ask_for_are_not_sent(receiver: Receiver) -> None:
    events = EventEmitter()
    sender = WebhookSender([hook(receiver.url, ("call_ended",))], backoff=0.01)
    sender.attach(events)
    assert events.listeners("call_started") == []
    assert events.listeners("leg_ringing") == []
    await sender.start()
    call = fake_call()
    events.emit("call_started", call)
    events.emit("leg_dialing", call, fake_leg())
    events.emit("leg_ringing", call, fake_leg())
    events.emit("answered", call, fake_leg())
    events.emit("bridged", call)
    events.emit("call_ended", call)
    await sender.stop(timeout=2.0)
    assert [a.payload["event"] for a in receiver.attempts] == ["call_ended"]


async def test_each_hook_gets_its_own_events(receiver: Receiver, dead_url: str) -> None:
    events = EventEmitter()
    sender = WebhookSender(
        [
            hook(dead_url, ("call_started",), retries=0),
            hook(receiver.url, ("answered", "bridged")),
        ],
        backoff=0.01,
    )
    sender.attach(events)
    await sender.start()
    call = fake_call()
    events.emit("call_started", call)
    events.emit("answered", call, fake_leg("R2"))
    events.emit("bridged", call)
    await sender.stop(timeout=2.0)
    assert [(a.payload["event"], a.payload["leg"]) for a in receiver.attempts] == [
        ("answered", "R2"), ("bridged", None)
    ]


async def test_dead_endpoint_gives_up_after_retries_and_logs(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    factory, sent = counting_session()
    events = EventEmitter()
    sender = WebhookSender(
        [hook(dead_url, ("call_ended",), retries=2)], session_factory=factory, backoff=0.01
    )
    sender.attach(events)
    await sender.start()
    with caplog.at_level(logging.DEBUG, logger=LOG):
        events.emit("call_ended", fake_call("dead-1"))
        await sender.stop(timeout=5.0)  # lets the queued delivery finish failing
    assert len(sent) == 3  # the first try and 2 retries
    assert len(set(sent)) == 1  # one delivery id throughout
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert dead_url in message and "call_ended" in message and "dead-1" in message
    assert sender.stats()[0]["failed"] == 1


async def test_emitting_never_waits_for_a_dead_endpoint(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = EventEmitter()
    sender = WebhookSender(
        [hook(dead_url, ("call_started", "call_ended"), timeout=5.0, retries=3)], backoff=0.01
    )
    sender.attach(events)
    await sender.start()
    await asyncio.sleep(0)  # the worker is running
    calls = [fake_call(f"c{n}") for n in range(500)]
    began = time.perf_counter()
    for call in calls:
        events.emit("call_started", call)
        events.emit("call_ended", call)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0, f"1,000 events took {elapsed:.3f} s to emit"
    began = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger=LOG):
        await sender.stop(timeout=0.2)
    assert time.perf_counter() - began < 2.0
    assert any("undelivered" in r.getMessage() for r in caplog.records)


async def test_a_handler_failure_never_reaches_the_b2bua(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    events = EventEmitter()
    sender = WebhookSender([hook(receiver.url, ("call_ended",))])
    sender.attach(events)
    broken = SimpleNamespace(id="x", record=object())  # not a CallRecord
    with caplog.at_level(logging.ERROR, logger=LOG):
        events.emit("call_ended", broken)  # pyee would raise if the handler did
    assert any("could not queue" in r.getMessage() for r in caplog.records)
    await sender.start()
    await sender.stop(timeout=1.0)
    assert receiver.attempts == []


async def test_full_queue_drops_the_oldest_with_a_warning(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    events = EventEmitter()
    sender = WebhookSender([hook(receiver.url, ("call_ended",))], max_queue=3, backoff=0.01)
    sender.attach(events)
    with caplog.at_level(logging.WARNING, logger=LOG):
        for n in range(5):  # not started: nothing is taken off the queue yet
            events.emit("call_ended", fake_call(f"c{n}"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited: one line, then counts in the next
    assert "dropped 1 oldest" in warnings[0] and receiver.url in warnings[0]
    assert sender.stats()[0]["dropped"] == 2
    await sender.start()
    await receiver.wait_for(3)
    await sender.stop(timeout=1.0)
    assert [a.payload["call"]["id"] for a in receiver.attempts] == ["c2", "c3", "c4"]


async def test_stop_is_bounded_while_a_delivery_hangs(receiver: Receiver) -> None:
    receiver.script = ["hang"]
    events = EventEmitter()
    sender = WebhookSender([hook(receiver.url, ("call_ended",), timeout=10.0, retries=3)])
    sender.attach(events)
    await sender.start()
    events.emit("call_ended", fake_call("c1"))
    events.emit("call_ended", fake_call("c2"))
    await asyncio.wait_for(receiver.arrived.wait(), 5.0)
    began = time.perf_counter()
    await sender.stop(timeout=0.2)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.5, f"stop took {elapsed:.2f} s"
    events.emit("call_ended", fake_call("c3"))  # detached: ignored
    assert sender.stats()[0]["queued"] == 1  # c2 never went
    assert len(receiver.attempts) == 1


async def test_stop_without_start_and_no_hooks() -> None:
    sender = WebhookSender([])
    events = EventEmitter()
    sender.attach(events)
    assert events.listeners("call_ended") == []
    await sender.start()
    await sender.stop(timeout=0.1)
    idle = WebhookSender([hook("http://127.0.0.1:9/hook", ("call_ended",))])
    await idle.stop(timeout=0.1)  # never started: nothing to wait for
