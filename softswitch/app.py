"""Wires config → cores → asyncio endpoints, handles signals, and nothing else.

SIGTERM (and SIGINT) drains: new INVITEs get 503, calls in progress may finish, and
after ``drain_limit`` seconds whatever is left is ended (BYE, or CANCEL and 503 for
calls still ringing); the process then exits 0.  SIGHUP reloads the config: a config
that does not validate is refused with the reason and the old one stays; calls in
progress keep the plan they started with.  SIGUSR1 logs one line of live counts
(calls, transactions, dialogs, timers, tasks, RTP streams) as JSON, for leak checks, and one of
the endpoint's event counters (parse errors, stray responses, absorbed
retransmissions, transaction timeouts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import time
from functools import partial
from pathlib import Path

from aiohttp import web

from .api.server import start_api, stop_api
from .b2bua.call import Call
from .b2bua.service import B2BUA
from .config import Config, ConfigError, Listen, load_config
from .control import Control
from .media.files import load_audio
from .media.relay import RelayEngine
from .records.store import RecordStore
from .sip.endpoint import EndpointConfig
from .sip.message import Limits
from .sip.transaction import Timers
from .sip.transport import ListenAddress, SipTransport
from .webhooks import WebhookSender

log = logging.getLogger("softswitch")

# After the drain limit, how long the final BYE/CANCEL exchanges may take.
TEARDOWN_GRACE = 5.0
# How long queued webhook deliveries may take at shutdown.
WEBHOOK_GRACE = 5.0


def endpoint_config(config: Config, listens: list[Listen]) -> EndpointConfig:
    local: dict[str, tuple[str, int]] = {}
    for listen in listens:
        host = config.sip.public_host or listen.host
        local.setdefault(listen.transport, (host, listen.port))
    for transport in ("udp", "tcp"):
        # Legs over a transport we do not listen on still need a Via and a Contact.
        local.setdefault(transport, next(iter(local.values())))
    timers = config.sip.timers
    limits = config.sip.limits
    return EndpointConfig(
        local=local,
        timers=Timers(t1=timers.t1, t2=timers.t2, t4=timers.t4),
        limits=Limits(limits.max_message_bytes, limits.max_headers, limits.max_line_bytes),
        user_agent=config.sip.user_agent,
    )


# Call records are committed in batches at most this long after they were written:
# one SQLite commit per batch instead of two per call (see README, Benchmark).
RECORD_COMMIT_DELAY = 0.01


def _record_calls(b2bua: B2BUA, store: RecordStore, loop: asyncio.AbstractEventLoop) -> None:
    """Every call is in the store from its start (so a crash leaves it to be marked
    interrupted) and completed exactly once when it ends; writes are committed within
    ``RECORD_COMMIT_DELAY``.  A failing store is logged, never allowed to disturb the
    call."""
    store.defer_commits()
    pending: list[asyncio.TimerHandle] = []

    def commit() -> None:
        pending.clear()
        try:
            store.commit()
        except sqlite3.Error:
            log.exception("could not commit call records")

    def written() -> None:
        if not pending:
            pending.append(loop.call_later(RECORD_COMMIT_DELAY, commit))

    def started(call: Call) -> None:
        try:
            store.start(call.record)
        except sqlite3.Error:
            log.exception("call %s: could not store the call's start", call.id)
        written()

    def ended(call: Call) -> None:
        try:
            store.finish(call.record)
        except sqlite3.Error:
            log.exception("call %s: could not store the call record", call.id)
        written()

    b2bua.events.on("call_started", started)
    b2bua.events.on("call_ended", ended)


class LoopLag:
    """How late the event loop runs a callback due every ``interval`` (a gauge for the
    metrics); a chain of timer callbacks, not a task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.5) -> None:
        self.loop = loop
        self.interval = interval
        self.value = 0.0
        self._handle = loop.call_at(loop.time() + interval, self._tick, loop.time() + interval)

    def _tick(self, expected: float) -> None:
        now = self.loop.time()
        self.value = max(0.0, now - expected)
        self._handle = self.loop.call_at(now + self.interval, self._tick, now + self.interval)

    def stop(self) -> None:
        self._handle.cancel()


class App:
    def __init__(
        self, config: Config, config_path: Path, listens: list[Listen] | None = None
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.listens = listens or list(config.sip.listen)
        self._stop = asyncio.Event()

    def _open_store(self) -> RecordStore | None:
        try:
            store = RecordStore(self.config.records.path)
        except (OSError, sqlite3.Error) as exc:
            log.error("cannot open the call records at %s: %s", self.config.records.path, exc)
            return None
        interrupted = store.recover(time.time())
        if interrupted:
            log.warning(
                "%d calls were in progress when softswitch last stopped: recorded as interrupted",
                interrupted,
            )
        return store

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        store = self._open_store()
        if store is None:
            return 1
        media = RelayEngine(loop, self.config.media.host, self.config.media.ports)
        b2bua = B2BUA(
            self.config,
            endpoint_config(self.config, self.listens),
            epoch_offset=time.time() - loop.time(),
            media=media,
        )
        _record_calls(b2bua, store, loop)
        edge = SipTransport(b2bua.endpoint, self.config.sip.limits.tcp_buffer_bytes)
        # A digit or an RTP timeout makes a call act: send what it queued, as after SIP.
        media.after_event = edge.flush
        lag = LoopLag(loop)
        webhooks = WebhookSender(self.config.webhooks)
        webhooks.attach(b2bua.events)
        api: web.AppRunner | None = None
        try:
            await edge.start([ListenAddress(x.transport, x.host, x.port) for x in self.listens])
            control = Control(
                b2bua,
                store,
                now=loop.time,
                flush=edge.flush,
                reload=partial(self._reload, b2bua),
                loop_lag=lambda: lag.value,
            )
            if self.config.api.token:
                api = await start_api(control, self.config.api)
            else:
                log.info("management API off: the config has no api.token")
        except OSError as exc:
            log.error("cannot listen: %s", exc)
            await edge.close()
            media.close()
            lag.stop()
            store.close()
            return 1
        await webhooks.start()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload, b2bua)
        loop.add_signal_handler(signal.SIGUSR1, self._stats, b2bua)
        log.info("softswitch ready with %d tracking numbers", len(self.config.tracking_numbers))
        await self._stop.wait()
        await self._drain(b2bua, edge)
        await webhooks.stop(WEBHOOK_GRACE)
        if api is not None:
            await stop_api(api)
        await edge.close()
        media.close()
        lag.stop()
        store.commit()
        store.close()
        self._stats(b2bua)
        log.info("stopped")
        return 0

    async def _drain(self, b2bua: B2BUA, edge: SipTransport) -> None:
        loop = asyncio.get_running_loop()
        b2bua.start_draining()
        limit = self.config.drain_limit
        log.info("draining: %d calls in progress, limit %.0f s", len(b2bua.calls), limit)
        deadline = loop.time() + limit
        while b2bua.calls and loop.time() < deadline:
            await asyncio.sleep(0.1)
        if b2bua.calls:
            log.info("drain limit reached: ending %d calls", len(b2bua.calls))
            b2bua.hangup_all(loop.time(), "drain limit")
            edge.flush()
            grace = loop.time() + TEARDOWN_GRACE
            while b2bua.calls and loop.time() < grace:
                await asyncio.sleep(0.1)

    def _reload(self, b2bua: B2BUA) -> tuple[bool, str]:
        """SIGHUP and the API's reload: validated first; a bad config changes nothing.
        Calls in progress keep the routing they started with (their router holds the
        config it was made with); new calls use the new config.  Listen addresses, the
        API and webhooks take effect at the next start."""
        try:
            config = load_config(self.config_path)
            load_audio(config, str(self.config_path))
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            return False, str(exc)
        b2bua.reconfigure(config)
        self.config = config
        message = (
            f"config reloaded from {self.config_path}: "
            f"{len(config.tracking_numbers)} tracking numbers"
        )
        log.info("%s", message)
        return True, message

    def _stats(self, b2bua: B2BUA) -> None:
        counts = b2bua.stats()
        counts["tasks"] = len(asyncio.all_tasks())
        counters = dict(b2bua.endpoint.counters)
        if b2bua.media is not None:
            media = b2bua.media.stats()
            counts["rtp_streams"] = media.pop("rtp_streams", 0)
            media.pop("rtp_ports_active", None)
            counters.update(media)
        log.info("stats %s", json.dumps(counts, sort_keys=True))
        log.info("counters %s", json.dumps(counters, sort_keys=True))
