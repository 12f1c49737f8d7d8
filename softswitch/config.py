"""softswitch configuration: YAML in, a validated immutable model out.

Theory
------
A configuration is read once (at start and on SIGHUP) and then shared, unchanged, by
every call.  So the model is built from frozen pydantic models whose mappings are
read-only views: nothing at run time can change what was validated.

Validation happens in three passes, and every problem of every pass is reported,
one line each, in the form::

    <file>: <key path>: <what was wrong>; expected <what>

1. *YAML.*  Syntax errors (with line and column), duplicate keys in one mapping
   (PyYAML would silently keep the last one — a classic way to lose a receiving
   number), a missing file, a top level that is not a mapping.
2. *Shape.*  pydantic checks types, ranges and unknown keys (``extra="forbid"``
   everywhere, so a typo such as ``ring_timout`` is an error with a suggestion, not
   a silently ignored setting).  pydantic's error locations are turned into key
   paths written the way the YAML is (``tracking_numbers["+18005550107"].route.dial[0]``,
   ``receiving_numbers.R1.ring_timeout``).
3. *References.*  Names that point elsewhere — receiving numbers in ``dial`` lists,
   ``fail_safe``, ``hours``, ``trunk``, ``{route: name}``, agents, menus, queues,
   routers, schedules, the tracking numbers of conditional rules — must exist; the
   message lists what does (or where they belong).  A chain of named
   routes that comes back to itself (``a → b → a``) is an error.

YAML shape (see ``conf/softswitch.yaml`` for a commented example, ``conf/lab.yaml``
for the lab of LAB.md)::

    sip: {listen: ["udp:127.0.0.1:5060", "tcp:[::1]:5060"], timers: {...},
          limits: {...}, user_agent: ..., public_host: ..., realm: ...}
    media: {mode: direct | relay, host, ports: "20000-29999", rtp_timeout, ringback}
    drain_limit: 30          # seconds
    log_level: info
    trunks: [{name, networks: [CIDR...], outbound_proxy: sip-URI, credentials}]
    schedules: {NAME: {timezone, weekly: [{days, start, end}], exceptions: [...]}}
    receiving_numbers: {NAME: {number, label, uri | trunk, ring_timeout, dial_extension,
                               whisper, screening: {key, timeout}, ...}}
    routes: {NAME: ROUTE}
    agents: {NAME: {password | ha1 [+ ha1_sha256], inbound_number, ring_when_busy}}
    menus: {NAME: {prompt, keys: {DIGIT: ROUTE}, timeout, retries, invalid_prompt,
                   default: ROUTE}}
    queues: {NAME: {members, strategy, ring_timeout, wrap_up, max_wait, hold_music,
                    announce: {every, prompts}, no_answer}}
    routing: {max_depth, final_status, max_calls}
    geo_routers: {NAME: {locations: [{name, latitude, longitude | state, route: ROUTE}],
                         out_of_area: ROUTE, max_distance_km}}
    conditional_routers: {NAME: {rules: [{caller_prefixes, caller_regex, caller_country,
                                          caller_area_codes, tracking_numbers, schedule,
                                          open, headers, route: ROUTE}],
                                 default: ROUTE}}
    tracking_numbers: {NUMBER-IN-ANY-FORM: {label, route: ROUTE, fail_safe, whisper,
                                            schedule_tags}}
    records: {path}          # SQLite file; relative to the config file's directory
    billing: {minimum_seconds, increment_seconds, inbound_per_minute}
    rates: [{prefix: E.164-PREFIX, pattern: PATTERN | null, per_minute}]
    api: {host, port, token}  # the management API; not started without a token
    webhooks: [{url, secret, events: [call_started, ...], timeout, retries}]

A ROUTE is a mapping with exactly one of the keys ``dial``, ``route``, ``agent``,
``menu``, ``queue``, ``geo_router``, ``conditional_router``.

Regular expressions (``caller_regex``, ``headers``) are Python ``re`` syntax, applied
with ``re.search`` (anchor with ``^``/``$`` as needed); they are compiled when the
configuration is loaded, so a bad one is a configuration error.

Audio files
-----------
``whisper``, ``prompt`` and ``hold_music`` must name existing files.  A relative path
is looked up, first match wins, in: (1) the directory holding the config file,
(2) that directory's parent — so ``conf/audio/x.wav`` written in ``conf/lab.yaml``
means the project's ``conf/audio/x.wav`` whatever the working directory — and
(3) the current working directory (only (3) for parse_config() without base_dir).
The model holds the absolute path found.
"""

from __future__ import annotations

import datetime
import difflib
import enum
import ipaddress
import json
import math
import re
import types
import typing
import zoneinfo
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidationInfo,
    WrapSerializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from softswitch.sip.e164 import NumberError, country_code, normalize
from softswitch.sip.errors import SipError
from softswitch.sip.uri import SipUri as ParsedSipUri
from softswitch.sip.uri import parse_uri

__all__ = [
    "AgentRoute",
    "Agent",
    "BillingSettings",
    "Condition",
    "ConditionalRoute",
    "ConditionalRouter",
    "Config",
    "ConfigError",
    "Credentials",
    "DatedException",
    "Announcement",
    "DialExtension",
    "MediaSettings",
    "QueueStrategy",
    "RegistrarSettings",
    "Screening",
    "DialRoute",
    "GeoLocation",
    "GeoRoute",
    "GeoRouter",
    "Limits",
    "Listen",
    "Menu",
    "MenuRoute",
    "Pattern",
    "Queue",
    "QueueRoute",
    "Rate",
    "Webhook",
    "ApiSettings",
    "WEBHOOK_EVENTS",
    "ReceivingNumber",
    "RecordsSettings",
    "Route",
    "RouteRef",
    "RoutingSettings",
    "Schedule",
    "SipSettings",
    "Timers",
    "TrackingNumber",
    "Trunk",
    "US_STATES",
    "WeeklyInterval",
    "calling_code",
    "load_config",
    "parse_config",
]

Loc = tuple[str | int, ...]
"""A key path as a tuple: ``("receiving_numbers", "R1", "ring_timeout")``."""


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per problem.

    Each line reads ``<file>: <key path>: <what was wrong>; expected <what>`` and
    ``str(error)`` is those lines joined by newlines, ready to show a user.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------
# Validation building blocks.
#
# Each validator raises a PydanticCustomError whose message is already in our
# "<what was wrong>; expected <what>" form; _describe() passes it through as is.

_CUSTOM = "softswitch"


def _show(value: object) -> str:
    """A short, YAML-ish rendering of an offending value for an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError(_CUSTOM, "{message}", {"message": message})


def _got(value: object, expected: str) -> PydanticCustomError:
    return _problem(f"got {_show(value)}; expected {expected}")


def _is_number(value: object) -> bool:
    # bool is an int subclass; "ring_timeout: yes" is a mistake, not 1 second.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: object) -> float:
    if isinstance(value, (int, float)) and _is_number(value) and math.isfinite(value) and value > 0:
        return float(value)
    raise _got(value, "a number of seconds > 0")


def _non_negative(value: object, expected: str) -> float:
    if (
        isinstance(value, (int, float))
        and _is_number(value)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    raise _got(value, expected)


def _seconds_or_zero(value: object) -> float:
    return _non_negative(value, "a number of seconds >= 0")


def _positive_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _got(value, "a whole number > 0")
    return value


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _got(value, "a whole number >= 0")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _got(value, "a non-empty string")
    return value


def _e164(value: object) -> str:
    # YAML reads an unquoted +18005550100 as the integer 18005550100; digits
    # without "+" already mean "country code included", so that is harmless.
    if _is_number(value) and isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise _got(value, 'a phone number in E.164 form, like "+14155550100"')
    try:
        return normalize(value)
    except NumberError as error:
        raise _problem(str(error)) from None


_SIP_URI = re.compile(r"(?i)sips?:(?:[^\s@]+@)?[^\s@;?:]+(?::\d{1,5})?(?:[;?]\S*)?")


def _sip_uri(value: object) -> str:
    if not isinstance(value, str) or not _SIP_URI.fullmatch(value):
        raise _got(value, 'a sip: or sips: URI like "sip:+14155550101@192.0.2.10:5060"')
    try:
        uri = parse_uri(value)
    except SipError as exc:
        raise _got(value, f"a valid sip: URI ({exc.detail})") from None
    if not isinstance(uri, ParsedSipUri):
        raise _got(value, "a sip: or sips: URI")
    host = uri.host_address
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # Requests are sent to the URI's host; names would need RFC 3263 DNS.
            raise _got(
                value, "a URI whose host is an IP address (DNS names are not supported yet)"
            ) from None
    if uri.transport not in ("udp", "tcp"):
        raise _got(value, "transport=udp or transport=tcp (the transports softswitch speaks)")
    return value


def _network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    expected = 'an address or network in CIDR form, like "203.0.113.0/24" or "::1/128"'
    if not isinstance(value, str):
        raise _got(value, expected)
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as error:
        if "host bits set" in str(error):
            raise _problem(
                f"got {_show(value)}, which has host bits set; expected {expected} "
                "(the network address, with the bits after the prefix length zero)"
            ) from None
        raise _got(value, expected) from None


_DTMF = re.compile(r"[0-9*#A-DwW]+")


def _dtmf(value: object) -> str:
    if _is_number(value):
        # 0123 in YAML is octal 83: quoting is the only safe way to write digits.
        raise _problem(
            f"got the number {value}; expected a quoted string of DTMF digits "
            'like "12#" (quote it so YAML keeps every digit)'
        )
    expected = "DTMF digits 0-9 * # A-D, with w (0.5 s pause) and W (1 s pause)"
    if not isinstance(value, str):
        raise _got(value, expected)
    digits = value.replace(" ", "")  # spaces only group digits visually
    if not _DTMF.fullmatch(digits):
        raise _got(value, expected)
    return digits


def _clock(value: object, *, end: bool) -> datetime.time:
    """Parse "HH:MM"; "24:00" is allowed as an end and means the end of the day.

    YAML 1.1 reads an unquoted 17:30 as the base-60 integer 1050, so an integer
    is taken back as minutes since midnight (exactly what 17:30 meant).
    """
    expected = 'a time "HH:MM" (24-hour clock' + (', "24:00" for end of day)' if end else ")")
    if _is_number(value) and isinstance(value, int):
        hours, minutes = divmod(value, 60)
    elif isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
    else:
        raise _got(value, expected)
    if end and (hours, minutes) == (24, 0):
        return datetime.time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise _got(value, expected)
    return datetime.time(hours, minutes)


def _start_time(value: object) -> datetime.time:
    return _clock(value, end=False)


def _end_time(value: object) -> datetime.time:
    return _clock(value, end=True)


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        raise _got(value, 'an IANA time zone like "America/New_York" or "UTC"')
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _got(value, 'an IANA time zone like "America/New_York" or "UTC"') from None
    return value


_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")


def _prefix(value: object) -> str:
    if _is_number(value) and isinstance(value, int):
        value = f"+{value}"
    if not isinstance(value, str) or not _PREFIX.fullmatch(value.replace(" ", "")):
        raise _got(value, 'an E.164 number prefix like "+1415" or "+44"')
    return value.replace(" ", "")


def _scalar_or_list(value: object) -> object:
    # "caller_country: '44'" is shorthand for "caller_country: ['44']".
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    return value


def _regex(value: object) -> str:
    expected = "a Python regular expression (re.search syntax)"
    if not isinstance(value, str) or not value:
        raise _got(value, expected)
    try:
        re.compile(value)
    except re.error as error:
        raise _problem(
            f"got {_show(value)}, which is not a valid regular expression ({error}); "
            f"expected {expected}"
        ) from None
    return value


def calling_code(e164: str) -> str:
    """The ITU country calling code of a phone number, without ``+``: ``"1"`` for
    every NANP number, ``"44"`` for ``"+442079460000"``, ``"353"`` for Ireland.

    Longest match over the ITU assignments (softswitch.sip.e164.country_code),
    re-exported here for the routing layer, which may not import softswitch.sip.
    ``e164`` may be in any form the E.164 normalizer accepts; anything else
    raises ValueError.
    """
    return country_code(e164)


_COUNTRY_EXPECTED = 'an ITU country calling code of 1 to 3 digits, like "1", "44" or "353"'


def _country(value: object) -> str:
    text = str(value) if _is_number(value) and isinstance(value, int) else value
    if not isinstance(text, str):
        raise _got(value, _COUNTRY_EXPECTED)
    code = text.strip().removeprefix("+")
    if not re.fullmatch(r"[1-9][0-9]{0,2}", code):
        raise _got(value, _COUNTRY_EXPECTED)
    # Calling codes are prefix-free: padding a code out to a number must give it back.
    actual = country_code("+" + code + "0" * 8)
    if actual != code:
        hint = f" (numbers starting +{code} have code {actual})" if len(actual) < len(code) else ""
        raise _problem(
            f"got {_show(value)}, which is not a country calling code{hint}; "
            f"expected {_COUNTRY_EXPECTED}"
        )
    return code


def _area_code(value: object) -> str:
    text = str(value) if _is_number(value) and isinstance(value, int) else value
    if not isinstance(text, str) or not re.fullmatch(r"[2-9][0-9]{2}", text.strip()):
        raise _got(value, 'a NANP area code: 3 digits, the first 2-9, like "212"')
    return text.strip()


US_STATES: frozenset[str] = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO "
    "MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC".split()
)
"""The two-letter USPS codes of the 50 US states and the District of Columbia."""


def _state(value: object) -> str:
    expected = 'a two-letter US state or DC code, like "CA" or "NY"'
    if not isinstance(value, str) or value.strip().upper() not in US_STATES:
        raise _got(value, expected)
    return value.strip().upper()


def _degrees(value: object, limit: int, what: str) -> float:
    if (
        isinstance(value, (int, float))
        and _is_number(value)
        and math.isfinite(value)
        and -limit <= value <= limit
    ):
        return float(value)
    raise _got(value, f"a {what} in decimal degrees, -{limit} to {limit}")


def _latitude(value: object) -> float:
    return _degrees(value, 90, "latitude")


def _longitude(value: object) -> float:
    return _degrees(value, 180, "longitude")


def _kilometres(value: object) -> float:
    if isinstance(value, (int, float)) and _is_number(value) and math.isfinite(value) and value > 0:
        return float(value)
    raise _got(value, "a distance in kilometres > 0")


def _status_in(value: object, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _got(value, f"{what}, {low}-{high}")
    return value


def _final_status(value: object) -> int:
    return _status_in(value, 400, 699, "a SIP failure status")


def _hunt_status(value: object) -> int:
    return _status_in(value, 300, 699, "a SIP final status other than 2xx")


_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


def _header_name(value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise _got(value, 'a SIP header name like "X-Campaign" or "User-Agent"')
    return value.lower()


def _audio_path(value: object, info: ValidationInfo) -> Path:
    """Resolve an audio file per the rule in the module docstring."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise _got(value, "the path of an audio file")
    path = Path(value).expanduser()
    base_dir = _context(info).get("base_dir")
    if path.is_absolute():
        candidates = [path]
    elif isinstance(base_dir, Path):
        candidates = [base_dir / path, base_dir.parent / path, Path.cwd() / path]
    else:
        candidates = [Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    places = ", ".join(str(candidate.parent) for candidate in dict.fromkeys(candidates))
    raise _problem(
        f"audio file {_show(str(value))} not found (looked in {places}); "
        "expected the path of an existing audio file"
    )


def _context(info: ValidationInfo) -> dict[str, Any]:
    context = info.context
    return context if isinstance(context, dict) else {}


_V = TypeVar("_V")


def _dump_mapping(value: Mapping[str, Any], handler: SerializerFunctionWrapHandler) -> Any:
    return handler(dict(value))


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A duration in seconds, > 0."""
Text = Annotated[str, BeforeValidator(_text)]
E164 = Annotated[str, BeforeValidator(_e164)]
SipUri = Annotated[str, BeforeValidator(_sip_uri)]
AudioPath = Annotated[Path, BeforeValidator(_audio_path)]
Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, PlainValidator(_network)]
FrozenMap = Annotated[
    Mapping[str, _V], AfterValidator(types.MappingProxyType), WrapSerializer(_dump_mapping)
]
"""A read-only mapping (types.MappingProxyType) keyed by name."""


class _Model(BaseModel):
    """Base of every config model: immutable, unknown keys rejected.

    ``validate_by_name`` lets Python code build models with field names
    (``DialRoute(numbers=...)``) while YAML uses the aliases (``dial:``).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    # Keys that come from the YAML mapping key rather than the entry itself
    # ("name" of a receiving number, "number" of a tracking number); left out of
    # the "expected one of" list for unknown keys.
    _implied_keys: ClassVar[frozenset[str]] = frozenset()


# --------------------------------------------------------------------------
# sip:


class Listen(_Model):
    """One socket to listen on, written ``"udp:127.0.0.1:5060"`` or ``"tcp:[::1]:5060"``.

    ``host`` is held without brackets; port 0 asks the OS for a free port (tests).
    """

    transport: Literal["udp", "tcp"]
    host: Text
    port: int = Field(ge=0, le=65535)

    _EXPECTED: ClassVar[str] = (
        'expected "udp:HOST:PORT" or "tcp:HOST:PORT", e.g. "udp:127.0.0.1:5060" '
        'or "tcp:[::1]:5060" (IPv6 addresses in brackets)'
    )

    @classmethod
    def parse(cls, text: str) -> Listen:
        """Parse the written form; ValueError says what was wrong and what was expected."""
        transport, _, address = text.strip().partition(":")
        transport = transport.lower()
        if transport not in ("udp", "tcp"):
            raise ValueError(f"{_show(text)} does not start with udp: or tcp:; {cls._EXPECTED}")
        if address.startswith("["):
            host, bracket, rest = address[1:].partition("]")
            if not bracket or not rest.startswith(":"):
                raise ValueError(
                    f"{_show(text)} has no ]:PORT after the IPv6 address; {cls._EXPECTED}"
                )
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(
                    f"{_show(text)} has no valid IPv6 address in brackets; {cls._EXPECTED}"
                ) from None
            port_text = rest[1:]
        else:
            host, colon, port_text = address.rpartition(":")
            if not colon or not host:
                raise ValueError(f"{_show(text)} has no HOST:PORT; {cls._EXPECTED}")
            if ":" in host:
                raise ValueError(
                    f"{_show(text)} has an IPv6 address without brackets; {cls._EXPECTED}"
                )
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
                raise ValueError(
                    f"{_show(text)} has an invalid host {_show(host)}; {cls._EXPECTED}"
                )
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(
                f"{_show(text)} has port {_show(port_text)}, not 0-65535; {cls._EXPECTED}"
            )
        return cls(transport=transport, host=host, port=int(port_text))  # type: ignore[arg-type]

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def _listen(value: object) -> object:
    if isinstance(value, str):
        try:
            return Listen.parse(value)
        except ValueError as error:
            raise _problem(str(error)) from None
    return value  # a mapping {transport, host, port} is validated as the model


class Timers(_Model):
    """RFC 3261 §17.1.1.1 timer values: T1 (RTT estimate), T2 (max non-INVITE
    retransmit interval), T4 (max time a message stays in the network)."""

    t1: Seconds = 0.5
    t2: Seconds = 4.0
    t4: Seconds = 5.0

    @model_validator(mode="after")
    def _t1_below_t2(self) -> Timers:
        if self.t2 < self.t1:
            raise _problem(f"t2 ({self.t2}) is less than t1 ({self.t1}); expected t1 <= t2")
        return self


class Limits(_Model):
    """Bounds that keep a malformed or hostile peer from using unbounded memory."""

    max_message_bytes: Annotated[int, BeforeValidator(_positive_int)] = 65535
    max_headers: Annotated[int, BeforeValidator(_positive_int)] = 100
    max_line_bytes: Annotated[int, BeforeValidator(_positive_int)] = 8192
    tcp_buffer_bytes: Annotated[int, BeforeValidator(_positive_int)] = 262144


_DEFAULT_LISTEN = (
    Listen(transport="udp", host="127.0.0.1", port=5060),
    Listen(transport="tcp", host="127.0.0.1", port=5060),
)


def _algorithm_list(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value or len(set(value)) != len(value):
        raise _problem("expected SHA-256 and/or MD5, each once, most preferred first")
    return value


class RegistrarSettings(_Model):
    """Agents' registrations (RFC 3261 §10): ``Expires`` is clamped to
    [``min_expires``, ``max_expires``] (below the minimum: 423 Interval Too Brief);
    nonces live ``nonce_lifetime`` seconds (then ``stale=true``).  A source with
    ``slow_after`` failed authentications within ``window`` seconds gets its answers
    one second later per further failure; at ``block_after`` it is refused (403) for
    ``block_for`` seconds.  ``algorithms`` orders the digest challenges: phones that
    read only the first one and know only MD5 need ``[MD5, SHA-256]``."""

    min_expires: Annotated[int, BeforeValidator(_positive_int)] = 60
    max_expires: Annotated[int, BeforeValidator(_positive_int)] = 3600
    default_expires: Annotated[int, BeforeValidator(_positive_int)] = 3600
    nonce_lifetime: Seconds = 300.0
    window: Seconds = 60.0
    slow_after: Annotated[int, BeforeValidator(_positive_int)] = 3
    block_after: Annotated[int, BeforeValidator(_positive_int)] = 10
    block_for: Seconds = 300.0
    algorithms: Annotated[
        tuple[Literal["SHA-256", "MD5"], ...], AfterValidator(_algorithm_list)
    ] = ("SHA-256", "MD5")
    """Digest challenges in this order (RFC 8760: most preferred first)."""

    @model_validator(mode="after")
    def _ordered(self) -> RegistrarSettings:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise _problem(
                f"min_expires {self.min_expires}, default_expires {self.default_expires}, "
                f"max_expires {self.max_expires}; expected min <= default <= max"
            )
        if self.block_after < self.slow_after:
            raise _problem("block_after is below slow_after; expected slow_after <= block_after")
        return self


class SipSettings(_Model):
    """The ``sip:`` section.  Defaults listen on loopback only (safe by default)."""

    listen: Annotated[
        tuple[Annotated[Listen, BeforeValidator(_listen)], ...], AfterValidator(_non_empty)
    ] = _DEFAULT_LISTEN
    timers: Timers = Timers()
    limits: Limits = Limits()
    user_agent: Text = "softswitch"
    public_host: Text | None = None
    """Host for Via/Contact when the listen address is not what peers should use."""
    realm: Text = "softswitch"
    """Digest authentication realm for agents registering (RFC 3261 §22)."""
    registrar: RegistrarSettings = RegistrarSettings()

    @field_validator("listen", mode="after")
    @classmethod
    def _unique_listen(cls, listen: tuple[Listen, ...]) -> tuple[Listen, ...]:
        seen: set[Listen] = set()
        for entry in listen:
            if entry in seen:
                raise _problem(f"{_show(str(entry))} is listed twice; expected each address once")
            seen.add(entry)
        return listen


# --------------------------------------------------------------------------
# media:


def _ip_address(value: object) -> str:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            pass
    raise _got(value, "an IPv4 or IPv6 address (softswitch binds its RTP sockets there)")


def _port_range(value: object) -> tuple[int, int]:
    expected = 'a range of UDP ports "LOW-HIGH" with LOW even, e.g. "20000-29999"'
    if isinstance(value, str):
        low_text, dash, high_text = value.replace(" ", "").partition("-")
        if dash and low_text.isdigit() and high_text.isdigit():
            low, high = int(low_text), int(high_text)
            # RTP on even ports, RTCP on the next odd one (RFC 3550 §11).
            if 1024 <= low < high <= 65535 and low % 2 == 0:
                return low, high
    raise _got(value, expected)


class MediaSettings(_Model):
    """The ``media:`` section: where softswitch's own RTP lives.

    ``mode: direct`` leaves RTP between caller and receiving number unless a leg
    needs softswitch in the media path (a dial extension, a whisper, screening);
    ``relay`` anchors every call.  Each anchored leg takes an RTP/RTCP port pair
    from ``ports`` on ``host`` (also the address written into SDP).  A call whose
    RTP stops for ``rtp_timeout`` seconds is ended (0: never).  ``ringback`` is what
    a caller hears while a whisper plays: ``local`` (a 180, the caller's phone rings)
    or ``generated`` (ringback tone as early media); after early media was relayed
    the tone is always generated, since the caller's phone is then listening to us.
    """

    mode: Literal["direct", "relay"] = "direct"
    host: Annotated[str, BeforeValidator(_ip_address)] = "127.0.0.1"
    ports: Annotated[tuple[int, int], BeforeValidator(_port_range)] = (20000, 29999)
    rtp_timeout: Annotated[float, BeforeValidator(_seconds_or_zero)] = 60.0
    ringback: Literal["local", "generated"] = "local"


# --------------------------------------------------------------------------
# trunks:


class Credentials(_Model):
    """Digest credentials softswitch answers a trunk's 401/407 challenge with."""

    username: Text
    password: Text
    realm: Text | None = None
    """Only answer challenges for this realm; None answers any."""


class Trunk(_Model):
    """A carrier or PBX: who may send us calls, and how we send calls through it."""

    name: Text
    networks: Annotated[tuple[Network, ...], AfterValidator(_non_empty)]
    """Source addresses trusted as this trunk; anything else gets 403."""
    outbound_proxy: SipUri | None = None
    """Where requests toward receiving numbers with ``trunk: <name>`` are sent."""
    credentials: Credentials | None = None

    def contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        # ipaddress compares bits only: check the version ourselves, or 127.0.0.1
        # would be "in" an IPv6 network whose low 32 bits happen to match.
        return any(
            address.version == network.version and address in network for network in self.networks
        )


# --------------------------------------------------------------------------
# schedules:

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = typing.get_args(Day)


class WeeklyInterval(_Model):
    """Open from ``start`` to ``end`` (local time) on each of ``days``.

    ``end`` "24:00" is held as ``datetime.time.max``; an interval never crosses
    midnight (write 22:00-24:00 and 00:00-06:00 on the next day instead).
    """

    days: Annotated[tuple[Day, ...], AfterValidator(_non_empty)]
    start: Annotated[datetime.time, BeforeValidator(_start_time)]
    end: Annotated[datetime.time, BeforeValidator(_end_time)]

    @model_validator(mode="after")
    def _ordered(self) -> WeeklyInterval:
        if self.end <= self.start:
            raise _problem(
                f"end {self.end:%H:%M} is not after start {self.start:%H:%M}; expected "
                "end after start (split intervals that cross midnight in two)"
            )
        return self

    def contains(self, local: datetime.datetime) -> bool:
        return _DAYS[local.weekday()] in self.days and self.start <= local.time() < self.end


class DatedException(_Model):
    """A day that differs from the weekly pattern (a holiday, a late opening).

    ``open: false`` (the default) closes the whole day; ``open: true`` opens it,
    all day or from ``start`` to ``end`` only.
    """

    date: datetime.date
    open: bool = False
    start: Annotated[datetime.time, BeforeValidator(_start_time)] | None = None
    end: Annotated[datetime.time, BeforeValidator(_end_time)] | None = None

    @model_validator(mode="after")
    def _window(self) -> DatedException:
        if (self.start is None) != (self.end is None):
            raise _problem("only one of start and end is set; expected both or neither")
        if self.start is not None and not self.open:
            raise _problem("start/end given on a closed day; expected open: true with a window")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise _problem("end is not after start; expected end after start")
        return self


class Schedule(_Model):
    """Hours of operation: open during any weekly interval, unless a dated
    exception for that local date says otherwise.  No intervals: never open."""

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    weekly: tuple[WeeklyInterval, ...] = ()
    exceptions: tuple[DatedException, ...] = ()

    @field_validator("exceptions", mode="after")
    @classmethod
    def _one_per_date(cls, exceptions: tuple[DatedException, ...]) -> tuple[DatedException, ...]:
        dates = [exception.date for exception in exceptions]
        for date in dates:
            if dates.count(date) > 1:
                raise _problem(f"{date.isoformat()} is listed twice; expected each date once")
        return exceptions

    def is_open(self, when: datetime.datetime) -> bool:
        """Whether the schedule is open at ``when`` (an aware datetime)."""
        if when.tzinfo is None:
            raise ValueError("Schedule.is_open needs an aware datetime")
        local = when.astimezone(zoneinfo.ZoneInfo(self.timezone))
        for exception in self.exceptions:
            if exception.date == local.date():
                if exception.start is None or exception.end is None:
                    return exception.open
                return exception.start <= local.time() < exception.end
        return any(interval.contains(local) for interval in self.weekly)


# --------------------------------------------------------------------------
# Routes.
#
# A route is written as a mapping with exactly one of the keys below; that key
# names the kind (a "discriminated union", chosen by _route_kind).  The union's
# tags appear in pydantic error locations; _path() removes them.


class Pattern(enum.StrEnum):
    """How a dial list (or a queue's members) is rung."""

    SIMULTANEOUS = "simultaneous"
    """Ring every number at once; the first answer wins, the rest get CANCEL."""
    ROUND_ROBIN = "round_robin"
    """Start each call at the number after the one the previous call started at."""
    SEQUENTIAL = "sequential"
    """Start every call at the first number, moving down the list."""
    LEAST_CONNECTED = "least_connected"
    """Start at the number with the fewest calls in progress; ties in list order."""


def _one_or_many(value: object) -> object:
    # "dial: R1" is shorthand for "dial: [R1]".
    return [value] if isinstance(value, str) else value


def _non_empty(items: tuple[_V, ...]) -> tuple[_V, ...]:
    # An after-validator rather than Field(min_length=1): pydantic reports
    # min_length as well when every item of a list failed, which misleads.
    if not items:
        raise _problem("got an empty list; expected at least one entry")
    return items


def _unique_names(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if names.count(name) > 1:
            raise _problem(f"{_show(name)} is listed twice; expected each name once")
    return names


def _unique_statuses(statuses: tuple[int, ...]) -> tuple[int, ...]:
    for status in statuses:
        if statuses.count(status) > 1:
            raise _problem(f"{status} is listed twice; expected each status once")
    return statuses


NameList = Annotated[
    tuple[Text, ...],
    BeforeValidator(_one_or_many),
    AfterValidator(_non_empty),
    AfterValidator(_unique_names),
]


class DialRoute(_Model):
    """``{dial: [R1, R2], pattern: ..., ring_timeout: ..., no_answer: ROUTE}``.

    ``ring_timeout`` overrides each number's own; ``no_answer`` runs when no number
    answered (busy, failure, no answer, closed hours).  A leg's final status listed
    in ``hunt_stop`` (default 600, 603, 604, 606: the callee declined, or the number
    does not exist anywhere) stops the hunt at once: no further numbers, no
    no-answer routing.  ``hunt_stop: []`` never stops early.
    """

    numbers: NameList = Field(alias="dial")
    pattern: Pattern = Pattern.SIMULTANEOUS
    ring_timeout: Seconds | None = None
    no_answer: Route | None = None
    hunt_stop: Annotated[
        tuple[Annotated[int, BeforeValidator(_hunt_status)], ...],
        BeforeValidator(_scalar_or_list),
        AfterValidator(_unique_statuses),
    ] = (600, 603, 604, 606)


class RouteRef(_Model):
    """``{route: name}``: continue with the named route under ``routes:``."""

    name: Text = Field(alias="route")


class AgentRoute(_Model):
    """``{agent: alice, fallback: ROUTE}``: ring every contact the agent has
    registered (for ``ring_timeout`` seconds); with none registered, the agent's
    ``inbound_number``; if that does not answer either, take ``fallback``."""

    agent: Text
    ring_timeout: Seconds = 20.0
    fallback: Route | None = None


class MenuRoute(_Model):
    """``{menu: name}``: play a voice menu from ``menus:``."""

    menu: Text


class QueueRoute(_Model):
    """``{queue: name}``: put the caller in a call queue from ``queues:``."""

    queue: Text


class GeoRoute(_Model):
    """``{geo_router: name}``: route by where the caller is (``geo_routers:``)."""

    geo_router: Text


class ConditionalRoute(_Model):
    """``{conditional_router: name}``: route by rules (``conditional_routers:``)."""

    conditional_router: Text


# The YAML key that marks each kind, and the model it becomes.
_ROUTE_KINDS: dict[str, type[_Model]] = {
    "dial": DialRoute,
    "route": RouteRef,
    "agent": AgentRoute,
    "menu": MenuRoute,
    "queue": QueueRoute,
    "geo_router": GeoRoute,
    "conditional_router": ConditionalRoute,
}
_TAG_PREFIX = "route-kind:"
_ROUTE_EXPECTED = "a route: a mapping with exactly one of the keys " + ", ".join(_ROUTE_KINDS)


def _route_kind(value: object) -> str | None:
    if isinstance(value, _Model):
        for key, model in _ROUTE_KINDS.items():
            if isinstance(value, model):
                return _TAG_PREFIX + key
        return None
    if not isinstance(value, Mapping):
        return None
    present = [key for key in _ROUTE_KINDS if key in value]
    return _TAG_PREFIX + present[0] if len(present) == 1 else None


Route = Annotated[
    Annotated[DialRoute, Tag(_TAG_PREFIX + "dial")]
    | Annotated[RouteRef, Tag(_TAG_PREFIX + "route")]
    | Annotated[AgentRoute, Tag(_TAG_PREFIX + "agent")]
    | Annotated[MenuRoute, Tag(_TAG_PREFIX + "menu")]
    | Annotated[QueueRoute, Tag(_TAG_PREFIX + "queue")]
    | Annotated[GeoRoute, Tag(_TAG_PREFIX + "geo_router")]
    | Annotated[ConditionalRoute, Tag(_TAG_PREFIX + "conditional_router")],
    Discriminator(_route_kind, custom_error_type="route", custom_error_message=_ROUTE_EXPECTED),
]
"""Any route; test the kind with isinstance (DialRoute, RouteRef, AgentRoute, ...)."""

DialRoute.model_rebuild()
AgentRoute.model_rebuild()


# --------------------------------------------------------------------------
# receiving_numbers:


class DialExtension(_Model):
    """DTMF digits sent to a receiving number ``delay`` seconds after it answers
    (an extension behind an auto-attendant).  ``w`` waits 0.5 s, ``W`` 1 s.  Each
    digit sounds for ``duration`` seconds with ``gap`` seconds of silence after it;
    sent as RFC 4733 telephone-events, or as SIP INFO when the receiving end did
    not offer telephone-event."""

    digits: Annotated[str, BeforeValidator(_dtmf)]
    delay: Annotated[float, BeforeValidator(_seconds_or_zero)] = 0.0
    duration: Seconds = 0.1
    gap: Seconds = 0.1


def _screening_key(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return str(value)
    if isinstance(value, str) and len(value) == 1 and value in "0123456789*#ABCD":
        return value
    raise _got(value, "one DTMF key: 0-9, *, #, A-D")


class Screening(_Model):
    """Press-a-key screening: after the whisper (which should ask for the key), the
    person who answered must press ``key`` within ``timeout`` seconds; no key or
    another key counts as no answer, so a voicemail cannot take the call."""

    key: Annotated[str, BeforeValidator(_screening_key)] = "1"
    timeout: Seconds = 5.0


class ReceivingNumber(_Model):
    """A phone that calls are forwarded to.

    Reached at ``uri`` (an explicit SIP URI) or through ``trunk`` (that trunk's
    outbound proxy, with ``number`` as the user part) — exactly one of the two.
    ``hours`` names a schedule: outside it the number is treated as not answering
    and the call goes on to no-answer routing.  ``whisper`` is played to this number
    after it answers, unless the tracking number has its own whisper.
    """

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    number: E164
    label: str = ""
    uri: SipUri | None = None
    trunk: Text | None = None
    ring_timeout: Seconds = 20.0
    no_provisional_timeout: Seconds = 5.0
    """A target that sends not even 100 Trying in this time is abandoned."""
    caller_id: Literal["caller", "tracking"] = "caller"
    """Show the receiving phone the caller's number, or the tracking number dialled."""
    diversion: bool = False
    """Add a Diversion header (RFC 5806) naming the tracking number."""
    dial_extension: DialExtension | None = None
    whisper: AudioPath | None = None
    screening: Screening | None = None
    hours: Text | None = None
    no_answer: Route | None = None

    @field_validator("screening", mode="before")
    @classmethod
    def _screening_shorthand(cls, value: object) -> object:
        # "screening: true" asks for the default key 1 within 5 s.
        return {} if value is True else value

    @field_validator("dial_extension", mode="before")
    @classmethod
    def _extension_shorthand(cls, value: object) -> object:
        # "dial_extension: '12#'" is shorthand for {digits: '12#', delay: 0}.
        return {"digits": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_target(self) -> ReceivingNumber:
        if (self.uri is None) == (self.trunk is None):
            which = "both uri and trunk" if self.uri is not None else "neither uri nor trunk"
            raise _problem(
                f"has {which}; expected exactly one of uri (a sip: URI) or trunk (a trunk name)"
            )
        return self


# --------------------------------------------------------------------------
# agents:, menus:, queues:, geo_routers:, conditional_routers:

_HA1 = re.compile(r"[0-9a-fA-F]{32}")
_HA1_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _ha1(value: object) -> str:
    if not isinstance(value, str) or not _HA1.fullmatch(value):
        raise _got(value, "32 hex digits (MD5 of name:realm:password)")
    return value.lower()


def _ha1_sha256(value: object) -> str:
    if not isinstance(value, str) or not _HA1_SHA256.fullmatch(value):
        raise _got(value, "64 hex digits (SHA-256 of name:realm:password)")
    return value.lower()


class Agent(_Model):
    """A person who registers a softphone as ``sip:<name>@softswitch``.

    Give ``password`` or ``ha1`` (hex MD5 of ``name:realm:password``, RFC 2617
    §3.2.2.2, with ``sip.realm``), not both; ``ha1_sha256`` (the same with SHA-256,
    RFC 8760) may accompany ``ha1``.  Keep plain passwords out of production files.
    ``inbound_number`` names a receiving number to ring when the agent has no
    registered contact.
    """

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    password: Text | None = None
    ha1: Annotated[str, BeforeValidator(_ha1)] | None = None
    ha1_sha256: Annotated[str, BeforeValidator(_ha1_sha256)] | None = None
    """With ``ha1``: lets the agent's phone answer an RFC 8760 SHA-256 challenge."""
    inbound_number: Text | None = None
    ring_when_busy: bool = False
    """Ring this agent's phones even while the agent is in a call."""

    @model_validator(mode="after")
    def _one_secret(self) -> Agent:
        if (self.password is None) == (self.ha1 is None):
            which = (
                "both password and ha1" if self.password is not None else "neither password nor ha1"
            )
            raise _problem(f"has {which}; expected exactly one of password or ha1")
        return self


def _menu_key(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9*#]", value):
        return value
    raise _got(value, 'one keypad key: 0-9, "*" or "#"')


MenuKey = Annotated[str, BeforeValidator(_menu_key)]


class Menu(_Model):
    """A voice menu: play ``prompt``, wait ``timeout`` seconds for a key.

    A key in ``keys`` takes its route.  No key (or one not listed, after
    ``invalid_prompt`` if there is one) replays the prompt up to ``retries`` more
    times, then takes ``default`` (none: the caller is hung up).
    """

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    prompt: AudioPath
    keys: FrozenMap[Route] = Field(default_factory=lambda: types.MappingProxyType({}))
    timeout: Seconds = 5.0
    retries: Annotated[int, BeforeValidator(_count)] = 1
    invalid_prompt: AudioPath | None = None
    """Played after a key that is not in ``keys``, before the prompt again."""
    default: Route | None = None

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        # YAML reads "1:" as the integer 1; keys are held as the string "1".
        if not isinstance(value, Mapping):
            return value
        keys: dict[str, object] = {}
        for key, route in value.items():
            keys[_menu_key(key)] = route
        return keys


class QueueStrategy(enum.StrEnum):
    """Which idle member(s) a waiting caller is offered to."""

    RING_ALL = "ring_all"
    """Every idle member at once; the first to answer takes the caller."""
    ROUND_ROBIN = "round_robin"
    """One member at a time, starting after the member the last offer went to."""
    LONGEST_IDLE = "longest_idle"
    """The member idle for longest (never called: longest of all), one at a time."""
    FEWEST_CALLS = "fewest_calls"
    """The member who has taken the fewest queue calls; ties in list order."""
    LINEAR = "linear"
    """Always from the top of the list, one at a time."""
    RANDOM = "random"
    """An idle member at random, one at a time."""


class Announcement(_Model):
    """"You are number N in the queue": every ``every`` seconds a waiting caller
    hears ``prompts[N-1]`` (the recording for position N; the last one is used for
    every position beyond the list)."""

    every: Seconds = 30.0
    prompts: Annotated[tuple[AudioPath, ...], AfterValidator(_non_empty)]


class Queue(_Model):
    """A call queue: callers wait, in arrival order, hearing ``hold_music`` (looped)
    while ``members`` (agents or receiving numbers) are rung by ``strategy``,
    ``ring_timeout`` seconds per attempt.  A member who took a call rests
    ``wrap_up`` seconds before the next.  After ``max_wait`` seconds a caller takes
    ``no_answer``."""

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    members: NameList
    strategy: QueueStrategy = QueueStrategy.ROUND_ROBIN
    ring_timeout: Seconds = 15.0
    wrap_up: Annotated[float, BeforeValidator(_seconds_or_zero)] = 0.0
    max_wait: Seconds = 300.0
    hold_music: AudioPath | None = None
    announce: Announcement | None = None
    no_answer: Route | None = None


Prefix = Annotated[str, BeforeValidator(_prefix)]
Regex = Annotated[str, BeforeValidator(_regex)]
"""A Python regular expression, checked by compiling it."""


class GeoLocation(_Model):
    """A place calls may go to: ``latitude`` and ``longitude`` (decimal degrees),
    or ``state`` (a two-letter US state or DC code) — exactly one of the two."""

    name: Text
    latitude: Annotated[float, BeforeValidator(_latitude)] | None = None
    longitude: Annotated[float, BeforeValidator(_longitude)] | None = None
    state: Annotated[str, BeforeValidator(_state)] | None = None
    """Held in upper case (``"NY"``)."""
    route: Route

    @model_validator(mode="after")
    def _one_place(self) -> GeoLocation:
        expected = "expected either latitude and longitude, or state (a two-letter US state code)"
        has_point = self.latitude is not None or self.longitude is not None
        if has_point and self.state is not None:
            raise _problem(f"has both latitude/longitude and state; {expected}")
        if not has_point and self.state is None:
            raise _problem(f"has neither latitude/longitude nor state; {expected}")
        if has_point and (self.latitude is None or self.longitude is None):
            given, missing = (
                ("latitude", "longitude") if self.longitude is None else ("longitude", "latitude")
            )
            raise _problem(f"has {given} without {missing}; expected both latitude and longitude")
        return self


class GeoRouter(_Model):
    """Route by where the caller is: the location nearest the caller takes the
    call.  Callers it cannot place (withheld, non-geographic or unknown numbers),
    and callers farther than ``max_distance_km`` from every location, take
    ``out_of_area``."""

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    locations: Annotated[tuple[GeoLocation, ...], AfterValidator(_non_empty)]
    out_of_area: Route
    max_distance_km: Annotated[float, BeforeValidator(_kilometres)] | None = None

    @field_validator("locations", mode="after")
    @classmethod
    def _unique_locations(cls, locations: tuple[GeoLocation, ...]) -> tuple[GeoLocation, ...]:
        _unique_names(tuple(location.name for location in locations))
        return locations


def _headers(value: object) -> object:
    # Header names are case-insensitive (RFC 3261 §7.3.1): held in lower case.
    if not isinstance(value, Mapping):
        return value
    if not value:
        raise _problem(
            'got an empty mapping; expected header names with regexes, like {X-Campaign: "^spring"}'
        )
    headers: dict[str, object] = {}
    written: dict[str, object] = {}
    for key, pattern in value.items():
        name = _header_name(key)
        if name in headers:
            raise _problem(
                f"{_show(written[name])} and {_show(key)} are the same header; "
                "expected each header once"
            )
        headers[name] = pattern
        written[name] = key
    return headers


_CONDITIONS = (
    "caller_prefixes",
    "caller_regex",
    "caller_country",
    "caller_area_codes",
    "tracking_numbers",
    "schedule",
    "headers",
)


# Lists of conditions: one value may be written without brackets; an empty list
# would be a condition nothing meets, so it is an error.
_ListedPrefixes = Annotated[
    tuple[Prefix, ...], BeforeValidator(_scalar_or_list), AfterValidator(_non_empty)
]
_ListedCountries = Annotated[
    tuple[Annotated[str, BeforeValidator(_country)], ...],
    BeforeValidator(_scalar_or_list),
    AfterValidator(_non_empty),
]
_ListedAreaCodes = Annotated[
    tuple[Annotated[str, BeforeValidator(_area_code)], ...],
    BeforeValidator(_scalar_or_list),
    AfterValidator(_non_empty),
]
_ListedNumbers = Annotated[
    tuple[E164, ...], BeforeValidator(_scalar_or_list), AfterValidator(_non_empty)
]


class Condition(_Model):
    """One rule of a conditional router: every condition given must hold.

    * ``caller_prefixes``: the caller's E.164 number starts with one of them.
    * ``caller_regex``: ``re.search`` finds it in the caller's E.164 number, or in
      the caller as received (the From user part) when that is not a number.
    * ``caller_country``: the caller's country calling code is one of these
      (``"1"`` for every NANP number).
    * ``caller_area_codes``: the caller is a NANP number with one of these area codes.
    * ``tracking_numbers``: the call came in on one of these.
    * ``schedule`` and ``open``: that schedule is open (``open: true``, the
      default) or closed (``open: false``) when the call arrives.
    * ``headers``: for each header name (case-insensitive), ``re.search`` with
      its regex finds a match in one of that header's values.

    A withheld or non-numeric caller matches none of the number conditions (only
    ``caller_regex``, against what was received).  A rule needs at least one
    condition: the catch-all is the router's ``default``.
    """

    caller_prefixes: _ListedPrefixes = ()
    caller_regex: Regex | None = None
    caller_country: _ListedCountries = ()
    caller_area_codes: _ListedAreaCodes = ()
    tracking_numbers: _ListedNumbers = ()
    schedule: Text | None = None
    open: bool = True
    headers: Annotated[FrozenMap[Regex], BeforeValidator(_headers)] = Field(
        default_factory=lambda: types.MappingProxyType({})
    )
    """Lower-case header name -> regex."""
    route: Route

    _caller_pattern: re.Pattern[str] | None = PrivateAttr(default=None)
    _header_patterns: Mapping[str, re.Pattern[str]] = PrivateAttr(
        default_factory=lambda: types.MappingProxyType({})
    )

    @model_validator(mode="after")
    def _has_condition(self) -> Condition:
        given = [name for name in _CONDITIONS if name in self.model_fields_set]
        if not given:
            raise _problem(
                "got a rule with no condition; expected at least one condition ("
                + ", ".join(_CONDITIONS)
                + "); use default for the catch-all"
            )
        if "open" in self.model_fields_set and self.schedule is None:
            raise _problem("has open without schedule; expected schedule: NAME with open")
        return self

    def model_post_init(self, context: Any, /) -> None:
        if self.caller_regex is not None:
            self._caller_pattern = re.compile(self.caller_regex)
        self._header_patterns = types.MappingProxyType(
            {name: re.compile(pattern) for name, pattern in self.headers.items()}
        )

    @property
    def caller_pattern(self) -> re.Pattern[str] | None:
        """``caller_regex`` compiled (None without one)."""
        return self._caller_pattern

    @property
    def header_patterns(self) -> Mapping[str, re.Pattern[str]]:
        """``headers`` with each regex compiled, keyed by lower-case name."""
        return self._header_patterns


class ConditionalRouter(_Model):
    """The first rule whose conditions hold gives the route; else ``default``."""

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: Text
    rules: Annotated[tuple[Condition, ...], AfterValidator(_non_empty)]
    default: Route


# --------------------------------------------------------------------------
# tracking_numbers:


class TrackingNumber(_Model):
    """A number callers dial; ``route`` says where the call goes.

    ``fail_safe`` names the receiving number used when routing itself cannot be
    followed.  ``whisper`` is played to whoever answers, instead of their own.
    ``schedule_tags`` name schedules whose open/closed state is recorded on the
    call (the product's "tagging hours").
    """

    _implied_keys: ClassVar[frozenset[str]] = frozenset({"number"})

    number: E164
    label: str = ""
    route: Route
    fail_safe: Text | None = None
    whisper: AudioPath | None = None
    schedule_tags: tuple[Text, ...] = ()


# --------------------------------------------------------------------------
# routing:


class RoutingSettings(_Model):
    """The ``routing:`` section: limits that apply to every call's routing."""

    max_depth: Annotated[int, BeforeValidator(_positive_int)] = 8
    """A chain of no-answer routes deeper than this stops (as if nothing were left)."""
    final_status: Annotated[int, BeforeValidator(_final_status)] = 480
    """What the caller hears when routing has nothing left to try (400-699)."""
    max_calls: Annotated[int, BeforeValidator(_count)] = 0
    """Calls in progress above which a new call skips routing and goes straight to
    its tracking number's fail-safe number; 0: no limit."""


# --------------------------------------------------------------------------
# records:, billing:, rates: (call records and what they cost; softswitch.records)


def _records_path(value: object, info: ValidationInfo) -> Path:
    """A relative path is taken from the config file's directory (the current
    working directory for parse_config() without base_dir); its directory need
    not exist yet (the record store creates it)."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise _got(value, 'the path of an SQLite database file, like "softswitch-calls.sqlite3"')
    path = Path(value).expanduser()
    if not path.is_absolute():
        base_dir = _context(info).get("base_dir")
        path = (base_dir if isinstance(base_dir, Path) else Path.cwd()) / path
    path = path.resolve()
    if path.is_dir():
        raise _problem(
            f"got {_show(str(value))}, which is a directory ({path}); "
            "expected the path of an SQLite database file"
        )
    return path


def _per_minute(value: object) -> float:
    return _non_negative(value, "a price per minute >= 0, like 0.02")


def _rate_pattern(value: object) -> object:
    if value is None or isinstance(value, Pattern):
        return value
    if isinstance(value, str) and value in {pattern.value for pattern in Pattern}:
        return Pattern(value)
    raise _got(value, f"one of {', '.join(Pattern)}, or null for any pattern")


class RecordsSettings(_Model):
    """The ``records:`` section: where call records are stored (SQLite, WAL)."""

    path: Annotated[Path, BeforeValidator(_records_path)] = Field(
        default=Path("softswitch-calls.sqlite3"), validate_default=True
    )
    """Absolute once validated; a relative path is taken from the config file's directory."""


class BillingSettings(_Model):
    """The ``billing:`` section: how call time becomes billable seconds.

    A leg with any time at all is billed at least ``minimum_seconds``, then in
    steps of ``increment_seconds`` (60/60: whole minutes; 6/6: tenths of a
    minute).  ``inbound_per_minute`` prices the caller's side (the tracking
    number) for the answered call's talk time.
    """

    minimum_seconds: Annotated[int, BeforeValidator(_positive_int)] = 60
    increment_seconds: Annotated[int, BeforeValidator(_positive_int)] = 60
    inbound_per_minute: Annotated[float, BeforeValidator(_per_minute)] = 0.0


def _http_url(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise _got(value, 'an http:// or https:// URL, e.g. "https://crm.example.com/hooks/calls"')
    return value


WEBHOOK_EVENTS = (
    "call_started", "leg_ringing", "answered", "bridged", "leg_failed", "call_ended"
)


def _webhook_events(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        for item in value:
            if item not in WEBHOOK_EVENTS:
                raise _got(item, "one of " + ", ".join(WEBHOOK_EVENTS))
    return value


class Webhook(_Model):
    """One ``webhooks:`` entry: call lifecycle events POSTed as JSON to ``url``.

    The body is signed with HMAC-SHA256 over the raw body using ``secret``
    (header ``X-Softswitch-Signature: sha256=<hex>``); a request that fails or takes
    longer than ``timeout`` is retried up to ``retries`` times with growing pauses.
    A slow or dead endpoint never delays a call.
    """

    url: Annotated[str, BeforeValidator(_http_url)]
    secret: Text
    events: Annotated[tuple[str, ...], BeforeValidator(_webhook_events)] = ("call_ended",)
    timeout: Seconds = 5.0
    retries: Annotated[int, BeforeValidator(_count)] = 3


class ApiSettings(_Model):
    """The ``api:`` section: the management API (HTTP, bearer token).

    Bound to loopback by default.  Without a ``token`` the API is not started: it
    can hang up calls and reload the config, so it never runs unauthenticated.
    """

    host: Text = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    token: Text | None = None


class Rate(_Model):
    """One ``rates:`` entry: the per-minute price of legs to numbers starting with
    ``prefix`` (E.164), for one dial ``pattern`` or (null) any pattern.

    The longest matching prefix wins; between entries with the same prefix, the
    one naming the call's pattern beats the one without (softswitch.records.rating).
    """

    prefix: Annotated[str, BeforeValidator(_prefix)]
    pattern: Annotated[Pattern | None, BeforeValidator(_rate_pattern)] = None
    per_minute: Annotated[float, BeforeValidator(_per_minute)]


def _unique_rates(rates: tuple[Rate, ...], info: ValidationInfo) -> tuple[Rate, ...]:
    seen: dict[tuple[str, Pattern | None], int] = {}
    for index, rate in enumerate(rates):
        key = (rate.prefix, rate.pattern)
        if key in seen:
            pattern = f"pattern {rate.pattern.value}" if rate.pattern else "any pattern"
            _record(
                info,
                ("rates", index),
                f"prefix {_show(rate.prefix)} with {pattern} is already rates"
                f"[{seen[key]}]; expected each prefix and pattern once",
            )
        else:
            seen[key] = index
    return rates


def _records_default(value: object) -> object:
    # "records:" left empty (null) or absent: the default path, resolved like any other.
    return {} if value is None else value


# --------------------------------------------------------------------------
# The whole configuration.


def _record(info: ValidationInfo, loc: Loc, message: str) -> None:
    """Report a problem found while reshaping a section, without abandoning the
    rest of the section (pydantic would drop everything after a raise)."""
    problems = _context(info).get("problems")
    if not isinstance(problems, list):
        raise _problem(message)
    problems.append((loc, message))


_SECTIONS = frozenset(
    {"sip", "trunks", "schedules", "receiving_numbers", "routes", "agents", "menus", "queues"}
    | {"routing", "geo_routers", "conditional_routers", "tracking_numbers"}
    | {"billing", "rates", "api", "webhooks", "media"}
)


class Config(_Model):
    """The validated configuration; see the module docstring for the YAML."""

    sip: SipSettings = SipSettings()
    media: MediaSettings = MediaSettings()
    drain_limit: Seconds = 30.0
    """Seconds SIGTERM waits for calls to finish before sending BYE to the rest."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    routing: RoutingSettings = RoutingSettings()
    trunks: tuple[Trunk, ...] = ()
    """No trunks: nobody may call (every INVITE gets 403)."""
    schedules: FrozenMap[Schedule] = Field(default_factory=lambda: types.MappingProxyType({}))
    receiving_numbers: FrozenMap[ReceivingNumber] = Field(
        default_factory=lambda: types.MappingProxyType({})
    )
    routes: FrozenMap[Route] = Field(default_factory=lambda: types.MappingProxyType({}))
    agents: FrozenMap[Agent] = Field(default_factory=lambda: types.MappingProxyType({}))
    menus: FrozenMap[Menu] = Field(default_factory=lambda: types.MappingProxyType({}))
    queues: FrozenMap[Queue] = Field(default_factory=lambda: types.MappingProxyType({}))
    geo_routers: FrozenMap[GeoRouter] = Field(default_factory=lambda: types.MappingProxyType({}))
    conditional_routers: FrozenMap[ConditionalRouter] = Field(
        default_factory=lambda: types.MappingProxyType({})
    )
    tracking_numbers: FrozenMap[TrackingNumber] = Field(
        default_factory=lambda: types.MappingProxyType({})
    )
    """Keyed by the normalized E.164 number."""
    records: Annotated[RecordsSettings, BeforeValidator(_records_default)] = Field(
        default=None, validate_default=True
    )
    """Where call records are stored; see softswitch.records.store."""
    billing: BillingSettings = BillingSettings()
    rates: Annotated[tuple[Rate, ...], AfterValidator(_unique_rates)] = ()
    api: ApiSettings = ApiSettings()
    webhooks: tuple[Webhook, ...] = ()
    """Per-minute prices of outbound legs by destination prefix and dial pattern."""

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: object) -> object:
        # "agents:" with every entry commented out reads as null: an empty section.
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (v is None and k in _SECTIONS)}
        return data

    @field_validator(
        "schedules",
        "receiving_numbers",
        "agents",
        "menus",
        "queues",
        "geo_routers",
        "conditional_routers",
        mode="before",
    )
    @classmethod
    def _names_from_keys(cls, value: object, info: ValidationInfo) -> object:
        # The YAML key is the entry's name; copy it into the entry.
        if not isinstance(value, Mapping):
            return value
        section = info.field_name or ""
        entries: dict[str, object] = {}
        for key, entry in value.items():
            name = str(key) if isinstance(key, (int, float)) else key
            if isinstance(entry, Mapping):
                if "name" in entry:
                    _record(
                        info,
                        (section, name, "name"),
                        "the name is the entry's key; expected no name: key here",
                    )
                entry = {**entry, "name": name}
            entries[name] = entry
        return entries

    @field_validator("routes", mode="before")
    @classmethod
    def _route_names_as_text(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        return {str(key) if isinstance(key, (int, float)) else key: v for key, v in value.items()}

    @field_validator("tracking_numbers", mode="before")
    @classmethod
    def _numbers_from_keys(cls, value: object, info: ValidationInfo) -> object:
        # Keys may be written in any form normalize() accepts; they are held in
        # E.164.  Keys that are not numbers, and two keys meaning one number, are
        # reported here and the entry left out, so the rest is still checked.
        if not isinstance(value, Mapping):
            return value
        entries: dict[str, object] = {}
        written: dict[str, object] = {}
        for key, entry in value.items():
            try:
                number = _e164(key)
            except PydanticCustomError as error:
                _record(info, ("tracking_numbers", str(key)), error.message())
                continue
            if number in written:
                _record(
                    info,
                    ("tracking_numbers", number),
                    f"{_show(str(written[number]))} and {_show(str(key))} are both {number}; "
                    "expected each tracking number once",
                )
                continue
            written[number] = key
            if isinstance(entry, Mapping):
                if "number" in entry:
                    _record(
                        info,
                        ("tracking_numbers", number, "number"),
                        "the number is the entry's key; expected no number: key here",
                    )
                entry = {**entry, "number": number}
            entries[number] = entry
        return entries

    @field_validator("trunks", mode="after")
    @classmethod
    def _unique_trunks(cls, trunks: tuple[Trunk, ...]) -> tuple[Trunk, ...]:
        _unique_names(tuple(trunk.name for trunk in trunks))
        return trunks

    def trunk_for(self, ip: str) -> Trunk | None:
        """The first trunk whose networks contain source address ``ip``.

        IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``, seen on dual-stack
        sockets) also match the IPv4 networks.  A string that is not an address
        matches nothing.
        """
        try:
            address = ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            return None
        addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            addresses.append(address.ipv4_mapped)
        for trunk in self.trunks:
            if any(trunk.contains(candidate) for candidate in addresses):
                return trunk
        return None

    def tracking_number(self, number: str) -> TrackingNumber | None:
        """The tracking number for ``number`` in any form normalize() accepts
        (``"+18005550100"``, ``"18005550100"``, ``"tel:+1-800-555-0100"``);
        None when it is unknown or not a phone number at all."""
        try:
            return self.tracking_numbers.get(normalize(number))
        except NumberError:
            return None


Config.model_rebuild()


# --------------------------------------------------------------------------
# Pass 3: references between sections.


def _routes_in(route: Route, loc: Loc) -> Iterator[tuple[Route, Loc]]:
    """``route`` and every route nested in it, each with its key path."""
    yield route, loc
    if isinstance(route, DialRoute) and route.no_answer is not None:
        yield from _routes_in(route.no_answer, (*loc, "no_answer"))
    if isinstance(route, AgentRoute) and route.fallback is not None:
        yield from _routes_in(route.fallback, (*loc, "fallback"))


def _route_roots(config: Config) -> Iterator[tuple[Route, Loc]]:
    """Every route written anywhere in the configuration (outermost ones)."""
    for number, tracking in config.tracking_numbers.items():
        yield tracking.route, ("tracking_numbers", number, "route")
    for name, receiving in config.receiving_numbers.items():
        if receiving.no_answer is not None:
            yield receiving.no_answer, ("receiving_numbers", name, "no_answer")
    for name, route in config.routes.items():
        yield route, ("routes", name)
    for name, menu in config.menus.items():
        for key, route in menu.keys.items():
            yield route, ("menus", name, "keys", key)
        if menu.default is not None:
            yield menu.default, ("menus", name, "default")
    for name, queue in config.queues.items():
        if queue.no_answer is not None:
            yield queue.no_answer, ("queues", name, "no_answer")
    for name, geo in config.geo_routers.items():
        for index, location in enumerate(geo.locations):
            yield location.route, ("geo_routers", name, "locations", index, "route")
        yield geo.out_of_area, ("geo_routers", name, "out_of_area")
    for name, conditional in config.conditional_routers.items():
        for index, rule in enumerate(conditional.rules):
            yield rule.route, ("conditional_routers", name, "rules", index, "route")
        yield conditional.default, ("conditional_routers", name, "default")


def _missing(what: str, name: str, existing: Mapping[str, object] | tuple[str, ...]) -> str:
    if not existing:
        return f"unknown {what} {_show(name)}; expected a defined {what} (there are none)"
    return f"unknown {what} {_show(name)}; expected one of: {', '.join(existing)}"


def _check_references(config: Config) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    trunk_names = tuple(trunk.name for trunk in config.trunks)

    def need(
        loc: Loc, what: str, name: str, existing: Mapping[str, object] | tuple[str, ...]
    ) -> None:
        if name not in existing:
            problems.append((loc, _missing(what, name, existing)))

    for root, root_loc in _route_roots(config):
        for route, loc in _routes_in(root, root_loc):
            if isinstance(route, DialRoute):
                for index, name in enumerate(route.numbers):
                    need((*loc, "dial", index), "receiving number", name, config.receiving_numbers)
            elif isinstance(route, RouteRef):
                need((*loc, "route"), "route", route.name, config.routes)
            elif isinstance(route, AgentRoute):
                need((*loc, "agent"), "agent", route.agent, config.agents)
            elif isinstance(route, MenuRoute):
                need((*loc, "menu"), "menu", route.menu, config.menus)
            elif isinstance(route, QueueRoute):
                need((*loc, "queue"), "queue", route.queue, config.queues)
            elif isinstance(route, GeoRoute):
                need((*loc, "geo_router"), "geo router", route.geo_router, config.geo_routers)
            else:
                need(
                    (*loc, "conditional_router"),
                    "conditional router",
                    route.conditional_router,
                    config.conditional_routers,
                )

    for name, receiving in config.receiving_numbers.items():
        if receiving.trunk is not None:
            need(("receiving_numbers", name, "trunk"), "trunk", receiving.trunk, trunk_names)
        if receiving.hours is not None:
            need(
                ("receiving_numbers", name, "hours"), "schedule", receiving.hours, config.schedules
            )
    for number, tracking in config.tracking_numbers.items():
        if tracking.fail_safe is not None:
            need(
                ("tracking_numbers", number, "fail_safe"),
                "receiving number",
                tracking.fail_safe,
                config.receiving_numbers,
            )
        for index, tag in enumerate(tracking.schedule_tags):
            need(
                ("tracking_numbers", number, "schedule_tags", index),
                "schedule",
                tag,
                config.schedules,
            )
    for name, agent in config.agents.items():
        if agent.inbound_number is not None:
            need(
                ("agents", name, "inbound_number"),
                "receiving number",
                agent.inbound_number,
                config.receiving_numbers,
            )
    for name, queue in config.queues.items():
        for index, member in enumerate(queue.members):
            need(
                ("queues", name, "members", index),
                "agent or receiving number",
                member,
                (*config.agents, *config.receiving_numbers),
            )
    for name, conditional in config.conditional_routers.items():
        for index, rule in enumerate(conditional.rules):
            if rule.schedule is not None:
                need(
                    ("conditional_routers", name, "rules", index, "schedule"),
                    "schedule",
                    rule.schedule,
                    config.schedules,
                )
            for position, number in enumerate(rule.tracking_numbers):
                if number not in config.tracking_numbers:
                    problems.append(
                        (
                            ("conditional_routers", name, "rules", index, "tracking_numbers")
                            + (position,),
                            f"unknown tracking number {_show(number)}; "
                            "expected a number defined under tracking_numbers",
                        )
                    )

    problems.extend(_route_cycles(config))
    return problems


def _route_cycles(config: Config) -> list[tuple[Loc, str]]:
    """Named routes that lead back to themselves through ``{route: name}``.

    Edges run from a named route to every ``{route: name}`` in it, including
    inside no-answer and fallback chains (a no-answer that leads back to the same
    route would ring forever).  Menus are not followed: a menu key that returns to
    the main menu is the caller's choice, not a loop.
    """
    edges = {
        name: [r.name for r, _ in _routes_in(route, ()) if isinstance(r, RouteRef)]
        for name, route in config.routes.items()
    }
    problems: list[tuple[Loc, str]] = []
    reported: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = trail[trail.index(name) :] + [name]
            if not reported.intersection(cycle):
                reported.update(cycle)
                problems.append(
                    (
                        ("routes", cycle[0]),
                        f"the route leads back to itself ({' → '.join(cycle)}); "
                        "expected every chain of routes to end in a number, agent, menu or queue",
                    )
                )
            return
        for target in edges.get(name, []):
            visit(target, [*trail, name])

    for name in edges:
        visit(name, [])
    return problems


# --------------------------------------------------------------------------
# Turning pydantic errors into key paths and sentences.

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _path(loc: Loc) -> str:
    """``("tracking_numbers", "+1800…", "route", "dial", 0)`` →
    ``tracking_numbers["+1800…"].route.dial[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def _clean(loc: Loc) -> Loc:
    """Drop the parts pydantic adds that are not YAML keys: union tags and the
    ``[key]`` marker of a mapping key that failed validation."""
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and (part.startswith(_TAG_PREFIX) or part == "[key]"))
    )


def _model_at(loc: Loc) -> type[_Model] | None:
    """The model class that validates the mapping at ``loc`` (a raw pydantic
    location), found by walking Config's annotations; None if not a model."""
    annotation: object = Config
    for part in loc:
        if isinstance(part, str) and part.startswith(_TAG_PREFIX):
            annotation = _ROUTE_KINDS.get(part.removeprefix(_TAG_PREFIX))
            continue
        annotation = _unwrap(annotation)
        if (
            isinstance(annotation, type)
            and issubclass(annotation, _Model)
            and isinstance(part, str)
        ):
            field = next(
                (f for key, f in annotation.model_fields.items() if part in (key, f.alias)), None
            )
            annotation = None if field is None else field.annotation
        elif typing.get_origin(annotation) in (Mapping, dict):
            annotation = typing.get_args(annotation)[1]
        elif typing.get_origin(annotation) is tuple:
            annotation = typing.get_args(annotation)[0]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, _Model) else None


def _unwrap(annotation: object) -> object:
    """Strip Annotated[...] and Optional from a type."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key; expected only the documented keys"
    known = [
        field.alias or name
        for name, field in model.model_fields.items()
        if name not in model._implied_keys
    ]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key{hint}; expected one of: {', '.join(known)}"


# Expectations for pydantic's own error types.
_EXPECTED_BY_TYPE: dict[str, str] = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "mapping_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "date_type": "a date like 2025-12-25",
    "date_parsing": "a date like 2025-12-25",
    "date_from_datetime_parsing": "a date like 2025-12-25",
    "date_from_datetime_inexact": "a date like 2025-12-25",
    "route": _ROUTE_EXPECTED,
}


def _describe(error: Mapping[str, Any]) -> str:
    """One error as ``<what was wrong>; expected <what>``."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == _CUSTOM:
        return str(error["msg"])
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind == "missing":
        return "required key is missing; expected it to be set"
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"])
    got = f"got {_show(error.get('input'))}"
    if kind in ("literal_error", "enum"):
        return f"{got}; expected one of {context.get('expected')}"
    if kind == "route" and isinstance(error.get("input"), Mapping):
        keys = ", ".join(str(key) for key in error["input"])
        got = f"got a mapping with {keys}" if keys else "got an empty mapping"
        return f"{got}; expected {_ROUTE_EXPECTED}"
    if kind == "too_short":
        return f"{got} with too few entries; expected at least {context.get('min_length')}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {
            "greater_than_equal": ">= {ge}",
            "less_than_equal": "<= {le}",
            "greater_than": "> {gt}",
            "less_than": "< {lt}",
        }[kind]
        return f"{got}; expected a number {bound.format(**context)}"
    expected = _EXPECTED_BY_TYPE.get(kind)
    if expected is None:
        return f"{got}; expected: {str(error['msg']).lower()}"
    return f"{got}; expected {expected.format(**context)}"


def _line(source: str, loc: Loc, message: str) -> str:
    path = _path(loc)
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"


# --------------------------------------------------------------------------
# YAML.


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    """Build a mapping, refusing a key repeated in it (PyYAML keeps the last one
    silently; here that would mean a receiving number quietly replaced)."""
    loader.flatten_mapping(node)
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {_show(key)} appears twice in one mapping (first at line "
                f"{first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


# A SafeLoader (never constructs arbitrary objects) with _construct_mapping; the
# libyaml-backed CSafeLoader when PyYAML has it (about ten times faster, which
# matters to test suites and SIGHUP reloads), else the pure-Python one.  Built
# with type() because the base is chosen at run time; hence typed Any.
_StrictLoader: Any = type(
    "_StrictLoader", (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader,), {}
)
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = error.problem or error.context or "invalid YAML"
        raise ConfigError([f"{source}: {where}{what}; expected valid YAML"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{source}: {error}; expected valid YAML"]) from None


# --------------------------------------------------------------------------
# Entry points.


def parse_config(text: str, source: str = "<string>", base_dir: Path | None = None) -> Config:
    """Build a Config from YAML ``text``; ``source`` names it in error messages and
    ``base_dir`` (the config file's directory) anchors relative audio paths.

    Raises ConfigError listing every problem found.
    """
    data = _read_yaml(text, source)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"{_show(data)}"
        raise ConfigError(
            [
                f"{source}: the top level is {kind}; expected a mapping of settings "
                "(sip:, trunks:, receiving_numbers:, tracking_numbers:, ...)"
            ]
        )
    recorded: list[tuple[Loc, str]] = []
    context = {
        "base_dir": base_dir.resolve() if base_dir is not None else None,
        "problems": recorded,
    }
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as error:
        lines = [_line(source, _clean(e["loc"]), _describe(e)) for e in error.errors()]
        raise ConfigError([_line(source, loc, m) for loc, m in recorded] + lines) from None
    problems = recorded + _check_references(config)
    if problems:
        raise ConfigError([_line(source, loc, message) for loc, message in problems])
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate the YAML config file at ``path``; raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: file not found; expected a softswitch YAML config file"]
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{path}: is a directory; expected a softswitch YAML config file"]
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            [f"{path}: byte {error.start} is not UTF-8; expected a UTF-8 text file"]
        ) from None
    except OSError as error:
        raise ConfigError(
            [f"{path}: cannot be read ({error.strerror}); expected a readable file"]
        ) from None
    return parse_config(text, source=str(path), base_dir=path.parent)
