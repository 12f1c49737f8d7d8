"""softswitch.sip.e164: every accepted spelling of a number, every rejected one."""

from __future__ import annotations

import json

import pytest

from softswitch.sip.e164 import NumberError, country_code, is_nanp, normalize

ACCEPTED = [
    ("+18005550100", "+18005550100"),
    ("18005550100", "+18005550100"),  # digits without "+" include the country code
    ("+1 (800) 555-0100", "+18005550100"),
    ("+1-800-555-0100", "+18005550100"),
    ("+1.800.555.0100", "+18005550100"),
    ("  +1 800 555 0100  ", "+18005550100"),
    ("tel:+1-800-555-0100", "+18005550100"),
    ("TEL:+18005550100", "+18005550100"),
    ("tel:+18005550100;phone-context=example.com", "+18005550100"),
    ("tel:+1-800-555-0100;ext=22", "+18005550100"),
    ("%2B18005550100", "+18005550100"),
    ("%2b18005550100", "+18005550100"),
    ("tel:%2B1%20800%20555%200100", "+18005550100"),
    ("+442079460958", "+442079460958"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+1234567", "+1234567"),  # 7 digits: the shortest accepted
    ("+123456789012345", "+123456789012345"),  # 15 digits: the E.164 maximum
]

REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("tel:", "empty"),
    ("+", "no digits"),
    ("+1 800 CALL NOW", "letters"),
    ("+1800555O100", "letters"),  # letter O for zero
    ("sip:+18005550100@example.com", "letters"),
    ("+1 800 555 0100 x22", "letters"),
    ("+1*800", "'*'"),  # stray characters are listed
    ("+1/800/555/0100", "'/'"),
    ("+123456", "only 6 digits"),
    ("+1234567890123456", "16 digits"),
    ("+018005550100", "starts with 0"),
    ("02079460958", "starts with 0"),
    ("1+8005550100", "not at the start"),
    ("++18005550100", "not at the start"),
    ("+1 800 555 0100+", "not at the start"),
    ("%ZZ18005550100", "letters"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("text", [expected for _, expected in ACCEPTED])
def test_canonical_form_is_a_fixed_point(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_rejected_forms(text: str, reason: str) -> None:
    with pytest.raises(NumberError) as caught:
        normalize(text)
    message = str(caught.value)
    assert reason in message
    assert json.dumps(text) in message  # names the offending text
    assert "expected an E.164 number" in message  # and what was expected


def test_number_error_is_a_value_error() -> None:
    assert issubclass(NumberError, ValueError)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+18005550100", "1"),  # NANP
        ("+14155550101", "1"),
        ("+74951234567", "7"),  # Russia
        ("+77172123456", "7"),  # Kazakhstan shares zone 7
        ("+442079460958", "44"),  # United Kingdom
        ("+4930123456", "49"),  # Germany
        ("+33123456789", "33"),  # France
        ("+61212345678", "61"),  # Australia
        ("+81312345678", "81"),  # Japan
        ("+861012345678", "86"),  # China
        ("+919876543210", "91"),  # India
        ("+201234567890", "20"),  # Egypt
        ("+35312345678", "353"),  # Ireland
        ("+420212345678", "420"),  # Czechia
        ("+85212345678", "852"),  # Hong Kong
        ("+971412345678", "971"),  # United Arab Emirates
        ("+2348012345678", "234"),  # Nigeria
        ("+8001234567890", "800"),  # international freephone
        ("+2801234567", "280"),  # spare code: first three digits, best effort
        ("tel:+44-20-7946-0958", "44"),  # any accepted form
    ],
)
def test_country_code(number: str, code: str) -> None:
    assert country_code(number) == code


@pytest.mark.parametrize(
    ("number", "nanp"),
    [
        ("+18005550100", True),
        ("14155550101", True),
        ("+442079460958", False),
        ("+74951234567", False),
    ],
)
def test_is_nanp(number: str, nanp: bool) -> None:
    assert is_nanp(number) is nanp


def test_country_code_rejects_non_numbers() -> None:
    with pytest.raises(NumberError):
        country_code("not a number")
