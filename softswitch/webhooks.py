"""Call lifecycle events POSTed to configured HTTP endpoints (``webhooks:``).

A slow or dead endpoint never delays a call
-------------------------------------------
The B2BUA emits its events synchronously (pyee), in the middle of handling SIP
messages.  The handler installed by :meth:`WebhookSender.attach` only serialises the
event once and puts it on one bounded :class:`asyncio.Queue` per hook with
``put_nowait``.  When a hook's queue is full the *oldest* waiting payload is dropped
(the newest events are the most useful) and a warning says how many were dropped.
The handler never blocks, never awaits and never raises into the B2BUA.  One worker
task per hook takes payloads off its queue and delivers them, in order.

Payload
-------
The body is a JSON object (UTF-8)::

    {"event": "leg_failed",            # one of config.WEBHOOK_EVENTS
     "call": {...},                    # records.store.record_to_dict(call.record)
     "leg": "R1",                      # the leg's receiving number name, or null
     "status": 486,                    # the SIP status for leg_failed, else null
     "sent_at": 1767225600.123}        # epoch seconds when the event happened

The call record is a snapshot taken when the event fired.

Request and signature
---------------------
Each payload is sent as ``POST <url>`` with the headers::

    Content-Type: application/json
    X-Softswitch-Event: <event>
    X-Softswitch-Delivery: <unique id, the same on every retry of one payload>
    X-Softswitch-Signature: sha256=<hex HMAC-SHA256 of the raw body, key = secret>

The HMAC key is the hook's ``secret`` encoded as UTF-8 and the message is the exact
body bytes as received (verify before parsing the JSON; re-serialising changes the
bytes).  Receivers in Python can use :func:`verify`; elsewhere compute
``hmac_sha256(secret, body)`` in lowercase hex, prefix ``sha256=`` and compare in
constant time.  A receiver should treat a repeated ``X-Softswitch-Delivery`` as a
duplicate: a delivery whose 2xx response was lost is retried.

Retries
-------
Any 2xx response is a delivery.  Anything else — another status, a connection
error, no complete response within the hook's ``timeout`` — is retried up to
``retries`` more times, waiting ``backoff`` (0.5 s), then 1 s, 2 s, 4 s, … (at most
``max_backoff``, 30 s) between tries.  After the last failure an error is logged
naming the URL, the event and the call id, and the worker moves on to the next
payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pyee import EventEmitter

from .config import WEBHOOK_EVENTS, Webhook
from .records.store import record_to_dict

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "WebhookSender",
    "sign",
    "verify",
]

log = logging.getLogger("softswitch.webhooks")

EVENT_HEADER = "X-Softswitch-Event"
SIGNATURE_HEADER = "X-Softswitch-Signature"
DELIVERY_HEADER = "X-Softswitch-Delivery"
_SCHEME = "sha256="

# At most one "queue full" warning per hook per this many seconds (the count of
# payloads dropped in between is in the next one), so a dead endpoint under load
# does not flood the log.
_DROP_WARNING_INTERVAL = 5.0


def sign(secret: str, body: bytes) -> str:
    """The ``X-Softswitch-Signature`` value for ``body``: ``sha256=<hex HMAC>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _SCHEME + digest


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    if not header:
        return False
    expected = sign(secret, body).encode("ascii")
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


@dataclass(slots=True, frozen=True)
class _Payload:
    event: str
    call_id: str
    body: bytes
    delivery_id: str


@dataclass(slots=True)
class _HookState:
    hook: Webhook
    queue: asyncio.Queue[_Payload]
    dropped: int = 0  # since the last warning
    dropped_total: int = 0
    delivered: int = 0
    failed: int = 0
    in_flight: bool = False
    last_warning: float = field(default=float("-inf"))


class WebhookSender:
    """Delivers B2BUA events to the configured webhooks; see the module docstring.

    Use: ``sender.attach(b2bua.events)``, ``await sender.start()`` and, at shutdown,
    ``await sender.stop(timeout)``.  Events emitted before :meth:`start` wait in the
    queues.  ``session_factory`` builds the aiohttp session (tests may add tracing);
    ``backoff`` is the first pause between tries, doubled after each, capped at
    ``max_backoff``.
    """

    def __init__(
        self,
        hooks: Sequence[Webhook],
        *,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        max_queue: int = 10000,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._states = [_HookState(hook, asyncio.Queue(maxsize=max_queue)) for hook in hooks]
        self._session_factory = session_factory or aiohttp.ClientSession
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._attached: list[tuple[EventEmitter, str, Callable[..., None]]] = []
        self._stopping = False

    # ---- counters ------------------------------------------------------------

    def stats(self) -> list[dict[str, Any]]:
        """Per hook: url, queued, delivered, failed (gave up) and dropped payloads."""
        return [
            {
                "url": state.hook.url,
                "queued": state.queue.qsize(),
                "delivered": state.delivered,
                "failed": state.failed,
                "dropped": state.dropped_total,
            }
            for state in self._states
        ]

    # ---- wiring to the B2BUA ---------------------------------------------------

    def attach(self, events: EventEmitter) -> None:
        """Listen on ``events`` for every event some hook asked for."""
        wanted = {name for state in self._states for name in state.hook.events}
        for name in WEBHOOK_EVENTS:  # a fixed order, whatever the config's
            if name in wanted:
                handler = self._handler(name)
                events.on(name, handler)
                self._attached.append((events, name, handler))
        for name in sorted(wanted.difference(WEBHOOK_EVENTS)):
            log.warning("webhooks: %r is not a call event; ignored", name)

    def detach(self) -> None:
        """Stop listening (events already queued are still delivered)."""
        for events, name, handler in self._attached:
            try:
                events.remove_listener(name, handler)
            except KeyError:
                pass
        self._attached.clear()

    def _handler(self, name: str) -> Callable[..., None]:
        states = [state for state in self._states if name in state.hook.events]

        def handle(call: Any, *args: Any) -> None:
            # Runs inside the B2BUA: must be quick and must never raise.
            try:
                if self._stopping:
                    return
                body = _body(name, call, args)
                call_id = str(call.id)
                for state in states:
                    self._enqueue(state, _Payload(name, call_id, body, uuid.uuid4().hex))
            except Exception:
                log.exception("webhooks: could not queue %s", name)

        return handle

    def _enqueue(self, state: _HookState, payload: _Payload) -> None:
        queue = state.queue
        while True:
            try:
                queue.put_nowait(payload)
                return
            except asyncio.QueueFull:
                pass
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:  # pragma: no cover - only if maxsize is 0
                continue
            queue.task_done()
            state.dropped += 1
            state.dropped_total += 1
            now = time.monotonic()
            if now - state.last_warning >= _DROP_WARNING_INTERVAL:
                log.warning(
                    "webhook %s: queue full (%d waiting): dropped %d oldest payload(s) "
                    "(%d in all)",
                    state.hook.url,
                    queue.maxsize,
                    state.dropped,
                    state.dropped_total,
                )
                state.dropped = 0
                state.last_warning = now

    # ---- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start one worker per hook."""
        if self._session is not None:
            raise RuntimeError("WebhookSender already started")
        self._stopping = False
        self._session = self._session_factory()
        self._workers = [
            asyncio.create_task(self._worker(state), name=f"webhook {state.hook.url}")
            for state in self._states
        ]

    async def stop(self, timeout: float) -> None:
        """Stop taking events, let queued deliveries finish for up to ``timeout``
        seconds, then cancel what is left and close the session."""
        self._stopping = True
        self.detach()
        if self._workers:
            joins = [asyncio.create_task(state.queue.join()) for state in self._states]
            _, pending = await asyncio.wait(joins, timeout=max(timeout, 0.0))
            for task in pending:
                task.cancel()
            left = sum(s.queue.qsize() + s.in_flight for s in self._states)
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, *joins, return_exceptions=True)
            self._workers = []
            if left:
                log.warning(
                    "webhooks: stopped after %g s with %d payload(s) undelivered", timeout, left
                )
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ---- delivery ------------------------------------------------------------

    async def _worker(self, state: _HookState) -> None:
        while True:
            payload = await state.queue.get()
            state.in_flight = True
            try:
                if await self._deliver(state.hook, payload):
                    state.delivered += 1
                else:
                    state.failed += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the hook's deliveries
                state.failed += 1
                log.exception(
                    "webhook %s: could not deliver %s for call %s",
                    state.hook.url,
                    payload.event,
                    payload.call_id,
                )
            finally:
                state.in_flight = False
                state.queue.task_done()

    async def _deliver(self, hook: Webhook, payload: _Payload) -> bool:
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: payload.event,
            SIGNATURE_HEADER: sign(hook.secret, payload.body),
            DELIVERY_HEADER: payload.delivery_id,
        }
        timeout = aiohttp.ClientTimeout(total=hook.timeout)
        tries = hook.retries + 1
        why = ""
        for attempt in range(1, tries + 1):
            if attempt > 1:
                await asyncio.sleep(min(self._backoff * 2 ** (attempt - 2), self._max_backoff))
            why = await self._post(hook.url, payload.body, headers, timeout)
            if not why:
                return True
            log.debug(
                "webhook %s: try %d/%d of %s for call %s failed: %s",
                hook.url,
                attempt,
                tries,
                payload.event,
                payload.call_id,
                why,
            )
        log.error(
            "webhook %s: gave up on %s for call %s after %d tries: %s",
            hook.url,
            payload.event,
            payload.call_id,
            tries,
            why,
        )
        return False

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> str:
        """One try: "" when delivered, else why not."""
        session = self._session
        assert session is not None, "start() first"
        try:
            async with session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.read()  # lets the connection be reused
                if 200 <= resp.status < 300:
                    return ""
                return f"HTTP {resp.status}"
        except TimeoutError:
            return f"no response within {timeout.total:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _body(name: str, call: Any, args: tuple[Any, ...]) -> bytes:
    leg = args[0] if args else None
    status = args[1] if name == "leg_failed" and len(args) > 1 else None
    payload = {
        "event": name,
        "call": record_to_dict(call.record),
        "leg": None if leg is None else str(leg.target.name),
        "status": status,
        "sent_at": time.time(),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
