"""Prometheus exposition of the softswitch's counters (``GET /metrics``).

A custom :mod:`prometheus_client` collector on a private registry (never the
process-global one, so two softswitch instances in one test process do not
collide): every scrape calls ``control.metrics()`` once and turns that snapshot
into metric families.  Nothing is counted here; the core keeps the counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["CONTENT_TYPE", "MetricsSource", "SoftswitchCollector", "make_registry", "render"]

# The Prometheus text exposition format 0.0.4 (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsSource(Protocol):
    def metrics(self) -> Mapping[str, Any]: ...


def _number(snapshot: Mapping[str, Any], key: str) -> float:
    value = snapshot.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def _split_message_key(key: str) -> tuple[str, str]:
    """``"in INVITE"`` → ("in", "INVITE"); ``"out 200"`` → ("out", "200")."""
    direction, _, kind = key.partition(" ")
    if not kind:
        return "", direction
    return direction, kind


class SoftswitchCollector(Collector):
    """Reads ``source.metrics()`` at scrape time and yields the softswitch_* families."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        snapshot = self.source.metrics()

        yield GaugeMetricFamily(
            "softswitch_calls_in_progress",
            "Calls in progress now.",
            value=_number(snapshot, "calls_in_progress"),
        )

        calls = CounterMetricFamily(
            "softswitch_calls",
            "Calls ended since start, by disposition.",
            labels=["disposition"],
        )
        for disposition, count in sorted(dict(snapshot.get("calls_by_disposition", {})).items()):
            calls.add_metric([str(disposition)], float(count))
        yield calls

        messages = CounterMetricFamily(
            "softswitch_sip_messages",
            "SIP messages received (in) and sent (out), by method (requests) or status "
            "code (responses).",
            labels=["direction", "kind"],
        )
        for key, count in sorted(dict(snapshot.get("sip_messages", {})).items()):
            direction, kind = _split_message_key(str(key))
            messages.add_metric([direction, kind], float(count))
        yield messages

        for name, key, text in (
            ("softswitch_transaction_timeouts", "transaction_timeouts",
             "SIP transactions that timed out without a final response or ACK."),
            ("softswitch_retransmissions_received", "retransmissions_received",
             "Retransmitted SIP messages received and absorbed by a transaction."),
            ("softswitch_parse_errors", "parse_errors",
             "Received datagrams or stream messages that did not parse as SIP."),
            ("softswitch_rtp_packets_relayed", "rtp_packets_relayed",
             "RTP packets relayed by the media anchor."),
            ("softswitch_rtp_packets_lost", "rtp_packets_lost",
             "RTP packets seen missing (sequence gaps) by the media anchor."),
        ):
            yield CounterMetricFamily(name, text, value=_number(snapshot, key))

        for name, key, text in (
            ("softswitch_transactions", "transactions", "SIP transactions alive now."),
            ("softswitch_rtp_ports_active", "rtp_ports_active", "RTP ports in use now."),
            ("softswitch_event_loop_lag_seconds", "event_loop_lag_seconds",
             "How late the asyncio event loop last ran a timer, in seconds."),
        ):
            yield GaugeMetricFamily(name, text, value=_number(snapshot, key))


def make_registry(source: MetricsSource) -> CollectorRegistry:
    """A private registry holding only the softswitch collector for ``source``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SoftswitchCollector(source))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format 0.0.4 (see :data:`CONTENT_TYPE`)."""
    return generate_latest(registry)
