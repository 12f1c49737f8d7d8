"""What the management API may see and do in the running softswitch.

One small facade between the HTTP edge (``softswitch/api/``) and the core: it reads
live calls, records and counters as plain JSON-ready values, hangs up a call, and
reloads the config exactly as SIGHUP does.  The API never touches calls, the store
or the endpoint directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from . import __version__
from .b2bua.call import Call
from .b2bua.service import B2BUA
from .records.model import Disposition
from .records.store import RecordStore, record_to_dict

Json = dict[str, Any]


class RecordsView:
    """Stored call records as JSON-ready values (what the API serves from the store)."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    def records(
        self, *, limit: int = 100, offset: int = 0, **filters: Any
    ) -> tuple[list[Json], int]:
        """Stored call records, newest first, and how many match in all."""
        found = self.store.query(limit=limit, offset=offset, **filters)
        return [record_to_dict(r) for r in found], self.store.count(**filters)

    def record(self, call_id: str) -> Json | None:
        found = self.store.get(call_id)
        return None if found is None else record_to_dict(found)


class Control(RecordsView):
    def __init__(
        self,
        b2bua: B2BUA,
        store: RecordStore,
        *,
        now: Callable[[], float],
        flush: Callable[[], None],
        reload: Callable[[], tuple[bool, str]],
        loop_lag: Callable[[], float],
    ) -> None:
        super().__init__(store)
        self.b2bua = b2bua
        self._now = now
        self._flush = flush
        self._reload = reload
        self._loop_lag = loop_lag
        self.started = now()
        self.dispositions: Counter[str] = Counter()
        b2bua.events.on("call_ended", self._ended)

    def _ended(self, call: Call) -> None:
        self.dispositions[call.record.disposition.value] += 1

    # ---- health ------------------------------------------------------------------------

    def health(self) -> Json:
        return {
            "status": "draining" if self.b2bua.draining else "ok",
            "version": __version__,
            "uptime_seconds": round(self._now() - self.started, 3),
            "calls_in_progress": len(self.b2bua.calls),
        }

    def ready(self) -> bool:
        """Ready to take calls: not draining."""
        return not self.b2bua.draining

    # ---- live calls --------------------------------------------------------------------

    def live_calls(self) -> list[Json]:
        return [self._call(call) for call in self.b2bua.calls.values()]

    def call(self, call_id: str) -> Json | None:
        call = self.b2bua.calls.get(call_id)
        return None if call is None else self._call(call)

    def hangup(self, call_id: str) -> bool:
        """End a live call from softswitch's side (BYE, or CANCEL and 503 if ringing)."""
        call = self.b2bua.calls.get(call_id)
        if call is None:
            return False
        call.hangup(None, self._now(), "hung up through the management API")
        self._flush()
        return True

    @staticmethod
    def _call(call: Call) -> Json:
        record = record_to_dict(call.record)
        record["state"] = call.state.value
        for leg, out in zip(call.outbound, record["legs"], strict=False):
            out["state"] = leg.state.value
        return record

    # ---- config ------------------------------------------------------------------------

    def reload(self) -> tuple[bool, str]:
        """Reload the config file (as SIGHUP): (True, summary) or (False, every problem)."""
        return self._reload()

    # ---- agents, queues, registrations (issue #5) -----------------------------------------

    def agents(self) -> list[Json]:
        """Every configured agent: registered phones, calls in progress, queue states."""
        b2bua = self.b2bua
        now = self._now()
        states: dict[str, list[Json]] = {}
        for queue in b2bua.queues.snapshot(now):
            members: list[Json] = queue["members"]  # type: ignore[assignment]
            for member in members:
                states.setdefault(member["name"], []).append(
                    {"queue": queue["name"], "state": member["state"]}
                )
        return [
            {
                "name": name,
                "registered": len(b2bua.contacts(name)),
                "calls_in_progress": b2bua.counters.in_progress(name),
                "queues": states.get(name, []),
            }
            for name in b2bua.config.agents
        ]

    def queues(self) -> list[Json]:
        """Live queues: waiting callers (position, seconds waited) and members' states."""
        return self.b2bua.queues.snapshot(self._now())

    def registrations(self) -> list[Json]:
        """Current bindings: agent, contact, where it registered from, seconds left."""
        now = self._now()
        return [
            {
                "agent": binding.aor,
                "contact": binding.contact,
                "source": f"{binding.source[0]}:{binding.source[1]}",
                "transport": binding.transport,
                "expires_in": max(0, round(binding.expires_at - now)),
                "registered_at": self.b2bua.wall(binding.registered_at),
            }
            for binding in self.b2bua.registrar.bindings(now)
        ]

    # ---- metrics ---------------------------------------------------------------------

    def _media_stats(self) -> dict[str, int]:
        names = ("rtp_packets_relayed", "rtp_packets_lost", "rtp_ports_active")
        media = self.b2bua.media
        stats = media.stats() if media is not None else {}
        return {name: stats.get(name, 0) for name in names}

    def metrics(self) -> Json:
        """Counters and gauges for the Prometheus exposition (read at scrape time)."""
        endpoint = self.b2bua.endpoint
        counters = endpoint.counters
        return {
            "calls_in_progress": len(self.b2bua.calls),
            "calls_by_disposition": {
                d.value: self.dispositions[d.value]
                for d in Disposition
                if d is not Disposition.IN_PROGRESS
            },
            "sip_messages": dict(endpoint.messages),  # "in INVITE", "out 200", ...
            "transaction_timeouts": counters.get("transaction_timeouts", 0),
            "retransmissions_received": counters.get("retransmissions_absorbed", 0),
            "parse_errors": counters.get("parse_errors", 0),
            "transactions": len(endpoint.client_transactions) + len(endpoint.server_transactions),
            **self._media_stats(),
            "event_loop_lag_seconds": self._loop_lag(),
        }
