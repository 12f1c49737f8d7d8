"""Rating: what a finished call costs.  Pure functions, no I/O.

The rule
--------
A call is billed in *segments*, each rounded on its own (:func:`billable_seconds`:
nothing for 0 s, otherwise at least ``billing.minimum_seconds``, then up to the next
multiple of ``billing.increment_seconds``) and priced per minute::

    cost(segment) = billable_seconds / 60 * per_minute

* **The caller's side** (the tracking number) is one segment: the answered call's
  talk time (``CallRecord.answered_at`` → ``ended_at``) at
  ``billing.inbound_per_minute``.  An unanswered call has no caller-side segment.
* **Each outbound leg** is billed at its destination's rate (:func:`rate_for` on
  ``LegRecord.phone`` and the call's ``CallRecord.pattern``):

  - with the ``simultaneous`` pattern every leg that was dialled is billed for its
    own time up, ``tried_at`` → ``ended_at`` — simultaneous rings cost every leg's
    minutes, the losing legs' included;
  - with any other pattern (or none recorded) only an answered leg is billed, for
    its talk time, ``answered_at`` → ``ended_at``.

  A leg without ``ended_at`` (an interrupted call) ends when the call ended; a leg
  whose destination no rate matches is billed its seconds at no cost.

:func:`price` returns ``(billable seconds, cost)``: the billable seconds are the sum
over the *outbound legs* (the minutes the rate table prices, what a carrier bills);
the cost is the sum over every segment, the caller's side included, rounded to 6
decimals.  :func:`charges` lists the segments, for anyone who wants to show the sum.

Rate lookup: among the ``rates:`` entries whose prefix starts the destination's
E.164 number, the longest prefix wins; between entries with the same prefix, the
one naming the call's pattern beats the one without (``pattern: null``).  So a
``+1415`` entry for any pattern beats a ``+1`` entry for ``simultaneous``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from softswitch.config import BillingSettings, Config, Rate

from .model import CallRecord, LegRecord

__all__ = ["Charge", "billable_seconds", "charges", "price", "rate_for"]

SIMULTANEOUS = "simultaneous"


def billable_seconds(seconds: float, minimum: int, increment: int) -> int:
    """``seconds`` of call time as billed: 0 for none, else at least ``minimum``,
    then rounded up to a multiple of ``increment``.

    61 s at 60/60 → 120; 61 s at 6/6 → 66; 3 s at 6/6 → 6; 0.0 → 0.
    """
    if minimum <= 0 or increment <= 0:
        raise ValueError(f"minimum ({minimum}) and increment ({increment}) must be > 0")
    if not seconds > 0:  # 0, negative (clock step) and NaN bill nothing
        return 0
    billed = max(float(seconds), float(minimum))
    # Round through a millisecond first so 66.00000000001 (float noise) stays 66.
    steps = math.ceil(round(billed / increment, 9))
    return int(steps * increment)


def rate_for(rates: Iterable[Rate], destination_e164: str, pattern: str | None) -> float | None:
    """The per-minute rate for a leg to ``destination_e164`` rung with ``pattern``;
    None when no entry matches.  Longest prefix first, then an entry naming
    ``pattern`` before one for any pattern."""
    best: tuple[int, int] | None = None
    found: float | None = None
    for rate in rates:
        if not destination_e164.startswith(rate.prefix):
            continue
        if rate.pattern is not None and rate.pattern.value != pattern:
            continue
        rank = (len(rate.prefix), 0 if rate.pattern is None else 1)
        if best is None or rank > best:
            best, found = rank, rate.per_minute
    return found


@dataclass(frozen=True, slots=True)
class Charge:
    """One billed segment of a call."""

    what: str  # "caller" or the leg's receiving number name
    leg: int | None  # the leg's number; None for the caller's side
    seconds: float  # the time used
    billable_seconds: int
    per_minute: float | None  # None: no rate matched (billed at no cost)
    cost: Decimal


def _segment(
    what: str, leg: int | None, seconds: float, per_minute: float | None,
    billing: BillingSettings,
) -> Charge:
    billed = billable_seconds(seconds, billing.minimum_seconds, billing.increment_seconds)
    rate = Decimal(0) if per_minute is None else Decimal(str(per_minute))
    return Charge(what, leg, max(seconds, 0.0), billed, per_minute, rate * billed / 60)


def _leg_seconds(leg: LegRecord, record: CallRecord, simultaneous: bool) -> float:
    end = leg.ended_at if leg.ended_at is not None else record.ended_at
    start = leg.tried_at if simultaneous else leg.answered_at
    if start is None or end is None:
        return 0.0
    return end - start


def charges(record: CallRecord, config: Config) -> list[Charge]:
    """The billed segments of ``record``: the caller's side (when answered) first,
    then each billed outbound leg in dialling order."""
    billing = config.billing
    out: list[Charge] = []
    if record.answered_at is not None and record.ended_at is not None:
        out.append(
            _segment("caller", None, record.talk_seconds, billing.inbound_per_minute, billing)
        )
    simultaneous = record.pattern == SIMULTANEOUS
    for leg in record.legs:
        if not simultaneous and leg.answered_at is None:
            continue
        seconds = _leg_seconds(leg, record, simultaneous)
        rate = rate_for(config.rates, leg.phone, record.pattern)
        out.append(_segment(leg.name, leg.number, seconds, rate, billing))
    return out


def price(record: CallRecord, config: Config) -> tuple[int, float]:
    """``(billable seconds of the outbound legs, total cost)`` of ``record`` per the
    rule in the module docstring; the cost is rounded to 6 decimals."""
    segments = charges(record, config)
    billed = sum(c.billable_seconds for c in segments if c.leg is not None)
    cost = sum((c.cost for c in segments), Decimal(0))
    return billed, float(cost.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))
