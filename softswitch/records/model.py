"""The call record: one per call, the product's output as much as the connected call.

Values only (no I/O).  The B2BUA fills a :class:`CallRecord` as the call goes and
hands it to the store when the call starts and when it ends; every teardown path
ends in exactly one ``finish``.  Times are wall-clock seconds since the epoch (UTC),
taken when the message that caused them arrived at the socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Disposition(StrEnum):
    IN_PROGRESS = "in progress"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no answer"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the caller hung up before anyone answered
    FAIL_SAFE = "fail-safe"  # answered by the tracking number's fail-safe number
    INTERRUPTED = "interrupted"  # softswitch stopped (crash, SIGKILL) during the call


@dataclass(slots=True)
class LegRecord:
    """One outbound leg: a receiving number tried for this call."""

    number: int  # 1, 2, ... in the order dialled
    name: str  # receiving number name in the config
    phone: str  # its E.164 number
    label: str
    tried_at: float
    rang_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    status: int | None = None  # the final SIP status (or the one softswitch gave it)
    outcome: str | None = None  # answered, busy, no answer, failed, unreachable, cancelled
    reason: str | None = None  # e.g. 'SIP;cause=200;text="Call completed elsewhere"'


@dataclass(slots=True)
class CallRecord:
    id: str
    tracking_number: str
    tracking_label: str
    caller_number: str
    caller_name: str | None
    pattern: str | None  # the dial pattern of the route that answered (for rating)
    started_at: float
    first_ring_at: float | None = None
    answered_at: float | None = None
    bridged_at: float | None = None
    ended_at: float | None = None
    hangup_by: str | None = None  # caller, callee, softswitch
    disposition: Disposition = Disposition.IN_PROGRESS
    final_status: int | None = None  # what the caller got: 200, or the error status
    tags: dict[str, str] = field(default_factory=dict)
    legs: list[LegRecord] = field(default_factory=list)
    billable_seconds: int = 0
    cost: float = 0.0

    @property
    def ring_seconds(self) -> float | None:
        end = self.answered_at or self.ended_at
        return None if end is None else end - self.started_at

    @property
    def talk_seconds(self) -> float:
        if self.answered_at is None or self.ended_at is None:
            return 0.0
        return self.ended_at - self.answered_at

    @property
    def total_seconds(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at
