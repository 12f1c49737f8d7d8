"""softswitch.records.rating: billing rounding, rate lookup, and the price of a call."""

from __future__ import annotations

import pytest

from softswitch.config import Config, ConfigError, Pattern, Rate, parse_config
from softswitch.records.model import CallRecord, Disposition, LegRecord
from softswitch.records.rating import billable_seconds, charges, price, rate_for

T0 = 1_780_000_000.0


@pytest.mark.parametrize(
    ("seconds", "minimum", "increment", "billed"),
    [
        (0.0, 60, 60, 0),
        (0, 6, 6, 0),
        (-1.0, 60, 60, 0),  # a clock step backwards bills nothing
        (0.001, 60, 60, 60),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (60.0, 60, 60, 60),
        (61, 60, 60, 120),
        (119.9, 60, 60, 120),
        (120.0001, 60, 60, 180),
        (3, 6, 6, 6),
        (6, 6, 6, 6),
        (61, 6, 6, 66),
        (66.0, 6, 6, 66),
        (3, 30, 6, 30),  # minimum 30, then 6 s steps
        (31, 30, 6, 36),
        (59.7, 1, 1, 60),
        (0.1 * 3 * 220, 6, 6, 66),  # 66.00000000000001: float noise is not a step
    ],
)
def test_billable_seconds(seconds: float, minimum: int, increment: int, billed: int) -> None:
    assert billable_seconds(seconds, minimum, increment) == billed


def test_billable_seconds_refuses_a_zero_step() -> None:
    with pytest.raises(ValueError):
        billable_seconds(10, 60, 0)


RATES = (
    Rate(prefix="+1", per_minute=0.01),
    Rate(prefix="+1", pattern=Pattern.SIMULTANEOUS, per_minute=0.012),
    Rate(prefix="+1415", per_minute=0.008),
    Rate(prefix="+1415555", pattern=Pattern.SEQUENTIAL, per_minute=0.005),
    Rate(prefix="+44", per_minute=0.03),
    Rate(prefix="+4420", pattern=Pattern.ROUND_ROBIN, per_minute=0.0),
)


@pytest.mark.parametrize(
    ("destination", "pattern", "rate"),
    [
        ("+12125550100", None, 0.01),
        ("+12125550100", "sequential", 0.01),
        ("+12125550100", "simultaneous", 0.012),  # same prefix: the pattern's entry wins
        ("+14155550100", "simultaneous", 0.008),  # a longer prefix beats a pattern match
        ("+14155550100", "sequential", 0.005),
        ("+14155550100", None, 0.008),
        ("+14165550100", "sequential", 0.01),
        ("+442079460000", "round_robin", 0.0),  # a free rate is a rate, not "none"
        ("+442079460000", "simultaneous", 0.03),
        ("+33142000000", None, None),
        ("+33142000000", "simultaneous", None),
    ],
)
def test_rate_for(destination: str, pattern: str | None, rate: float | None) -> None:
    assert rate_for(RATES, destination, pattern) == rate


def test_rate_for_without_rates() -> None:
    assert rate_for((), "+14155550100", None) is None


def config(minimum: int = 60, increment: int = 60, inbound: float = 0.0) -> Config:
    return parse_config(
        f"""
billing: {{minimum_seconds: {minimum}, increment_seconds: {increment},
           inbound_per_minute: {inbound}}}
rates:
  - {{prefix: "+1", per_minute: 0.02}}
  - {{prefix: "+1", pattern: simultaneous, per_minute: 0.03}}
  - {{prefix: "+44", per_minute: 0.10}}
"""
    )


def leg(number: int, phone: str, tried: float, answered: float | None, ended: float | None,
        status: int, outcome: str) -> LegRecord:
    return LegRecord(number, f"R{number}", phone, f"Lab R{number}", T0 + tried,
                     rang_at=T0 + tried + 0.5,
                     answered_at=None if answered is None else T0 + answered,
                     ended_at=None if ended is None else T0 + ended,
                     status=status, outcome=outcome)


def call(pattern: str | None, legs: list[LegRecord], answered: float | None,
         ended: float | None, disposition: Disposition) -> CallRecord:
    return CallRecord(
        id="c1", tracking_number="+18005550100", tracking_label="Lab 0100",
        caller_number="+14155550000", caller_name=None, pattern=pattern, started_at=T0,
        answered_at=None if answered is None else T0 + answered,
        ended_at=None if ended is None else T0 + ended, disposition=disposition, legs=legs,
    )


# Simultaneous ring of R1 (+1, 0.03 for simultaneous) and R2 (+44, 0.10): R2 answers
# at 10 s, R1 is cancelled then (it rang 10 s), the call ends at 71 s (61 s of talk).
SIMULTANEOUS = call(
    "simultaneous",
    [leg(1, "+14155550101", 0, None, 10, 487, "cancelled"),
     leg(2, "+442079460000", 0, 10, 71, 200, "answered")],
    answered=10, ended=71, disposition=Disposition.ANSWERED,
)
# The same call rung in sequence: R1 gets 20 s of ringing, no answer; R2 answers.
SEQUENTIAL = call(
    "sequential",
    [leg(1, "+14155550101", 0, None, 20, 408, "no answer"),
     leg(2, "+442079460000", 20, 30, 91, 200, "answered")],
    answered=30, ended=91, disposition=Disposition.ANSWERED,
)


@pytest.mark.parametrize(
    ("record", "minimum", "increment", "inbound", "billed", "cost"),
    [
        # 60/60.  Losing simultaneous leg R1: 10 s → 60 s at 0.03 = 0.03;
        # R2 tried at 0, ended at 71: 120 s at 0.10 = 0.20.
        (SIMULTANEOUS, 60, 60, 0.0, 180, 0.23),
        # 6/6: R1 12 s → 0.006 (10 s → 12 s at 0.03); R2 71 s → 72 s → 0.12.
        (SIMULTANEOUS, 6, 6, 0.0, 84, 0.126),
        # The caller's side: 61 s of talk → 120 s at 0.01 = 0.02 (not in billed).
        (SIMULTANEOUS, 60, 60, 0.01, 180, 0.25),
        # Sequential: only R2's talk (30 → 91 = 61 s → 120 s at 0.10 = 0.20).
        (SEQUENTIAL, 60, 60, 0.0, 120, 0.2),
        (SEQUENTIAL, 6, 6, 0.0, 66, 0.11),
        (SEQUENTIAL, 6, 6, 0.02, 66, 0.132),
    ],
    ids=["simultaneous-60", "simultaneous-6", "simultaneous-inbound", "sequential-60",
         "sequential-6", "sequential-inbound"],
)
def test_price(record: CallRecord, minimum: int, increment: int, inbound: float,
               billed: int, cost: float) -> None:
    assert price(record, config(minimum, increment, inbound)) == (billed, cost)


def test_a_simultaneous_ring_bills_its_losing_legs() -> None:
    segments = charges(SIMULTANEOUS, config(6, 6, 0.01))
    assert [(c.what, c.leg, c.billable_seconds, c.per_minute) for c in segments] == [
        ("caller", None, 66, 0.01),
        ("R1", 1, 12, 0.03),
        ("R2", 2, 72, 0.1),
    ]


def test_unanswered_calls() -> None:
    busy = call("sequential", [leg(1, "+14155550101", 0, None, 2, 486, "busy")],
                answered=None, ended=2, disposition=Disposition.BUSY)
    assert price(busy, config()) == (0, 0.0)
    rung = call("simultaneous",
                [leg(1, "+14155550101", 0, None, 30, 487, "cancelled"),
                 leg(2, "+14155550102", 0, None, 30, 487, "cancelled")],
                answered=None, ended=30, disposition=Disposition.CANCELLED)
    # Nobody answered, but both legs rang for 30 s: 60 s each at 0.03.
    assert price(rung, config(inbound=1.0)) == (120, 0.06)
    nothing = call(None, [], answered=None, ended=0.2, disposition=Disposition.FAILED)
    assert price(nothing, config()) == (0, 0.0)


def test_unrated_destination_and_interrupted_leg() -> None:
    # +33 has no rate: its seconds count, at no cost.  The leg has no ended_at
    # (softswitch was killed): it ends when the call was marked interrupted.
    record = call("round_robin", [leg(1, "+33142000000", 0, 5, None, 200, "answered")],
                  answered=5, ended=50, disposition=Disposition.INTERRUPTED)
    assert price(record, config(6, 6, 0.06)) == (48, 0.048)  # caller: 45 s → 48 s at 0.06


def test_cost_is_rounded_to_six_decimals() -> None:
    record = call("sequential", [leg(1, "+14155550101", 0, 0, 7, 200, "answered")],
                  answered=0, ended=7, disposition=Disposition.ANSWERED)
    cfg = parse_config('billing: {minimum_seconds: 1, increment_seconds: 1}\n'
                       'rates: [{prefix: "+1", per_minute: 0.0333333}]')
    assert price(record, cfg) == (7, 0.003889)  # 7/60 * 0.0333333 = 0.00388888...


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ('rates: [{prefix: "+1", per_minute: 0.02}, {prefix: "44", pattern: ring_all,'
         " per_minute: 0.1}]",
         "rates[1].pattern: got \"ring_all\"; expected one of simultaneous, round_robin, "
         "sequential, least_connected, or null for any pattern"),
        ('rates: [{prefix: "+1", per_minute: -0.5}]',
         "rates[0].per_minute: got -0.5; expected a price per minute >= 0"),
        ('rates: [{prefix: "1-800", per_minute: 1}]',
         'rates[0].prefix: got "1-800"; expected an E.164 number prefix'),
        ("rates: [{prefix: \"+1\"}]", "rates[0].per_minute: required key is missing"),
        ('rates: [{prefix: "+1", per_minut: 1}]',
         "rates[0].per_minut: unknown key (did you mean per_minute?)"),
        ('rates: [{prefix: "+1", per_minute: 1}, {prefix: "+1", per_minute: 2}]',
         'rates[1]: prefix "+1" with any pattern is already rates[0]'),
        ("billing: {minimum_seconds: 0}", "billing.minimum_seconds: got 0; expected a whole"),
        ("billing: {increment_seconds: 6.5}", "billing.increment_seconds: got 6.5"),
        ("billing: {inbound_per_minute: cheap}", "billing.inbound_per_minute: got \"cheap\""),
        ("records: {path: ''}", "records.path: got \"\"; expected the path of an SQLite"),
    ],
)
def test_config_errors_name_the_key(yaml_text: str, line: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(yaml_text, "rates.yaml")
    assert any(problem.startswith(f"rates.yaml: {line}") for problem in error.value.problems), (
        error.value.problems
    )


def test_config_defaults_and_accepted_values() -> None:
    cfg = parse_config("sip: {}")
    assert (cfg.billing.minimum_seconds, cfg.billing.increment_seconds) == (60, 60)
    assert cfg.billing.inbound_per_minute == 0.0 and cfg.rates == ()
    cfg = parse_config(
        "billing: {minimum_seconds: 6, increment_seconds: 6}\n"
        'rates: [{prefix: 44, per_minute: 0}, {prefix: "+1 415", pattern: null, per_minute: 2}]'
    )
    assert (cfg.billing.minimum_seconds, cfg.billing.increment_seconds) == (6, 6)
    assert cfg.rates == (Rate(prefix="+44", per_minute=0.0), Rate(prefix="+1415", per_minute=2.0))
    assert parse_config("rates:\nbilling:\nrecords:").rates == ()
