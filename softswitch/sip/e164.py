"""E.164 telephone numbers: one canonical spelling for every way a number is written.

Theory
------
ITU-T E.164 numbers are at most 15 digits: a country calling code of one to three
digits followed by the national significant number.  The canonical written form,
used everywhere inside softswitch (config keys, routing, call records), is ``+``
followed by those digits and nothing else: ``+18005550100``.

Callers and users write the same number in many ways, and all of them must mean the
same tracking number:

* ``+18005550100`` – already canonical;
* ``18005550100`` – digits without ``+``; trunks often send this in the Request-URI
  user part, and it is taken to *include* the country code (we never guess a
  national dialling plan);
* ``+1 (800) 555-0100``, ``+1-800-555-0100``, ``+1.800.555.0100`` – RFC 3966 §5.1.1
  visual separators (``-``, ``.``, ``(``, ``)``) and, for people typing numbers into
  YAML, spaces; all are removed;
* ``tel:+1-800-555-0100`` and ``tel:+18005550100;phone-context=example.com`` – a
  ``tel:`` URI (RFC 3966); its parameters after ``;`` say nothing about the digits
  and are ignored;
* ``%2B18005550100`` – a SIP user part with the ``+`` percent-escaped
  (RFC 3261 §19.1.2 allows escaping any user-part character).

Anything else is rejected with :class:`NumberError`, whose message says what was
wrong and what was expected, so a bad config key or Request-URI can be reported
as it is.

Country calling codes (ITU-T E.164 assignment list) are prefix-free: once the first
digit (the "zone") and, for most zones, the second digit are known, the length of
the code is fixed.  Zones 1 (NANP) and 7 have one-digit codes; a short list of
two-digit codes exists; every other code has three digits.  That rule, in
:func:`country_code`, is exact for every assigned code and gives the first three
digits for spare (unassigned) codes.

This module is part of the sans-IO SIP core: pure functions, standard library only.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

__all__ = ["NumberError", "normalize", "country_code", "is_nanp"]

# E.164 §6.1: a number is at most 15 digits.  Seven is the practical lower bound
# for a dialable international number (country code plus the shortest national
# numbers in use); anything shorter is a short code or a typo.
MIN_DIGITS = 7
MAX_DIGITS = 15

# RFC 3966 §5.1.1 visual separators, plus space (people write numbers that way).
_SEPARATORS = str.maketrans("", "", " -.()")
_DIGITS = frozenset("0123456789")

_EXPECTED = (
    "expected an E.164 number: '+', country code and number, "
    f"{MIN_DIGITS} to {MAX_DIGITS} digits in all, like +14155550100"
)

# The two-digit ITU country calling codes.  With zone 1 (NANP) and zone 7
# (Russia, Kazakhstan) having one-digit codes, every code not listed here has
# three digits (ITU-T E.164 assigned codes, e.g. 353 Ireland, 420 Czechia,
# 852 Hong Kong, 971 United Arab Emirates).
_ONE_DIGIT_CODES = frozenset({"1", "7"})
_TWO_DIGIT_CODES = frozenset(
    # Egypt, South Africa; Europe; South and Central America; South-East Asia and
    # Oceania; East Asia; West, South and Central Asia.
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)


def _quote(text: str) -> str:
    # Double quotes, as the text would be written in YAML or a SIP header.
    return json.dumps(text, ensure_ascii=False)


class NumberError(ValueError):
    """A string that is not a telephone number we can put in E.164 form.

    The message names the offending text, what was wrong with it, and what was
    expected, e.g. ``"+1 800 CALL" contains letters; expected an E.164 number…``.
    """


def normalize(text: str) -> str:
    """Return the canonical E.164 form ``+<digits>`` of ``text``.

    Raises :class:`NumberError` for empty input, letters or other stray
    characters, a ``+`` anywhere but first, a leading ``0`` (no country code starts
    with 0) and digit counts outside 7–15.
    """
    # Percent-escapes first: "%2B1800…" is how "+" arrives in some user parts.
    # unquote() leaves a literal "+" alone (unlike unquote_plus()).
    candidate = unquote(text).strip()
    if candidate[:4].lower() == "tel:":
        candidate = candidate[4:]
    # RFC 3966 parameters (";phone-context=…", ";ext=…") follow the number.
    candidate = candidate.split(";", 1)[0]
    candidate = candidate.translate(_SEPARATORS)

    if not candidate:
        raise NumberError(f"{_quote(text)} is empty; {_EXPECTED}")
    if any(ch.isalpha() for ch in candidate):
        raise NumberError(f"{_quote(text)} contains letters; {_EXPECTED}")
    digits = candidate.removeprefix("+")
    if "+" in digits:
        raise NumberError(f"{_quote(text)} has a '+' that is not at the start; {_EXPECTED}")
    stray = sorted({ch for ch in digits if ch not in _DIGITS})
    if stray:
        shown = " ".join(repr(ch) for ch in stray)
        raise NumberError(f"{_quote(text)} contains {shown}; {_EXPECTED}")
    if not digits:
        raise NumberError(f"{_quote(text)} has no digits; {_EXPECTED}")
    if digits[0] == "0":
        raise NumberError(
            f"{_quote(text)} starts with 0 where the country code belongs "
            f"(write national numbers with '+' and the country code); {_EXPECTED}"
        )
    if len(digits) < MIN_DIGITS:
        raise NumberError(f"{_quote(text)} has only {len(digits)} digits; {_EXPECTED}")
    if len(digits) > MAX_DIGITS:
        raise NumberError(f"{_quote(text)} has {len(digits)} digits; {_EXPECTED}")
    return "+" + digits


def country_code(e164: str) -> str:
    """Return the ITU country calling code of a number, without the ``+``.

    ``country_code("+18005550100") == "1"``, ``"+442079460000" -> "44"``,
    ``"+35312345678" -> "353"``.  The number may be in any form
    :func:`normalize` accepts.  A spare (unassigned) code yields its first three
    digits, which is what the code would be if it were ever assigned.
    """
    digits = normalize(e164)[1:]
    if digits[:1] in _ONE_DIGIT_CODES:
        return digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


def is_nanp(e164: str) -> bool:
    """True for numbers in the North American Numbering Plan (country code 1)."""
    return country_code(e164) == "1"
